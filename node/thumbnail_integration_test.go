package node_test

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testcluster"
)

// TestIntegrationThumbnail publishes a test pattern to a two-node cluster:
// thumbnail.jpg is a 404 with a JSON error until the first picture, then a
// JPEG of the lowest rung's size through the owner (from its memory) and
// through the other node (fetched from the owner), cached for a few
// seconds, replaced by a newer picture a few seconds later, and scaled down
// on request.
func TestIntegrationThumbnail(t *testing.T) {
	alongside(t)
	testcluster.Media(t)
	start := time.Now()
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	c.WaitMembers(2, 30*time.Second)
	c.WaitLeader(30 * time.Second)
	c.WaitReady(30 * time.Second)
	profile := c.Node(0).CreateProfile(t, testcluster.SmallProfile("thumbnails", 1))
	in := c.Node(0).CreateInput(t, map[string]any{"name": "thumbnails", "profile_id": profile})
	m, ok := c.Node(0).ClusterHandle().Owner(in.ID)
	require.True(t, ok)
	owner, other := c.Node(0), c.Node(1)
	if owner.Name() != m.Name {
		owner, other = other, owner
	}
	path := "/live/" + in.ID + "/thumbnail.jpg"
	viaOther := other.WaitInput(t, in.ID)
	owner.WaitInput(t, in.ID) // the owner may be the node the input was not created on

	for _, n := range []*testcluster.Node{owner, other} {
		r := n.MustDo(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusNotFound, r.Status, "%s before the publish: %s", n.Name(), r.Body)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.Contains(t, string(r.Body), `"error":"no thumbnail yet`)
	}

	// Published to the node that does not transcode it.
	testcluster.Publish(t, viaOther.Ingest.RTMP, testcluster.PublishOptions{Width: 640, Height: 360, FPS: 15})

	// get fetches the thumbnail through n and decodes it.
	get := func(n *testcluster.Node, query string) ([]byte, string, error) {
		r, err := n.Do(http.MethodGet, path+query, nil)
		if err != nil {
			return nil, "", err
		}
		if r.Status != http.StatusOK {
			return nil, "", fmt.Errorf("%s: %d %s", n.Name(), r.Status, r.Body)
		}
		if ct, cc := r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"); ct != "image/jpeg" || cc != "public, max-age=5" {
			return nil, "", fmt.Errorf("%s: Content-Type %q, Cache-Control %q", n.Name(), ct, cc)
		}
		img, err := jpeg.Decode(bytes.NewReader(r.Body))
		if err != nil {
			return nil, "", fmt.Errorf("%s: not a JPEG: %w", n.Name(), err)
		}
		return r.Body, fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()), nil
	}
	var first []byte
	testcluster.Eventually(t, 45*time.Second, "a thumbnail through the owner", func() error {
		b, size, err := get(owner, "")
		if err != nil {
			return err
		}
		first = b
		if size != "320x180" {
			return fmt.Errorf("size %s, want the lowest rung's 320x180", size)
		}
		return nil
	})
	t.Logf("first thumbnail %s after start, %d bytes", time.Since(start).Round(time.Millisecond), len(first))
	testcluster.Eventually(t, 10*time.Second, "the thumbnail through the other node", func() error {
		_, size, err := get(other, "")
		if err != nil {
			return err
		}
		if size != "320x180" {
			return fmt.Errorf("size %s", size)
		}
		return nil
	})
	testcluster.Eventually(t, 10*time.Second, "a scaled thumbnail through the other node", func() error {
		_, size, err := get(other, "?width=96")
		if err != nil {
			return err
		}
		if size != "96x54" {
			return fmt.Errorf("size %s, want 96x54", size)
		}
		return nil
	})
	r := other.MustDo(t, http.MethodGet, path+"?width=5", nil)
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))

	// The test pattern moves: a new picture differs from the first.
	testcluster.Eventually(t, 20*time.Second, "a newer thumbnail through the other node", func() error {
		b, _, err := get(other, "")
		if err != nil {
			return err
		}
		if bytes.Equal(b, first) {
			return fmt.Errorf("still the first picture")
		}
		return nil
	})
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}
