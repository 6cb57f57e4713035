package packager

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// SegmentRecord is a finished segment as a recording keeps it: what a
// playlist says about it, and the name of its file, without its bytes.
// Recordings write one per line to their index; the DVR window and the VOD
// playlists are rendered from them.
type SegmentRecord struct {
	Track    string    `json:"track"`
	MSN      uint64    `json:"msn"`
	Gen      int       `json:"gen"`
	Disc     bool      `json:"disc,omitempty"`
	DiscSeq  uint64    `json:"disc_seq"`
	PDT      time.Time `json:"pdt"`
	Start    uint64    `json:"start"` // decode time of the first sample, track timescale
	Duration float64   `json:"duration"`
	// Init names the init segment (none for MPEG-TS); File the segment.
	Init string `json:"init,omitempty"`
	File string `json:"file"`
	Size int    `json:"size"`
	// Node holds the file, in an Asset merged from several nodes' copies.
	Node string `json:"node,omitempty"`
}

// TrackRecord describes one track of a recorded stream, for the
// multivariant playlist.
type TrackRecord struct {
	Spec TrackSpec `json:"spec"`
	Info InitInfo  `json:"info"`
}

// Finished is a complete segment handed to a recorder: its record, its
// bytes, and the bytes of its init segment.
type Finished struct {
	Record SegmentRecord
	Data   []byte
	Init   []byte
}

// Finished lists every track's complete segments after the numbers in
// after (by track; a track missing from after gets all it has), oldest
// first per track, with the tracks in playlist order and the new marks.
// The bytes are shared with the model: complete segments never change.
func (s *Stream) Finished(after map[string]uint64) (tracks []TrackRecord, segs []Finished, marks map[string]uint64, ended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	marks = map[string]uint64{}
	for _, name := range s.orderedTracksLocked() {
		// What players could see (gate.go): a producer does not record
		// numbers its standby, which continues the show, may make anew.
		t := s.viewLocked(name, s.tracks[name])
		tracks = append(tracks, TrackRecord{Spec: t.spec, Info: t.info})
		last, known := after[name]
		if known {
			marks[name] = last
		}
		for _, sg := range t.segs {
			if !sg.Complete || (known && sg.MSN <= last) {
				continue
			}
			segs = append(segs, Finished{Record: s.recordLocked(name, sg), Data: sg.Data, Init: t.inits[sg.Init]})
			marks[name] = sg.MSN
		}
	}
	return tracks, segs, marks, s.ended
}

// orderedTracksLocked is the active generation's tracks, then any other
// (a track a later generation dropped), by name.
func (s *Stream) orderedTracksLocked() []string {
	out := append([]string(nil), s.order...)
	for _, name := range sortedKeys(s.tracks) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func (s *Stream) recordLocked(track string, sg *segment) SegmentRecord {
	return SegmentRecord{Track: track, MSN: sg.MSN, Gen: sg.Gen, Disc: sg.Disc, DiscSeq: sg.DiscSeq, PDT: sg.PDT,
		Start: sg.Start, Duration: sg.Duration, Init: sg.Init, File: s.uriOf(sg), Size: len(sg.Data)}
}

// Archive is where a stream's finished segments went on disk: the DVR
// window older than what the model keeps in memory comes from it. Its
// methods are called with the stream's lock held: they must not call back
// into the stream, and should not block on much more than a file read.
type Archive interface {
	// Archived lists a track's segments on disk, oldest first. The slice
	// is only read.
	Archived(track string) []SegmentRecord
	// ReadArchived reads one of a track's files (a segment or an init
	// segment) by name; ErrNotFound when it is not there.
	ReadArchived(track, file string) ([]byte, error)
}

// DVRName is a media playlist (and, at the root, the multivariant
// playlist) that offers the DVR window: the last DVRWindow seconds of the
// stream, to seek back in. The live playlists keep their short window (a
// long one would cost every low-latency reload its size).
const DVRName = "dvr.m3u8"

// SetArchive attaches the archive and the DVR window (seconds, 0 = no
// dvr.m3u8). The archive also answers requests for segments the model no
// longer holds.
func (s *Stream) SetArchive(a Archive, dvrSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archive, s.dvrSeconds = a, dvrSeconds
}

// dvrSegmentsLocked is what a track's DVR playlist lists: the complete
// segments in memory and, before them, the archived ones that continue the
// numbering without a gap, the newest that fit in the window.
func (s *Stream) dvrSegmentsLocked(name string, t *track) []SegmentRecord {
	var mem []SegmentRecord
	for _, sg := range t.segs {
		if sg.Complete {
			mem = append(mem, s.recordLocked(name, sg))
		}
	}
	var older []SegmentRecord
	if s.archive != nil {
		arch := s.archive.Archived(name)
		next := uint64(math.MaxUint64)
		if len(mem) > 0 {
			next = mem[0].MSN
		}
		// Walk back from the newest archived segment before the first one
		// in memory while the numbers follow each other.
		i := len(arch) - 1
		for i >= 0 && arch[i].MSN >= next {
			i--
		}
		end := i + 1
		for i >= 0 && (next == math.MaxUint64 || arch[i].MSN+1 == next) {
			next = arch[i].MSN
			i--
		}
		older = arch[i+1 : end]
	}
	all := make([]SegmentRecord, 0, len(older)+len(mem))
	all = append(append(all, older...), mem...)
	return WindowOf(all, float64(s.dvrSeconds))
}

// WindowOf keeps the newest segments whose durations add up to at most
// seconds (at least one).
func WindowOf(segs []SegmentRecord, seconds float64) []SegmentRecord {
	var sum float64
	i := len(segs)
	for i > 0 {
		if sum+segs[i-1].Duration > seconds+0.001 && i < len(segs) {
			break
		}
		sum += segs[i-1].Duration
		i--
	}
	return segs[i:]
}

// renderDVRLocked writes a track's DVR playlist: a live playlist (no
// parts) over the DVR window.
func (s *Stream) renderDVRLocked(name string) ([]byte, bool) {
	t, ok := s.tracks[name]
	if !ok || s.dvrSeconds <= 0 {
		return nil, false
	}
	segs := s.dvrSegmentsLocked(name, s.viewLocked(name, t))
	if len(segs) == 0 {
		return nil, false
	}
	var b strings.Builder
	writeMediaPlaylist(&b, segs, mediaPlaylist{target: s.cfg.TargetDuration, ended: s.ended || t.ended})
	return []byte(b.String()), true
}

// mediaPlaylist says how writeMediaPlaylist renders a list.
type mediaPlaylist struct {
	target int
	// vod: a finished recording (PLAYLIST-TYPE:VOD, ENDLIST, the numbering
	// restarting at 0 and a discontinuity wherever the numbers jump).
	vod   bool
	ended bool
}

// writeMediaPlaylist writes a media playlist of whole segments (no parts).
func writeMediaPlaylist(b *strings.Builder, segs []SegmentRecord, o mediaPlaylist) {
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n")
	fmt.Fprintf(b, "#EXT-X-TARGETDURATION:%d\n", o.target)
	first := segs[0]
	if o.vod {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n")
	} else {
		fmt.Fprintf(b, "#EXT-X-MEDIA-SEQUENCE:%d\n", first.MSN)
		ds := first.DiscSeq
		if first.Disc && ds > 0 {
			ds--
		}
		fmt.Fprintf(b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", ds)
	}
	prevInit := ""
	for i, sg := range segs {
		disc := i > 0 && (sg.Disc || (o.vod && (sg.MSN != segs[i-1].MSN+1 || sg.DiscSeq != segs[i-1].DiscSeq)))
		if disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if sg.Init != "" && (sg.Init != prevInit || disc) {
			fmt.Fprintf(b, "#EXT-X-MAP:URI=\"%s\"\n", sg.Init)
			prevInit = sg.Init
		}
		fmt.Fprintf(b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", formatPDT(sg.PDT))
		fmt.Fprintf(b, "#EXTINF:%s,\n%s\n", formatSeconds(sg.Duration), sg.File)
	}
	if o.ended || o.vod {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
}

// writeMultivariant writes a multivariant playlist naming each video
// track's media playlist (mediaName under the track's folder) and the
// shared audio track.
func writeMultivariant(b *strings.Builder, tracks []TrackRecord, mediaName string) {
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	var audio *TrackRecord
	for i := range tracks {
		if tracks[i].Spec.Name == AudioTrack && tracks[i].Info.Kind == Audio {
			audio = &tracks[i]
		}
	}
	if audio != nil {
		ch := audio.Info.Channels
		if ch == 0 {
			ch = 2
		}
		fmt.Fprintf(b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",LANGUAGE=\"und\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s/%s\"\n",
			ch, AudioTrack, mediaName)
	}
	for _, t := range tracks {
		if t.Info.Kind != Video {
			continue
		}
		bw := t.Spec.Bandwidth
		codecs := t.Info.Codec
		if audio != nil {
			bw += audio.Spec.Bandwidth
			codecs += "," + audio.Info.Codec
		}
		fmt.Fprintf(b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d,CODECS=\"%s\"", max(bw, 1), t.Info.Width, t.Info.Height, codecs)
		if t.Spec.FrameRate > 0 {
			fmt.Fprintf(b, ",FRAME-RATE=%.3f", t.Spec.FrameRate)
		}
		if audio != nil {
			b.WriteString(",AUDIO=\"audio\"")
		}
		fmt.Fprintf(b, "\n%s/%s\n", t.Spec.Name, mediaName)
	}
}

// serveArchivedSegmentLocked answers a segment the model no longer holds
// from the archive.
func (s *Stream) serveArchivedSegmentLocked(track string, msn uint64) (File, error) {
	if s.archive == nil {
		return File{}, ErrNotFound
	}
	arch := s.archive.Archived(track)
	i, found := searchMSN(arch, msn)
	if !found {
		return File{}, ErrNotFound
	}
	typ := typeM4S
	if arch[i].Init == "" {
		typ = typeTS
	}
	return s.serveArchivedLocked(track, arch[i].File, typ, "segment")
}

func (s *Stream) serveArchivedLocked(track, file, contentType, kind string) (File, error) {
	if s.archive == nil {
		return File{}, ErrNotFound
	}
	b, err := s.archive.ReadArchived(track, file)
	if err != nil {
		return File{}, ErrNotFound
	}
	return File{Body: b, ContentType: contentType, Kind: kind, Immutable: true}, nil
}

// searchMSN finds msn in records sorted by MSN.
func searchMSN(recs []SegmentRecord, msn uint64) (int, bool) {
	lo, hi := 0, len(recs)
	for lo < hi {
		m := (lo + hi) / 2
		if recs[m].MSN < msn {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(recs) && recs[lo].MSN == msn
}
