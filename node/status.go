package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dionysia/dionysia/httpapi"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/packager"
)

// InputStatus is gathered on the owner: this node answers for the inputs it
// owns and asks the owner for the others.
func (n *Node) InputStatus(ctx context.Context, inputID string) (*httpapi.InputStatus, error) {
	st := n.baseStatus(inputID)
	// A reconnecting stream has an owner too, still serving (and maybe still
	// transcoding) it: only an idle input is answered here without asking.
	if st.OwnerNode == "" || st.OwnerNode == n.cfg.Name || st.State == httpapi.StateIdle {
		n.fillLocalStatus(st)
		return st, nil
	}
	addr := n.clu.PeerAddr(st.OwnerNode)
	if addr == "" {
		return st, nil
	}
	remote, err := n.fetchStatus(ctx, addr, inputID)
	if err != nil {
		n.log.Warn("status from owner", "input", inputID, "owner", st.OwnerNode, "err", err)
		return st, nil
	}
	if remote.Refused == nil {
		// A refusal is known where the encoder was refused: this node.
		remote.Refused = st.Refused
	}
	return remote, nil
}

func (n *Node) baseStatus(inputID string) *httpapi.InputStatus {
	st := &httpapi.InputStatus{InputID: inputID}
	if m, ok := n.owner(inputID); ok {
		st.OwnerNode = m.Name
	}
	s := n.state.Session(inputID)
	st.State, st.ReconnectDeadline = httpapi.SessionState(s, n.state.Input(inputID))
	st.Live = st.State == httpapi.StateLive
	if r, ok := n.refused.last(inputID); ok {
		st.Refused = &httpapi.Refusal{Reason: r.Reason, At: r.At}
	}
	if s != nil {
		st.Cost, st.Passthrough = s.Cost, s.Passthrough
		st.IngestNode = s.IngestNode
		st.Protocol = s.Protocol
		t := s.StartedAt
		st.StartedAt = &t
	}
	return st
}

func (n *Node) fillLocalStatus(st *httpapi.InputStatus) {
	stream, r := n.streams.get(st.InputID)
	if stream == nil {
		return
	}
	var ts media.TranscodeStats
	if r != nil {
		ts = r.t.Stats()
		st.Transcoder = &httpapi.TranscoderStatus{
			Running: ts.Running, FPS: ts.FPS, Speed: ts.Speed, BitrateKbps: ts.BitrateKbps,
			Frames: ts.Frame, DropFrames: ts.DropFrames, Restarts: r.t.Restarts(), UpdatedAt: ts.UpdatedAt,
		}
	}
	limits := map[string]int{}
	if in := n.state.Input(st.InputID); in != nil {
		if p := n.state.Profile(in.ProfileID); p != nil {
			for _, rd := range p.Renditions {
				limits[rd.Name] = rd.FPS
			}
			pk := &httpapi.PackagingStatus{Latency: p.EffectiveLatency(), SegmentFormat: p.EffectiveSegmentFormat()}
			if media.LowLatency(*p) {
				pk.PartMs = p.EffectivePartMs()
			}
			if r != nil {
				pk.SourceWidth, pk.SourceHeight, pk.SourceFPS = r.source.Width, r.source.Height, r.source.FPS
				for _, sk := range r.skipped {
					pk.Skipped = append(pk.Skipped, httpapi.SkippedRendition{Name: sk.Name, Reason: sk.Reason})
				}
			}
			st.Packaging = pk
		}
	}
	for _, tr := range stream.Stats() {
		if tr.Kind != packager.Video {
			continue
		}
		st.Renditions = append(st.Renditions, httpapi.RenditionStatus{
			Name: tr.Name, Width: tr.Width, Height: tr.Height, FPS: renditionFPS(limits[tr.Name], ts.FPS),
			BitrateKbps: tr.BitrateKbps, Segments: tr.Segments, MediaSequence: tr.MediaSequence,
		})
	}
}

// renditionFPS: every rendition comes from one decode, so its rate is the
// transcoder's rate, capped by the rendition's own limit.
func renditionFPS(limit int, fps float64) float64 {
	if limit > 0 && fps > float64(limit) {
		return float64(limit)
	}
	return fps
}

// serveInternalStatus answers another node's InputStatus for an input this
// node owns.
func (n *Node) serveInternalStatus(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/internal/status/")
	st := n.baseStatus(id)
	n.fillLocalStatus(st)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// internalPost answers an internal call that is not a POST and reports
// whether the caller may go on. (The cluster port authenticated it.)
func internalPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return false
	}
	return true
}

func (n *Node) fetchStatus(ctx context.Context, addr, inputID string) (*httpapi.InputStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st httpapi.InputStatus
	if err := n.getInternal(ctx, addr, "/internal/status/"+url.PathEscape(inputID), &st); err != nil {
		return nil, fmt.Errorf("owner status: %w", err)
	}
	return &st, nil
}

// getInternal GETs another node's internal JSON answer into v.
func (n *Node) getInternal(ctx context.Context, addr, path string, v any) error {
	req, err := n.peer.NewRequest(ctx, http.MethodGet, addr, path, nil)
	if err != nil {
		return err
	}
	resp, err := n.peer.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
