package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/httpapi"
	"github.com/dionysia/dionysia/packager"
)

// VOD answers /vod/{recording id}/{file} on any node: playlists from the
// recording's copies merged (this node's from its disk, the others' index
// fetched over the internal channel), media files from this node's disk or
// through the shield from the node that holds them.
func (n *Node) VOD(ctx context.Context, rid, file string) (packager.File, error) {
	rec := n.state.Recording(rid)
	if rec == nil {
		return packager.File{}, packager.ErrNotFound
	}
	asset, err := n.vodAsset(ctx, rec)
	if err != nil {
		return packager.File{}, err
	}
	if file == packager.MultivariantName || file == packager.ManifestName || strings.HasSuffix(file, "/"+packager.MediaName) {
		return asset.Serve(file)
	}
	track, name, ok := strings.Cut(file, "/")
	if !ok || strings.Contains(name, "/") {
		return packager.File{}, packager.ErrNotFound
	}
	holder, ok := asset.Locate(track, name)
	if !ok {
		return packager.File{}, packager.ErrNotFound
	}
	ct, kind := packager.MediaType(name)
	if holder == n.cfg.Name {
		b, err := n.rec.readLocal(rid, track, name)
		if err != nil {
			return packager.File{}, packager.ErrNotFound
		}
		return packager.File{Body: b, ContentType: ct, Kind: kind, Immutable: true}, nil
	}
	addr := n.clu.PeerAddr(holder)
	if addr == "" {
		return packager.File{}, fmt.Errorf("%w: node %s, which holds this part of the recording, is not a live member", httpapi.ErrUnavailable, holder)
	}
	return n.shield.fetchTarget(ctx, addr, "/internal/vod/"+rid+"/"+track+"/"+name)
}

// vodCache keeps merged assets for a moment: a player asks for the
// playlists of a recording several times in a row, and every merge reads
// the index of every copy.
type vodCache struct {
	mu     sync.Mutex
	assets map[string]vodEntry
}

type vodEntry struct {
	asset   *packager.Asset
	expires time.Time
}

func newVODCache() *vodCache { return &vodCache{assets: map[string]vodEntry{}} }

func (n *Node) vodAsset(ctx context.Context, rec *fsm.Recording) (*packager.Asset, error) {
	c := n.vod
	c.mu.Lock()
	e, ok := c.assets[rec.ID]
	c.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.asset, nil
	}
	var copies []packager.Copy
	var lastErr error
	for _, node := range rec.Nodes {
		if node == n.cfg.Name {
			cp, err := n.rec.localCopy(rec.ID)
			if err != nil {
				lastErr = err
				continue
			}
			copies = append(copies, cp)
			continue
		}
		cp, err := n.fetchCopy(ctx, node, rec.ID)
		if err != nil {
			lastErr = err
			continue
		}
		copies = append(copies, cp)
	}
	if len(copies) == 0 {
		if lastErr != nil && !errors.Is(lastErr, fs.ErrNotExist) && !errors.Is(lastErr, packager.ErrNotFound) {
			return nil, fmt.Errorf("%w: no node holding the recording answers: %v", httpapi.ErrUnavailable, lastErr)
		}
		return nil, packager.ErrNotFound
	}
	asset := packager.Merge(copies)
	// A finished recording whose every copy answered does not change; one
	// being made grows by a segment every few seconds.
	ttl := 2 * time.Second
	if rec.Status == fsm.RecordingReady && len(copies) == len(rec.Nodes) {
		ttl = time.Minute
	}
	c.mu.Lock()
	c.assets[rec.ID] = vodEntry{asset: asset, expires: time.Now().Add(ttl)}
	for id, old := range c.assets {
		if time.Now().After(old.expires) {
			delete(c.assets, id)
		}
	}
	c.mu.Unlock()
	return asset, nil
}

// fetchCopy reads another node's index of a recording.
func (n *Node) fetchCopy(ctx context.Context, node, rid string) (packager.Copy, error) {
	addr := n.clu.PeerAddr(node)
	if addr == "" {
		return packager.Copy{}, fmt.Errorf("node %s is not a live member", node)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := n.peer.NewRequest(ctx, http.MethodGet, addr, "/internal/vod/"+rid+"/"+indexFile, nil)
	if err != nil {
		return packager.Copy{}, err
	}
	resp, err := n.peer.Client().Do(req)
	if err != nil {
		return packager.Copy{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return packager.Copy{}, packager.ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return packager.Copy{}, fmt.Errorf("node %s answered %s", node, resp.Status)
	}
	var cp packager.Copy
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&cp); err != nil {
		return packager.Copy{}, fmt.Errorf("read the index of node %s: %w", node, err)
	}
	cp.Node = node
	return cp, nil
}

// serveInternalVOD answers another node with what this node holds of a
// recording: /internal/vod/{rid}/index.jsonl (its copy's index, as JSON)
// or /internal/vod/{rid}/{track}/{file}. Never forwarded.
func (n *Node) serveInternalVOD(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/internal/vod/")
	rid, file, ok := strings.Cut(rest, "/")
	if !ok || !safeName(rid) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if file == indexFile {
		cp, err := n.rec.localCopy(rid)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cp)
		return
	}
	track, name, ok := strings.Cut(file, "/")
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	b, err := n.rec.readLocal(rid, track, name)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	ct, kind := packager.MediaType(name)
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Dionysia-Kind", kind)
	w.Header().Set("X-Dionysia-Immutable", "1")
	_, _ = w.Write(b)
}

// manageRecordings is the leader's part: a recording nobody reports any
// more, of an input with no session, is over (its nodes died or lost
// the stream before its end); a ready one past its expiry is deleted
// (every node then removes its files).
func (n *Node) manageRecordings(ctx context.Context) {
	now := time.Now().UTC()
	for _, rec := range n.state.Recordings("") {
		var cmd fsm.Command
		switch {
		case rec.Status == fsm.RecordingActive && now.Sub(rec.UpdatedAt) > recordingStale && n.state.Session(rec.InputID) == nil:
			r := rec.Clone()
			r.Status = fsm.RecordingReady
			if r.StartedAt.IsZero() {
				r.StartedAt = rec.UpdatedAt
			}
			r.EndedAt = r.StartedAt.Add(time.Duration(r.DurationSeconds * float64(time.Second)))
			cmd = fsm.Command{Op: fsm.OpPutRecording, At: now, Recording: r}
		case rec.Status == fsm.RecordingReady && !rec.ExpiresAt.IsZero() && now.After(rec.ExpiresAt):
			cmd = fsm.Command{Op: fsm.OpDeleteRecording, At: now, ID: rec.ID}
		default:
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := n.apply(actx, cmd)
		cancel()
		if err == nil && res.Err != nil {
			err = res.Err
		}
		if err != nil {
			n.log.Warn("recording upkeep", "recording", rec.ID, "op", cmd.Op, "err", err)
			continue
		}
		if cmd.Op == fsm.OpDeleteRecording {
			n.log.Info("recording expired: deleted", "recording", rec.ID, "input", rec.InputID, "expired_at", rec.ExpiresAt)
		} else {
			n.log.Info("recording finished by the leader (no node reported its end)", "recording", rec.ID)
		}
	}
}
