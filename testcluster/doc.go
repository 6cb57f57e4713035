// Package testcluster starts real Dionysia nodes on loopback for tests and
// benchmarks: free ports, their own data dirs, real raft, memberlist,
// mediamtx and ffmpeg. Its helpers wait on conditions with a deadline and
// fail the test with what they last saw; nothing sleeps and hopes.
package testcluster
