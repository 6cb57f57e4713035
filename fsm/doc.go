// Package fsm is the replicated state of a Dionysia cluster: transcoding
// profiles, inputs and live ingest sessions, changed only by typed commands
// applied through raft.
//
// It is pure and deterministic: Apply reads nothing but the state and the
// command (ids, keys and times are chosen by whoever proposes the command), and
// it does no I/O besides the snapshot stream. It validates only what depends on
// the state (does the profile exist, is the key free); checking user input is
// httpapi's job, before a command is proposed. It imports no other package of
// this project.
package fsm
