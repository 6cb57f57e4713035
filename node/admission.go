package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/webhook"
)

// admissionTimeout bounds the admission call: mediamtx holds the publisher
// while the node decides, and an encoder's connect times out in seconds.
const admissionTimeout = 2 * time.Second

var errAdmission = errors.New("publish refused by the admission URL")

// admissionURL is the URL asked before a publish of in is accepted: the
// input's own, else the node's --publish-auth-url, else none.
func (n *Node) admissionURL(in *fsm.Input) string {
	if in.PublishAuthURL != "" {
		return in.PublishAuthURL
	}
	return n.cfg.PublishAuthURL
}

// admitByURL asks an admission URL whether a publish may go on. It fails
// closed: anything but a 2xx answer within admissionTimeout refuses the
// publish, and the log line says why. The request is signed like a webhook
// with the cluster's --publish-auth-secret (unsigned without one).
func (n *Node) admitByURL(ctx context.Context, url string, in *fsm.Input, req media.AuthRequest) error {
	body, err := json.Marshal(webhook.AdmissionRequest{
		InputID: in.ID, InputName: in.Name, Protocol: req.Protocol, IP: req.IP,
		Node: n.cfg.Name, Query: req.Query, At: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, admissionTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return n.refuseAdmission(in, req, url, fmt.Sprintf("bad URL: %v", err))
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", userAgent)
	if n.cfg.PublishAuthSecret != "" {
		hr.Header.Set(webhook.SignatureHeader, webhook.Header(n.cfg.PublishAuthSecret, time.Now(), body))
	}
	// The webhook client: no redirects followed (a redirect is not a yes).
	resp, err := n.hooks.client.Do(hr)
	if err != nil {
		reason := err.Error()
		if ctx.Err() != nil {
			reason = fmt.Sprintf("no answer within %s", admissionTimeout)
		}
		return n.refuseAdmission(in, req, url, reason)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return n.refuseAdmission(in, req, url, "answered "+resp.Status)
	}
	n.hooks.admission.WithLabelValues("accepted").Inc()
	return nil
}

func (n *Node) refuseAdmission(in *fsm.Input, req media.AuthRequest, url, reason string) error {
	n.hooks.admission.WithLabelValues("refused").Inc()
	n.log.Info("publish refused: admission URL said no", "input", in.ID, "protocol", req.Protocol, "ip", req.IP,
		"url", url, "reason", reason)
	return fmt.Errorf("%w: %s", errAdmission, reason)
}
