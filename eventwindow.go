package dstream

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/internal/eventwin"
	"github.com/dstream/dstream/rdd"
)

// Aggregator is a general aggregate over a window's records: Zero is the
// empty accumulator, Add folds in one record, Merge combines the
// accumulators of two windows that become one (session windows; the
// earlier window's first). Within an interval a window's records are added
// in event-time order (records of equal event time in arrival order), so
// Add need not be commutative for the result to be deterministic.
type Aggregator[T, A any] struct {
	Zero  func() A
	Add   func(acc A, x T) A
	Merge func(a, b A) A
}

// EventWindowStream is the output of an event-time window operator: each
// interval, the windows its OutputMode says, one Windowed per key and
// window. Late gives the records dropped as late.
type EventWindowStream[T any, K comparable, A any] struct {
	*Stream[Windowed[K, A]]
	late    *Stream[Event[T]]
	state   *Stream[Pair[K, ewState[T, A]]]
	sources []int32
}

// Late is the stream of the records each interval dropped as late (every
// window they belong to had ended at or before the interval's watermark).
// Late records are counted whether or not the program asks for them.
func (w *EventWindowStream[T, K, A]) Late() *Stream[Event[T]] { return w.late }

// OpenWindows yields, every interval, the windows the operator's state
// holds after it: those the watermark has not passed, with their values so
// far (a snapshot, as MapWithState's StateSnapshots).
func (w *EventWindowStream[T, K, A]) OpenWindows() *Stream[Windowed[K, A]] {
	return FlatMap(w.state, func(p Pair[K, ewState[T, A]]) []Windowed[K, A] { return windowed(p.Key, p.Value.Wins) })
}

// Name names the operator's state, its open windows (Stream.Name). It
// returns w.
func (w *EventWindowStream[T, K, A]) Name(name string) *EventWindowStream[T, K, A] {
	w.state.nameState(name, caller())
	return w
}

// Checkpoint sets how often the operator writes its open windows to the
// checkpoint store (Stream.Checkpoint on its state). It returns w.
func (w *EventWindowStream[T, K, A]) Checkpoint(every time.Duration) *EventWindowStream[T, K, A] {
	w.state.Checkpoint(every)
	return w
}

// Watermark returns the watermark interval t ran (or runs) with, while the
// context remembers t's manifest; false if the operator has none yet (an
// input stream has carried no record) or t is unknown.
func (w *EventWindowStream[T, K, A]) Watermark(t time.Time) (time.Time, bool) {
	wm, ok, err := w.ctx.e.WatermarkAt(w.sources, t)
	if err != nil || !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(wm).UTC(), true
}

// ewState is a key's window state after an interval (package eventwin):
// its open windows, the windows the interval outputs, the records it
// dropped as late.
type ewState[T, A any] = eventwin.State[Event[T], A]

// AggregateByEventWindow groups s's records by key and event-time window
// and folds each group with agg; see WithEventTime for the watermark, late
// records and the output modes. s must derive from one
// or more WithEventTime streams. The open windows are state: partitioned by
// key over n partitions (<= 0: the default), checkpointed and recovered as
// every state stream's.
func AggregateByEventWindow[T any, K comparable, A any](s *Stream[Event[T]], key func(T) K, w EventWindows, mode OutputMode, agg Aggregator[T, A], n int) *EventWindowStream[T, K, A] {
	if agg.Zero == nil || agg.Add == nil || (w.session() && agg.Merge == nil) {
		s.ctx.setErr(fmt.Errorf("aggregateByEventWindow (%s): the aggregator needs Zero and Add, and Merge for session windows", caller()))
		return eventWindow(s, "aggregateByEventWindow", key, w, mode, &eventwin.Fold[Event[T], A]{}, false, n)
	}
	return eventWindow(s, "aggregateByEventWindow", key, w, mode, &eventwin.Fold[Event[T], A]{
		First: func(x Event[T]) A { return agg.Add(agg.Zero(), x.Value) },
		Add:   func(a A, x Event[T]) A { return agg.Add(a, x.Value) },
		Merge: agg.Merge,
	}, false, n)
}

// ReduceByEventWindow folds each key's values in each event-time window by
// f, which must be associative and commutative: each map partition folds
// its records per key and window before the shuffle (as ReduceByKey does),
// and the partial results are folded in an order that is fixed but not
// event time's.
func ReduceByEventWindow[K comparable, V any](s *Stream[Event[Pair[K, V]]], f func(V, V) V, w EventWindows, mode OutputMode, n int) *EventWindowStream[Pair[K, V], K, V] {
	return eventWindow(s, "reduceByEventWindow", func(p Pair[K, V]) K { return p.Key }, w, mode, &eventwin.Fold[Event[Pair[K, V]], V]{
		First: func(x Event[Pair[K, V]]) V { return x.Value.Value },
		Add:   func(a V, x Event[Pair[K, V]]) V { return f(a, x.Value.Value) },
		Merge: f,
	}, true, n)
}

// CountByEventWindow counts each key's records in each event-time window
// (combined per map partition before the shuffle).
func CountByEventWindow[T any, K comparable](s *Stream[Event[T]], key func(T) K, w EventWindows, mode OutputMode, n int) *EventWindowStream[T, K, int64] {
	return eventWindow(s, "countByEventWindow", key, w, mode, &eventwin.Fold[Event[T], int64]{
		First: func(Event[T]) int64 { return 1 },
		Add:   func(a int64, _ Event[T]) int64 { return a + 1 },
		Merge: addInt64,
	}, true, n)
}

// eventWindow builds the operator: a state stream of each key's open
// windows, and the output and late streams read from it. combine folds
// each map partition's records per key and window before the shuffle
// (fold.Add and fold.Merge must then be associative and commutative: the
// count and reduce forms); without it every record crosses the shuffle
// and a key's records are added in event-time order (AggregateByEventWindow,
// whose Add need not commute).
func eventWindow[T any, K comparable, A any](s *Stream[Event[T]], name string, key func(T) K, w EventWindows, mode OutputMode,
	fold *eventwin.Fold[Event[T], A], combine bool, n int) *EventWindowStream[T, K, A] {
	c := s.ctx
	sources := c.e.EventTimeSourcesOf(s.rt)
	switch err := w.check(); {
	case err != nil:
		c.setErr(fmt.Errorf("%s (%s): %w", name, caller(), err))
		w = TumblingWindows(time.Second)
	case len(sources) == 0:
		c.setErr(fmt.Errorf("%s (%s): the stream has no event time: derive it from WithEventTime", name, caller()))
	case mode != AppendMode && mode != UpdateMode:
		c.setErr(fmt.Errorf("%s (%s): unknown output mode %v", name, caller(), mode))
	case key == nil:
		c.setErr(fmt.Errorf("%s (%s): needs a key function", name, caller()))
	}
	spec := w.spec()
	wmode := eventwin.Append
	if mode == UpdateMode {
		wmode = eventwin.Update
	}
	type state = ewState[T, A]
	// close ends a key's interval; nil when nothing is left of it.
	closeKey := func(k K, st *state, wm eventwin.Watermark) []Pair[K, state] {
		if !st.Close(wm, wmode) {
			return nil
		}
		return []Pair[K, state]{{Key: k, Value: *st}}
	}
	var keys atomic.Int64 // keys in the last map partition combined: the next one's size hint
	var self *Stream[Pair[K, state]]
	self = newStream(c, name, s.slide, func(t time.Time) (*rdd.Dataset[Pair[K, state]], error) {
		at, known, err := c.e.WatermarkAt(sources, t)
		if err != nil {
			return nil, err
		}
		wm := eventwin.Watermark{At: at, Known: known}
		prev, err := self.At(t.Add(-s.slide))
		if err != nil {
			return nil, err
		}
		if prev == nil {
			prev = rdd.Empty[Pair[K, state]](c.rctx())
		}
		in, err := s.rt.AtOrEmpty(t)
		if err != nil {
			return nil, err
		}
		if combine {
			partials := rdd.MapPartitions(in, func(recs iter.Seq[Event[T]]) iter.Seq[Pair[K, state]] {
				return func(yield func(Pair[K, state]) bool) {
					cb := eventwin.NewCombiner[K](spec, wm, fold, int(keys.Load()))
					recs(func(r Event[T]) bool {
						cb.Add(key(r.Value), r.Time.UnixMilli(), r)
						return true
					})
					keys.Store(int64(cb.Len()))
					for k, st := range cb.All() {
						if !yield(Pair[K, state]{Key: k, Value: st}) {
							return
						}
					}
				}
			})
			cg := rdd.Cogroup(prev, partials, n)
			return rdd.FlatMapSameKey(cg, func(kg Pair[K, rdd.Grouped[state, state]]) []Pair[K, state] {
				st := eventwin.Resume(headOf(kg.Value.Left))
				for i := range kg.Value.Right {
					st.Merge(spec, &kg.Value.Right[i], fold.Merge)
				}
				return closeKey(kg.Key, &st, wm)
			}), nil
		}
		keyed := rdd.Map(in, func(r Event[T]) Pair[K, Event[T]] { return Pair[K, Event[T]]{Key: key(r.Value), Value: r} })
		cg := rdd.Cogroup(prev, keyed, n)
		return rdd.FlatMapSameKey(cg, func(kg Pair[K, rdd.Grouped[state, Event[T]]]) []Pair[K, state] {
			st := eventwin.Resume(headOf(kg.Value.Left))
			recs := slices.Clone(kg.Value.Right)
			slices.SortStableFunc(recs, func(a, b Event[T]) int { return cmp.Compare(a.Time.UnixMilli(), b.Time.UnixMilli()) })
			for _, r := range recs {
				st.Add(spec, wm, r.Time.UnixMilli(), r, fold)
			}
			return closeKey(kg.Key, &st, wm)
		}), nil
	}, s)
	self.rt.MarkState(n, w.String())
	self.rt.RememberAtLeast(2 * s.slide)
	out := FlatMap(self, func(p Pair[K, state]) []Windowed[K, A] { return windowed(p.Key, p.Value.Out) })
	late := FlatMap(self, func(p Pair[K, state]) []Event[T] { return p.Value.Late })
	out.nameTarget, late.nameTarget = self, self
	lc := &lateCounter[T, K, A]{state: self}
	lc.fn = engine.PartitionFunc(c.e, func(_ *rdd.TaskContext, records []Pair[K, state], _ string) (int64, error) {
		var n int64
		for _, r := range records {
			n += int64(len(r.Value.Late))
		}
		return n, nil
	})
	c.e.AddLateCounter(lc)
	c.mu.Lock()
	c.eventOps = append(c.eventOps, eventOp{id: self.id, name: name, sources: sources})
	c.mu.Unlock()
	return &EventWindowStream[T, K, A]{Stream: out, late: late, state: self, sources: sources}
}

// headOf returns the first of xs, or nil.
func headOf[X any](xs []X) *X {
	if len(xs) == 0 {
		return nil
	}
	return &xs[0]
}

// windowed returns key's windows as the operator outputs them.
func windowed[K, A any](key K, wins []eventwin.Win[A]) []Windowed[K, A] {
	out := make([]Windowed[K, A], len(wins))
	for i, x := range wins {
		out[i] = Windowed[K, A]{Key: key, Start: time.UnixMilli(x.Start).UTC(), End: time.UnixMilli(x.End).UTC(), Value: x.Acc}
	}
	return out
}

// lateCounter counts an operator's late records for the engine.
type lateCounter[T any, K comparable, A any] struct {
	state *Stream[Pair[K, ewState[T, A]]]
	fn    int
}

func (l *lateCounter[T, K, A]) OpID() int32 { return l.state.id }

func (l *lateCounter[T, K, A]) LateRecords(ctx context.Context, t time.Time) (int64, error) {
	ds, err := l.state.At(t)
	if ds == nil || err != nil {
		return 0, err
	}
	parts, err := rdd.RunPartitionFunc[Pair[K, ewState[T, A]], int64](ctx, ds, l.fn, "", nil)
	var n int64
	for _, p := range parts {
		n += p
	}
	return n, err
}

// OperatorWatermark is the watermark an event-time window operator ran (or
// runs) an interval with.
type OperatorWatermark struct {
	// Stream is the operator's state stream, which listener.LateRecords
	// names, and Name its operator ("countByEventWindow", ...).
	Stream int32
	Name   string
	// Watermark is the watermark; none (HasWatermark false) while an
	// event-time stream the operator reads has none.
	Watermark    time.Time
	HasWatermark bool
}

// Watermarks returns the watermark of every event-time window operator in
// interval t, in the order the program made them; false while the context
// does not know t's manifest (not cut yet, or forgotten).
func (c *Context) Watermarks(t time.Time) ([]OperatorWatermark, bool) {
	if _, ok := c.e.EventTimesAt(t); !ok {
		return nil, false
	}
	c.mu.Lock()
	ops := slices.Clone(c.eventOps)
	c.mu.Unlock()
	out := make([]OperatorWatermark, 0, len(ops))
	for _, op := range ops {
		w := OperatorWatermark{Stream: op.id, Name: op.name}
		if wm, ok, err := c.e.WatermarkAt(op.sources, t); err == nil && ok {
			w.Watermark, w.HasWatermark = time.UnixMilli(wm).UTC(), true
		}
		out = append(out, w)
	}
	return out, true
}
