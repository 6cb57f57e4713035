// Package node wires one Dionysia node together: the replicated state (fsm),
// membership, raft and the ring (cluster), the co-located mediamtx and the
// ffmpeg transcoders (media), and the HTTP API (httpapi).
//
// It is the only package that knows all the others. Its reconcile loops turn
// what the cluster agrees on (inputs, profiles, live sessions, the ring) plus
// what runs locally (mediamtx paths, transcoders) into actions: record a
// session when a publish becomes ready, start ffmpeg for the sessions this
// node owns, stop it when the session ends or moves away. Webhooks
// (webhooks.go): every node proposes the events it observes into the raft
// outbox, the leader delivers them; admission.go asks a publish admission
// URL from mediamtx's auth hook.
package node
