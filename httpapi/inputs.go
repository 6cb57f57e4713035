package httpapi

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/dionysia/dionysia/fsm"
)

// States of an input's stream, as the API shows them.
const (
	StateIdle = "idle"
	StateLive = "live"
	// StateReconnecting: the publisher went away and the input's reconnect
	// window keeps the stream open for it until the deadline.
	StateReconnecting = "reconnecting"
)

// SessionState is what an input's session (nil: none) means to a client: the
// state, and the deadline of a reconnecting session.
func SessionState(s *fsm.Session, in *fsm.Input) (state string, deadline *time.Time) {
	switch {
	case s == nil:
		return StateIdle, nil
	case s.Live():
		return StateLive, nil
	}
	d := s.ReconnectDeadline(in)
	return StateReconnecting, &d
}

// inputView is an input as the API shows it: the stored fields plus where to
// publish and where to watch, and the state of its stream.
type inputView struct {
	*fsm.Input
	Links
	// Live is true only while a publisher is there (State live).
	Live              bool       `json:"live"`
	State             string     `json:"state"`
	ReconnectDeadline *time.Time `json:"reconnect_deadline,omitempty"`
}

func (a *API) view(in *fsm.Input) inputView {
	state, deadline := SessionState(a.b.State().Session(in.ID), in)
	if in.Overload == "" {
		// Stored before the field existed: it means refuse.
		c := *in
		c.Overload = fsm.OverloadRefuse
		in = &c
	}
	return inputView{Input: in, Links: a.b.Links(in), Live: state == StateLive, State: state, ReconnectDeadline: deadline}
}

func (a *API) listInputs(w http.ResponseWriter, r *http.Request) {
	ins := a.b.State().Inputs()
	out := make([]inputView, 0, len(ins))
	for _, in := range ins {
		out = append(out, a.view(in))
	}
	writeJSON(w, http.StatusOK, map[string]any{"inputs": out})
}

func (a *API) getInput(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	in := a.b.State().Input(id)
	if in == nil {
		writeError(w, notFoundErr("id", "input "+quote(id)+" not found"))
		return
	}
	writeJSON(w, http.StatusOK, a.view(in))
}

func (a *API) createInput(w http.ResponseWriter, r *http.Request) {
	var body inputBody
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	in, err := body.toInput()
	if err != nil {
		writeError(w, err)
		return
	}
	in.ID, in.StreamKey = NewID(), NewStreamKey()
	res, err := a.apply(r, fsm.Command{Op: fsm.OpCreateInput, Input: in})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/inputs/"+res.Input.ID)
	writeJSON(w, http.StatusCreated, a.view(res.Input))
}

func (a *API) updateInput(w http.ResponseWriter, r *http.Request) {
	var body inputPatchBody
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	patch, err := body.toPatch()
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := a.apply(r, fsm.Command{Op: fsm.OpUpdateInput, ID: mux.Vars(r)["id"], Patch: patch})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(res.Input))
}

func (a *API) deleteInput(w http.ResponseWriter, r *http.Request) {
	if _, err := a.apply(r, fsm.Command{Op: fsm.OpDeleteInput, ID: mux.Vars(r)["id"]}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	res, err := a.apply(r, fsm.Command{Op: fsm.OpRotateKey, ID: mux.Vars(r)["id"], StreamKey: NewStreamKey()})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(res.Input))
}

func (a *API) inputStatus(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if a.b.State().Input(id) == nil {
		writeError(w, notFoundErr("id", "input "+quote(id)+" not found"))
		return
	}
	st, err := a.b.InputStatus(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) nodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"nodes": a.b.Nodes()})
}

func (a *API) cluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.b.Cluster())
}

func (a *API) route(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if a.b.State().Input(id) == nil {
		writeError(w, notFoundErr("id", "input "+quote(id)+" not found"))
		return
	}
	rt, err := a.b.Route(id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rt)
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.b.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "time": time.Now().UTC().Format(time.RFC3339)})
}
