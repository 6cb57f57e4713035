package media

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRenderMediaMTXConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := writeMediaMTXConfig(filepath.Join(dir, "mtx"), mediamtxSettings{
		RTMPAddr: ":1935", RTSPAddr: "127.0.0.1:8554", SRTAddr: ":8890", APIAddr: "127.0.0.1:9997",
		AuthURL: "http://127.0.0.1:4000/auth",
	})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "mtx", "mediamtx.yml"), path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{
		"logLevel: info\n",
		"authMethod: http\n",
		`authHTTPAddress: "http://127.0.0.1:4000/auth"`,
		"authHTTPExclude:\n  - action: metrics\n  - action: pprof\n",
		"api: yes\napiAddress: \"127.0.0.1:9997\"\n",
		"rtspTransports: [tcp]\n",
		"rtspEncryption: \"no\"\n",
		`rtspAddress: "127.0.0.1:8554"`,
		"rtmpEncryption: \"no\"\n",
		`rtmpAddress: ":1935"`,
		`srtAddress: ":8890"`,
		"hls: no\n", "webrtc: no\n", "playback: no\n", "metrics: no\n", "pprof: no\n",
		"pathDefaults:\n  overridePublisher: yes\n",
		"paths:\n  all_others: {}\n",
	} {
		require.Contains(t, s, want)
	}
	// A value that needs quoting stays one YAML scalar.
	out, err := renderMediaMTXConfig(mediamtxSettings{RTMPAddr: "a\"b\nc"})
	require.NoError(t, err)
	require.Contains(t, string(out), `rtmpAddress: "a\"b\nc"`)
}

func TestRenderMediaMTXConfigRTSPS(t *testing.T) {
	out, err := renderMediaMTXConfig(mediamtxSettings{RTSPAddr: ":8554", RTSPSAddr: "127.0.0.1:8322",
		CertFile: "/d/rtsps.crt", KeyFile: "/d/rtsps.key"})
	require.NoError(t, err)
	s := string(out)
	for _, want := range []string{
		"rtspTransports: [tcp]\n", // no UDP: no SRTP listeners either
		"rtspEncryption: \"optional\"\n",
		`rtspsAddress: "127.0.0.1:8322"`,
		`rtspServerCert: "/d/rtsps.crt"`,
		`rtspServerKey: "/d/rtsps.key"`,
		`rtspAddress: ":8554"`,
	} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, `rtspEncryption: "no"`)
}

// The RTSPS key is written for this user only, even over a file an older
// version left readable.
func TestWritePrivate(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k.tmp"), []byte("old"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(dir, "k.tmp"), 0o644))
	p, err := writePrivate(dir, "k", []byte("key"))
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "key", string(b))
}

// TestRenderMediaMTXConfigWebRTC: with a WHIP address the WebRTC server is
// on, with ICE on its one UDP port and nothing else: no random UDP ports,
// no TCP, no TLS, no STUN/TURN.
func TestRenderMediaMTXConfigWebRTC(t *testing.T) {
	out, err := renderMediaMTXConfig(mediamtxSettings{
		RTMPAddr: ":1935", RTSPAddr: ":8554", SRTAddr: ":8890", APIAddr: "127.0.0.1:9997", AuthURL: "http://127.0.0.1:4000/auth",
		WebRTCAddr: ":8889", WebRTCUDPAddr: ":8189", WebRTCHosts: []string{"203.0.113.7", "10.0.0.1"},
	})
	require.NoError(t, err)
	s := string(out)
	for _, want := range []string{
		"\nhls: no\nwebrtc: yes\n",
		`webrtcAddress: ":8889"` + "\n",
		"webrtcEncryption: no\n",
		`webrtcLocalUDPAddress: ":8189"` + "\n",
		`webrtcLocalTCPAddress: ""` + "\n",
		`webrtcAdditionalHosts: ["203.0.113.7", "10.0.0.1"]` + "\n",
		"webrtcICEServers2: []\n",
		// Publish only: the hook decides every read, WebRTC ones included,
		// and nothing is excluded from it but metrics and pprof.
		"authMethod: http\n",
		"authHTTPExclude:\n  - action: metrics\n  - action: pprof\n",
		"\nsrt: yes\n",
	} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "webrtc: no")
	require.NotContains(t, s, "action: read")
	require.NotContains(t, s, "action: publish")

	// Without an address: off, and no WebRTC keys at all.
	out, err = renderMediaMTXConfig(mediamtxSettings{RTMPAddr: ":1935"})
	require.NoError(t, err)
	require.Contains(t, string(out), "\nwebrtc: no\n")
	require.NotContains(t, string(out), "webrtcAddress")
}
