package dstream

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// parent is a stream another is computed from, whatever its record type.
type parent interface{ engineNode() engine.Node }

// Stream is a discretized stream of T: one dataset per interval (per slide,
// for windowed streams). Streams are built with this package's functions and
// computed lazily, interval by interval, once the context runs.
type Stream[T any] struct {
	ctx     *Context
	self    engine.Node // the stream's untyped face, as the engine sees it (node.go)
	id      int32
	name    string
	slide   time.Duration
	compute func(t time.Time) (*rdd.Dataset[T], error)
	isState bool // materialize each interval's dataset and checkpoint it (checkpointing.go)
	// nameTarget, on a stream an operator derives from its state stream
	// (MapWithState's), is the state stream Name names.
	nameTarget stateNamer
	parents    []engine.Node
	mu         sync.Mutex
	remember   time.Duration
	datasets   map[int64]*rdd.Dataset[T]

	// State streams only (checkpointing.go).
	stateName   string                                               // Name's; "" unnamed
	partitions  int                                                  // the state's partitions
	window      string                                               // the window the state covers ("" none)
	companions  []stateNamer                                         // other state streams of the operator, named with it (Name)
	ckEvery     time.Duration                                        // Checkpoint's interval; 0: the default
	durableFunc int                                                  // the partition function writing a checkpoint's part
	durable     map[int64]string                                     // committed checkpoints: interval time -> store folder
	pendingCut  map[int64]func(context.Context, int) ([]byte, error) // committed, cut at the next manifest
	keptAt      map[int64][]string                                   // kept datasets' locations, from manifests
	ckRunning   chan struct{}                                        // closed when the durable checkpoint in flight ends
	lastCut     int64                                                // the latest interval whose lineage was cut (ms; 0: none yet)
	ckRetry     bool                                                 // a checkpoint failed: the next interval's dataset tries again
}

// newStream registers a stream in c's graph. Operator IDs are assigned in
// creation order, so every process that builds the same graph agrees on them.
func newStream[T any](c *Context, name string, slide time.Duration, compute func(time.Time) (*rdd.Dataset[T], error), parents ...parent) *Stream[T] {
	c.e.CheckBuilding(name)
	s := &Stream[T]{ctx: c, id: c.e.NextID(), name: name, slide: slide, compute: compute, remember: slide, datasets: make(map[int64]*rdd.Dataset[T]),
		durable: make(map[int64]string), keptAt: make(map[int64][]string), pendingCut: make(map[int64]func(context.Context, int) ([]byte, error))}
	for _, p := range parents {
		s.parents = append(s.parents, p.engineNode())
	}
	s.self = streamNode[T]{s}
	c.e.AddNode(s.self)
	return s
}

func (s *Stream[T]) engineNode() engine.Node { return s.self }

// Context returns the stream's context.
func (s *Stream[T]) Context() *Context { return s.ctx }

// Slide returns how often the stream produces a dataset.
func (s *Stream[T]) Slide() time.Duration { return s.slide }

func (s *Stream[T]) String() string { return fmt.Sprintf("%s#%d", s.name, s.id) }

func (s *Stream[T]) rememberAtLeast(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remember = max(s.remember, d)
}

// isTime reports whether t is an interval at which the stream produces a dataset.
func (s *Stream[T]) isTime(t time.Time) bool {
	return s.ctx.e.Timeline().IsSlide(t, s.slide)
}

// At returns the stream's dataset for interval t, generating it (and what it
// depends on) on first use. It returns nil when the stream produces nothing
// at t (t is not a multiple of its slide, or precedes the start).
func (s *Stream[T]) At(t time.Time) (*rdd.Dataset[T], error) {
	if !s.isTime(t) {
		return nil, nil
	}
	ms := t.UnixMilli()
	s.mu.Lock()
	ds, ok := s.datasets[ms]
	s.mu.Unlock()
	if ok {
		return ds, nil
	}
	var err error
	s.ctx.rctx().InScope(s.id, ms, func() {
		ds, err = s.compute(t)
	})
	if err != nil {
		return nil, fmt.Errorf("%s at %d: %w", s, ms, err)
	}
	s.mu.Lock()
	if ds != nil && s.isState {
		ds.Persist()
		if locs, ok := s.keptAt[ms]; ok {
			ds.MarkKept(locs)
		}
	}
	s.datasets[ms] = ds
	s.mu.Unlock()
	return ds, nil
}

func (s *Stream[T]) nodeAt(t time.Time) (*rdd.Node, error) {
	ds, err := s.At(t)
	if ds == nil || err != nil {
		return nil, err
	}
	return ds.Node(), nil
}

// atOrEmpty is At, with an empty dataset in place of nil.
func (s *Stream[T]) atOrEmpty(t time.Time) (*rdd.Dataset[T], error) {
	ds, err := s.At(t)
	if ds == nil && err == nil {
		ds = rdd.Empty[T](s.ctx.rctx())
	}
	return ds, err
}

func (s *Stream[T]) checkpointInterval() time.Duration {
	if !s.isState {
		return 0
	}
	return s.checkpointEvery()
}

func (s *Stream[T]) rememberDuration() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remember
}

func (s *Stream[T]) forget(t time.Time) {
	s.mu.Lock()
	cutoff := t.Add(-s.remember).UnixMilli()
	if s.isState {
		// Keep the chain back to the latest cut: a lost partition is
		// recomputed from it.
		cut := int64(-1)
		for ms, ds := range s.datasets {
			if ds != nil && ms <= t.UnixMilli() && ds.Checkpointed() && ms > cut {
				cut = ms
			}
		}
		if cut >= 0 {
			cutoff = min(cutoff, cut-1)
		} else {
			cutoff = -1
		}
		for ms := range s.keptAt {
			if ms <= cutoff {
				delete(s.keptAt, ms)
			}
		}
		for ms := range s.durable {
			if ms <= cutoff {
				delete(s.durable, ms)
			}
		}
	}
	for ms := range s.datasets {
		if ms <= cutoff {
			delete(s.datasets, ms)
		}
	}
	s.mu.Unlock()
	id := s.id
	s.ctx.rctx().Forget(rdd.ForgetRule{Op: id, UpTo: cutoff})
}

// finishInterval materializes a state stream's datasets generated up to t:
// the one of t, and any generated late (a window sliding by several
// intervals generates an in-between interval's data only when it next
// slides). In one process their lineage is cut at once; in a cluster it is
// kept (a lost partition is recomputed) until a checkpoint interval's
// dataset is written durably, beside the intervals that follow
// (checkpointing.go). Without a checkpoint store the lineage is cut in
// memory at each checkpoint interval instead.
func (s *Stream[T]) finishInterval(t time.Time) error {
	if !s.isState {
		return nil
	}
	c := s.ctx
	s.mu.Lock()
	var times []int64
	for ms, ds := range s.datasets {
		if ds != nil && ms <= t.UnixMilli() && !ds.Kept() {
			times = append(times, ms)
		}
	}
	slices.Sort(times)
	dss := make([]*rdd.Dataset[T], len(times))
	for i, ms := range times {
		dss[i] = s.datasets[ms]
	}
	s.mu.Unlock()
	keep := c.e.KeepsLineage()
	tl := c.e.Timeline()
	every := s.checkpointEvery()
	var err error
	for i, ds := range dss {
		due := tl.CheckpointDue(time.UnixMilli(times[i]), every) || s.takeRetry()
		var cerr error
		if keep {
			cerr = ds.Keep(c.e.RunCtx())
			if cerr == nil {
				c.e.ForgetDeadHolders(ds.Node(), ds.LoseLocation)
				if due && !c.e.HasCheckpointStore() {
					// No store to write to: the lineage is cut in memory,
					// at the next manifest as a durable checkpoint's is
					// (checkpointDurably): a later stream's job of this
					// interval plans through this dataset, and the workers,
					// which learn of the cut from that manifest, must plan
					// it the same way.
					s.mu.Lock()
					s.pendingCut[times[i]] = nil
					s.lastCut = max(s.lastCut, times[i])
					s.mu.Unlock()
				}
			}
		} else {
			cerr = ds.Checkpoint(c.e.RunCtx())
		}
		if cerr != nil {
			if times[i] == t.UnixMilli() {
				err = cerr // interval t's own failure
				continue
			}
			// An earlier interval's data: its own interval reported why.
			c.log.Warn("state of an earlier interval not kept", "stream", s.String(), "time", times[i], "err", cerr)
			continue
		}
		if due && c.e.HasCheckpointStore() {
			s.startDurable(time.UnixMilli(times[i]), ds)
		}
	}
	return err
}

// startDurable starts writing ds, the dataset of t, to the checkpoint store
// beside the intervals that follow. One checkpoint per stream is in flight
// at a time: the next waits for the one before, which bounds the lineage to
// about two checkpoint intervals.
func (s *Stream[T]) startDurable(t time.Time, ds *rdd.Dataset[T]) {
	s.mu.Lock()
	prev := s.ckRunning
	done := make(chan struct{})
	s.ckRunning = done
	s.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-s.ctx.e.RunCtx().Done():
		}
	}
	s.ctx.e.Background(func() {
		defer close(done)
		s.checkpointDurably(t, ds)
	})
}

// checkSlide records a graph error unless d is a positive multiple of the
// parent's slide.
func checkMultiple(c *Context, op, what string, d, base time.Duration) bool {
	if d <= 0 || d%base != 0 {
		c.setErr(fmt.Errorf("%s (%s): %s %v must be a positive multiple of %v", op, caller(), what, d, base))
		return false
	}
	return true
}

// checkSameSlide records a graph error unless the streams slide together.
func checkSameSlide(c *Context, op string, a, b time.Duration) bool {
	if a != b {
		c.setErr(fmt.Errorf("%s (%s): streams slide by %v and %v; they must slide together", op, caller(), a, b))
		return false
	}
	return true
}

// caller names the user's line that called into this package.
func caller() string {
	for skip := 2; skip < 12; skip++ {
		pc, file, line, ok := runtime.Caller(skip)
		if !ok {
			break
		}
		fn := runtime.FuncForPC(pc)
		if fn != nil && !isOwnFrame(fn.Name()) {
			return fmt.Sprintf("%s:%d", file, line)
		}
	}
	return "unknown caller"
}

func isOwnFrame(name string) bool {
	const pkg = "github.com/dstream/dstream."
	return len(name) > len(pkg) && name[:len(pkg)] == pkg
}
