package packager

// The gate keeps a producer from showing players what its standby does not
// hold yet. Without it, a player (or a CDN, or another node fetching for
// its viewers) can get a part or a segment from the owner a moment before
// the owner dies; the standby, which never got it, continues the stream
// under the same number with other media behind a discontinuity, and the
// player's two playlists disagree (hls.js: "discontinuity sequence
// mismatch", a stop for good). The same holds for a planned move: the old
// owner shows only what the new owner took, so the new owner's first
// segment is the next number everyone sees. What the standby has
// acknowledged is the horizon: playlists, manifests, parts, and segments
// being sent as they are made, end there. Copying takes a round trip on
// the cluster port (milliseconds); a standby that lags for longer is
// dropped from the gate by its owner (Gate(false)), which then publishes
// without waiting, as before.

// Reach is how far a copy of one track goes: every segment up to MSN
// complete, or segment MSN with its first Parts parts.
type Reach struct {
	MSN      uint64
	Parts    int
	Complete bool
}

// covers tells whether m reaches at least as far as o.
func (m Reach) covers(o Reach) bool {
	switch {
	case m.MSN != o.MSN:
		return m.MSN > o.MSN
	case m.Complete:
		return true
	case o.Complete:
		return false
	default:
		return m.Parts >= o.Parts
	}
}

// tipLocked is how far a track reaches now.
func tipLocked(t *track) (Reach, bool) {
	n := len(t.segs)
	if n == 0 {
		return Reach{}, false
	}
	last := t.segs[n-1]
	return Reach{MSN: last.MSN, Parts: len(last.Parts), Complete: last.Complete}, true
}

// Gate turns the gate on (playlists end at what Ack reported) or off
// (they show everything made). Turning it on never hides what players may
// have seen: the horizon starts at everything made so far.
func (s *Stream) Gate(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on == s.gated {
		return
	}
	s.gated = on
	if on {
		s.horizon = map[string]Reach{}
		for name, t := range s.tracks {
			if m, ok := tipLocked(t); ok {
				s.horizon[name] = m
			}
		}
	}
	s.notifyLocked()
}

// Gated reports whether the gate is on.
func (s *Stream) Gated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gated
}

// Hidden reports whether the gate hides something made: the standby has
// not acknowledged all of it yet.
func (s *Stream) Hidden() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gated {
		return false
	}
	for name, t := range s.tracks {
		tip, ok := tipLocked(t)
		if !ok {
			continue
		}
		if h, ok := s.horizon[name]; !ok || !h.covers(tip) {
			return true
		}
	}
	return false
}

// Ack moves the horizon to what the standby holds (never back).
func (s *Stream) Ack(held map[string]Reach) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gated {
		return
	}
	moved := false
	for name, m := range held {
		if h, ok := s.horizon[name]; !ok || !h.covers(m) {
			s.horizon[name] = m
			moved = true
		}
	}
	if moved {
		s.notifyLocked()
	}
}

// Held is how far a standby's copy goes once it has applied d: per track
// the last segment d carries (an open one with the parts it has; a delta
// that continues a segment still lists all its parts). A track d carries
// nothing of is where it was.
func (d *Delta) Held() map[string]Reach {
	out := map[string]Reach{}
	for _, td := range d.Tracks {
		if n := len(td.Segments); n > 0 {
			last := td.Segments[n-1]
			out[td.Spec.Name] = Reach{MSN: last.MSN, Parts: len(last.Parts), Complete: last.Complete}
		}
	}
	return out
}

// visibleLocked is how much of segment sg of track name players may get:
// its bytes, its parts, and whether it shows as complete; shown is false
// when none of it is past the gate.
func (s *Stream) visibleLocked(name string, sg *segment) (data, parts int, complete, shown bool) {
	if !s.gated {
		return len(sg.Data), len(sg.Parts), sg.Complete, true
	}
	h, ok := s.horizon[name]
	switch {
	case !ok || sg.MSN > h.MSN:
		return 0, 0, false, false
	case sg.MSN < h.MSN || h.Complete:
		return len(sg.Data), len(sg.Parts), sg.Complete, true
	}
	parts = min(h.Parts, len(sg.Parts))
	if parts == len(sg.Parts) && sg.Complete {
		return len(sg.Data), parts, true, true
	}
	if parts == 0 {
		return 0, 0, false, false
	}
	p := sg.Parts[parts-1]
	return p.Off + p.Len, parts, false, true
}

// viewLocked is the track as players may see it: t itself when the gate
// is open or hides nothing of it, else a copy that ends at the horizon,
// its last segment cut to the parts the standby holds. The copy is for
// reading only.
func (s *Stream) viewLocked(name string, t *track) *track {
	if !s.gated {
		return t
	}
	n := len(t.segs)
	for n > 0 {
		if _, _, _, shown := s.visibleLocked(name, t.segs[n-1]); shown {
			break
		}
		n--
	}
	v := *t
	v.segs = t.segs[:n:n]
	if n == 0 {
		return &v
	}
	last := t.segs[n-1]
	data, parts, complete, _ := s.visibleLocked(name, last)
	if data == len(last.Data) && complete == last.Complete {
		if n == len(t.segs) {
			return t
		}
		return &v
	}
	cut := *last
	cut.Data = last.Data[:data:data]
	cut.Parts = last.Parts[:parts:parts]
	cut.Complete = complete
	cut.Duration = 0
	for _, p := range cut.Parts {
		cut.Duration += p.Duration
	}
	v.segs = append(t.segs[:n-1:n-1], &cut)
	return &v
}
