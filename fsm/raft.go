package fsm

import (
	"io"

	"github.com/hashicorp/raft"
)

// FSM adapts State to raft.FSM. It is the only place that knows raft's types.
type FSM struct {
	*State
}

var _ raft.FSM = FSM{}

// Apply decodes and applies one log entry. A malformed entry is refused with
// an error result rather than a panic: a bad entry must never stop a node.
func (f FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return &Result{}
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		return &Result{Err: invalid("command", "%v", err)}
	}
	return f.ApplyCommand(c)
}

// Snapshot serialises the state at once, so that Persist, which raft runs
// concurrently with later applies, writes a consistent copy.
func (f FSM) Snapshot() (raft.FSMSnapshot, error) {
	b, err := f.MarshalSnapshot()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

// Restore replaces the state with a snapshot.
func (f FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.State.Restore(rc)
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
