package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dionysia/dionysia/httpapi"
)

// drainFile remembers across restarts that an operator drained this node.
const drainFile = "draining"

// Drain marks a node as draining (or not): a draining node owns no stream
// on the ring, so its streams move to other nodes make-before-break and
// new ones start elsewhere. It is asked of any node and carried out by the
// named one.
func (n *Node) Drain(ctx context.Context, name string, on bool) error {
	if name == n.cfg.Name {
		return n.setDraining(on)
	}
	var addr string
	for _, m := range n.clu.Members() {
		if m.Name == name && (m.State == "alive" || m.State == "suspect") {
			addr = m.Meta.RaftAddr
		}
	}
	if addr == "" {
		return fmt.Errorf("%w: node %q is not an alive member", httpapi.ErrNotFound, name)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	q := "0"
	if on {
		q = "1"
	}
	req, err := n.peer.NewRequest(ctx, http.MethodPost, addr, "/internal/drain?on="+q, nil)
	if err != nil {
		return err
	}
	resp, err := n.peer.Client().Do(req)
	if err != nil {
		return fmt.Errorf("%w: node %q does not answer: %v", httpapi.ErrUnavailable, name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%w: node %q answered %s: %s", httpapi.ErrUnavailable, name, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (n *Node) setDraining(on bool) error {
	path := filepath.Join(n.cfg.DataDir, drainFile)
	var err error
	if on {
		err = os.WriteFile(path, []byte("drained by an operator; `dionysia nodes undrain` to undo\n"), 0o600)
	} else if err = os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("remember drain state: %w", err)
	}
	if on != n.clu.Draining() {
		n.log.Info("drain", "draining", on)
	}
	n.clu.SetDraining(on)
	return nil
}

// drainedAtStart tells whether an operator drained this node before it
// last stopped.
func (n *Node) drainedAtStart() bool {
	_, err := os.Stat(filepath.Join(n.cfg.DataDir, drainFile))
	return err == nil
}

func (n *Node) serveInternalDrain(w http.ResponseWriter, r *http.Request) {
	if !internalPost(w, r) {
		return
	}
	if err := n.setDraining(r.URL.Query().Get("on") == "1"); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handOver, on a graceful stop, gives every stream this node produces to
// the node that owns it without this one, and waits (bounded) until they
// have taken over: a planned stop costs viewers nothing.
func (n *Node) handOver(ctx context.Context) {
	if n.streams.count() == 0 {
		return
	}
	others := 0
	for _, m := range n.clu.Members() {
		if m.Name != n.cfg.Name && m.State == "alive" {
			others++
		}
	}
	if others == 0 {
		return
	}
	start := time.Now()
	n.clu.SetDraining(true)
	n.poke()
	deadline := time.NewTimer(handoverTimeout + 2*time.Second)
	defer deadline.Stop()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for n.streams.count() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			n.log.Warn("stopping before every stream was taken over", "left", n.streams.count())
			return
		case <-t.C:
		}
	}
	n.log.Info("every stream handed over", "took", time.Since(start).Round(time.Millisecond))
}
