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

// TestFetchStatus: the status call reaches the owner's cluster port with
// peer's client (which never uses a proxy: see package peer).
func TestFetchStatus(t *testing.T) {
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(httpapi.InputStatus{InputID: "in1", Live: true})
	}))
	defer owner.Close()
	n := authTestNode(t, nil)
	st, err := n.fetchStatus(context.Background(), owner.Listener.Addr().String(), "in1")
	require.NoError(t, err)
	require.True(t, st.Live)
}
