package peer

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeriveIsDeterministicAndPurposeBound(t *testing.T) {
	root := bytes.Repeat([]byte{1}, 32)
	purposes := []Purpose{NodeCA, Playback, MediaRead, InternalToken}
	seen := map[string]Purpose{}
	for _, p := range purposes {
		a, err := Derive(root, p, 32)
		require.NoError(t, err)
		b, err := Derive(root, p, 32)
		require.NoError(t, err)
		require.Equal(t, a, b, "%s: same root, same purpose, different keys", p)
		require.NotEqual(t, root, a, "%s: the derived key is the root", p)
		prev, dup := seen[string(a)]
		require.False(t, dup, "%s and %s derive the same key", p, prev)
		seen[string(a)] = p

		other, err := Derive(bytes.Repeat([]byte{2}, 32), p, 32)
		require.NoError(t, err)
		require.NotEqual(t, a, other, "%s: another root gives the same key", p)
	}
}

func TestDeriveErrors(t *testing.T) {
	cases := []struct {
		name    string
		root    []byte
		purpose Purpose
		want    string
	}{
		{"empty root", nil, Playback, "empty root secret"},
		{"empty purpose", []byte("k"), "", "empty purpose"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Derive(tc.root, tc.purpose, 32)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPeerKeyFollowsRoot(t *testing.T) {
	secret := ""
	p, err := New(Config{Secret: func() string { return secret }})
	require.NoError(t, err)
	require.Nil(t, p.Key(Playback), "a key without any root secret")
	require.Empty(t, p.KeyHex(MediaRead))
	secret = "bootstrap-secret"
	require.Len(t, p.Key(Playback), 32)
	require.NotEqual(t, p.KeyHex(Playback), p.KeyHex(MediaRead))

	key := bytes.Repeat([]byte{3}, 16)
	k, err := New(Config{ClusterKey: key, Secret: func() string { return secret }})
	require.NoError(t, err)
	want, err := Derive(key, Playback, 32)
	require.NoError(t, err)
	require.Equal(t, want, k.Key(Playback), "the cluster key is the root when set")
}
