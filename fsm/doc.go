// Package fsm is the replicated state of a Dionysia cluster: transcoding
// profiles, inputs and ingest sessions (live or reconnecting), and the
// webhook outbox (webhooks.go: subscribers, events to deliver, attempts),
// changed only by typed commands applied through raft.
//
// It is pure and deterministic: Apply reads nothing but the state and the
// command (ids, keys and times are chosen by whoever proposes the command), and
// it does no I/O besides the snapshot stream. Apply validates only what depends
// on the state (does the profile exist, is the key free). The rules of a type
// itself live beside it (Profile.Normalize and Profile.Validate: httpapi runs
// them before a profile is proposed), but Apply never runs them, so that a rule
// added later cannot change how an old log replays. It imports no other
// package of this project.
//
// Beside the streaming state it keeps idempotency keys (idempotency.go):
// the stored answers of API requests sent with an Idempotency-Key, and the
// results of writes tagged with a key, which apply at most once. Keys expire
// by the times the proposers put in later commands.
package fsm
