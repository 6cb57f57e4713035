package media

import "path/filepath"

// File names of the HLS output of one input. The HTTP origin serves exactly
// this tree, so these names are part of the playback URLs.
const (
	// MasterPlaylistName is the multivariant playlist at the top of an output dir.
	MasterPlaylistName = "master.m3u8"
	// MediaPlaylistName is the media playlist inside each rendition's dir.
	MediaPlaylistName = "index.m3u8"
)

// OutputDir is where the ladder of one input is written:
// <dataDir>/hls/<inputID>/{master.m3u8, <rendition>/index.m3u8, <rendition>/seg_N.ts}.
// inputID must be a single path element (the caller validates ids); it is not
// sanitised here.
func OutputDir(dataDir, inputID string) string {
	return filepath.Join(dataDir, "hls", inputID)
}

// MediaPlaylistPath is the media playlist of one rendition in outputDir.
func MediaPlaylistPath(outputDir, rendition string) string {
	return filepath.Join(outputDir, rendition, MediaPlaylistName)
}
