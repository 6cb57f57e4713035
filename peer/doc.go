// Package peer owns how Dionysia nodes authenticate each other: the keys
// derived from the cluster key (one per purpose), the TLS configurations of
// the cluster port (self-issued certificates or the operator's files), the
// one HTTP client every node-to-node call goes through, the middleware that
// admits internal requests, and the listener that carries raft and internal
// HTTP on one port.
//
// It knows nothing about raft's state, streams or the API: cluster and node
// ask it for a configured connection and get one, or a clear error.
//
// Modes (see docs/adr/0009):
//   - operator files (--tls-cert, --tls-key, --tls-ca): mutual TLS, peers
//     must present a certificate chaining to the operator's CA;
//   - cluster key only (--cluster-key): mutual TLS with certificates each
//     node issues itself from a CA key every holder of the cluster key
//     derives, so only holders of the key can join the conversation;
//   - neither: plain TCP; internal calls carry a token derived from the
//     secret chosen at bootstrap. Meant for a single node or a trusted
//     network only, and the node says so when it has peers.
package peer
