package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The node's secrets come from the environment in containers: neither -h nor
// the usage a mistyped flag prints may show them, and the environment twins
// must still be read.
func TestNodeUsageHidesSecrets(t *testing.T) {
	const token = "tok-do-not-print"
	const key = "c2VjcmV0LWNsdXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmc=" // 32 bytes
	t.Setenv("DIONYSIA_API_TOKEN", token)
	t.Setenv("DIONYSIA_CLUSTER_KEY", key)
	for _, args := range [][]string{{"node", "-h"}, {"node", "--no-such-flag"}} {
		r := runCLI(args...)
		require.Contains(t, r.stderr, "-api-token", "%v: %s", args, r)
		require.NotContains(t, r.stderr, token, "%v", args)
		require.NotContains(t, r.stderr, key, "%v", args)
	}

	// The environment twin of a secret flag is still used...
	t.Setenv("DIONYSIA_CLUSTER_KEY", "not base64!")
	r := runCLI("node")
	require.Equal(t, 2, r.code, "%s", r)
	require.Contains(t, r.stderr, "cluster-key: not base64")
	// ...and the flag wins over it.
	r = runCLI("node", "--cluster-key", "c2hvcnQ=")
	require.Equal(t, 2, r.code, "%s", r)
	require.Contains(t, r.stderr, "must decode to 16, 24 or 32 bytes, not 5")
}

// Bad TLS flags stop the node before it listens, with the flag named.
func TestNodeTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	missing := dir + "/missing.pem"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"cert alone", []string{"--tls-cert", missing}, "tls-cert, tls-key and tls-ca go together"},
		{"cert and key without CA", []string{"--tls-cert", missing, "--tls-key", missing}, "tls-cert, tls-key and tls-ca go together"},
		{"unreadable files", []string{"--tls-cert", missing, "--tls-key", missing, "--tls-ca", missing}, "tls-cert/tls-key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "--data-dir", t.TempDir(), "--mediamtx", "/bin/true", "--ffmpeg", "/bin/true"}, tc.args...)
			r := runCLI(args...)
			require.Equal(t, 2, r.code, "%s", r)
			require.Contains(t, r.stderr, tc.want)
		})
	}
}

// Numeric node flags name themselves and what they accept.
func TestNodeNumberFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--transcode-capacity", "lots"}, "--transcode-capacity must be a whole number of cost units"},
		{[]string{"--transcode-capacity", "-3"}, "--transcode-capacity must be a whole number of cost units"},
		{[]string{"--recording-reserve-mb", "1G"}, `--recording-reserve-mb must be a whole number of megabytes (0 = 5% of the disk, at most 1024), not "1G"`},
		{[]string{"--recording-reserve-mb", "-1"}, "--recording-reserve-mb must be a whole number of megabytes"},
	} {
		r := runCLI(append([]string{"node", "--data-dir", t.TempDir()}, tc.args...)...)
		require.Equal(t, 2, r.code, "%v: %s", tc.args, r)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
}
