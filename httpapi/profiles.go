package httpapi

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/dionysia/dionysia/fsm"
)

func (a *API) listProfiles(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"profiles": a.b.State().Profiles(), "default_profile_id": a.b.State().DefaultProfileID()})
}

func (a *API) getProfile(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	p := a.b.State().Profile(id)
	if p == nil {
		writeError(w, notFoundErr("id", "profile "+quote(id)+" not found"))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *API) createProfile(w http.ResponseWriter, r *http.Request) {
	var body profileBody
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	p, err := body.toProfile()
	if err != nil {
		writeError(w, err)
		return
	}
	p.ID = body.ID
	if p.ID == "" {
		p.ID = NewID()
	} else if !userID.MatchString(p.ID) {
		writeError(w, badRequest("id", "id must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"))
		return
	}
	res, err := a.apply(r, fsm.Command{Op: fsm.OpCreateProfile, Profile: p})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/profiles/"+res.Profile.ID)
	writeJSON(w, http.StatusCreated, res.Profile)
}

func (a *API) updateProfile(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	var body profileBody
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.ID != "" && body.ID != id {
		writeError(w, badRequest("id", "id in the body does not match the URL"))
		return
	}
	p, err := body.toProfile()
	if err != nil {
		writeError(w, err)
		return
	}
	p.ID = id
	res, err := a.apply(r, fsm.Command{Op: fsm.OpUpdateProfile, Profile: p})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res.Profile)
}

func (a *API) deleteProfile(w http.ResponseWriter, r *http.Request) {
	if _, err := a.apply(r, fsm.Command{Op: fsm.OpDeleteProfile, ID: mux.Vars(r)["id"]}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apply stamps the command with the proposer's clock and returns the refusal,
// if any, as an error.
func (a *API) apply(r *http.Request, c fsm.Command) (*fsm.Result, error) {
	c.At = time.Now().UTC()
	if k := idempotencyKey(r.Context()); k != "" {
		c.Idempotency = &fsm.Idempotency{Key: k}
	}
	res, err := a.b.Apply(r.Context(), c)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res, nil
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}
