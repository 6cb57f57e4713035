package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/httpapi"
	"github.com/dionysia/dionysia/packager"
)

// hopHeader marks a /live request one node forwarded to another: it is
// answered from what the receiver has, never forwarded again, so two nodes
// that disagree about the ring cannot bounce a request between them.
const hopHeader = "X-Dionysia-Hop"

// Live answers a /live request from any node: the owner from its packager,
// every other node by fetching from the owner over the internal channel
// through a small shield (coalesced, immutable files cached), so neither
// players nor CDNs are ever sent to another node.
func (n *Node) Live(ctx context.Context, inputID, file string, q url.Values) (packager.File, error) {
	return n.live(ctx, inputID, file, q, false)
}

func (n *Node) live(ctx context.Context, inputID, file string, q url.Values, hop bool) (packager.File, error) {
	rt, rerr := n.Route(inputID)
	stream, cur := n.streams.get(inputID)
	local := rerr == nil && rt.Local
	if local || hop {
		if stream == nil {
			if !local {
				// Forwarded here, yet this node thinks another one owns
				// it: the ring is converging. Never forward twice.
				return packager.File{}, fmt.Errorf("%w: the cluster is moving this stream", httpapi.ErrUnavailable)
			}
			if n.streams.waitingForCopy(inputID) {
				// Just given a running stream; its copy is on the way.
				return packager.File{}, fmt.Errorf("%w: the stream is moving to this node", httpapi.ErrUnavailable)
			}
			return packager.File{}, packager.ErrNotFound
		}
		if n.streams.behind(inputID) {
			// A copy this node handed over, behind what the producing node
			// serves (it may own the stream again, being undrained): the
			// asker falls back to its own copy or the standby's.
			return packager.File{}, fmt.Errorf("%w: this node's copy of the stream is behind", httpapi.ErrUnavailable)
		}
		return n.serveStream(ctx, stream, cur != nil, file, q)
	}
	if rerr != nil {
		if stream != nil {
			return n.serveStream(ctx, stream, cur != nil, file, q)
		}
		return packager.File{}, rerr
	}
	f, err := n.shield.fetch(ctx, n.clu.PeerAddr(rt.Owner), inputID, file, q)
	if err == nil || !errors.Is(err, httpapi.ErrUnavailable) {
		return n.via(f), err
	}
	// A planned move (rebalance): the new owner answers "moving" until the
	// copy it continues from has come, while the node the stream moves
	// from still produces it (make-before-break). Ask that one before
	// answering a viewer 503.
	// Only while the move is fresh: later an owner that does not answer
	// is more likely dead, and the standby below is the one to ask.
	if s := n.state.Session(inputID); s != nil && s.MovedFrom != "" && s.MovedFrom != rt.Owner && s.MovedFrom != n.cfg.Name &&
		time.Since(s.PlacedAt) < movingFor {
		if f, merr := n.shield.fetch(ctx, n.clu.PeerAddr(s.MovedFrom), inputID, file, q); merr == nil {
			return n.via(f), nil
		}
	}
	// The owner does not answer: it may be dead and not yet declared so.
	// Its standby has a copy of everything it made. A copy here is that
	// one if this node is the standby, or is the stream itself if this
	// node still produces it (handing it over); any other copy here (one
	// kept from when this node was the standby, or one it handed over) may
	// be behind what players have seen, and is not served.
	sb, hasStandby := n.standby(inputID)
	if stream != nil && (cur != nil || (hasStandby && sb.Name == n.cfg.Name && !n.streams.behind(inputID))) {
		return n.serveStream(ctx, stream, cur != nil, file, q)
	}
	if hasStandby && sb.Name != rt.Owner && sb.Name != n.cfg.Name {
		if f, serr := n.shield.fetch(ctx, sb.Meta.RaftAddr, inputID, file, q); serr == nil {
			return n.via(f), nil
		}
	}
	return f, err
}

// movingFor bounds how long after a planned move a viewer's request is
// sent to the node the stream moved from when the new owner cannot answer
// yet: a handover takes a few seconds (the copy, then the first part).
const movingFor = 30 * time.Second

// serveStream answers from this node's stream, saying whether it is the
// producer's or a copy.
func (n *Node) serveStream(ctx context.Context, s *packager.Stream, producing bool, file string, q url.Values) (packager.File, error) {
	f, err := s.Serve(ctx, file, q)
	f.Source = n.cfg.Name
	if !producing {
		f.Source += " copy"
	}
	return f, err
}

// via marks a file fetched from another node.
func (n *Node) via(f packager.File) packager.File {
	if f.Source != "" {
		f.Source = n.cfg.Name + " <- " + f.Source
	}
	return f
}

// serveInternalLive answers another node's forwarded /live request.
func (n *Node) serveInternalLive(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/internal/live/")
	id, file, ok := strings.Cut(rest, "/")
	if !ok || id == "" || file == "" {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	f, err := n.live(r.Context(), id, file, r.URL.Query(), true)
	var bad *packager.BadRequestError
	switch {
	case err == nil:
	case errors.Is(err, packager.ErrNotFound):
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	case errors.As(err, &bad):
		http.Error(w, bad.Msg, http.StatusBadRequest)
		return
	default:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("X-Dionysia-Kind", f.Kind)
	h.Set(sourceHeader, f.Source)
	if f.Immutable {
		h.Set("X-Dionysia-Immutable", "1")
	}
	if f.Progressive != nil {
		h.Set(progressiveHeader, "1")
		w.WriteHeader(http.StatusOK)
		flush := func() {}
		if fl, ok := w.(http.Flusher); ok {
			flush = fl.Flush
		}
		_ = f.Progressive(r.Context(), w, flush)
		return
	}
	_, _ = w.Write(f.Body)
}

// sourceHeader carries packager.File.Source.
const sourceHeader = "X-Dionysia-Source"

// progressiveHeader marks an internal answer that streams a segment still
// being made.
const progressiveHeader = "X-Dionysia-Progressive"

// shield fetches /live files from their owner for this node's viewers: N
// viewers of a new segment cost one internal fetch, and immutable files
// (segments, parts, init segments) are kept for a while.
type shield struct {
	n *Node

	mu       sync.Mutex
	inflight map[string]*fetchCall
	cache    map[string]cached
	order    []string // insertion order, for eviction
	bytes    int
	fetches  uint64 // internal fetches made (a benchmark counts them)
}

type fetchCall struct {
	// header is closed once the status and headers are known (f's
	// metadata, err, progressive); done once the whole body is.
	header, done chan struct{}
	f            packager.File
	err          error
	progressive  bool

	mu   sync.Mutex
	grew *sync.Cond
	buf  []byte
	fin  bool
}

// follow writes the body as it arrives, for a progressive answer.
func (c *fetchCall) follow(ctx context.Context, w io.Writer, flush func()) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.grew.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	sent := 0
	for {
		c.mu.Lock()
		for sent == len(c.buf) && !c.fin && ctx.Err() == nil {
			c.grew.Wait()
		}
		data, fin := c.buf[sent:len(c.buf):len(c.buf)], c.fin
		c.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				return err
			}
			flush()
			sent += len(data)
			continue
		}
		if fin {
			return c.err
		}
	}
}

type cached struct {
	f       packager.File
	expires time.Time
}

const (
	shieldMaxBytes = 256 << 20
	shieldTTL      = time.Minute
	// fetchTimeout bounds an internal fetch; a blocking playlist reload may
	// legitimately wait three target durations.
	fetchTimeout = 35 * time.Second
)

func newShield(n *Node) *shield {
	return &shield{n: n, inflight: map[string]*fetchCall{}, cache: map[string]cached{}}
}

// Fetches counts the internal fetches this node has made.
func (s *shield) Fetches() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// fetch gets a /live file from the node whose cluster port is addr.
func (s *shield) fetch(ctx context.Context, addr, inputID, file string, q url.Values) (packager.File, error) {
	if addr == "" {
		return packager.File{}, fmt.Errorf("%w: the stream's node is not a live member", httpapi.ErrUnavailable)
	}
	target := "/internal/live/" + inputID + "/" + file
	if enc := q.Encode(); enc != "" {
		target += "?" + enc
	}
	return s.fetchTarget(ctx, addr, target)
}

// fetchTarget gets any internal file (a /live file, a recording's) from
// the node whose cluster port is addr.
func (s *shield) fetchTarget(ctx context.Context, addr, target string) (packager.File, error) {
	key := addr + target
	s.mu.Lock()
	if c, ok := s.cache[key]; ok && time.Now().Before(c.expires) {
		s.mu.Unlock()
		return c.f, nil
	}
	call, ok := s.inflight[key]
	if !ok {
		call = &fetchCall{header: make(chan struct{}), done: make(chan struct{})}
		call.grew = sync.NewCond(&call.mu)
		s.inflight[key] = call
		s.fetches++
		go s.do(key, addr, target, call)
	}
	s.mu.Unlock()
	select {
	case <-call.header:
	case <-ctx.Done():
		return packager.File{}, ctx.Err()
	}
	if call.err != nil {
		return packager.File{}, call.err
	}
	if call.progressive {
		f := call.f
		f.Progressive = call.follow
		return f, nil
	}
	select {
	case <-call.done:
		return call.f, call.err
	case <-ctx.Done():
		return packager.File{}, ctx.Err()
	}
}

// do runs one internal fetch on its own context: the viewer who started it
// may leave while others wait for the same answer.
func (s *shield) do(key, addr, target string, call *fetchCall) {
	headerSent := false
	defer func() {
		if !headerSent {
			close(call.header)
		}
		call.mu.Lock()
		call.fin = true
		call.grew.Broadcast()
		call.mu.Unlock()
		s.mu.Lock()
		delete(s.inflight, key)
		if call.err == nil && call.f.Immutable {
			s.storeLocked(key, call.f)
		}
		s.mu.Unlock()
		close(call.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	req, err := s.n.peer.NewRequest(ctx, http.MethodGet, addr, target, nil)
	if err != nil {
		call.err = err
		return
	}
	req.Header.Set(hopHeader, "1")
	resp, err := s.n.peer.Client().Do(req)
	if err != nil {
		call.err = fmt.Errorf("%w: the stream's node does not answer: %v", httpapi.ErrUnavailable, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		switch resp.StatusCode {
		case http.StatusNotFound:
			call.err = packager.ErrNotFound
		case http.StatusBadRequest:
			call.err = &packager.BadRequestError{Msg: strings.TrimSpace(string(body))}
		default:
			call.err = fmt.Errorf("%w: the stream's node answered %s", httpapi.ErrUnavailable, resp.Status)
		}
		return
	}
	call.f = packager.File{ContentType: resp.Header.Get("Content-Type"),
		Kind: resp.Header.Get("X-Dionysia-Kind"), Immutable: resp.Header.Get("X-Dionysia-Immutable") == "1",
		Source: resp.Header.Get(sourceHeader)}
	call.progressive = resp.Header.Get(progressiveHeader) == "1"
	headerSent = true
	close(call.header)
	// Read as it comes, so progressive followers get every fragment at once.
	chunk := make([]byte, 64<<10)
	for {
		n, rerr := resp.Body.Read(chunk)
		if n > 0 {
			call.mu.Lock()
			call.buf = append(call.buf, chunk[:n]...)
			call.grew.Broadcast()
			call.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			call.mu.Lock()
			call.err = fmt.Errorf("%w: read from the stream's node: %v", httpapi.ErrUnavailable, rerr)
			call.mu.Unlock()
			return
		}
		if len(call.buf) > 128<<20 {
			call.err = fmt.Errorf("%w: answer too large", httpapi.ErrUnavailable)
			return
		}
	}
	call.mu.Lock()
	call.f.Body = call.buf
	call.mu.Unlock()
}

func (s *shield) storeLocked(key string, f packager.File) {
	if _, ok := s.cache[key]; ok {
		return
	}
	now := time.Now()
	s.cache[key] = cached{f: f, expires: now.Add(shieldTTL)}
	s.order = append(s.order, key)
	s.bytes += len(f.Body)
	for len(s.order) > 0 && (s.bytes > shieldMaxBytes || now.After(s.cache[s.order[0]].expires)) {
		old := s.order[0]
		s.order = s.order[1:]
		s.bytes -= len(s.cache[old].f.Body)
		delete(s.cache, old)
	}
}
