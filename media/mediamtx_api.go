package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Path is one mediamtx path as its control API reports it.
type Path struct {
	Name          string
	Ready         bool
	ReadyTime     time.Time
	SourceType    string // e.g. "rtmpConn", "rtspSession", "srtConn"
	SourceID      string
	Tracks        []string // e.g. ["H264","MPEG-4 Audio"]
	BytesReceived uint64
	Readers       int
}

// apiPathList is the JSON of GET /v3/paths/list.
type apiPathList struct {
	PageCount int       `json:"pageCount"`
	Items     []apiPath `json:"items"`
}

type apiPath struct {
	Name   string `json:"name"`
	Source *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"source"`
	Ready         bool       `json:"ready"`
	ReadyTime     *time.Time `json:"readyTime"`
	Tracks        []string   `json:"tracks"`
	BytesReceived uint64     `json:"bytesReceived"`
	Readers       []struct{} `json:"readers"`
}

// pathsPerPage is large so that a busy node still lists in a few requests.
const pathsPerPage = 500

// Ready returns nil when mediamtx's control API answers; it checks once
// (callers poll it).
func (m *MediaMTX) Ready(ctx context.Context) error {
	var list apiPathList
	if err := m.getJSON(ctx, "/v3/paths/list?itemsPerPage=1", &list); err != nil {
		return fmt.Errorf("mediamtx not ready: %w", err)
	}
	return nil
}

// Paths lists every path mediamtx knows (all pages).
func (m *MediaMTX) Paths(ctx context.Context) ([]Path, error) {
	var paths []Path
	for page := 0; ; page++ {
		q := url.Values{"itemsPerPage": {strconv.Itoa(pathsPerPage)}, "page": {strconv.Itoa(page)}}
		var list apiPathList
		if err := m.getJSON(ctx, "/v3/paths/list?"+q.Encode(), &list); err != nil {
			return nil, fmt.Errorf("list mediamtx paths: %w", err)
		}
		for _, p := range list.Items {
			out := Path{
				Name:          p.Name,
				Ready:         p.Ready,
				Tracks:        p.Tracks,
				BytesReceived: p.BytesReceived,
				Readers:       len(p.Readers),
			}
			if p.ReadyTime != nil {
				out.ReadyTime = *p.ReadyTime
			}
			if p.Source != nil {
				out.SourceType, out.SourceID = p.Source.Type, p.Source.ID
			}
			paths = append(paths, out)
		}
		if page+1 >= list.PageCount {
			return paths, nil
		}
	}
}

// PathReady tells whether a path has a ready publisher, from the control
// API: unlike a read (an RTSP DESCRIBE), asking does not make mediamtx
// create the path. A path mediamtx does not know is not ready.
func (m *MediaMTX) PathReady(ctx context.Context, name string) (bool, error) {
	var p apiPath
	err := m.getJSON(ctx, "/v3/paths/get/"+(&url.URL{Path: name}).EscapedPath(), &p)
	var nf *apiNotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, err
	}
	return p.Ready, nil
}

// apiNotFound is the control API's 404.
type apiNotFound struct{ route string }

func (e *apiNotFound) Error() string { return "GET " + e.route + ": not found" }

func (m *MediaMTX) getJSON(ctx context.Context, pathAndQuery string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.api()+pathAndQuery, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(apiUser, m.apiPass)
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return &apiNotFound{route: pathAndQuery}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", pathAndQuery, resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", pathAndQuery, err)
	}
	return nil
}

// kickPaths maps a path source type to the API route that disconnects it.
var kickPaths = map[string]string{
	"rtmpConn":      "/v3/rtmpconns/kick/",
	"rtmpsConn":     "/v3/rtmpsconns/kick/",
	"rtspSession":   "/v3/rtspsessions/kick/",
	"rtspsSession":  "/v3/rtspssessions/kick/",
	"srtConn":       "/v3/srtconns/kick/",
	"webRTCSession": "/v3/webrtcsessions/kick/",
}

// Kick disconnects the publisher of a path (its Path.SourceType and
// SourceID), e.g. when its input was disabled mid-stream.
func (m *MediaMTX) Kick(ctx context.Context, sourceType, sourceID string) error {
	route, ok := kickPaths[sourceType]
	if !ok || sourceID == "" {
		return fmt.Errorf("kick: cannot disconnect a %q source", sourceType)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.api()+route+url.PathEscape(sourceID), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(apiUser, m.apiPass)
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("kick %s %s: %w", sourceType, sourceID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("kick %s %s: %s: %s", sourceType, sourceID, resp.Status, body)
	}
	return nil
}
