package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const okProfileJSON = `{"name":"p","renditions":[{"name":"360p","width":640,"height":360,"video_bitrate_kbps":800}]}`

func TestDecodeRefusals(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		status  int
		field   string
		message string // a part of the error message
	}{
		{"unknown field", http.MethodPost, "/v1/profiles", `{"name":"p","bogus":1}`, 400, "bogus", `unknown field "bogus"`},
		{"unknown field on inputs", http.MethodPost, "/v1/inputs", `{"name":"x","streamkey":"k"}`, 400, "streamkey", "unknown field"},
		{"unknown field on patch", http.MethodPatch, "/v1/inputs/demo", `{"id":"other"}`, 400, "id", "unknown field"},
		{"client may not choose the stream key", http.MethodPost, "/v1/inputs", `{"name":"x","stream_key":"mine"}`, 400, "stream_key", "unknown field"},
		{"string for a number", http.MethodPost, "/v1/profiles", `{"name":"p","segment_seconds":"2"}`, 400, "segment_seconds", "segment_seconds must be a number, not string"},
		{"fraction for an integer", http.MethodPost, "/v1/profiles", `{"name":"p","segment_seconds":0.5}`, 400, "segment_seconds", "must be a number"},
		{"huge number", http.MethodPost, "/v1/profiles", `{"name":"p","segment_seconds":1e400}`, 400, "segment_seconds", "must be a number"},
		{"overflowing integer", http.MethodPost, "/v1/profiles", `{"name":"p","segment_seconds":99999999999999999999}`, 400, "segment_seconds", "must be a number"},
		{"number for a string", http.MethodPost, "/v1/profiles", `{"name":7}`, 400, "name", "name must be a string, not number"},
		{"object for an array", http.MethodPost, "/v1/profiles", `{"name":"p","renditions":{}}`, 400, "renditions", "renditions must be an array, not object"},
		{"string for a boolean", http.MethodPost, "/v1/inputs", `{"name":"x","enabled":"yes"}`, 400, "enabled", "enabled must be a boolean, not string"},
		{"string for a boolean on patch", http.MethodPatch, "/v1/inputs/demo", `{"enabled":"false"}`, 400, "enabled", "must be a boolean"},
		{"trailing garbage", http.MethodPost, "/v1/profiles", okProfileJSON + ` garbage`, 400, "", "after the JSON object"},
		{"second object", http.MethodPost, "/v1/profiles", okProfileJSON + okProfileJSON, 400, "", "after the JSON object"},
		{"trailing bracket", http.MethodPost, "/v1/inputs", `{"name":"x"}}`, 400, "", "after the JSON object"},
		{"empty body", http.MethodPost, "/v1/profiles", ``, 400, "", "empty"},
		{"empty body on inputs", http.MethodPost, "/v1/inputs", ``, 400, "", "empty"},
		{"empty body on patch", http.MethodPatch, "/v1/inputs/demo", ``, 400, "", "empty"},
		{"whitespace only", http.MethodPost, "/v1/profiles", " \n\t ", 400, "", "empty"},
		{"truncated", http.MethodPost, "/v1/profiles", `{"name":`, 400, "", "truncated"},
		{"not JSON", http.MethodPost, "/v1/profiles", `name=p`, 400, "", "not valid JSON"},
		{"unquoted keys", http.MethodPost, "/v1/profiles", `{name:"p"}`, 400, "", "not valid JSON"},
		{"array", http.MethodPost, "/v1/profiles", `[]`, 400, "", "must be a JSON object, not array"},
		{"array of objects", http.MethodPost, "/v1/inputs", `[{"name":"x"}]`, 400, "", "must be a JSON object"},
		{"string", http.MethodPost, "/v1/inputs", `"x"`, 400, "", "must be a JSON object, not string"},
		{"number", http.MethodPatch, "/v1/inputs/demo", `1`, 400, "", "must be a JSON object, not number"},
		{"null is an empty object", http.MethodPost, "/v1/inputs", `null`, 400, "name", "name is required"},
		{"null patch changes nothing", http.MethodPatch, "/v1/inputs/demo", `null`, 400, "", "nothing to change"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.b.addInput(t, "demo")
			eb := requireAPIError(t, e.do(tc.method, tc.target, tc.body), tc.status, tc.field)
			require.Contains(t, eb.Error, tc.message)
			require.Empty(t, e.b.commands(), "a refused body must never reach Apply")
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	big := `{"name":"` + strings.Repeat("a", maxBody) + `"}`
	padded := okProfileJSON + strings.Repeat(" ", maxBody)
	for _, tc := range []struct{ name, method, target, body string }{
		{"profile", http.MethodPost, "/v1/profiles", big},
		{"profile put", http.MethodPut, "/v1/profiles/default", big},
		{"input", http.MethodPost, "/v1/inputs", big},
		{"patch", http.MethodPatch, "/v1/inputs/demo", big},
		{"valid object, then too much whitespace", http.MethodPost, "/v1/profiles", padded},
		{"unterminated string", http.MethodPost, "/v1/profiles", `{"name":"` + strings.Repeat("a", maxBody+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.b.addInput(t, "demo")
			eb := requireAPIError(t, e.do(tc.method, tc.target, tc.body), http.StatusRequestEntityTooLarge, "")
			require.Contains(t, eb.Error, "1048576")
			require.Empty(t, e.b.commands())
		})
	}
}

func TestDecodeDeepNestingIsRefusedEarly(t *testing.T) {
	// encoding/json gives up at depth 10000, long before 1 MiB: a plain 400.
	e := newEnv(t)
	requireAPIError(t, e.do(http.MethodPost, "/v1/profiles", strings.Repeat("[", maxBody+1)), http.StatusBadRequest, "")
}

func TestDecodeAtTheLimit(t *testing.T) {
	// A body of exactly maxBody bytes is read in full.
	body := okProfileJSON + strings.Repeat(" ", maxBody-len(okProfileJSON))
	require.Len(t, body, maxBody)
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/profiles", body)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
}

func TestDecodeAcceptsTrailingWhitespace(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/profiles", "\n "+okProfileJSON+"\r\n\t ")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
}

func TestDecodeJSONDirect(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a": 3}`))
	require.NoError(t, decodeJSON(rec, req, &v))
	require.Equal(t, 3, v.A)

	for body, status := range map[string]int{
		`{"a": 3, "b": 1}`:                    400,
		`{"a": "3"}`:                          400,
		`{"a": 3} 4`:                          400,
		``:                                    400,
		`[1]`:                                 400,
		`{"a": ` + strings.Repeat("1", 2<<20): 413,
	} {
		err := decodeJSON(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), &v)
		require.Error(t, err)
		require.Equal(t, status, asAPIError(err).Status, "%.40s", body)
	}
}

// Type errors and unknown fields inside a rendition should name the rendition
// the way validation does ("renditions[1].width"), so a client can point at
// the offending row. encoding/json reports "renditions.width" (no index) and
// a bare "bogus" for unknown fields.
func TestDecodeNamesNestedFieldsLikeValidation(t *testing.T) {
	e := newEnv(t)
	r0 := `{"name":"a","width":640,"height":360,"video_bitrate_kbps":800}`
	requireAPIError(t, e.do(http.MethodPost, "/v1/profiles", `{"name":"p","renditions":[`+r0+`,{"name":"b","width":"640"}]}`),
		http.StatusBadRequest, "renditions[1].width")
	requireAPIError(t, e.do(http.MethodPost, "/v1/profiles", `{"name":"p","renditions":[{"name":"a","bogus":1}]}`),
		http.StatusBadRequest, "renditions[0].bogus")
}

func TestJSONKind(t *testing.T) {
	for goKind, want := range map[string]string{
		"int": "a number", "int64": "a number", "float64": "a number", "uint": "a number",
		"string": "a string", "bool": "a boolean", "slice": "an array",
		"struct": "an object", "map": "an object", "ptr": "an object", "chan": "chan",
	} {
		require.Equal(t, want, jsonKind(goKind), goKind)
	}
}

func TestErrorBodyShape(t *testing.T) {
	// Errors are {"error": ..., "field": ...}; field is left out when empty.
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/profiles", `[]`)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	require.Contains(t, raw, "error")
	require.NotContains(t, raw, "field")
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
}
