package testcluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

var follow = &http.Client{Timeout: 10 * time.Second}

// Response is a buffered HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Do sends a request to the node's HTTP API without following redirects. A
// non-nil body is sent as JSON (a string or []byte is sent as is).
func (n *Node) Do(method, path string, body any, hdr ...string) (Response, error) {
	return do(noRedirect, method, n.HTTPURL()+path, body, append(n.authHeader(), hdr...)...)
}

// Get follows redirects, as a player or CDN would.
func (n *Node) Get(path string) (Response, error) {
	return do(follow, http.MethodGet, n.HTTPURL()+path, nil, n.authHeader()...)
}

// MustDo is Do that fails the test on a transport error.
func (n *Node) MustDo(t testing.TB, method, path string, body any, hdr ...string) Response {
	t.Helper()
	r, err := n.Do(method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.Name(), err)
	}
	return r
}

func (n *Node) authHeader() []string {
	if len(n.Config.APITokens) > 0 {
		return []string{"Authorization", "Bearer " + n.Config.APITokens[0]}
	}
	return nil
}

func do(c *http.Client, method, url string, body any, hdr ...string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Input is the part of an input the tests use.
type Input struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProfileID string `json:"profile_id"`
	StreamKey string `json:"stream_key"`
	Enabled   bool   `json:"enabled"`
	Live      bool   `json:"live"`
	Overload  string `json:"overload"`
	Ingest    struct {
		RTMP string `json:"rtmp"`
		SRT  string `json:"srt"`
		RTSP string `json:"rtsp"`
		WHIP string `json:"whip"`
	} `json:"ingest"`
	Playback struct {
		HLS     string `json:"hls"`
		DVRDASH string `json:"dvr_dash"`
	} `json:"playback"`
}

// CreateInput creates an input through node n and fails the test otherwise.
func (n *Node) CreateInput(t testing.TB, body map[string]any) Input {
	t.Helper()
	r := n.MustDo(t, http.MethodPost, "/v1/inputs", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create input on %s: %d %s", n.Name(), r.Status, r.Body)
	}
	var in Input
	r.JSON(t, &in)
	return in
}

// WaitInput waits until node n has replicated the input (reads are local,
// so a node that did not take the write may lag a little) and returns it as
// that node shows it: its ingest URLs point at n.
func (n *Node) WaitInput(t testing.TB, id string) Input {
	t.Helper()
	var in Input
	Eventually(t, 10*time.Second, "input "+id+" on "+n.Name(), func() error {
		r, err := n.Do(http.MethodGet, "/v1/inputs/"+id, nil)
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("%s answered %d", n.Name(), r.Status)
		}
		in = Input{}
		r.JSON(t, &in)
		return nil
	})
	return in
}

// CreateProfile creates a profile through node n and returns its id.
func (n *Node) CreateProfile(t testing.TB, body map[string]any) string {
	t.Helper()
	r := n.MustDo(t, http.MethodPost, "/v1/profiles", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create profile on %s: %d %s", n.Name(), r.Status, r.Body)
	}
	var p struct {
		ID string `json:"id"`
	}
	r.JSON(t, &p)
	return p.ID
}

// SmallProfile is a cheap two-rung ladder for tests on a 2-core machine.
func SmallProfile(name string, segmentSeconds int) map[string]any {
	return map[string]any{
		"name":            name,
		"segment_seconds": segmentSeconds,
		"video_preset":    "ultrafast",
		"renditions": []map[string]any{
			{"name": "360p", "width": 640, "height": 360, "video_bitrate_kbps": 600, "audio_bitrate_kbps": 64},
			{"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": 200, "audio_bitrate_kbps": 48, "fps": 15},
		},
	}
}
