package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/packager"
)

// A standby copy in another wire format (a node of another version, during
// a rolling upgrade) is refused with an error that says so, before any
// attempt to decode it.
func TestReplicaRefusesAnotherWireFormat(t *testing.T) {
	n := authTestNode(t, nil)
	for _, ct := range []string{"", "application/octet-stream", "application/vnd.dionysia.delta.v1"} {
		req := httptest.NewRequest(http.MethodPost, "/internal/replica/on", strings.NewReader("gob bytes of v1"))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		n.serveInternalReplica(rec, req)
		require.Equal(t, http.StatusUnsupportedMediaType, rec.Code, ct)
		require.Contains(t, rec.Body.String(), "different Dionysia versions", ct)
		require.Contains(t, rec.Body.String(), packager.DeltaContentType, ct)
	}
}
