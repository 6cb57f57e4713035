package httpapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDrainAndUndrain(t *testing.T) {
	for _, tc := range []struct {
		path     string
		draining bool
	}{
		{"/v1/nodes/n1/drain", true},
		{"/v1/nodes/n1/undrain", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e := newEnv(t)
			rec := e.do(http.MethodPost, tc.path, nil)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			n := decodeBody[NodeInfo](t, rec)
			require.Equal(t, "n1", n.Name)
			require.Equal(t, tc.draining, n.Draining)
		})
	}
	e := newEnv(t)
	requireAPIError(t, e.do(http.MethodPost, "/v1/nodes/nope/drain", nil), http.StatusNotFound, "name")
	require.Equal(t, http.StatusMethodNotAllowed, e.do(http.MethodGet, "/v1/nodes/n1/drain", nil).Code)
}
