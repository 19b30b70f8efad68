package dstream

import (
	"fmt"
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
