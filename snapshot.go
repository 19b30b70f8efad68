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
	s.rememberAtLeast(d + s.slide)
	return s
}

// Latest returns the stream's dataset of the last completed interval at
// which it produced one, and that interval's time; ok is false before the
// first. The dataset stays usable while the stream remembers it (its slide,
// or what Remember asked): a query that runs longer than that may find what
// it reads forgotten, and fails saying so.
func (s *Stream[T]) Latest() (ds *rdd.Dataset[T], t time.Time, ok bool) {
	done := s.ctx.e.LastCompleted()
	if done.IsZero() {
		return nil, time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best := int64(-1)
	for ms, d := range s.datasets {
		if d != nil && ms <= done.UnixMilli() && ms > best {
			best, ds = ms, d
		}
	}
	if ds == nil {
		return nil, time.Time{}, false
	}
	return ds, time.UnixMilli(best), true
}

// Slice returns the datasets the stream generated at its slide times in
// [from, to], in time order, for intervals already completed. Every one of
// them must still be remembered (see Remember): a range reaching further
// back, or past the last completed interval, is an error saying which.
func (s *Stream[T]) Slice(from, to time.Time) ([]*rdd.Dataset[T], error) {
	done := s.ctx.e.LastCompleted()
	if to.After(done) {
		return nil, fmt.Errorf("%s: slice up to %d: the last completed interval is %d", s, to.UnixMilli(), done.UnixMilli())
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%s: slice from %d to %d: the range is empty", s, from.UnixMilli(), to.UnixMilli())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*rdd.Dataset[T]
	for t := s.firstSlideAtOrAfter(from); !t.After(to); t = t.Add(s.slide) {
		ds, ok := s.datasets[t.UnixMilli()]
		if !ok {
			return nil, fmt.Errorf("%s: interval %d is no longer remembered (it keeps %v; call Remember to keep more)", s, t.UnixMilli(), s.remember)
		}
		if ds != nil {
			out = append(out, ds)
		}
	}
	return out, nil
}

// firstSlideAtOrAfter returns the first time at or after t at which the
// stream produces a dataset.
func (s *Stream[T]) firstSlideAtOrAfter(t time.Time) time.Time {
	return s.ctx.e.Timeline().FirstSlideAtOrAfter(t, s.slide)
}
