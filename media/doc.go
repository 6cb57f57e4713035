// Package media owns the media processes of one node: the co-located mediamtx
// ingest server (its config, its publish/read authentication hook, its control
// API and its supervision) and the ffmpeg transcoder that turns one live path
// into an adaptive-bitrate HLS ladder on disk (argument building from a
// profile, supervision with backoff, progress parsing, output layout and
// playlist inspection).
//
// It must not know about the cluster, raft or HTTP routing: the node package
// decides what runs where and hands this package plain values (a profile, a
// source URL, an output directory, an authorization callback).
//
// Child processes are always bound to a context: when it ends they are asked
// to stop with a signal and killed after a timeout, so that a node shutdown
// never leaves orphaned ffmpeg or mediamtx processes behind.
package media
