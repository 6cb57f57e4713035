package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
)

// wireResult is Result as bytes: what a leader answers a forwarded write
// with, and what the idempotency store keeps of a write. fsm owns the format
// so that whoever moves the bytes (package cluster) needs no knowledge of
// what is inside.
type wireResult struct {
	Err     *wireError `json:"err,omitempty"`
	Profile *Profile   `json:"profile,omitempty"`
	Input   *Input     `json:"input,omitempty"`
	Session *Session   `json:"session,omitempty"`
	// Recording: added with recordings; an older node ignores it.
	Recording *Recording      `json:"recording,omitempty"`
	Response  *StoredResponse `json:"response,omitempty"`
	Changed   bool            `json:"changed"`
}

// wireError is a refused command (Code set) or any other error.
type wireError struct {
	Code    Code   `json:"code,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// EncodeResult serialises a Result. An *Error keeps its code and field;
// any other error keeps only its message.
func EncodeResult(r *Result) ([]byte, error) {
	if r == nil {
		r = &Result{}
	}
	w := wireResult{Profile: r.Profile, Input: r.Input, Session: r.Session, Recording: r.Recording, Response: r.Response, Changed: r.Changed}
	if r.Err != nil {
		var fe *Error
		if errors.As(r.Err, &fe) {
			w.Err = &wireError{Code: fe.Code, Field: fe.Field, Message: fe.Message}
		} else {
			w.Err = &wireError{Message: r.Err.Error()}
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return b, nil
}

// DecodeResult parses what EncodeResult wrote. Unknown fields are ignored,
// unlike in commands: a result is read once, by a node that may be older
// than the one that wrote it, and nothing is replayed from it.
func DecodeResult(b []byte) (*Result, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	r := &Result{Profile: w.Profile, Input: w.Input, Session: w.Session, Recording: w.Recording, Response: w.Response, Changed: w.Changed}
	if w.Err != nil {
		if w.Err.Code != "" {
			r.Err = &Error{Code: w.Err.Code, Field: w.Err.Field, Message: w.Err.Message}
		} else {
			r.Err = errors.New(w.Err.Message)
		}
	}
	return r, nil
}
