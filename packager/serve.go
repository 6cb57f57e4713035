package packager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is a file the stream does not have (yet, or any more).
var ErrNotFound = errors.New("not found")

// BadRequestError is a request the player should not have made: a blocking
// reload too far ahead, or malformed delivery directives.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

// File is one answer of the stream.
type File struct {
	Body        []byte
	ContentType string
	// Kind is playlist, init, segment or part (for metrics and caching).
	Kind string
	// Immutable files never change under their name: cache them for good.
	Immutable bool
	// Progressive, when set instead of Body, writes a segment that is
	// still being made as its fragments arrive (LL-DASH chunked transfer),
	// calling flush after each, and returns once the segment is whole.
	Progressive func(ctx context.Context, w io.Writer, flush func()) error
	// Source says which node answered and from what ("n1", "n2 copy",
	// "n0 <- n1"): sent as X-Dionysia-Source, so that what a CDN or player
	// got can be traced to a node when two nodes disagree.
	Source string
}

const (
	typeM3U8 = "application/vnd.apple.mpegurl"
	typeMPD  = "application/dash+xml"
	typeMP4  = "video/mp4"
	typeM4S  = "video/iso.segment"
	typeTS   = "video/mp2t"
)

// Serve answers a request for name (relative to the stream's root:
// "master.m3u8", "720p/index.m3u8", "720p/<id>-123.m4s", ...). Blocking
// playlist reloads (_HLS_msn, _HLS_part) and requests for the part the
// preload hint announced wait, within bounds, until what they ask for
// exists.
func (s *Stream) Serve(ctx context.Context, name string, q url.Values) (File, error) {
	switch name {
	case MultivariantName:
		s.mu.Lock()
		defer s.mu.Unlock()
		b, ok := s.renderMultivariantLocked(MediaName)
		if !ok {
			return File{}, ErrNotFound
		}
		return File{Body: b, ContentType: typeM3U8, Kind: "playlist"}, nil
	case ManifestName:
		s.mu.Lock()
		defer s.mu.Unlock()
		b, ok := s.renderMPDLocked()
		if !ok {
			return File{}, ErrNotFound
		}
		return File{Body: b, ContentType: typeMPD, Kind: "playlist"}, nil
	case DVRManifestName:
		s.mu.Lock()
		defer s.mu.Unlock()
		b, ok := s.renderDVRMPDLocked()
		if !ok {
			return File{}, ErrNotFound
		}
		return File{Body: b, ContentType: typeMPD, Kind: "playlist"}, nil
	case ThumbnailName:
		return s.serveThumbnail(q)
	case DVRName:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dvrSeconds <= 0 {
			return File{}, ErrNotFound
		}
		b, ok := s.renderMultivariantLocked(DVRName)
		if !ok {
			return File{}, ErrNotFound
		}
		return File{Body: b, ContentType: typeM3U8, Kind: "playlist"}, nil
	}
	trackName, file, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(file, "/") {
		return File{}, ErrNotFound
	}
	if file == MediaName {
		return s.serveMedia(ctx, trackName, q)
	}
	if file == DVRName {
		s.mu.Lock()
		defer s.mu.Unlock()
		b, ok := s.renderDVRLocked(trackName)
		if !ok {
			return File{}, ErrNotFound
		}
		return File{Body: b, ContentType: typeM3U8, Kind: "playlist"}, nil
	}
	rest, ok := strings.CutPrefix(file, s.id+"-")
	if !ok {
		return File{}, ErrNotFound
	}
	switch {
	case strings.HasPrefix(rest, "i") && strings.HasSuffix(rest, ".mp4"):
		s.mu.Lock()
		defer s.mu.Unlock()
		t, ok := s.tracks[trackName]
		if !ok {
			return File{}, ErrNotFound
		}
		b, ok := t.inits[file]
		if !ok {
			// An old generation's init segment, named by the DVR window.
			return s.serveArchivedLocked(trackName, file, typeMP4, "init")
		}
		return File{Body: b, ContentType: typeMP4, Kind: "init", Immutable: true}, nil
	case strings.HasSuffix(rest, ".ts"):
		msn, err := strconv.ParseUint(strings.TrimSuffix(rest, ".ts"), 10, 64)
		if err != nil {
			return File{}, ErrNotFound
		}
		f, err := s.serveSegment(ctx, trackName, msn)
		if err == nil && f.Progressive == nil {
			f.ContentType = typeTS
		}
		return f, err
	case strings.HasSuffix(rest, ".m4s"):
		numbers := strings.TrimSuffix(rest, ".m4s")
		msnText, partText, isPart := strings.Cut(numbers, ".")
		msn, err := strconv.ParseUint(msnText, 10, 64)
		if err != nil {
			return File{}, ErrNotFound
		}
		if !isPart {
			return s.serveSegment(ctx, trackName, msn)
		}
		idx, err := strconv.Atoi(partText)
		if err != nil || idx < 0 {
			return File{}, ErrNotFound
		}
		return s.servePart(ctx, trackName, msn, idx)
	}
	return File{}, ErrNotFound
}

// waitLocked waits (releasing the lock) until cond holds, the stream ends,
// ctx ends or timeout passes; it reports whether cond holds.
func (s *Stream) waitLocked(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if cond() {
			return true
		}
		if s.ended {
			return false
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			return cond()
		case <-deadline.C:
			s.mu.Lock()
			return cond()
		}
	}
}

func (t *track) find(msn uint64) *segment {
	for i := len(t.segs) - 1; i >= 0; i-- {
		if t.segs[i].MSN == msn {
			return t.segs[i]
		}
		if t.segs[i].MSN < msn {
			return nil
		}
	}
	return nil
}

// lastMSN is the newest segment's number (open or complete).
func (t *track) lastMSN() (uint64, bool) {
	if n := len(t.segs); n > 0 {
		return t.segs[n-1].MSN, true
	}
	return 0, false
}

func (s *Stream) serveMedia(ctx context.Context, name string, q url.Values) (File, error) {
	var (
		msn, part    int64 = -1, -1
		hasDirective bool
	)
	if v := q.Get("_HLS_msn"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return File{}, &BadRequestError{Msg: "_HLS_msn must be a non-negative integer"}
		}
		msn, hasDirective = int64(n), true
	}
	if v := q.Get("_HLS_part"); v != "" {
		if msn < 0 {
			return File{}, &BadRequestError{Msg: "_HLS_part needs _HLS_msn"}
		}
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return File{}, &BadRequestError{Msg: "_HLS_part must be a non-negative integer"}
		}
		part = int64(n)
	}
	switch q.Get("_HLS_skip") {
	case "", "YES", "v2":
		// Delta updates are not offered (no CAN-SKIP-UNTIL): a player that
		// asks anyway gets the whole playlist, which RFC 8216bis allows.
	default:
		return File{}, &BadRequestError{Msg: "_HLS_skip must be YES or v2"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tracks[name]
	if !ok {
		return File{}, ErrNotFound
	}
	if hasDirective && s.lowLatency() && !s.ended && !t.ended {
		last, _ := t.lastMSN()
		if uint64(msn) > last+2 {
			return File{}, &BadRequestError{Msg: fmt.Sprintf("_HLS_msn %d is too far ahead of the live edge (%d)", msn, last)}
		}
		want := uint64(msn)
		// RFC 8216bis 6.2.5.2: hold the request until the playlist holds
		// segment msn (part `part` of it), then answer; give up after
		// three target durations with whatever there is.
		s.waitLocked(ctx, 3*time.Duration(s.cfg.TargetDuration)*time.Second, func() bool {
			v := s.viewLocked(name, t)
			if l, ok := v.lastMSN(); ok && l > want {
				return true
			}
			sg := v.find(want)
			if sg == nil {
				return false
			}
			if part < 0 {
				return sg.Complete
			}
			return sg.Complete || int64(len(sg.Parts)) > part
		})
	}
	b, ok := s.renderMediaLocked(name)
	if !ok {
		return File{}, ErrNotFound
	}
	return File{Body: b, ContentType: typeM3U8, Kind: "playlist"}, nil
}

func (s *Stream) serveSegment(ctx context.Context, name string, msn uint64) (File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tracks[name]
	if !ok {
		return File{}, ErrNotFound
	}
	sg := t.find(msn)
	if sg == nil && s.lowLatency() && !s.ended && !t.ended {
		// dash.js asks for the next segment by the clock, as soon as its
		// first chunk should exist; encoding and the standby's copy make
		// it a moment late. Hold the request until it starts, like the
		// part a preload hint names, rather than a 404 that dash.js only
		// retries a second later (a stall).
		if last, ok := t.lastMSN(); ok && msn == last+1 {
			wait := 3*time.Duration(s.cfg.PartTarget*float64(time.Second)) + time.Second
			s.waitLocked(ctx, wait, func() bool { return t.find(msn) != nil || t.ended })
			sg = t.find(msn)
		}
	}
	if sg == nil {
		// Older than what the model keeps: the DVR window reads it from
		// disk.
		return s.serveArchivedSegmentLocked(name, msn)
	}
	complete := func() bool {
		_, _, c, _ := s.visibleLocked(name, sg)
		return c
	}
	if !complete() && s.lowLatency() {
		// Low-latency DASH asks for the segment being made: send what
		// there is and each new fragment as it comes.
		return File{ContentType: typeM4S, Kind: "segment", Immutable: true, Progressive: func(ctx context.Context, w io.Writer, flush func()) error {
			return s.writeProgressive(ctx, name, sg, w, flush)
		}}, nil
	}
	if !complete() {
		// A DASH client asks for a segment by the clock; hold it until the
		// segment is whole rather than answering 404.
		s.waitLocked(ctx, 2*time.Duration(s.cfg.TargetDuration)*time.Second, complete)
		if !complete() {
			return File{}, ErrNotFound
		}
	}
	return File{Body: sg.Data, ContentType: typeM4S, Kind: "segment", Immutable: true}, nil
}

// errIncomplete ends a progressive segment whose producer went away before
// finishing it; the segment is closed short, so what was sent is still
// valid, but the response must not pretend to be whole.
var errIncomplete = errors.New("segment closed before it was complete")

func (s *Stream) writeProgressive(ctx context.Context, name string, sg *segment, w io.Writer, flush func()) error {
	sent := 0
	for {
		s.mu.Lock()
		n, _, complete, _ := s.visibleLocked(name, sg)
		n = max(n, sent)
		data := sg.Data[sent:n:n]
		ended := s.ended
		ch := s.changed
		s.mu.Unlock()
		if len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				return err
			}
			flush()
			sent += len(data)
			continue
		}
		if complete {
			return nil
		}
		if ended {
			return errIncomplete
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Stream) servePart(ctx context.Context, name string, msn uint64, idx int) (File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tracks[name]
	if !ok {
		return File{}, ErrNotFound
	}
	have := func() bool {
		sg := s.viewLocked(name, t).find(msn)
		return sg != nil && len(sg.Parts) > idx
	}
	if !have() {
		// Only the part the preload hint names is worth waiting for, and
		// only until it exists or cannot come any more.
		nm, ni := s.nextPartLocked(s.viewLocked(name, t))
		if nm != msn || ni != idx {
			return File{}, ErrNotFound
		}
		settled := func() bool {
			v := s.viewLocked(name, t)
			if sg := v.find(msn); sg != nil && (len(sg.Parts) > idx || sg.Complete) {
				return true
			}
			last, ok := v.lastMSN()
			return ok && last > msn
		}
		wait := 3*time.Duration(s.cfg.PartTarget*float64(time.Second)) + time.Second
		s.waitLocked(ctx, wait, settled)
		if !have() {
			return File{}, ErrNotFound
		}
	}
	sg := t.find(msn)
	p := sg.Parts[idx]
	return File{Body: sg.Data[p.Off : p.Off+p.Len], ContentType: typeM4S, Kind: "part", Immutable: true}, nil
}
