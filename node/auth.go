package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/peer"
)

// internalUser is the RTSP user a node's ffmpeg reads a stream with, from its
// own mediamtx or another node's.
const internalUser = "dionysia"

var (
	errUnknownKey = errors.New("unknown stream key")
	errDisabled   = errors.New("input is disabled")
	errForbidden  = errors.New("not allowed")
)

// authorize is mediamtx's auth hook: a publish needs an enabled input's
// current key in the path live/<key>; a read needs the cluster-internal
// credentials. Everything else is refused.
func (n *Node) authorize(ctx context.Context, req media.AuthRequest) error {
	switch req.Action {
	case "publish":
		key, ok := strings.CutPrefix(req.Path, "live/")
		in := (*fsm.Input)(nil)
		if ok && key != "" && !strings.Contains(key, "/") {
			in = n.state.InputByKey(key)
		}
		switch {
		case in == nil:
			n.refused.add("", "unknown_key", "")
			n.log.Info("publish refused: unknown stream key", "protocol", req.Protocol, "ip", req.IP, "key", fsm.KeyHint(key))
			return errUnknownKey
		case !in.Enabled:
			n.refused.add(in.ID, "disabled", errDisabled.Error())
			n.log.Info("publish refused: input disabled", "input", in.ID, "protocol", req.Protocol, "ip", req.IP)
			return errDisabled
		}
		if err := n.admit(in); err != nil {
			n.refused.add(in.ID, "capacity", err.Error())
			n.log.Warn("publish refused: "+err.Error(), "input", in.ID, "protocol", req.Protocol, "ip", req.IP)
			return err
		}
		if u := n.admissionURL(in); u != "" {
			if err := n.admitByURL(ctx, u, in, req); err != nil {
				return err
			}
		}
		n.log.Info("publish accepted", "input", in.ID, "protocol", req.Protocol, "ip", req.IP)
		n.prewarm(in.ID, req.Path)
		return nil
	case "read":
		secret := n.mediaSecret()
		if req.User == internalUser && secret != "" &&
			subtle.ConstantTimeCompare([]byte(req.Password), []byte(secret)) == 1 {
			return nil
		}
		// RTSP clients first ask without credentials and retry with them
		// after the 401: that first refusal is routine.
		if req.User != "" {
			n.log.Info("read refused", "path", pathHint(req.Path), "protocol", req.Protocol, "ip", req.IP)
		}
		return errForbidden
	default:
		return errForbidden
	}
}

// mediaSecret is the RTSP password of internal reads, a key of its own
// (peer.MediaRead): whoever learns it can read streams, nothing else.
func (n *Node) mediaSecret() string { return n.peer.KeyHex(peer.MediaRead) }

func pathHint(p string) string {
	if key, ok := strings.CutPrefix(p, "live/"); ok {
		return "live/" + fsm.KeyHint(key)
	}
	return p
}
