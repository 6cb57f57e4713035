package fsm

import (
	"cmp"
	"slices"
	"time"
)

// Idempotency keys make retried writes safe. Two users share one store:
//
//   - the API (the Idempotency-Key header of the IETF httpapi draft): a
//     request begins (OpBeginRequest: the key, a fingerprint of the request
//     and the attempt's id), makes at most one write tagged with the key, and
//     finishes (OpFinishRequest) with the answer it gave, which a retry of
//     the same request gets back for IdempotencyTTL;
//   - package cluster, which tags a forwarded write that has no key with one
//     of its own, so that it can send the write again when it cannot tell
//     whether the first try applied.
//
// A tagged write applies once: later copies get the stored result of the
// first. Every entry carries the time of the command that made it and
// expires by the times of later commands, never by a clock read in Apply.
const (
	// IdempotencyTTL is how long an API request's answer is kept.
	IdempotencyTTL = 24 * time.Hour
	// IdempotencyLease is how long an attempt holds a key it began: a retry
	// within the lease is told the request is in flight; after it, the
	// retry takes the request over (its write, if the first attempt made
	// it, still applies only once). Longer than any API request may run.
	IdempotencyLease = 30 * time.Second
	// writeKeyTTL is how long the result of a write tagged without a begun
	// request (a forwarded write) is kept: retries come within seconds.
	writeKeyTTL = 10 * time.Minute
)

// Idempotency tags a command with a key.
type Idempotency struct {
	Key string `json:"key"`
	// Fingerprint identifies the request (a hash of method, path and body):
	// the same key with another fingerprint is refused (CodeKeyReused).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Attempt names one try of a request, so that a late finish of an
	// attempt that was taken over cannot release the key from the new one.
	Attempt string `json:"attempt,omitempty"`
}

// StoredResponse is the answer an idempotent request gave, replayed as is.
type StoredResponse struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty"`
	Location    string `json:"location,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

func (r *StoredResponse) clone() *StoredResponse {
	if r == nil {
		return nil
	}
	c := *r
	c.Body = slices.Clone(r.Body)
	return &c
}

// idemEntry is what the store keeps for one key.
type idemEntry struct {
	Fingerprint string    `json:"fingerprint,omitempty"`
	At          time.Time `json:"at"`
	Expires     time.Time `json:"expires"`
	Attempt     string    `json:"attempt,omitempty"`
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	// Op and Write are the tagged write applied under the key and its
	// encoded Result.
	Op       Op              `json:"op,omitempty"`
	Write    []byte          `json:"write,omitempty"`
	Response *StoredResponse `json:"response,omitempty"`
}

// idemExpiry orders keys by expiry, so that expiring is a look at the front.
type idemExpiry struct {
	at  time.Time
	key string
}

func compareExpiry(a, b idemExpiry) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	return cmp.Compare(a.key, b.key)
}

// putIdem stores a new entry and queues its expiry. An older queued expiry
// of the same key (an entry released and begun again) stays queued and is
// skipped when it comes up, since it no longer matches the entry.
func (s *State) putIdem(key string, e *idemEntry) {
	s.d.Idempotency[key] = e
	x := idemExpiry{at: e.Expires, key: key}
	i, _ := slices.BinarySearchFunc(s.expiry, x, compareExpiry)
	s.expiry = slices.Insert(s.expiry, i, x)
}

// expireIdem drops the entries that expired at or before now, the time of
// the command being applied.
func (s *State) expireIdem(now time.Time) {
	if now.IsZero() {
		return
	}
	n := 0
	for n < len(s.expiry) && !s.expiry[n].at.After(now) {
		x := s.expiry[n]
		if e, ok := s.d.Idempotency[x.key]; ok && e.Expires.Equal(x.at) {
			delete(s.d.Idempotency, x.key)
		}
		n++
	}
	s.expiry = s.expiry[n:]
}

// rebuildExpiry queues every entry's expiry after a restore.
func (s *State) rebuildExpiry() {
	s.expiry = s.expiry[:0]
	for k, e := range s.d.Idempotency {
		s.expiry = append(s.expiry, idemExpiry{at: e.Expires, key: k})
	}
	slices.SortFunc(s.expiry, compareExpiry)
}

// liveIdem returns the entry of key unless it has expired by now.
func (s *State) liveIdem(key string, now time.Time) *idemEntry {
	e, ok := s.d.Idempotency[key]
	if !ok || (!now.IsZero() && !e.Expires.After(now)) {
		return nil
	}
	return e
}

// applyBeginRequest starts an attempt of an idempotent request, or tells it
// what became of an earlier one: its stored answer (Result.Response), a key
// reused for another request (CodeKeyReused), or one still in flight
// (CodeConflict). An attempt whose lease has run out is taken over.
func (s *State) applyBeginRequest(c Command) *Result {
	k := c.Idempotency
	if k == nil || k.Key == "" || k.Fingerprint == "" || k.Attempt == "" || c.At.IsZero() {
		return &Result{Err: invalid("Idempotency-Key", "begin request needs a key, a fingerprint, an attempt and a time")}
	}
	e := s.liveIdem(k.Key, c.At)
	switch {
	case e == nil:
		s.putIdem(k.Key, &idemEntry{
			Fingerprint: k.Fingerprint, At: c.At, Expires: c.At.Add(IdempotencyTTL),
			Attempt: k.Attempt, LeaseUntil: c.At.Add(IdempotencyLease),
		})
		return &Result{Changed: true}
	case e.Fingerprint != k.Fingerprint:
		return &Result{Err: &Error{Code: CodeKeyReused, Field: "Idempotency-Key",
			Message: "this Idempotency-Key was already used for a different request (method, path or body)"}}
	case e.Response != nil:
		return &Result{Response: e.Response.clone()}
	case e.Attempt == k.Attempt:
		// The same begin again (its proposer could not tell whether the
		// first copy applied): it holds the key already.
		return &Result{Changed: true}
	case c.At.Before(e.LeaseUntil):
		return &Result{Err: conflict("Idempotency-Key", "a request with this Idempotency-Key is still in flight; retry later")}
	}
	e.Attempt, e.LeaseUntil = k.Attempt, c.At.Add(IdempotencyLease)
	return &Result{Changed: true}
}

// applyFinishRequest stores the answer of an attempt, the first one given
// for the key (a late attempt that was taken over answers like the one that
// took over: the write under the key applied once). Without an answer it
// releases the key, when the attempt still holds it: a request that made
// no write is forgotten, so that it can be sent again; one that did is
// left for the next attempt to take over at once.
func (s *State) applyFinishRequest(c Command) *Result {
	k := c.Idempotency
	if k == nil || k.Key == "" || k.Attempt == "" {
		return &Result{Err: invalid("Idempotency-Key", "finish request needs a key and an attempt")}
	}
	e := s.liveIdem(k.Key, c.At)
	if e == nil || e.Response != nil {
		return &Result{}
	}
	if c.Response != nil {
		e.Response = c.Response.clone()
		e.Attempt, e.LeaseUntil = "", time.Time{}
		return &Result{Changed: true}
	}
	if e.Attempt != k.Attempt {
		return &Result{}
	}
	if e.Write == nil {
		delete(s.d.Idempotency, k.Key)
	} else {
		e.Attempt, e.LeaseUntil = "", time.Time{}
	}
	return &Result{Changed: true}
}

// applyOnce applies a tagged write unless a write was already applied under
// its key, whose result it then returns again. replayed tells which.
func (s *State) applyOnce(c Command) (r *Result, replayed bool) {
	k := c.Idempotency.Key
	if k == "" {
		return &Result{Err: invalid("Idempotency-Key", "idempotency key is empty")}, false
	}
	e := s.liveIdem(k, c.At)
	if e != nil && e.Write != nil {
		if e.Op != c.Op {
			return &Result{Err: invalid("Idempotency-Key", "idempotency key already used for a %s write", e.Op)}, false
		}
		r, err := DecodeResult(e.Write)
		if err != nil {
			return &Result{Err: invalid("Idempotency-Key", "stored result: %v", err)}, false
		}
		return r, true
	}
	r = s.apply(c)
	b, err := EncodeResult(r)
	if err != nil {
		// Results are plain data: this cannot happen, and if it did the
		// write would simply not be protected against a second copy.
		return r, false
	}
	if e == nil {
		e = &idemEntry{At: c.At, Expires: c.At.Add(writeKeyTTL)}
		s.putIdem(k, e)
	}
	e.Op, e.Write = c.Op, b
	return r, false
}

// IdempotencyKeys is how many keys the store holds (for metrics and tests).
func (s *State) IdempotencyKeys() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.d.Idempotency)
}
