package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
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
func (n *Node) authorize(_ context.Context, req media.AuthRequest) error {
	switch req.Action {
	case "publish":
		in, key := n.publishInput(req.Path, req.Token)
		switch {
		case in == nil:
			n.log.Info("publish refused: unknown stream key", "protocol", req.Protocol, "ip", req.IP, "key", fsm.KeyHint(key))
			return errUnknownKey
		case !in.Enabled:
			n.log.Info("publish refused: input disabled", "input", in.ID, "protocol", req.Protocol, "ip", req.IP)
			return errDisabled
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
func (n *Node) inputForPath(path string) *fsm.Input {
	name := strings.TrimPrefix(path, "live/")
	if in := n.state.InputByKey(name); in != nil {
		return in
	}
	return n.state.Input(name)
}

// derivedSecret turns the cluster key into the secret used by internal
// calls, so the raw key never travels, not even to a peer.
func derivedSecret(key []byte) string {
	return hex.EncodeToString(derive(key, "dionysia internal v1"))
}

// derive makes a purpose-bound key from a secret (HMAC-SHA256 of a label),
// so one leaked derived value reveals neither the secret nor its siblings.
func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// mediaSecret is the RTSP password of internal reads. It is derived from
// the internal secret instead of being it: it sits on ffmpeg's command line
// (ADR 0001), readable by any local user, while the internal secret also
// authorises raft writes (/internal/apply) and keys signed playback.
func (n *Node) mediaSecret() string {
	secret := n.internalSecret()
	if secret == "" {
		return ""
	}
	return hex.EncodeToString(derive([]byte(secret), "dionysia media read v1"))
}

func pathHint(p string) string {
	if key, ok := strings.CutPrefix(p, "live/"); ok {
		return "live/" + fsm.KeyHint(key)
	}
	return p
}
