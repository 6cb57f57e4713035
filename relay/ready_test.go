package relay

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadyKeepsReadsOffAPathNobodyPublishes: with Config.Ready, a source
// that is known not to be ready is not connected to at all (a DESCRIBE
// there made mediamtx refuse a publisher between its ANNOUNCE and RECORD);
// once it is, the relay reads it.
func TestReadyKeepsReadsOffAPathNobodyPublishes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()

	var ready atomic.Bool
	var mu sync.Mutex
	var asked []string
	r := startRelay(t, Config{Ready: func(_ context.Context, host, path string) (bool, bool) {
		mu.Lock()
		asked = append(asked, host+" "+path)
		mu.Unlock()
		return ready.Load(), true
	}})
	source := "rtsp://" + ln.Addr().String() + "/live/key"
	_, release, err := r.Pull(context.Background(), source)
	require.NoError(t, err)
	t.Cleanup(release)

	waitFor(t, 2*time.Second, "the relay to ask twice", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(asked) >= 2
	})
	mu.Lock()
	require.Equal(t, ln.Addr().String()+" live/key", asked[0], "asked about the source's host and path")
	mu.Unlock()
	require.Zero(t, conns.Load(), "no connection to a source known not to be ready")

	ready.Store(true)
	waitFor(t, 2*time.Second, "the relay to connect once the source is ready", func() bool { return conns.Load() > 0 })
}
