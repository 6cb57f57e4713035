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
// current key in the path live/<key>; a read needs the cluster-internal
// credentials. Everything else is refused.
func (n *Node) authorize(_ context.Context, req media.AuthRequest) error {
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
