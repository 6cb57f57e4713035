// Package bench is Dionysia's benchmark suite: each row measures one part of
// the platform against the baseline a user would otherwise pick, in the same
// run and on the same machine, interleaved, and reports medians and ratios.
//
// Rows are plain functions (rows.go lists them); TestBench in bench_test.go
// runs the selected ones when DIONYSIA_BENCH=1 (set by `make bench`) and
// writes results/<date>.md and .json. A plain `go test ./...` skips it.
//
// The suite only talks to 127.0.0.1, bounds every loop with a deadline and
// stops everything it starts (nodes, ffmpeg, nginx, wrk). It does not change
// the packages it measures; it drives them through testcluster, the node's
// HTTP API and media.FFmpegArgs.
package bench
