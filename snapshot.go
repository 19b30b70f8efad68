package dstream

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/rdd"
)

// Snapshots of a running stream, as D-Streams promise: every interval's
// dataset is a consistent snapshot, and batch operators and actions run on
// it alongside the running stream (interactive queries). A query sees one
// interval whole or not at all; it never delays the stream beyond sharing
// its task slots.

// Remember asks the stream to keep the datasets it generated for at least d
// before the latest interval, so Latest and Slice reach that far back while
// the context runs (and its parents keep what recomputes them). Call it
// before Start; it returns s.
func (s *Stream[T]) Remember(d time.Duration) *Stream[T] {
	if s.ctx.e.Started() {
		s.ctx.setErr(fmt.Errorf("%s: Remember must be called before the context starts", s))
		return s
	}
	s.rt.RememberAtLeast(d + s.slide)
	return s
}

// Latest returns the stream's dataset of the last completed interval at
// which it produced one, and that interval's time; ok is false before the
// first. The dataset stays usable while the stream remembers it (its slide,
// or what Remember asked): a query that runs longer than that may find what
// it reads forgotten, and fails saying so.
func (s *Stream[T]) Latest() (ds *rdd.Dataset[T], t time.Time, ok bool) { return s.rt.Latest() }

// Slice returns the datasets the stream generated at its slide times in
// [from, to], in time order, for intervals already completed. Every one of
// them must still be remembered (see Remember): a range reaching further
// back, or past the last completed interval, is an error saying which.
func (s *Stream[T]) Slice(from, to time.Time) ([]*rdd.Dataset[T], error) { return s.rt.Slice(from, to) }
