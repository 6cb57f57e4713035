package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// data is everything the cluster agrees on. It is what a snapshot holds.
type data struct {
	Secret           string              `json:"secret"`
	DefaultProfileID string              `json:"default_profile_id"`
	Profiles         map[string]*Profile `json:"profiles"`
	Inputs           map[string]*Input   `json:"inputs"`
	Sessions         map[string]*Session `json:"sessions"`
	// Idempotency holds the keys of idempotent requests and writes
	// (idempotency.go).
	Idempotency map[string]*idemEntry `json:"idempotency,omitempty"`
	// Hooks is nil until the first webhook command (webhooks.go).
	Hooks *hooks `json:"hooks,omitempty"`
	// Recordings are the recorded shows (recordings.go), by id.
	Recordings map[string]*Recording `json:"recordings,omitempty"`
}

func newData() data {
	return data{
		Profiles:    map[string]*Profile{},
		Inputs:      map[string]*Input{},
		Sessions:    map[string]*Session{},
		Idempotency: map[string]*idemEntry{},
		Recordings:  map[string]*Recording{},
	}
}

// State is the replicated state machine. Reads return copies; the only way to
// change it is Apply (through raft) or Restore.
type State struct {
	mu    sync.RWMutex
	d     data
	byKey map[string]string // stream key -> input id, derived from d.Inputs
	// expiry orders d.Idempotency by expiry time, derived from it.
	expiry []idemExpiry

	// onChange runs after every change, outside the lock. It must not block:
	// raft applies entries one at a time.
	onChange func()
}

// New returns an empty state. onChange, if not nil, is called after every
// applied change and after a restore (not for the bookkeeping of
// idempotency keys, which nobody watches).
func New(onChange func()) *State {
	return &State{d: newData(), byKey: map[string]string{}, onChange: onChange}
}

// ApplyCommand applies one decoded command. Everything it decides depends only
// on the state and the command, never on the clock or randomness.
func (s *State) ApplyCommand(c Command) *Result {
	s.mu.Lock()
	r, notify := s.applyIdempotent(c)
	s.mu.Unlock()
	if notify && s.onChange != nil {
		s.onChange()
	}
	return r
}

// applyIdempotent expires idempotency keys by the command's time, then
// applies the command: the bookkeeping of idempotent requests, a tagged
// write at most once, anything else as it is. notify is false for what
// nobody watching the state cares about (idempotency bookkeeping, a write
// answered from the store).
func (s *State) applyIdempotent(c Command) (r *Result, notify bool) {
	s.expireIdem(c.At)
	switch {
	case c.Op == OpBeginRequest:
		return s.applyBeginRequest(c), false
	case c.Op == OpFinishRequest:
		return s.applyFinishRequest(c), false
	case c.Idempotency != nil:
		r, replayed := s.applyOnce(c)
		return r, r.Changed && !replayed
	}
	r = s.apply(c)
	return r, r.Changed
}

func (s *State) apply(c Command) *Result {
	switch c.Op {
	case OpInit:
		return s.applyInit(c)
	case OpCreateProfile:
		return s.applyPutProfile(c, true)
	case OpUpdateProfile:
		return s.applyPutProfile(c, false)
	case OpDeleteProfile:
		return s.applyDeleteProfile(c)
	case OpCreateInput:
		return s.applyCreateInput(c)
	case OpUpdateInput:
		return s.applyUpdateInput(c)
	case OpDeleteInput:
		return s.applyDeleteInput(c)
	case OpRotateKey:
		return s.applyRotateKey(c)
	case OpStartSession:
		return s.applyStartSession(c)
	case OpEndSession:
		return s.applyEndSession(c)
	case OpClearNodeSessions:
		return s.applyClearNodeSessions(c)
	case OpExpireSession:
		return s.applyExpireSession(c)
	case OpPlaceSessions:
		return s.applyPlaceSessions(c)
	case OpCreateWebhook, OpDeleteWebhook, OpEnqueueEvent, OpRecordAttempt, OpExpireOutbox, OpClearNodeDown:
		return s.applyHooks(c)
	case OpPutRecording, OpDeleteRecording, OpPatchRecording:
		return s.applyRecordings(c)
	default:
		return &Result{Err: invalid("op", "unknown command %q", c.Op)}
	}
}

func (s *State) applyInit(c Command) *Result {
	if s.d.Secret != "" {
		return &Result{}
	}
	if c.Init == nil || c.Init.Secret == "" || c.Init.DefaultProfile == nil || c.Init.DefaultProfile.ID == "" {
		return &Result{Err: invalid("init", "init needs a secret and a default profile")}
	}
	p := c.Init.DefaultProfile.Clone()
	p.CreatedAt, p.UpdatedAt = c.At, c.At
	s.d.Secret = c.Init.Secret
	s.d.Profiles[p.ID] = p
	s.d.DefaultProfileID = p.ID
	if in := c.Init.DemoInput; in != nil && in.ID != "" && in.StreamKey != "" {
		in = in.Clone()
		if in.ProfileID == "" {
			in.ProfileID = p.ID
		}
		in.CreatedAt, in.UpdatedAt = c.At, c.At
		s.d.Inputs[in.ID] = in
		s.byKey[in.StreamKey] = in.ID
	}
	return &Result{Changed: true, Profile: p.Clone()}
}

func (s *State) applyPutProfile(c Command, create bool) *Result {
	if c.Profile == nil || c.Profile.ID == "" {
		return &Result{Err: invalid("id", "profile id is missing")}
	}
	p := c.Profile.Clone()
	old, exists := s.d.Profiles[p.ID]
	switch {
	case create && exists:
		return &Result{Err: conflict("id", "profile %q already exists", p.ID)}
	case !create && !exists:
		return &Result{Err: notFound("id", "profile %q not found", p.ID)}
	}
	if create {
		p.CreatedAt = c.At
	} else {
		p.CreatedAt = old.CreatedAt
	}
	p.UpdatedAt = c.At
	s.d.Profiles[p.ID] = p
	return &Result{Changed: true, Profile: p.Clone()}
}

func (s *State) applyDeleteProfile(c Command) *Result {
	if _, ok := s.d.Profiles[c.ID]; !ok {
		return &Result{Err: notFound("id", "profile %q not found", c.ID)}
	}
	if c.ID == s.d.DefaultProfileID {
		return &Result{Err: conflict("id", "profile %q is the default profile", c.ID)}
	}
	for _, id := range slices.Sorted(maps.Keys(s.d.Inputs)) {
		if s.d.Inputs[id].ProfileID == c.ID {
			return &Result{Err: conflict("id", "profile %q is used by input %q", c.ID, id)}
		}
	}
	delete(s.d.Profiles, c.ID)
	return &Result{Changed: true}
}

func (s *State) applyCreateInput(c Command) *Result {
	if c.Input == nil || c.Input.ID == "" || c.Input.StreamKey == "" {
		return &Result{Err: invalid("id", "input id and stream key are required")}
	}
	in := c.Input.Clone()
	if _, ok := s.d.Inputs[in.ID]; ok {
		return &Result{Err: conflict("id", "input %q already exists", in.ID)}
	}
	if _, ok := s.byKey[in.StreamKey]; ok {
		return &Result{Err: conflict("stream_key", "stream key already in use")}
	}
	if in.ProfileID == "" {
		in.ProfileID = s.d.DefaultProfileID
	}
	if _, ok := s.d.Profiles[in.ProfileID]; !ok {
		return &Result{Err: notFound("profile_id", "profile %q not found", in.ProfileID)}
	}
	if in.PlaybackPolicy == "" {
		in.PlaybackPolicy = PlaybackPublic
	}
	in.CreatedAt, in.UpdatedAt = c.At, c.At
	s.d.Inputs[in.ID] = in
	s.byKey[in.StreamKey] = in.ID
	return &Result{Changed: true, Input: in.Clone()}
}

func (s *State) applyUpdateInput(c Command) *Result {
	old, ok := s.d.Inputs[c.ID]
	if !ok {
		return &Result{Err: notFound("id", "input %q not found", c.ID)}
	}
	if c.Patch == nil {
		return &Result{Input: old.Clone()}
	}
	in := old.Clone()
	if p := c.Patch; p.Name != nil {
		in.Name = *p.Name
	}
	if p := c.Patch; p.ProfileID != nil {
		id := *p.ProfileID
		if id == "" {
			id = s.d.DefaultProfileID
		}
		if _, ok := s.d.Profiles[id]; !ok {
			return &Result{Err: notFound("profile_id", "profile %q not found", id)}
		}
		in.ProfileID = id
	}
	if p := c.Patch; p.Enabled != nil {
		in.Enabled = *p.Enabled
	}
	if p := c.Patch; p.PlaybackPolicy != nil {
		in.PlaybackPolicy = *p.PlaybackPolicy
	}
	if p := c.Patch; p.ReconnectWindowSeconds != nil {
		in.ReconnectWindowSeconds = *p.ReconnectWindowSeconds
	}
	if p := c.Patch; p.HotStandby != nil {
		in.HotStandby = *p.HotStandby
	}
	if p := c.Patch; p.Overload != nil {
		in.Overload = *p.Overload
	}
	if p := c.Patch; p.PublishAuthURL != nil {
		in.PublishAuthURL = *p.PublishAuthURL
	}
	if p := c.Patch; p.Record != nil {
		in.Record = *p.Record
	}
	if p := c.Patch; p.DVRWindowSeconds != nil {
		in.DVRWindowSeconds = *p.DVRWindowSeconds
	}
	if p := c.Patch; p.RecordingRetentionDays != nil {
		in.RecordingRetentionDays = *p.RecordingRetentionDays
	}
	in.UpdatedAt = c.At
	s.d.Inputs[in.ID] = in
	if p := c.Patch; p.Enabled != nil && !*p.Enabled {
		// A disabled input has no stream to wait for: its session, live or
		// reconnecting, ends now (the ingest node kicks the publisher).
		delete(s.d.Sessions, in.ID)
	}
	return &Result{Changed: true, Input: in.Clone()}
}

func (s *State) applyDeleteInput(c Command) *Result {
	in, ok := s.d.Inputs[c.ID]
	if !ok {
		return &Result{Err: notFound("id", "input %q not found", c.ID)}
	}
	delete(s.byKey, in.StreamKey)
	delete(s.d.Inputs, c.ID)
	delete(s.d.Sessions, c.ID)
	return &Result{Changed: true}
}

func (s *State) applyRotateKey(c Command) *Result {
	in, ok := s.d.Inputs[c.ID]
	if !ok {
		return &Result{Err: notFound("id", "input %q not found", c.ID)}
	}
	if c.StreamKey == "" {
		return &Result{Err: invalid("stream_key", "new stream key is missing")}
	}
	if _, used := s.byKey[c.StreamKey]; used {
		return &Result{Err: conflict("stream_key", "stream key already in use")}
	}
	in = in.Clone()
	delete(s.byKey, in.StreamKey)
	in.StreamKey = c.StreamKey
	in.UpdatedAt = c.At
	s.d.Inputs[in.ID] = in
	s.byKey[in.StreamKey] = in.ID
	return &Result{Changed: true, Input: in.Clone()}
}

// applyStartSession records a publish. The first publisher wins: while an
// input has a live session from one ingest node, a publish of the same input
// on another node is refused (conflict) and must wait. A reconnecting
// (ended) session is replaced, and so is a live one from the same ingest
// node, where mediamtx has already replaced the publisher.
func (s *State) applyStartSession(c Command) *Result {
	if c.Session == nil || c.Session.InputID == "" || c.Session.ID == "" || c.Session.IngestNode == "" {
		return &Result{Err: invalid("session", "session needs input_id, id and ingest_node")}
	}
	if _, ok := s.d.Inputs[c.Session.InputID]; !ok {
		return &Result{Err: notFound("input_id", "input %q not found", c.Session.InputID)}
	}
	ss := c.Session.Clone()
	ss.EndedAt = time.Time{}
	if old, ok := s.d.Sessions[ss.InputID]; ok && old.Live() {
		if old.ID == ss.ID && old.IngestNode == ss.IngestNode {
			return &Result{Session: old.Clone()}
		}
		if old.IngestNode != ss.IngestNode {
			return &Result{Err: conflict("session", "input %q is already live on node %q", ss.InputID, old.IngestNode)}
		}
	}
	if ss.StartedAt.IsZero() {
		ss.StartedAt = c.At
	}
	if c.Placement != nil {
		if err := s.placeLocked(ss, c); err != nil {
			return &Result{Err: err}
		}
	}
	s.d.Sessions[ss.InputID] = ss
	return &Result{Changed: true, Session: ss.Clone()}
}

// applyEndSession ends a session only if it is still the one named: a
// publisher that reconnected elsewhere has a newer session that must survive
// the late end of its old one. The session is kept, reconnecting, when the
// input's window allows it, and removed otherwise.
func (s *State) applyEndSession(c Command) *Result {
	old, ok := s.d.Sessions[c.ID]
	if !ok || !old.Live() {
		return &Result{}
	}
	if (c.Session != nil && c.Session.ID != old.ID) || (c.Node != "" && c.Node != old.IngestNode) {
		return &Result{}
	}
	s.endSession(old, c.At)
	return &Result{Changed: true}
}

// applyClearNodeSessions ends the live sessions of an ingest node that died:
// its publishers are gone and may reconnect anywhere within the window.
// Sessions already reconnecting keep their EndedAt, so the window is not
// extended.
func (s *State) applyClearNodeSessions(c Command) *Result {
	if c.Node == "" {
		return &Result{Err: invalid("node", "node is missing")}
	}
	changed := false
	for _, ss := range s.d.Sessions {
		if ss.IngestNode == c.Node && ss.Live() {
			s.endSession(ss, c.At)
			changed = true
		}
	}
	return &Result{Changed: changed}
}

// endSession marks a live session reconnecting (EndedAt = at) when its input
// is enabled and has a reconnect window, and deletes it otherwise. A command
// without a time cannot start a window and deletes too.
func (s *State) endSession(ss *Session, at time.Time) {
	if !KeepsEndedSession(s.d.Inputs[ss.InputID], at) {
		delete(s.d.Sessions, ss.InputID)
		return
	}
	ended := ss.Clone()
	ended.EndedAt = at
	s.d.Sessions[ss.InputID] = ended
}

// applyExpireSession removes a reconnecting session whose window has run out.
// The leader decides when (Apply reads no clock); the fsm only checks that
// the session is still the one named and still reconnecting, so that a late
// expiry never removes the session of a publisher that came back.
func (s *State) applyExpireSession(c Command) *Result {
	if c.Session == nil || c.Session.ID == "" {
		return &Result{Err: invalid("session", "session id is missing")}
	}
	old, ok := s.d.Sessions[c.ID]
	if !ok || old.ID != c.Session.ID || old.Live() {
		return &Result{}
	}
	delete(s.d.Sessions, c.ID)
	return &Result{Changed: true}
}

// Initialized reports whether the cluster has been seeded by Init.
func (s *State) Initialized() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Secret != ""
}

// Secret is the cluster-internal secret chosen at bootstrap.
func (s *State) Secret() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Secret
}

// DefaultProfileID is the profile inputs get when they name none.
func (s *State) DefaultProfileID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.DefaultProfileID
}

// Profile returns a copy of the profile, or nil.
func (s *State) Profile(id string) *Profile {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Profiles[id].Clone()
}

// Profiles returns copies of every profile, ordered by id.
func (s *State) Profiles() []*Profile {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedClones(s.d.Profiles, (*Profile).Clone)
}

// Input returns a copy of the input, or nil.
func (s *State) Input(id string) *Input {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Inputs[id].Clone()
}

// InputByKey returns a copy of the input whose current stream key is key, or nil.
func (s *State) InputByKey(key string) *Input {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byKey[key]
	if !ok {
		return nil
	}
	return s.d.Inputs[id].Clone()
}

// Inputs returns copies of every input, ordered by id.
func (s *State) Inputs() []*Input {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedClones(s.d.Inputs, (*Input).Clone)
}

// Session returns a copy of the session (live or reconnecting) of an input,
// or nil.
func (s *State) Session(inputID string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.d.Sessions[inputID].Clone()
}

// Sessions returns copies of every session, live or reconnecting, ordered by
// input id.
func (s *State) Sessions() []*Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedClones(s.d.Sessions, (*Session).Clone)
}

// WriteSnapshot writes the whole state as JSON.
func (s *State) WriteSnapshot(w io.Writer) error {
	s.mu.RLock()
	b, err := json.Marshal(s.d)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// MarshalSnapshot returns the whole state as JSON; raft persists it later,
// outside the apply path.
func (s *State) MarshalSnapshot() ([]byte, error) {
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Restore replaces the whole state with a snapshot.
func (s *State) Restore(r io.Reader) error {
	d := newData()
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return err
	}
	if d.Profiles == nil {
		d.Profiles = map[string]*Profile{}
	}
	if d.Inputs == nil {
		d.Inputs = map[string]*Input{}
	}
	if d.Sessions == nil {
		d.Sessions = map[string]*Session{}
	}
	if d.Idempotency == nil {
		d.Idempotency = map[string]*idemEntry{}
	}
	if d.Recordings == nil {
		d.Recordings = map[string]*Recording{}
	}
	byKey := make(map[string]string, len(d.Inputs))
	for id, in := range d.Inputs {
		byKey[in.StreamKey] = id
	}
	s.mu.Lock()
	s.d, s.byKey = d, byKey
	s.rebuildExpiry()
	s.mu.Unlock()
	if s.onChange != nil {
		s.onChange()
	}
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after command")
	}
	return nil
}

// keyHint shows enough of a stream key to recognise it in logs, never all of it.
func KeyHint(key string) string {
	if len(key) <= 6 {
		return strings.Repeat("*", len(key))
	}
	return key[:4] + "…"
}

// HasInput reports whether the input exists, without copying it: the origin
// asks on every request.
func (s *State) HasInput(id string) bool {
	s.mu.RLock()
	_, ok := s.d.Inputs[id]
	s.mu.RUnlock()
	return ok
}

// PlaybackPolicy returns an input's playback policy without copying the
// input; ok is false when there is no such input.
func (s *State) PlaybackPolicy(id string) (policy string, ok bool) {
	s.mu.RLock()
	in, ok := s.d.Inputs[id]
	if ok {
		policy = in.PlaybackPolicy
	}
	s.mu.RUnlock()
	return policy, ok
}

// sortedClones copies a map's values in key order, so reads never share
// memory with the state and always list things in the same order.
func sortedClones[T any](m map[string]*T, clone func(*T) *T) []*T {
	out := make([]*T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, clone(m[k]))
	}
	return out
}
