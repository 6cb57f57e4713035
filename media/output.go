package media

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RenditionStats describes what one rendition's media playlist lists now.
type RenditionStats struct {
	Name               string
	Segments           int
	MediaSequence      uint64
	LastSegmentSeconds float64
	// BitrateKbps is the bytes of the listed segments over their total
	// duration: what a player actually downloads, not the encoder target.
	BitrateKbps float64
}

// ReadRenditionStats reads the media playlists of the named renditions in
// outputDir. It is best effort, for status pages: a missing or unreadable
// playlist gives zero values, a listed segment that is gone (deleted by the
// muxer since) is left out of the bitrate.
func ReadRenditionStats(outputDir string, names []string) []RenditionStats {
	out := make([]RenditionStats, 0, len(names))
	for _, name := range names {
		st := RenditionStats{Name: name}
		dir := filepath.Join(outputDir, name)
		f, err := os.Open(filepath.Join(dir, MediaPlaylistName))
		if err != nil {
			out = append(out, st)
			continue
		}
		pl, err := ParseMediaPlaylist(f)
		f.Close()
		if err != nil {
			out = append(out, st)
			continue
		}
		st.Segments = len(pl.Segments)
		st.MediaSequence = pl.MediaSequence
		if n := len(pl.Segments); n > 0 {
			st.LastSegmentSeconds = pl.Segments[n-1].Duration
		}
		var bytes int64
		var seconds float64
		for _, s := range pl.Segments {
			// Segment URIs are relative to the playlist; ignore anything else.
			if filepath.IsAbs(s.URI) || !filepath.IsLocal(s.URI) {
				continue
			}
			fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(s.URI)))
			if err != nil {
				continue
			}
			bytes += fi.Size()
			seconds += s.Duration
		}
		if seconds > 0 {
			st.BitrateKbps = float64(bytes) * 8 / 1000 / seconds
		}
		out = append(out, st)
	}
	return out
}

var endList = []byte("#EXT-X-ENDLIST")

// EndPlaylists appends #EXT-X-ENDLIST to every <rendition>/index.m3u8 in
// outputDir that lacks it, so players stop polling a stream whose transcoder
// was killed before it could end its playlists. It is idempotent. Each file
// is replaced atomically (write + rename) because the origin may be serving
// it at the same moment.
func EndPlaylists(outputDir string) error {
	entries, err := os.ReadDir(outputDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("end playlists: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := endPlaylist(filepath.Join(outputDir, e.Name(), MediaPlaylistName)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func endPlaylist(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("end playlist: %w", err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.Equal(bytes.TrimSpace(line), endList) {
			return nil
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, endList...)
	data = append(data, '\n')
	tmp := path + ".end.tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("end playlist %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("end playlist %s: %w", path, err)
	}
	return nil
}
