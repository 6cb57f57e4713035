package fsm

import "slices"

// placeLocked chooses the owner of a starting session. A publish that
// replaces a session of the same input (a reconnect, a backup encoder)
// keeps its owner while that one is still a candidate: the stream
// continues where it is packaged. Otherwise Place decides on the loads the
// state records; when nothing has room, the input's overload policy
// decides between passthrough and a refusal (the ingest node then
// disconnects the publisher).
func (s *State) placeLocked(ss *Session, c Command) error {
	pl := c.Placement
	ss.Owner, ss.Cost, ss.Passthrough, ss.PlacedAt, ss.MovedFrom = "", pl.Cost, false, c.At, ""
	if old, ok := s.d.Sessions[ss.InputID]; ok && old.Owner != "" {
		if slices.ContainsFunc(pl.Candidates, func(cd Candidate) bool { return cd.Name == old.Owner }) {
			ss.Owner, ss.Passthrough, ss.PlacedAt, ss.MovedFrom = old.Owner, old.Passthrough, old.PlacedAt, old.MovedFrom
			if ss.Passthrough {
				ss.Cost = PassthroughCost
			}
			return nil
		}
	}
	loads := s.loadsLocked(ss.InputID)
	if owner, ok := Place(pl.Candidates, loads, pl.Cost, PlacementChoices); ok {
		ss.Owner = owner
		return nil
	}
	if in := s.d.Inputs[ss.InputID]; in != nil && in.Overload == OverloadPassthrough {
		if owner, ok := Place(pl.Candidates, loads, PassthroughCost, PlacementChoices); ok {
			ss.Owner, ss.Cost, ss.Passthrough = owner, PassthroughCost, true
			return nil
		}
	}
	return conflict(FieldCapacity, "no node has room for this stream (cost %d units): the cluster is full", pl.Cost)
}

// FieldCapacity is the field of a StartSession refused because no node had
// room: the ingest node tells it apart from a second publisher's conflict.
const FieldCapacity = "capacity"

// loadsLocked sums the cost of every session (live or reconnecting: a
// publisher coming back continues on the same owner) by recorded owner,
// leaving out the input being placed. Integer sums do not depend on the
// map's order, so this is deterministic without sorting: one pass, which
// matters at ten thousand sessions.
func (s *State) loadsLocked(skip string) map[string]int {
	loads := map[string]int{}
	for id, ss := range s.d.Sessions {
		if id != skip && ss.Owner != "" {
			loads[ss.Owner] += ss.Cost
		}
	}
	return loads
}

// applyPlaceSessions records new owners. A move names the session it was
// planned for: a newer publish of the input, or an ended session, is left
// alone.
func (s *State) applyPlaceSessions(c Command) *Result {
	changed := false
	for _, m := range c.Moves {
		old, ok := s.d.Sessions[m.InputID]
		if !ok || old.ID != m.SessionID || m.Owner == "" || old.Owner == m.Owner {
			continue
		}
		ss := old.Clone()
		ss.Owner, ss.PlacedAt, ss.MovedFrom = m.Owner, c.At, old.Owner
		s.d.Sessions[m.InputID] = ss
		changed = true
	}
	return &Result{Changed: changed}
}

// Loads is the cost each node owns, by recorded owner.
func (s *State) Loads() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loadsLocked("")
}

// SessionOwner returns the recorded owner of an input's session ("" when
// there is no session or it was recorded without placement), without
// copying the session: routing asks on every request.
func (s *State) SessionOwner(inputID string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ss, ok := s.d.Sessions[inputID]; ok {
		return ss.Owner
	}
	return ""
}
