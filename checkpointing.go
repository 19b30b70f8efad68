package dstream

import (
	"fmt"
	"regexp"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/timeline"
)

// State checkpoints (the D-Stream paper, section 4.3; engine.Series): a
// state stream's dataset is materialized every interval, and every
// checkpoint interval written to the checkpoint store, asynchronously,
// beside the intervals that follow, which bounds its lineage.

// DefaultCheckpointInterval is the least default interval between a state
// stream's durable checkpoints; the default is the larger of it and five
// slides (Spark's rule).
const DefaultCheckpointInterval = timeline.DefaultCheckpointInterval

// CheckpointsKept is how many committed checkpoints of each state stream
// the store keeps at least: the newest, and older ones to fall back to (a
// stream that reads older ones, as a window's reductions, keeps those too).
const CheckpointsKept = engine.CheckpointsKept

// Checkpoint sets how often the state stream s writes its state to the
// checkpoint store (a positive multiple of its slide), overriding
// Config.CheckpointInterval. On a stream that keeps no state it is a graph
// error. It returns s.
func (s *Stream[T]) Checkpoint(every time.Duration) *Stream[T] {
	if !s.rt.Checkpoints() {
		s.ctx.setErr(fmt.Errorf("Checkpoint (%s): %s keeps no state to checkpoint", caller(), s))
		return s
	}
	if checkMultiple(s.ctx, "Checkpoint", "interval", every, s.slide) {
		s.rt.SetCheckpointEvery(every)
	}
	return s
}

// Name names the state that s keeps, so that a later version of the
// program finds it in the checkpoint folder: a master restarted on the
// folder with a changed graph resumes each named state from its
// checkpoint by name, as Flink matches operator state by uid. Call it on
// the result of a state operator: UpdateStateByKey, MapWithState (the
// mapped stream or MapWithStateStream.Name), ReduceByKeyAndWindowInv and
// the operators built on it (CountByValueAndWindow, ReduceByWindowInv,
// CountByWindow), and the event-time window operators
// (EventWindowStream.Name). A window operator keeps two states, its
// window's and its intervals' reductions; the second is named
// name+".reduced".
//
// A name begins with a letter and holds letters, digits, '_', '-' and
// '.', at most 100 characters; two states of a graph may not share one.
// A bad name, or a stream that keeps no state, is a graph error.
//
// What a restart with a changed graph resumes (graphspec.Upgrade):
//
//   - A named state resumes when its operator, record type (the
//     structure of its key and value types, graphspec.TypeFingerprint),
//     partitions, slide and window are unchanged; otherwise Start refuses,
//     naming the state and what changed. The intervals after its newest
//     checkpoint are computed again by the new graph, from the inputs'
//     logged positions.
//   - Outputs, stateless streams and state streams may be added or
//     removed around it. A state the checkpoint lacks starts as a state
//     without a checkpoint: rebuilt from what the inputs still replay.
//     A named state the new graph lacks is refused unless
//     Config.AllowDroppedState.
//   - Inputs resume from their logged positions when they are the same
//     kind at the same operator ID (create the inputs first, in the same
//     order); a new input starts at its configured start.
//   - If the checkpoint holds an unnamed state, nothing may change (the
//     error says so): unnamed state is matched by operator ID, which any
//     change may shift. Naming a state is itself such a change, so a job
//     whose checkpoint holds unnamed state starts afresh once to name it.
//
// It returns s.
func (s *Stream[T]) Name(name string) *Stream[T] {
	if s.nameTarget != nil && !s.rt.Checkpoints() {
		s.nameTarget.nameState(name, caller())
		return s
	}
	s.nameState(name, caller())
	return s
}

var validStateName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)

func (s *Stream[T]) nameState(name, at string) {
	switch {
	case !s.rt.Checkpoints():
		s.ctx.setErr(fmt.Errorf("Name (%s): %s keeps no state to name", at, s))
		return
	case !validStateName.MatchString(name):
		s.ctx.setErr(fmt.Errorf("Name (%s): state name %q: want a letter, then letters, digits, '_', '-' or '.' (at most 100)", at, name))
		return
	}
	for _, n := range s.ctx.e.Graph() {
		if n.StateName == name && n.ID != s.id {
			s.ctx.setErr(fmt.Errorf("Name (%s): two states named %q (%s and stream %d)", at, name, s, n.ID))
			return
		}
	}
	s.rt.SetStateName(name)
	for _, c := range s.companions {
		c.nameState(name+".reduced", at)
	}
}
