package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPreviewWHEP(t *testing.T) {
	e := newEnv(t)
	var auth []string
	sdp := []string{"Content-Type", "application/sdp"}
	in := e.createInput(map[string]any{"name": "a"})
	var got []byte
	e.b.whep = func(id string, offer []byte) ([]byte, error) {
		switch id {
		case in.ID:
			got = offer
			return []byte("v=0 answer"), nil
		default:
			return nil, fmt.Errorf("%w: no publisher", ErrNotFound)
		}
	}
	path := "/v1/inputs/" + in.ID + "/whep"

	rec := e.do(http.MethodPost, path, "v=0 offer", append(auth, sdp...)...)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "application/sdp", rec.Header().Get("Content-Type"))
	require.Equal(t, "v=0 answer", rec.Body.String())
	require.Equal(t, "v=0 offer", string(got))
	require.NotContains(t, rec.Header().Get("Location"), in.StreamKey)

	// The API token is required, like on every /v1 route.
	locked := newEnv(t, func(c *Config) { c.Tokens = []string{"tok"} })
	rec = locked.do(http.MethodPost, path, "v=0 offer", sdp...)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	// An SDP offer, nothing else.
	requireAPIError(t, e.do(http.MethodPost, path, `{"sdp":"v=0"}`, auth...), http.StatusUnsupportedMediaType, "")
	requireAPIError(t, e.do(http.MethodPost, path, strings.Repeat("a", maxSDP+1), append(auth, sdp...)...), http.StatusRequestEntityTooLarge, "")
	// Unknown input; known but without a publisher.
	requireAPIError(t, e.do(http.MethodPost, "/v1/inputs/nosuch/whep", "v=0", append(auth, sdp...)...), http.StatusNotFound, "id")
	other := e.createInput(map[string]any{"name": "b"})
	requireAPIError(t, e.do(http.MethodPost, "/v1/inputs/"+other.ID+"/whep", "v=0", append(auth, sdp...)...), http.StatusNotFound, "id")
	// The publisher's node unreachable: retry later.
	e.b.whep = func(string, []byte) ([]byte, error) { return nil, errors.Join(ErrUnavailable) }
	rec = e.do(http.MethodPost, path, "v=0", append(auth, sdp...)...)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
}
