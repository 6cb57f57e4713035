package httpapi

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/dionysia/dionysia/fsm"
)

// Signed playback: a URL carries exp (unix seconds) and token, the
// HMAC-SHA256 of "<input id>\n<exp>" under the cluster's playback key. Any
// node can check it, so the non-owner refuses before redirecting and the
// owner checks again.

const (
	minPlaybackTTL     = 10 * time.Second
	maxPlaybackTTL     = 7 * 24 * time.Hour
	defaultPlaybackTTL = time.Hour
)

var (
	errNoToken      = errors.New("this stream needs a signed URL: token and exp are missing")
	errBadToken     = errors.New("the playback token is not valid for this stream")
	errExpiredToken = errors.New("the playback token has expired")
)

// SignPlayback returns the token for an input and expiry.
func SignPlayback(key []byte, inputID string, exp int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(inputID))
	m.Write([]byte{'\n'})
	m.Write([]byte(strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

func checkPlaybackToken(key []byte, inputID string, q url.Values, now time.Time) error {
	tok, expS := q.Get("token"), q.Get("exp")
	if tok == "" || expS == "" {
		return errNoToken
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return errBadToken
	}
	want := SignPlayback(key, inputID, exp)
	if !hmac.Equal([]byte(tok), []byte(want)) {
		return errBadToken
	}
	if now.Unix() > exp {
		return errExpiredToken
	}
	return nil
}

// signPlaylist appends the viewer's token to every URI a playlist names, so
// that a player following it keeps being authorised.
func signPlaylist(body []byte, suffix string) []byte {
	var out bytes.Buffer
	out.Grow(len(body) + 64*bytes.Count(body, []byte{'\n'}))
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			line = signURIAttr(line, suffix)
		default:
			line = addQuery(line, suffix)
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// signURIAttr handles tags that carry a URI="..." attribute (EXT-X-MAP,
// EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-KEY).
func signURIAttr(line, suffix string) string {
	i := strings.Index(line, `URI="`)
	if i < 0 {
		return line
	}
	start := i + len(`URI="`)
	end := strings.IndexByte(line[start:], '"')
	if end < 0 {
		return line
	}
	return line[:start] + addQuery(line[start:start+end], suffix) + line[start+end:]
}

// signMPD appends the viewer's token to the URIs an MPD's
// SegmentTemplates make (initialization and media), XML-escaped: a DASH
// player resolves them against the MPD's URL, whose query it drops.
func signMPD(body []byte, suffix string) []byte {
	esc := strings.ReplaceAll(suffix, "&", "&amp;")
	out := string(body)
	for _, attr := range []string{` initialization="`, ` media="`} {
		var b strings.Builder
		rest := out
		for {
			i := strings.Index(rest, attr)
			if i < 0 {
				break
			}
			start := i + len(attr)
			end := strings.IndexByte(rest[start:], '"')
			if end < 0 {
				break
			}
			uri := rest[start : start+end]
			b.WriteString(rest[:start])
			if strings.Contains(uri, "?") {
				b.WriteString(uri + "&amp;" + esc)
			} else {
				b.WriteString(uri + "?" + esc)
			}
			rest = rest[start+end:]
		}
		b.WriteString(rest)
		out = b.String()
	}
	return []byte(out)
}

func addQuery(uri, suffix string) string {
	if strings.Contains(uri, "?") {
		return uri + "&" + suffix
	}
	return uri + "?" + suffix
}

type playbackURLBody struct {
	TTLSeconds int `json:"ttl_seconds"`
}

// playbackURL answers POST /v1/inputs/{id}/playback-url with a signed URL.
func (a *API) playbackURL(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	in := a.b.State().Input(id)
	if in == nil {
		writeError(w, notFoundErr("id", "input "+quote(id)+" not found"))
		return
	}
	var body playbackURLBody
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &body); err != nil {
			writeError(w, err)
			return
		}
	}
	ttl := defaultPlaybackTTL
	if body.TTLSeconds != 0 {
		ttl = time.Duration(body.TTLSeconds) * time.Second
	}
	if ttl < minPlaybackTTL || ttl > maxPlaybackTTL {
		writeError(w, badRequest("ttl_seconds", "ttl_seconds must be between 10 and 604800"))
		return
	}
	exp := time.Now().Add(ttl).Unix()
	base := a.b.Links(in).Playback.HLS
	u := base + "?exp=" + strconv.FormatInt(exp, 10) + "&token=" + SignPlayback(a.b.PlaybackKey(), in.ID, exp)
	writeJSON(w, http.StatusOK, map[string]any{
		"url": u, "expires_at": time.Unix(exp, 0).UTC(), "playback_policy": in.PlaybackPolicy,
		"signed_required": in.PlaybackPolicy == fsm.PlaybackSigned,
	})
}
