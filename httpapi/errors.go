package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/dionysia/dionysia/fsm"
)

// apiError is what every failed request answers: {"error": ..., "field": ...}.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Field: field, Message: msg}
}

func notFoundErr(field, msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Field: field, Message: msg}
}

// ErrUnavailable marks errors that mean "try again later" (no raft leader,
// the leader unreachable); Backends wrap them so the API answers 503.
var ErrUnavailable = errors.New("unavailable")

// ErrOutcomeUnknown marks a write the node sent to the leader but could not
// learn the fate of: it may or may not have been applied. The API answers
// 504, never 503, which promises that nothing happened.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// asAPIError maps any error to the status and body it is answered with.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *fsm.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fsm.CodeNotFound:
			// The object named by the URL is missing: 404. A referenced
			// object (a body field) is missing: the request is wrong, 400.
			if fe.Field == "id" {
				return &apiError{Status: http.StatusNotFound, Field: fe.Field, Message: fe.Message}
			}
			return &apiError{Status: http.StatusBadRequest, Field: fe.Field, Message: fe.Message}
		case fsm.CodeConflict:
			return &apiError{Status: http.StatusConflict, Field: fe.Field, Message: fe.Message}
		case fsm.CodeKeyReused:
			return &apiError{Status: http.StatusUnprocessableEntity, Field: fe.Field, Message: fe.Message}
		default:
			return &apiError{Status: http.StatusBadRequest, Field: fe.Field, Message: fe.Message}
		}
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		return &apiError{Status: http.StatusGatewayTimeout, Message: "the write may or may not have been applied (no answer from the raft leader in time); " +
			"POSTs sent with an Idempotency-Key header can be retried safely to find out: " + err.Error()}
	}
	if errors.Is(err, ErrUnavailable) {
		return &apiError{Status: http.StatusServiceUnavailable, Message: err.Error()}
	}
	return &apiError{Status: http.StatusInternalServerError, Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	if ae.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.Status, ae)
}
