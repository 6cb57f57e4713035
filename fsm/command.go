package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Op names a state change. The names are part of the raft log format: never
// rename one, only add.
type Op string

const (
	OpInit              Op = "init"
	OpCreateProfile     Op = "create_profile"
	OpUpdateProfile     Op = "update_profile"
	OpDeleteProfile     Op = "delete_profile"
	OpCreateInput       Op = "create_input"
	OpUpdateInput       Op = "update_input"
	OpDeleteInput       Op = "delete_input"
	OpRotateKey         Op = "rotate_key"
	OpStartSession      Op = "start_session"
	OpEndSession        Op = "end_session"
	OpClearNodeSessions Op = "clear_node_sessions"
	OpExpireSession     Op = "expire_session"
	// OpBeginRequest and OpFinishRequest keep the answers of idempotent API
	// requests (see idempotency.go).
	OpBeginRequest  Op = "begin_request"
	OpFinishRequest Op = "finish_request"
	OpPlaceSessions Op = "place_sessions"
)

// Command is the envelope of every raft log entry. Everything random or
// time-dependent (ids, keys, timestamps) is chosen by the proposer and carried
// here, so that applying the same log anywhere gives the same state.
type Command struct {
	Op Op        `json:"op"`
	At time.Time `json:"at"`

	Init    *Init       `json:"init,omitempty"`
	Profile *Profile    `json:"profile,omitempty"`
	Input   *Input      `json:"input,omitempty"`
	Patch   *InputPatch `json:"patch,omitempty"`
	Session *Session    `json:"session,omitempty"`
	// Placement comes with StartSession: the candidates for the owner.
	Placement *Placement `json:"placement,omitempty"`
	// Moves are PlaceSessions' new owners.
	Moves []Move `json:"moves,omitempty"`
	// Webhook outbox commands (webhooks.go).
	Webhook *Webhook `json:"webhook,omitempty"`
	Event   *Event   `json:"event,omitempty"`
	Attempt *Attempt `json:"attempt,omitempty"`
	// Recording commands (recordings.go).
	Recording      *Recording      `json:"recording,omitempty"`
	RecordingPatch *RecordingPatch `json:"recording_patch,omitempty"`

	// ID names the profile or input for deletes, updates and rotations, and
	// the input for EndSession and ExpireSession (Session.ID then names the
	// session).
	ID        string `json:"id,omitempty"`
	StreamKey string `json:"stream_key,omitempty"`
	Node      string `json:"node,omitempty"`

	// Idempotency names the key of OpBeginRequest and OpFinishRequest; on
	// any other command it makes the command apply at most once per key.
	Idempotency *Idempotency `json:"idempotency,omitempty"`
	// Response is the answer OpFinishRequest stores; nil releases the key.
	Response *StoredResponse `json:"response,omitempty"`
}

// Init seeds a brand-new cluster. It applies once: later Init commands are
// no-ops, so every node may propose it safely after bootstrap.
type Init struct {
	// Secret authenticates cluster-internal media reads when no cluster key is
	// configured.
	Secret         string   `json:"secret"`
	DefaultProfile *Profile `json:"default_profile"`
	DemoInput      *Input   `json:"demo_input,omitempty"`
}

// InputPatch changes the fields that are set.
type InputPatch struct {
	Name           *string `json:"name,omitempty"`
	ProfileID      *string `json:"profile_id,omitempty"`
	Enabled        *bool   `json:"enabled,omitempty"`
	PlaybackPolicy *string `json:"playback_policy,omitempty"`
	// ReconnectWindowSeconds applies from the next decision on: a session
	// already reconnecting expires at its EndedAt plus the new window.
	ReconnectWindowSeconds *int    `json:"reconnect_window_seconds,omitempty"`
	HotStandby             *bool   `json:"hot_standby,omitempty"`
	Overload               *string `json:"overload,omitempty"`
	// PublishAuthURL "" removes the input's admission URL.
	PublishAuthURL *string `json:"publish_auth_url,omitempty"`
	// Recording settings apply to the next show (a show being recorded
	// keeps being recorded).
	Record                 *bool `json:"record,omitempty"`
	DVRWindowSeconds       *int  `json:"dvr_window_seconds,omitempty"`
	RecordingRetentionDays *int  `json:"recording_retention_days,omitempty"`
}

// Encode serialises the command for the raft log.
func (c Command) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Op, err)
	}
	return b, nil
}

// DecodeCommand parses a raft log entry. It rejects unknown fields so that a
// log written by a newer version is not half-applied by an older one.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := strictUnmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("decode command: %w", err)
	}
	if c.Op == "" {
		return Command{}, errors.New("decode command: missing op")
	}
	return c, nil
}

// Result is what Apply returns for one command: the object after the change,
// or the reason it was refused.
type Result struct {
	Err     error
	Profile *Profile
	Input   *Input
	Session *Session
	// Recording is the recording after a recording command.
	Recording *Recording
	// Response is the stored answer of an idempotent request, when
	// OpBeginRequest finds its key already answered.
	Response *StoredResponse
	// Changed is false when the command was a no-op (a repeated Init, an
	// EndSession for a session that had already been replaced, an
	// ExpireSession for a session a reconnect replaced).
	Changed bool
}

// Codes of refused commands; httpapi maps them to HTTP statuses.
type Code string

const (
	CodeNotFound Code = "not_found"
	CodeConflict Code = "conflict"
	CodeInvalid  Code = "invalid"
	// CodeKeyReused: an idempotency key sent again with another request.
	CodeKeyReused Code = "key_reused"
)

// Error is a refused command. Field names the offending field, when there is one.
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

func notFound(field, format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *Error {
	return &Error{Code: CodeConflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of a refused command, or "" for other errors.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
