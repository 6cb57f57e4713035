// Package cluster makes identical Dionysia nodes into one cluster: gossip
// membership and failure detection with hashicorp/memberlist, the replicated
// log with hashicorp/raft on raft-boltdb/v2, the consistent ring that places
// every stream on one node, the leader's reconciliation of gossip members into
// raft voters, and the forwarding of writes from followers to the leader.
//
// It owns no application state: the raft.FSM (package fsm) is passed in. It
// serves the cluster port: raft and the internal HTTP endpoints share it
// (package peer splits and authenticates the connections); it mounts
// /internal/apply there and the caller's Config.Internal for the rest. It
// must not know about media, other internal routes, or the meaning of
// commands.
//
// # Files
//
//   - cluster.go: Cluster, New, Start, Close, Kill, Changes.
//   - config.go: Config, Meta, defaults and validation.
//   - membership.go: memberlist, its delegates, gossiped Meta, member events.
//   - raft.go: raft transport on the cluster port, the internal HTTP server,
//     bolt stores, bootstrap, RaftState.
//   - snapshots.go: raft snapshots and files kept private (0600/0700).
//   - voters.go: the leader turns members into raft voters and non-voters.
//   - ring.go: the consistent ring (bounded loads) over serving members: the
//     ring owner of a key, the candidate order of live streams (GetClosestN)
//     and the resolution of a recorded owner (or its standby) to a member.
//   - forward.go: Apply on the leader or forwarded to it, and Handler.
//   - logging.go: hashicorp logging bridged into log/slog.
//
// # Failure detection (memberlist)
//
// The defaults start from memberlist's DefaultLANConfig and tighten it for a
// LAN: ProbeInterval 500ms, ProbeTimeout 300ms (not lower: a loaded 2-core
// box must not suspect healthy peers), GossipInterval 100ms, SuspicionMult 3,
// SuspicionMaxTimeoutMult 2. memberlist's suspicion timeout is
// SuspicionMult × max(1, log10(N)) × ProbeInterval = 1.5s for clusters up to
// ten nodes (at most 3s while waiting for a peer's confirmation). A dead node
// is first probed within about one interval by some survivor, the failed probe
// (direct, then indirect and TCP fallback) takes the rest of that interval, and
// then the suspicion timer runs: a dead node is declared dead after roughly
// 2–3 s, and the dead message spreads in one or two gossip intervals.
// TestIntegrationFailureDetectionAndRejoin measures and logs it: 2.2–2.9 s
// from Kill until both survivors see the member dead and off the ring, on a
// 2-core box (also with both cores kept busy). memberlist does not report
// suspicion to its event delegate, so Members shows a suspected member as
// "alive" until it is declared dead, and it stays on the ring meanwhile.
//
// # Partitions
//
// memberlist neither probes nor syncs with a member it holds dead, so once a
// partition has lasted past the suspicion timeout each side holds the other
// dead for good, even after the network heals, and the leader would reap the
// other side from raft after ReapTimeout. Every node therefore tries to join
// the members it holds dead every 2 s (reconnectLoop, as Serf's reconnect
// does): the push/pull of that join lets both sides refute the deaths. The
// chaos suite (package chaos, isolated leader) found this; with the loop a
// node cut off for 8 s is alive and a voter again within seconds of the heal.
//
// # Elections (raft)
//
// HeartbeatTimeout and ElectionTimeout 1000ms (raft's defaults, which stay
// reliable on a busy 2-core machine), LeaderLeaseTimeout 500ms, CommitTimeout
// 50ms. A follower notices a dead leader after one to two heartbeat timeouts
// and the election takes a little more: TestIntegrationKillLeaderElectsAndReaps
// measures 1.1–2.3 s from Kill to a new leader agreed by both survivors. A
// graceful Close transfers leadership in about 0.4 s. Raft is not on the
// stream failover path (the ring follows memberlist), only writes are.
//
// # Raft membership
//
// Nobody edits raft peers by hand. A node started without Join and without raft
// state bootstraps a single-voter configuration of itself; every other node is
// added by the leader (voters.go) when gossip says it is alive: as a voter up
// to MaxVoters, as a non-voter beyond. Members that left gracefully (a closing
// node gossips a "leaving" flag first, because memberlist does not tell its
// event delegate a leave from a death) or died are removed after ReapTimeout,
// not at once: stopping a whole cluster one node after the other must not
// shrink the configuration to the last node (see docs/adr/0002). A
// non-voter is promoted when a voter slot
// frees up. Members keeps dead and departed members listed for twice
// ReapTimeout, so that the leader reaps them from raft before they vanish.
//
// # Forwarding
//
// Apply on a follower POSTs the encoded command to ApplyPath on the leader's
// cluster port, through Config.Peer (mutual TLS, or a derived token in plain
// mode); the leader applies it and answers the FSM's result in fsm's encoding
// (fsm.EncodeResult), which this package moves as bytes. Every command
// carries an idempotency key (its own, or one Apply makes up), so it applies
// at most once however often it is sent: a try that certainly did not apply
// (a dial failure, a 421 from a node that is no longer leader, a 503 that
// says not_applied) goes to the next leader; a try whose fate is unknown (the
// answer lost, leadership lost during the apply) is sent again under the same
// key, and the leader answers with the result of the copy that applied. Only
// when that finds no answer in time does Apply give up, with
// ErrOutcomeUnknown rather than ErrNoLeader.
//
// # Lifetimes
//
// New only validates. Start opens raft and memberlist and starts the
// background goroutines (join retry, voter reconciliation, leader observer,
// metadata updates); Close or Kill stops every one of them. The context given
// to Start bounds only Start itself.
package cluster
