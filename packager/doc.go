// Package packager is the node's packager: it turns the fragmented MP4
// (CMAF) byte streams that ffmpeg writes (or MPEG-TS, for old devices) into
// segments and parts, keeps one
// model of every live input (numbering, generations, discontinuities,
// program date time, windows, end of stream), and renders that one model as
// HLS (multivariant and media playlists, with low-latency parts) and as a
// DASH MPD.
//
// It knows nothing about the cluster, raft or HTTP routing: the node feeds
// it fragments, asks it for files, and copies its snapshots to the standby.
// ffmpeg encodes and cuts fragments; everything a player reads about time
// and order comes from here, so that a transcoder restart, an encoder
// reconnect or an owner move is one discontinuity and never a rewind.
//
// Recording (record.go, dvrdash.go, vod.go): it hands finished segments out
// to the node's recorder (Finished), renders the DVR window over what the
// recorder archived (dvr.m3u8 and dvr.mpd, through the Archive interface: it
// never touches the disk itself), and renders a recording's VOD playlists from the copies'
// indexes the node gathers (Merge, Asset).
package packager
