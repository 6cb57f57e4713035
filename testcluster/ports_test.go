package testcluster

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// A bind on a taken port is recognised, and the holder is named: this is
// what a test node's start logs before it tries fresh ports.
func TestPortInUseNamesTheHolder(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	defer l.Close()

	_, err = net.Listen("tcp", addr)
	require.Error(t, err)
	got, inUse := portInUse(fmt.Errorf("listen http %s: %w", addr, err))
	require.True(t, inUse)
	require.Equal(t, port, got)
	require.Contains(t, portHolder(port), fmt.Sprintf("listen by pid %d", os.Getpid()))

	// memberlist's listener error is text only.
	_, inUse = portInUse(fmt.Errorf("start memberlist: Failed to start TCP listener on %q port %d: %v", "127.0.0.1", port, err))
	require.True(t, inUse)

	_, inUse = portInUse(fmt.Errorf("start raft: %w", os.ErrPermission))
	require.False(t, inUse)
}
