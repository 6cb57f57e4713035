package node

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A port mediamtx needs that another program holds stops the node at
// start with the flag and the address, instead of a mediamtx restart loop.
func TestCheckMediaPorts(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	free := "127.0.0.1:0"

	for _, tc := range []struct {
		name    string
		set     func(c *Config)
		wantErr string
	}{
		{"all free", func(*Config) {}, ""},
		{"RTMP taken", func(c *Config) { c.RTMPAddr = tcp.Addr().String() }, "rtmp-addr " + tcp.Addr().String() + " is not free for mediamtx"},
		{"SRT taken (UDP)", func(c *Config) { c.SRTAddr = udp.LocalAddr().String() }, "srt-addr " + udp.LocalAddr().String() + " is not free for mediamtx"},
		{"WebRTC ICE taken (UDP)", func(c *Config) { c.WebRTCUDPAddr = udp.LocalAddr().String() }, "webrtc-udp-addr"},
		{"mediamtx API taken", func(c *Config) { c.MediaMTXAPIAddr = tcp.Addr().String() }, "mediamtx api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := authTestNode(t, nil)
			n.cfg.RTMPAddr, n.cfg.RTSPAddr, n.cfg.SRTAddr, n.cfg.WebRTCAddr, n.cfg.WebRTCUDPAddr = free, free, free, free, free
			tc.set(&n.cfg)
			err := n.checkMediaPorts(0)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, syscall.EADDRINUSE)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
