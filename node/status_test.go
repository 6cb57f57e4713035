package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/httpapi"
)

// TestFetchStatusBypassesProxy: the status call carries the internal
// secret, so it must go straight to the owner, never through a proxy named
// by HTTP_PROXY (net/http reads the environment once per process, so the
// transport's Proxy is checked rather than the environment changed).
func TestFetchStatusBypassesProxy(t *testing.T) {
	tr, ok := internalClient.Transport.(*http.Transport)
	require.True(t, ok)
	require.Nil(t, tr.Proxy, "internal calls must not use the environment's proxy")

	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(httpapi.InputStatus{InputID: "in1", Live: true})
	}))
	defer owner.Close()
	n := authTestNode(t, nil)
	st, err := n.fetchStatus(context.Background(), owner.URL, "in1")
	require.NoError(t, err)
	require.True(t, st.Live)
}
