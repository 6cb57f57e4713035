package httpapi

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"
)

// ErrNotFound marks a Backend error about something named in the URL that
// does not exist (a node that is not a member): 404.
var ErrNotFound = errors.New("not found")

// drainNode and undrainNode move every stream off a node (make-before-break)
// or let it take streams again. Any node accepts them; the named node
// carries them out.
func (a *API) drainNode(w http.ResponseWriter, r *http.Request)   { a.setDrain(w, r, true) }
func (a *API) undrainNode(w http.ResponseWriter, r *http.Request) { a.setDrain(w, r, false) }

func (a *API) setDrain(w http.ResponseWriter, r *http.Request, on bool) {
	name := mux.Vars(r)["name"]
	if err := a.b.Drain(r.Context(), name, on); err != nil {
		if errors.Is(err, ErrNotFound) {
			writeError(w, notFoundErr("name", err.Error()))
			return
		}
		writeError(w, err)
		return
	}
	for _, n := range a.b.Nodes() {
		if n.Name == name {
			// Gossip may not have carried the new state back here yet.
			n.Draining = on
			writeJSON(w, http.StatusOK, n)
			return
		}
	}
	writeJSON(w, http.StatusOK, NodeInfo{Name: name, Draining: on})
}
