package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// Recording statuses.
const (
	// RecordingActive: the show is on; its segments are being written.
	RecordingActive = "recording"
	// RecordingReady: the show is over; the asset plays as VOD.
	RecordingReady = "ready"
)

// Bounds of an input's recording settings.
const (
	// MaxDVRWindowSeconds bounds how far back a live stream can be sought:
	// 4 h, read from disk (only the newest segments are in memory).
	MaxDVRWindowSeconds = 4 * 3600
	// MinDVRWindowSeconds: a shorter window is no more than the live
	// playlist already offers.
	MinDVRWindowSeconds = 30
	// MaxRecordingRetentionDays: 10 years; 0 keeps recordings until deleted.
	MaxRecordingRetentionDays = 3650
)

// Ops of recordings (see Op: never rename, only add).
const (
	// OpPutRecording creates a recording or merges a node's report into it.
	OpPutRecording Op = "put_recording"
	// OpDeleteRecording removes one (the API, or the leader's retention).
	OpDeleteRecording Op = "delete_recording"
	// OpPatchRecording changes what a user may change: the expiry.
	OpPatchRecording Op = "patch_recording"
)

// Recording is one recorded show of an input: an asset. A show is one
// packager stream, from its first segment to its ENDLIST, whatever happened
// in between (reconnects, failovers, planned moves: seams, as
// discontinuities); every node that writes its segments reports here.
type Recording struct {
	ID      string `json:"id"`
	InputID string `json:"input_id"`
	// StreamID is the packager stream recorded (it names the files).
	StreamID  string    `json:"stream_id"`
	Status    string    `json:"status"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// DurationSeconds and Bytes are the largest any node reported: the
	// length of the show and the size of one copy of it.
	DurationSeconds float64  `json:"duration_seconds"`
	Bytes           int64    `json:"bytes"`
	Renditions      []string `json:"renditions"`
	// Nodes hold the files, each a whole or partial copy (the owner's and
	// its standby's, and those of owners after a move).
	Nodes []string `json:"nodes"`
	// ExpiresAt is when the leader deletes the recording; zero: never. Set
	// from the input's retention when the recording becomes ready.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Error says why some node stopped writing (a full disk): the asset
	// holds what was written before.
	Error string `json:"error,omitempty"`
	// PlaybackPolicy is the input's when the recording began: a signed
	// input's recordings need a token for its id, also once it is deleted.
	PlaybackPolicy string    `json:"playback_policy"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// RecordingPatch is what PATCH /v1/recordings/{id} may change.
type RecordingPatch struct {
	// ExpiresAt zero keeps the recording until it is deleted.
	ExpiresAt time.Time `json:"expires_at"`
}

// Clone returns a deep copy.
func (r *Recording) Clone() *Recording {
	if r == nil {
		return nil
	}
	c := *r
	c.Renditions = slices.Clone(r.Renditions)
	c.Nodes = slices.Clone(r.Nodes)
	return &c
}

// RecordingID is the id of the recording of one stream of an input: every
// node that writes the stream proposes the same id, so their reports merge
// into one asset.
func RecordingID(inputID, streamID string) string {
	h := sha256.Sum256([]byte(inputID + "/" + streamID))
	return "rec-" + hex.EncodeToString(h[:8])
}

func (s *State) applyRecordings(c Command) *Result {
	if s.d.Recordings == nil {
		s.d.Recordings = map[string]*Recording{}
	}
	switch c.Op {
	case OpPutRecording:
		return s.applyPutRecording(c)
	case OpDeleteRecording:
		if _, ok := s.d.Recordings[c.ID]; !ok {
			return &Result{Err: notFound("id", "recording %q not found", c.ID)}
		}
		delete(s.d.Recordings, c.ID)
		return &Result{Changed: true}
	case OpPatchRecording:
		old, ok := s.d.Recordings[c.ID]
		if !ok {
			return &Result{Err: notFound("id", "recording %q not found", c.ID)}
		}
		if c.RecordingPatch == nil {
			return &Result{Err: invalid("recording_patch", "nothing to change")}
		}
		r := old.Clone()
		r.ExpiresAt, r.UpdatedAt = c.RecordingPatch.ExpiresAt, c.At
		s.d.Recordings[r.ID] = r
		return &Result{Changed: true, Recording: r.Clone()}
	}
	return &Result{Err: invalid("op", "unknown command %q", c.Op)}
}

// applyPutRecording merges a report: the first creates the recording (its
// input must exist), later ones only widen it (nodes, renditions, times,
// duration and size grow; ready is final). Node is the reporting node,
// added to Nodes; the leader finishing a recording nobody finished reports
// with no node.
func (s *State) applyPutRecording(c Command) *Result {
	in := c.Recording
	if in == nil || in.ID == "" || in.InputID == "" || in.StreamID == "" {
		return &Result{Err: invalid("recording", "recording needs id, input_id and stream_id")}
	}
	if in.Status != RecordingActive && in.Status != RecordingReady {
		return &Result{Err: invalid("status", "unknown recording status %q", in.Status)}
	}
	old, exists := s.d.Recordings[in.ID]
	var r *Recording
	if exists {
		if old.InputID != in.InputID || old.StreamID != in.StreamID {
			return &Result{Err: conflict("id", "recording %q is of another stream", in.ID)}
		}
		r = old.Clone()
	} else {
		input, ok := s.d.Inputs[in.InputID]
		if !ok {
			return &Result{Err: notFound("input_id", "input %q not found", in.InputID)}
		}
		r = &Recording{ID: in.ID, InputID: in.InputID, StreamID: in.StreamID, Status: RecordingActive, StartedAt: in.StartedAt,
			PlaybackPolicy: input.PlaybackPolicy}
	}
	if c.Node != "" && !slices.Contains(r.Nodes, c.Node) {
		r.Nodes = append(r.Nodes, c.Node)
		slices.Sort(r.Nodes)
	}
	for _, name := range in.Renditions {
		if !slices.Contains(r.Renditions, name) {
			r.Renditions = append(r.Renditions, name)
		}
	}
	if !in.StartedAt.IsZero() && (r.StartedAt.IsZero() || in.StartedAt.Before(r.StartedAt)) {
		r.StartedAt = in.StartedAt
	}
	if in.EndedAt.After(r.EndedAt) {
		r.EndedAt = in.EndedAt
	}
	r.DurationSeconds = max(r.DurationSeconds, in.DurationSeconds)
	r.Bytes = max(r.Bytes, in.Bytes)
	if in.Error != "" {
		r.Error = in.Error
	}
	r.UpdatedAt = c.At
	if in.Status == RecordingReady && r.Status != RecordingReady {
		r.Status = RecordingReady
		if r.EndedAt.IsZero() {
			r.EndedAt = c.At
		}
		if input := s.d.Inputs[r.InputID]; input != nil && input.RecordingRetentionDays > 0 {
			r.ExpiresAt = r.EndedAt.Add(time.Duration(input.RecordingRetentionDays) * 24 * time.Hour)
		}
		// One event per recording, whoever reports it ready first.
		s.hooksLocked().enqueue(Command{At: c.At, Event: &Event{
			ID: EventID(EventRecordingReady, r.ID), Type: EventRecordingReady, At: c.At, InputID: r.InputID,
			Data: map[string]string{"recording_id": r.ID},
		}})
	}
	s.d.Recordings[r.ID] = r
	return &Result{Changed: true, Recording: r.Clone()}
}

// Recording returns a copy of the recording, or nil.
func (s *State) Recording(id string) *Recording {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Recordings[id].Clone()
}

// Recordings returns copies of the recordings of an input ("" = all),
// newest first.
func (s *State) Recordings(inputID string) []*Recording {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Recording, 0)
	for _, r := range s.d.Recordings {
		if inputID == "" || r.InputID == inputID {
			out = append(out, r.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *Recording) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}
