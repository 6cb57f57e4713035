package chaos

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNFQueueDelay measures the NFQUEUE delayer with TCP round trips
// between the client namespace and a node namespace: delaying what the
// node sends adds its delay once to each round trip, delaying both ends
// adds it twice, and stopping takes it away.
func TestNFQueueDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("makes network namespaces; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and iptables")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nt, err := NewNet(ctx, 1)
	t.Cleanup(func() { require.NoError(t, nt.Close()) })
	require.NoError(t, err)
	require.NoError(t, delayAvailable(ctx, nt.Nodes[0]))

	var ln net.Listener
	require.NoError(t, inNS(nt.Nodes[0], func() error {
		var err error
		ln, err = net.Listen("tcp", nodeIP(0)+":7800")
		return err
	}))
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	c, err := nt.DialContext(ctx, "tcp", nodeIP(0)+":7800")
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	// rtts is the fastest and the median of a few echoed lines.
	rtts := func() (time.Duration, time.Duration) {
		var ds []time.Duration
		for range 7 {
			start := time.Now()
			_, err := c.Write([]byte("ping\n"))
			require.NoError(t, err)
			_, err = r.ReadString('\n')
			require.NoError(t, err)
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[0], ds[len(ds)/2]
	}

	const d = 200 * time.Millisecond
	_, base := rtts()
	t.Logf("round trip without delay: %s", base)

	check := func(what string, times int) {
		t.Helper()
		low, med := rtts()
		want := time.Duration(times) * d
		t.Logf("%s: round trip %s (fastest %s), %s more than without", what, med, low, med-base)
		require.GreaterOrEqual(t, low, want, "%s: every round trip must take the delay", what)
		// The machine may be loaded: allow some slack above.
		require.Less(t, med, base+want+150*time.Millisecond, "%s: delayed too long", what)
	}

	dl, err := StartDelay(ctx, []string{nt.Nodes[0]}, d)
	require.NoError(t, err)
	check("node delayed", 1)
	require.NoError(t, dl.Stop(ctx))
	require.NotZero(t, dl.Held(), "the delayer must have held the node's packets")

	dl, err = StartDelay(ctx, []string{nt.Nodes[0], nt.Client}, d)
	require.NoError(t, err)
	check("both ends delayed", 2)
	require.NoError(t, dl.Stop(ctx))

	_, after := rtts()
	t.Logf("round trip after stop: %s", after)
	require.Less(t, after, base+100*time.Millisecond, "the delay must end with Stop")
}
