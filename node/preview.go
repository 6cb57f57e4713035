package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dionysia/dionysia/httpapi"
)

// whepTimeout bounds one WHEP exchange: mediamtx answers an offer within
// its handshake set-up, well under a second on a quiet node.
const whepTimeout = 10 * time.Second

// maxAnswer bounds the SDP answer read back from mediamtx or a peer.
const maxAnswer = 64 << 10

// PreviewWHEP answers the dashboard's WebRTC preview offer for a live
// input: the node the publisher is connected to (the source, before any
// transcoding) reads it from its own mediamtx with the cluster's media
// credentials. Any other node forwards the offer there over the internal
// channel. The answer's candidates are the ingest node's, so the media
// flows from it to the browser directly.
func (n *Node) PreviewWHEP(ctx context.Context, inputID string, offer []byte) ([]byte, error) {
	s := n.state.Session(inputID)
	if s == nil || !s.Live() {
		return nil, fmt.Errorf("%w: input %q has no publisher", httpapi.ErrNotFound, inputID)
	}
	if s.IngestNode == n.cfg.Name {
		return n.localWHEP(ctx, s.Path, offer)
	}
	for _, m := range n.clu.Members() {
		if m.Name == s.IngestNode && m.State == "alive" {
			return n.forwardWHEP(ctx, m.Meta.RaftAddr, inputID, offer)
		}
	}
	return nil, fmt.Errorf("%w: the publisher's node %s is not reachable", httpapi.ErrUnavailable, s.IngestNode)
}

// localWHEP posts the offer to this node's mediamtx WHEP endpoint for path.
// Its auth hook lets the read through because it carries the node's media
// credentials (authorize: internal reads), which never leave this node.
func (n *Node) localWHEP(ctx context.Context, path string, offer []byte) ([]byte, error) {
	if n.cfg.WebRTCAddr == "" {
		return nil, fmt.Errorf("%w: this node has no WebRTC server", httpapi.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, whepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+loopback(n.cfg.WebRTCAddr)+"/"+path+"/whep", bytes.NewReader(offer))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.SetBasicAuth(internalUser, n.mediaSecret())
	// Loopback to this node's own mediamtx: no proxy, no cluster TLS, and
	// no idle connection kept for a call this rare.
	local := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := local.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: mediamtx WHEP: %v", httpapi.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: mediamtx WHEP: %v", httpapi.ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusCreated:
		// Its Location header names the session by the path, which holds
		// the stream key: it is not passed on. The browser ends the
		// session by closing its peer connection.
		return body, nil
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: the source is not on this node any more", httpapi.ErrNotFound)
	default:
		// mediamtx's message may quote the path (the stream key): keep it
		// in the log, out of the answer.
		n.log.Warn("WHEP preview refused by mediamtx", "status", resp.Status, "body", strings.TrimSpace(string(body)))
		return nil, fmt.Errorf("%w: mediamtx answered the preview offer with %s", httpapi.ErrUnavailable, resp.Status)
	}
}

// forwardWHEP hands the offer to the ingest node, on its cluster port.
func (n *Node) forwardWHEP(ctx context.Context, clusterAddr, inputID string, offer []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, whepTimeout)
	defer cancel()
	req, err := n.peer.NewRequest(ctx, http.MethodPost, clusterAddr, "/internal/whep/"+inputID, bytes.NewReader(offer))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := n.peer.Client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: the publisher's node does not answer: %v", httpapi.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: read the publisher's node's answer: %v", httpapi.ErrUnavailable, err)
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		return body, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: input %q has no publisher there", httpapi.ErrNotFound, inputID)
	default:
		return nil, fmt.Errorf("%w: the publisher's node answered %s: %s", httpapi.ErrUnavailable, resp.Status, strings.TrimSpace(string(body)))
	}
}

// serveInternalWHEP answers another node's forwarded preview offer for an
// input whose publisher is connected here.
func (n *Node) serveInternalWHEP(w http.ResponseWriter, r *http.Request) {
	// The cluster port authenticated the caller (peer.Authenticate).
	if !internalPost(w, r) {
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/internal/whep/")
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAnswer))
	if err != nil {
		http.Error(w, `{"error":"offer too large"}`, http.StatusRequestEntityTooLarge)
		return
	}
	s := n.state.Session(id)
	if s == nil || !s.Live() || s.IngestNode != n.cfg.Name {
		// Never forwarded on: the asker's view of the session is stale.
		http.Error(w, `{"error":"no publisher of this input here"}`, http.StatusNotFound)
		return
	}
	answer, err := n.localWHEP(r.Context(), s.Path, offer)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, httpapi.ErrNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(answer)
}
