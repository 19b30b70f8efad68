package dstream

import (
	"math"
	"time"

	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
)

// streamNode is a stream's untyped face, the seam between the API and the
// engine: engine.Node's methods, on a value the user never sees, so that
// Stream[T]'s own method set stays the API.
type streamNode[T any] struct{ s *Stream[T] }

var _ engine.Node = streamNode[int]{}

func (n streamNode[T]) OpID() int32                        { return n.s.id }
func (n streamNode[T]) SlideDuration() time.Duration       { return n.s.slide }
func (n streamNode[T]) RememberAtLeast(d time.Duration)    { n.s.rememberAtLeast(d) }
func (n streamNode[T]) Forget(t time.Time)                 { n.s.forget(t) }
func (n streamNode[T]) FinishInterval(t time.Time) error   { return n.s.finishInterval(t) }
func (n streamNode[T]) RememberDuration() time.Duration    { return n.s.rememberDuration() }
func (n streamNode[T]) ParentNodes() []engine.Node         { return n.s.parents }
func (n streamNode[T]) Checkpoints() bool                  { return n.s.isState }
func (n streamNode[T]) CheckpointInterval() time.Duration  { return n.s.checkpointInterval() }
func (n streamNode[T]) LoseHolder(addr string)             { n.s.loseHolder(addr) }
func (n streamNode[T]) Adopt(cp manifest.Checkpoint) error { return n.s.adopt(cp) }
func (n streamNode[T]) Describe() graphspec.Node           { return n.s.describe() }
func (n streamNode[T]) Reset()                             { n.s.reset() }
func (n streamNode[T]) NodeAt(t time.Time) (*rdd.Node, error) {
	return n.s.nodeAt(t)
}
func (n streamNode[T]) LastCheckpoints(t time.Time) []manifest.Checkpoint {
	return n.s.lastCheckpoints(t)
}

// reset forgets every dataset the stream generated, and a state stream's
// checkpoints and kept datasets (engine.Node.Reset).
func (s *Stream[T]) reset() {
	s.mu.Lock()
	clear(s.datasets)
	clear(s.durable)
	clear(s.pendingCut)
	clear(s.keptAt)
	s.lastCut, s.ckRetry = 0, false
	s.mu.Unlock()
	s.ctx.rctx().Forget(rdd.ForgetRule{Op: s.id, UpTo: math.MaxInt64})
}
