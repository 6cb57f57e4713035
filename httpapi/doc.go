// Package httpapi is the HTTP face of a node: the management API under /v1,
// the routing and origin handlers under /live, health and metrics.
//
// It validates every request before anything is proposed to raft, turns
// refused commands into JSON errors that name the offending field, and asks
// its Backend (implemented by package node) for everything else. It knows
// nothing about raft, memberlist, mediamtx or ffmpeg.
//
// Every POST takes an Idempotency-Key (idempotency.go): the request begins
// and finishes through the Backend's Apply, so that the answer a retry gets
// back lives in the replicated state, not on the node that gave it.
package httpapi
