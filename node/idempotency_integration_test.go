package node_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// inputsNamed counts the inputs called name in n's replica.
func inputsNamed(n *testcluster.Node, name string) (ids []string, err error) {
	r, err := n.Do(http.MethodGet, "/v1/inputs", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", n.Name(), r.Status)
	}
	var list struct {
		Inputs []testcluster.Input `json:"inputs"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return nil, err
	}
	for _, in := range list.Inputs {
		if in.Name == name {
			ids = append(ids, in.ID)
		}
	}
	return ids, nil
}

// TestIntegrationIdempotentPostThroughFollower: a client sends POST
// /v1/inputs with an Idempotency-Key to a follower and hangs up before the
// answer (the answer is lost); its retries, through the same follower and
// through the leader, get the first answer back, and the cluster has one
// input.
func TestIntegrationIdempotentPostThroughFollower(t *testing.T) {
	alongside(t)
	testcluster.MediaMTX(t)
	c := startThree(t, testcluster.Options{})
	f := follower(c)
	require.NotNil(t, f)
	var leader *testcluster.Node
	for _, n := range c.Running() {
		if n.ClusterHandle().IsLeader() {
			leader = n
		}
	}
	require.NotNil(t, leader)

	const name, key = "sent twice", "9f1c2a7e-idem-test"
	body := `{"name":"` + name + `"}`
	u, err := url.Parse(f.HTTPURL())
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "POST /v1/inputs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Idempotency-Key: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", u.Host, key, len(body), body)
	require.NoError(t, err)
	require.NoError(t, conn.Close(), "the answer to the first try is never read")

	// The first try runs to the end although its client is gone.
	var first string
	testcluster.Eventually(t, 15*time.Second, "the input of the first try on the leader", func() error {
		ids, err := inputsNamed(leader, name)
		if err != nil {
			return err
		}
		if len(ids) != 1 {
			return fmt.Errorf("inputs named %q: %v", name, ids)
		}
		first = ids[0]
		return nil
	})

	for _, n := range []*testcluster.Node{f, f, leader} {
		var r testcluster.Response
		testcluster.Eventually(t, 15*time.Second, "an answer to the retry through "+n.Name(), func() error {
			var err error
			r, err = n.Do(http.MethodPost, "/v1/inputs", body, "Idempotency-Key", key)
			if err != nil {
				return err
			}
			if r.Status == http.StatusConflict && strings.Contains(string(r.Body), "in flight") {
				return fmt.Errorf("still in flight: %s", r.Body)
			}
			return nil
		})
		require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
		require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
		var in testcluster.Input
		r.JSON(t, &in)
		require.Equal(t, first, in.ID, "the retry answers with the first try's input")
		require.Equal(t, "/v1/inputs/"+first, r.Header.Get("Location"))
	}

	// Another body under the same key is refused, through any node.
	r := leader.MustDo(t, http.MethodPost, "/v1/inputs", `{"name":"other"}`, "Idempotency-Key", key)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), `"field": "Idempotency-Key"`)

	for _, n := range c.Running() {
		testcluster.Eventually(t, 10*time.Second, "one input on "+n.Name(), func() error {
			ids, err := inputsNamed(n, name)
			if err != nil {
				return err
			}
			if len(ids) != 1 || ids[0] != first {
				return fmt.Errorf("inputs named %q: %v", name, ids)
			}
			return nil
		})
	}
}
