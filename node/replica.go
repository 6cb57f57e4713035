package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dionysia/dionysia/packager"
)

// replicateEvery is how often the owner looks for something new to copy to
// the standby. Players get a segment (or part) only once the standby holds
// it (packager.Stream.Gate), so this period, plus a round trip, adds to
// the latency; a copy goes only when there is something new
// (Delta.Signature), so a short period costs little.
const replicateEvery = 20 * time.Millisecond

// replication state of one stream this node produces.
type replication struct {
	to       string         // standby node name the marks refer to
	sent     packager.Marks // what the standby has, as far as this node knows
	endSent  bool
	inFlight bool
	// takenOver: the new owner of a stream this node is handing over says
	// its own transcoder produces now.
	takenOver bool
	// sig is what the last delta sent carried: the segment being made
	// goes again only once it has new parts.
	sig string
	// retryAt: the standby was still producing the stream itself (it
	// handed it over a moment ago) and did not take the last delta; the
	// same segments go again from then on.
	retryAt time.Time
	// ackedAt is when the standby last held everything this stream had
	// made: the time of the snapshot of its last applied copy, or when
	// the gate went on. A gated stream whose standby lags by more than
	// gateMax opens the gate.
	ackedAt time.Time
	// fails counts copies in a row that did not reach the standby or that
	// it did not apply: logged on the first and then every 20th, so a
	// standby falling behind shows without flooding the log.
	fails int
}

// replicateLoop copies every stream this node produces to its standby (the
// node that would own it next), so that viewers can be served from the copy
// while this node is gone, and the next owner continues the same playlists.
func (n *Node) replicateLoop(ctx context.Context) {
	t := time.NewTicker(replicateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.streams.replicate(ctx)
	}
}

func (ls *liveStreams) replicate(ctx context.Context) {
	n := ls.n
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for id, st := range ls.byID {
		producing := st.cur != nil || st.next != nil || st.slate != nil
		if st.replica {
			continue
		}
		if !producing && !st.repl.takenOver {
			// Nothing more comes that a copy would release: show it all.
			st.stream.Gate(false)
		}
		if st.repl.inFlight || (!producing && (st.repl.endSent || !st.stream.Ended())) {
			ls.checkGate(id, st)
			continue
		}
		// The copy goes to the standby; while a stream is handed over, to
		// its new owner.
		owner, ok := n.owner(id)
		if !ok {
			continue
		}
		sb := owner
		if owner.Name == n.cfg.Name {
			if sb, ok = n.standby(id); !ok || sb.Name == n.cfg.Name {
				// No other node to hold a copy: nothing to wait for.
				st.stream.Gate(false)
				continue
			}
		} else if st.cur == nil || st.repl.takenOver {
			continue
		}
		if sb.Name != st.repl.to {
			st.repl = replication{to: sb.Name, ackedAt: time.Now()}
			st.stream.Gate(true)
		}
		ls.checkGate(id, st)
		if time.Now().Before(st.repl.retryAt) {
			continue
		}
		snapshot := time.Now()
		d, marks := st.stream.Since(st.repl.sent)
		ended := d.Ended
		sig := d.Signature()
		if (d.Empty() || sig == st.repl.sig) && !(ended && !st.repl.endSent) {
			continue
		}
		st.repl.inFlight = true
		addr := sb.Meta.RaftAddr
		go func() {
			takenOver, ignored, err := n.pushReplica(ctx, addr, id, d)
			ls.mu.Lock()
			defer ls.mu.Unlock()
			st.repl.inFlight = false
			// Ignored by a new owner is the hand-over going as planned.
			if err != nil || (ignored && owner.Name == n.cfg.Name) {
				if st.repl.fails%20 == 0 {
					n.log.Warn("copy to standby not applied", "input", id, "standby", sb.Name, "in_a_row", st.repl.fails+1,
						"producing_there", ignored, "err", err)
				}
				st.repl.fails++
			} else {
				st.repl.fails = 0
			}
			if err != nil {
				// The delta may or may not have been applied: the segments
				// being made go whole next time.
				st.repl.sent = st.repl.sent.Whole()
				return
			}
			if ignored && owner.Name == n.cfg.Name && st.repl.to == sb.Name {
				// The standby is the previous owner, its transcoder not
				// stopped yet: nothing of this delta is in its copy.
				st.repl.retryAt = time.Now().Add(replicaRetry)
				return
			}
			if st.repl.to == sb.Name {
				st.repl.sent = marks
				st.repl.endSent = ended
				st.repl.sig = sig
				st.repl.ackedAt = snapshot
				if !st.stream.Gated() {
					n.log.Info("standby caught up; playlists wait for its copy again", "input", id, "standby", sb.Name)
					st.stream.Gate(true)
				}
				st.stream.Ack(d.Held())
				if takenOver && sb.Name == owner.Name && owner.Name != n.cfg.Name {
					st.repl.takenOver = true
					// The new owner produces: this node's producer stops
					// adding to the stream now, so the new owner's copies
					// apply here from now on.
					st.stream.Yield()
					n.log.Info("stream taken over", "input", id, "by", sb.Name)
					n.poke()
				}
			}
		}()
	}
}

// gateMax is how long a producer's playlists wait for the standby's copy
// before they go on without it: a copy takes a round trip on the cluster
// port, so a standby this far behind is overloaded, partitioned or dead
// (and soon declared so). Below hls.js's low-latency hold-back (three
// parts, 1 s), so a player does not stall on it.
const gateMax = 800 * time.Millisecond

// checkGate opens the gate of a stream whose standby lags by more than
// gateMax: viewers get what is made without waiting for the copy.
func (ls *liveStreams) checkGate(id string, st *liveStream) {
	if st.repl.takenOver || !st.stream.Gated() || st.repl.ackedAt.IsZero() || time.Since(st.repl.ackedAt) < gateMax {
		return
	}
	if !st.stream.Hidden() {
		st.repl.ackedAt = time.Now()
		return
	}
	st.stream.Gate(false)
	ls.n.log.Warn("standby lags; playlists go on without its copy", "input", id, "standby", st.repl.to,
		"behind", time.Since(st.repl.ackedAt).Round(time.Millisecond))
}

// pushReplica sends a delta; takenOver is the receiver saying it produces
// the stream itself now.
func (n *Node) pushReplica(ctx context.Context, addr, id string, d *packager.Delta) (takenOver, ignored bool, err error) {
	body, err := packager.EncodeDelta(d)
	if err != nil {
		return false, false, err
	}
	size := int64(0)
	for _, b := range body {
		size += int64(len(b))
	}
	// Reading net.Buffers consumes them: each (re)send reads its own copy
	// of the slice headers (the transport resends a request whose reused
	// connection turned out closed).
	reader := func() io.ReadCloser {
		b := slices.Clone(body)
		return io.NopCloser(&b)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := n.peer.NewRequest(ctx, http.MethodPost, addr, "/internal/replica/"+url.PathEscape(id), reader())
	if err != nil {
		return false, false, err
	}
	req.ContentLength = size
	req.GetBody = func() (io.ReadCloser, error) { return reader(), nil }
	req.Header.Set("Content-Type", packager.DeltaContentType)
	resp, err := n.peer.Client().Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, false, fmt.Errorf("standby answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Header.Get(takenOverHeader) == "1", resp.Header.Get(ignoredHeader) == "1", nil
}

// takenOverHeader answers a copy with "I produce this stream myself now";
// ignoredHeader with "so this copy was not applied".
const (
	takenOverHeader = "X-Dionysia-Taken-Over"
	ignoredHeader   = "X-Dionysia-Copy-Ignored"
)

// replicaRetry: how soon a delta the standby did not take goes again.
const replicaRetry = 200 * time.Millisecond

// serveInternalReplica takes a copy of another node's stream.
func (n *Node) serveInternalReplica(w http.ResponseWriter, r *http.Request) {
	if !internalPost(w, r) {
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/internal/replica/")
	if id == "" || strings.Contains(id, "/") || !n.state.HasInput(id) {
		http.Error(w, "unknown input", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != packager.DeltaContentType {
		http.Error(w, fmt.Sprintf("standby copy in format %q, this node reads %q: the nodes run different Dionysia versions (finish the upgrade)",
			ct, packager.DeltaContentType), http.StatusUnsupportedMediaType)
		return
	}
	b, err := readBody(r, maxReplicaBody)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d, err := packager.DecodeDelta(b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	producing, err := n.streams.applyReplica(id, d)
	ignored := errors.Is(err, packager.ErrProducing)
	if err != nil && !ignored {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	if producing {
		w.Header().Set(takenOverHeader, "1")
	}
	if ignored {
		w.Header().Set(ignoredHeader, "1")
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxReplicaBody bounds one delta: a whole window of a high-bitrate ladder.
const maxReplicaBody = 512 << 20

// readBody reads a request body into one array of its announced length (a
// delta's segments are slices of it), or, without a length, as it comes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("body of %d bytes, more than %d", r.ContentLength, limit)
	}
	if r.ContentLength < 0 {
		return io.ReadAll(io.LimitReader(r.Body, limit))
	}
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// applyReplica keeps (or refreshes) the copy of a stream another node
// produces.
// It reports whether this node's own transcoder produces the stream.
func (ls *liveStreams) applyReplica(id string, d *packager.Delta) (producing bool, err error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	st := ls.byID[id]
	switch {
	case st == nil || (st.stream.ID() != d.StreamID && st.cur == nil && st.next == nil && st.slate == nil):
		if d.Continues() {
			return false, packager.ErrNoStart // the sender sends it whole next time
		}
		st = &liveStream{id: id, stream: packager.NewReplica(d, nil), replica: true}
		ls.byID[id] = st
	case st.stream.ID() != d.StreamID:
		return false, fmt.Errorf("this node produces another stream of input %s", id)
	default:
		if err := st.stream.Apply(d); err != nil {
			return st.cur != nil && !st.replica, err
		}
		if !st.behindSince.IsZero() {
			// The copy this node handed over is the producer's again.
			st.behindSince, st.reclaimAt = time.Time{}, time.Time{}
			ls.n.poke()
		}
	}
	if st.replica {
		st.forgetAt = time.Now().Add(streamLinger)
	}
	return st.cur != nil && !st.replica, nil
}
