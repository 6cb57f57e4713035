// Package chaos runs real Dionysia nodes, each a `dionysia node` process in
// its own network namespace, and breaks the network, the processes and the
// disks under them while a client writes through every node. It then checks
// what a user must be able to rely on whatever happens:
//
//   - the history of register operations is linearizable (porcupine);
//   - no acknowledged write is lost and none is applied twice;
//   - at most one leader per raft term;
//   - a live stream keeps playing from the majority side;
//   - nodes cut off from the majority refuse writes with 503 saying there is
//     no leader (no quorum) or naming the leader they cannot reach;
//   - every node recovers once the fault is healed.
//
// # Topology
//
// One run owns namespaces named dch<pid>-*: a hub namespace holding a bridge,
// one namespace per node (10.77.0.1x/24 on a veth to the bridge) and a client
// namespace (10.77.0.100) where the test's HTTP client, the publisher and the
// playlist checks live. The root namespace gets no address, route or rule:
// the test process reaches the nodes through sockets it opens inside the
// client namespace (setns on a locked thread). Faults are nftables rules and
// tc qdiscs inside the node namespaces, SIGSTOP/SIGCONT of a node process, and
// a tmpfs under each data dir that a fault fills up. The tmpfs must hold
// everything the run writes until then (raft's log, two snapshots and the
// one being written, the idempotency store's answers of the last ten
// minutes), or disks fill by themselves and nodes fall behind for reasons
// no fault caused: every fault starts only once each data dir is less than
// 3/4 full.
//
// The nodes run in TLS mode (ADR 0009) with a cluster key made for the run,
// passed in the environment; DIONYSIA_CHAOS_PLAIN=1 runs them in plain mode.
//
// # Ending by itself
//
// Every wait is bounded; a fault that cannot even begin (no write succeeds)
// fails instead of waiting, and a run that could outlast go test's -timeout
// stops before the next fault. Cleanup runs on pass, failure, Ctrl-C and
// SIGTERM; the nodes die with the test process in any case (death signal),
// and the next run sweeps namespaces and mounts a killed run left.
//
// # Files
//
//   - netns.go: namespaces, bridge, veths, the sweep of leftovers, the dialer.
//   - faults.go: partitions, one-way partitions, loss and latency, freezes, full disks.
//   - nodes.go: starting one node process (startNode: the only place with node flags).
//   - workload.go: the clients and their history.
//   - checks.go: linearizability, lost writes, leaders per term, the minority's answers.
//   - health.go: each node's raft progress and disk, the evidence behind a missing write.
//   - stream.go: the publisher and the playlist watcher.
//   - report.go: the per-fault report (markdown and JSON).
//
// The full suite runs with DIONYSIA_CHAOS=1 (make chaos); a short subset
// (isolated leader, frozen leader) runs in plain `go test` when the machine
// allows it (root, ip, nft, tc) and skips otherwise, except in CI (CI or
// DIONYSIA_REQUIRE_CHAOS set) where a missing tool fails the test.
package chaos
