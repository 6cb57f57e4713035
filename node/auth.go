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
// current key, in the path live/<key> or, for WHIP (whose clients send a
// bearer token, which mediamtx passes as token), as the token of a publish
// to live/<input id>; a read needs the cluster-internal credentials, over
// any protocol (WebRTC included: WHEP reads are the node's own). Everything
// else is refused.
func (n *Node) authorize(ctx context.Context, req media.AuthRequest) error {
	switch req.Action {
	case "publish":
		in, key := n.publishInput(req.Path, req.Token)
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

// publishInput finds the input a publish to path is for, and the key it
// was tried with (for the log): the key in live/<key>, else a token equal to
// the key of the input live/<input id> names. A key in the path wins over a
// token, so an encoder given both (OBS's WHIP server URL and bearer token)
// works whatever it puts in the token.
func (n *Node) publishInput(path, token string) (*fsm.Input, string) {
	name, ok := strings.CutPrefix(path, "live/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, name
	}
	if in := n.state.InputByKey(name); in != nil {
		return in, name
	}
	if token == "" {
		return nil, name
	}
	if in := n.state.Input(name); in != nil && subtle.ConstantTimeCompare([]byte(token), []byte(in.StreamKey)) == 1 {
		return in, token
	}
	return nil, token
}

// inputForPath is the input a ready mediamtx path publishes: live/<key>,
// or live/<input id> (a WHIP publish authorised by its bearer token; the
// hook lets nothing else publish there).
func (n *Node) inputForPath(path string) *fsm.Input { return inputForPath(n.state, path) }

func inputForPath(st sessionState, path string) *fsm.Input {
	name := strings.TrimPrefix(path, "live/")
	if in := st.InputByKey(name); in != nil {
		return in
	}
	return st.Input(name)
}

func pathHint(p string) string {
	if key, ok := strings.CutPrefix(p, "live/"); ok {
		return "live/" + fsm.KeyHint(key)
	}
	return p
}
