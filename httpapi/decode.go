package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBody caps every request body; larger ones get 413.
const maxBody = 1 << 20

// decodeJSON reads exactly one JSON object into v: unknown fields, wrong types,
// an empty body and trailing data are all refused with the field named.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return badRequest("", "request body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	var nested *nestedError
	switch {
	case errors.As(err, &nested):
		inner := asAPIError(decodeError(nested.Err))
		field := nested.At
		if inner.Field != "" {
			field += "." + inner.Field
		}
		return badRequest(field, nested.At+": "+inner.Message)
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "request body is truncated JSON")
	case errors.As(err, &syn):
		return badRequest("", fmt.Sprintf("request body is not valid JSON (at byte %d)", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("", fmt.Sprintf("request body must be a JSON object, not %s", typ.Value))
		}
		return badRequest(field, fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, fmt.Sprintf("unknown field %q", field))
	default:
		return badRequest("", "cannot read request body: "+err.Error())
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	default:
		return goKind
	}
}

// nestedError is a decoding error inside an element of a list, At naming the
// element ("renditions[1]").
type nestedError struct {
	At  string
	Err error
}

func (e *nestedError) Error() string { return e.At + ": " + e.Err.Error() }
func (e *nestedError) Unwrap() error { return e.Err }
