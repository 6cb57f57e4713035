package relay

import (
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// handler answers the relay's RTSP clients.
type handler struct{ r *Relay }

// sessionData is what a client session was set up for.
type sessionData struct {
	src   *source
	token string
}

var errUnknownPath = errors.New("unknown path")

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s, _ := h.r.lookup(ctx.Path)
	if s == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, errUnknownPath
	}
	o := s.waitOutput(describeWait)
	if o == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, errors.New("source not available")
	}
	return &base.Response{StatusCode: base.StatusOK}, o.stream, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s, token := h.r.lookup(ctx.Path)
	if s == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, errUnknownPath
	}
	if d, ok := ctx.Session.UserData().(*sessionData); ok && d.src != s {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil, errors.New("session belongs to another path")
	}
	// A SETUP follows a DESCRIBE, so the output is normally there; it may
	// have been replaced in between (then the client fails and retries).
	o := s.waitOutput(time.Second)
	if o == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, errors.New("source not available")
	}
	ctx.Session.SetUserData(&sessionData{src: s, token: token})
	return &base.Response{StatusCode: base.StatusOK}, o.stream, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	d, ok := ctx.Session.UserData().(*sessionData)
	if !ok {
		return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("no session")
	}
	if s, _ := h.r.lookup(ctx.Path); s != d.src {
		// The pull was released since SETUP.
		return &base.Response{StatusCode: base.StatusNotFound}, errUnknownPath
	}
	if err := d.src.play(ctx.Session, d.token, h.r.isCopy(d.token)); err != nil {
		return &base.Response{StatusCode: base.StatusNotFound}, err
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	if d, ok := ctx.Session.UserData().(*sessionData); ok {
		d.src.removeClient(ctx.Session)
	}
}

// The library logs these with the standard logger unless the handler
// takes them.

func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.r.log.Debug("relay client write error", "err", ctx.Error)
}

func (h *handler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.r.log.Debug("relay client decode error", "err", ctx.Error)
}

func (h *handler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	h.r.log.Debug("relay client lost packets", "lost", ctx.Lost)
}

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.r.log.Debug("relay client connected", "remote", ctx.Conn.NetConn().RemoteAddr())
}
