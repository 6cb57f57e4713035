package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// TestCLIIntegrationRealNode drives the CLI in process against one real
// node (raft, mediamtx, the real API): the commands a user types, end to end.
func TestCLIIntegrationRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node; skipped with -short")
	}
	testcluster.MediaMTX(t)
	c := testcluster.Start(t, testcluster.Options{})
	c.WaitReady(30 * time.Second)
	addr := c.Node(0).HTTPURL()

	r := against(addr, "nodes")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^n0 \(this\)\s+alive\s+leader\s`, r.stdout)

	r = against(addr, "cluster")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "n0", fieldValue(t, r.stdout, "Leader"))

	r = against(addr, "profiles", "create", "--id", "cli-small", "--name", "CLI small", "--preset", "ultrafast",
		"--rendition", "name=360p,width=640,height=360,video_kbps=600,audio_kbps=64")
	require.Equal(t, 0, r.code, "%s", r)

	r = against(addr, "inputs", "create", "--name", "CLI test", "--profile", "cli-small")
	require.Equal(t, 0, r.code, "%s", r)
	id := fieldValue(t, r.stdout, "ID")
	key := fieldValue(t, r.stdout, "Stream key")
	require.Contains(t, fieldValue(t, r.stdout, "Ingest RTMP"), "/live/"+key)

	r = against(addr, "inputs", "list")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^`+id+`\s+CLI test\s+cli-small\s+yes\s+public\s+30s\s+no\s+idle$`, r.stdout)

	r = against(addr, "inputs", "list", "--json")
	require.Equal(t, 0, r.code, "%s", r)
	var list struct {
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list.Inputs, 1)
	require.Equal(t, id, list.Inputs[0].ID)

	r = against(addr, "inputs", "rotate-key", id)
	require.Equal(t, 0, r.code, "%s", r)
	newKey := fieldValue(t, r.stdout, "Stream key")
	require.NotEqual(t, key, newKey)
	r = against(addr, "inputs", "get", id)
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, newKey, fieldValue(t, r.stdout, "Stream key"), "the rotation is stored")

	r = against(addr, "inputs", "update", id, "--name", "CLI renamed", "--disable", "--profile", "default")
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "CLI renamed", fieldValue(t, r.stdout, "Name"))
	require.Equal(t, "no", fieldValue(t, r.stdout, "Enabled"))

	r = against(addr, "status", id)
	require.Equal(t, 0, r.code, "%s", r)
	require.Equal(t, "no", fieldValue(t, r.stdout, "Live"))

	r = against(addr, "inputs", "delete", id)
	require.Equal(t, 0, r.code, "%s", r)
	r = against(addr, "profiles", "delete", "cli-small")
	require.Equal(t, 0, r.code, "%s", r)

	// Errors: the server's message and exit 1; a wrong command line, exit 2.
	r = against(addr, "inputs", "get", id)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, `input "`+id+`" not found`)
	require.Contains(t, r.stderr, "HTTP 404")

	r = against(addr, "inputs", "list", "--no-such-flag")
	require.Equal(t, 2, r.code, "%s", r)
	require.Contains(t, r.stderr, "flag provided but not defined")
}
