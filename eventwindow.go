package dstream

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dstream/dstream/internal/engine"
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
	state   *Stream[Pair[K, ewEntry[T, K, A]]]
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
	return FlatMap(w.state, func(p Pair[K, ewEntry[T, K, A]]) []Windowed[K, A] {
		out := make([]Windowed[K, A], len(p.Value.Wins))
		for i, x := range p.Value.Wins {
			out[i] = Windowed[K, A]{Key: p.Key, Start: time.UnixMilli(x.Start).UTC(), End: time.UnixMilli(x.End).UTC(), Value: x.Acc}
		}
		return out
	})
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
	wm, ok, err := watermarkAt(w.ctx, w.sources, t)
	if err != nil || !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(wm).UTC(), true
}

// ewWin is one open window of a key.
type ewWin[A any] struct {
	Start, End int64 // Unix ms
	Acc        A
	Changed    bool // this interval's records changed it
}

// ewEntry is a key's state: its open windows, by start, and what the
// interval outputs and dropped (emptied every interval).
type ewEntry[T any, K comparable, A any] struct {
	Wins []ewWin[A]
	Out  []Windowed[K, A]
	Late []Event[T]
}

// AggregateByEventWindow groups s's records by key and event-time window
// and folds each group with agg; see WithEventTime for the watermark, late
// records and the output modes. s must derive from one
// or more WithEventTime streams. The open windows are state: partitioned by
// key over n partitions (<= 0: the default), checkpointed and recovered as
// every state stream's.
func AggregateByEventWindow[T any, K comparable, A any](s *Stream[Event[T]], key func(T) K, w EventWindows, mode OutputMode, agg Aggregator[T, A], n int) *EventWindowStream[T, K, A] {
	if agg.Zero == nil || agg.Add == nil || (w.session() && agg.Merge == nil) {
		s.ctx.setErr(fmt.Errorf("aggregateByEventWindow (%s): the aggregator needs Zero and Add, and Merge for session windows", caller()))
		return eventWindow[T, K, A](s, "aggregateByEventWindow", key, w, mode, nil, nil, nil, n)
	}
	first := func(x T) A { return agg.Add(agg.Zero(), x) }
	return eventWindow(s, "aggregateByEventWindow", key, w, mode, first, agg.Add, agg.Merge, n)
}

// ReduceByEventWindow folds each key's values in each event-time window by
// f, which must be associative (and commutative when the order of records
// of equal event time varies).
func ReduceByEventWindow[K comparable, V any](s *Stream[Event[Pair[K, V]]], f func(V, V) V, w EventWindows, mode OutputMode, n int) *EventWindowStream[Pair[K, V], K, V] {
	return eventWindow(s, "reduceByEventWindow", func(p Pair[K, V]) K { return p.Key },
		w, mode, func(p Pair[K, V]) V { return p.Value }, func(a V, p Pair[K, V]) V { return f(a, p.Value) }, f, n)
}

// CountByEventWindow counts each key's records in each event-time window.
func CountByEventWindow[T any, K comparable](s *Stream[Event[T]], key func(T) K, w EventWindows, mode OutputMode, n int) *EventWindowStream[T, K, int64] {
	return eventWindow(s, "countByEventWindow", key, w, mode,
		func(T) int64 { return 1 }, func(a int64, _ T) int64 { return a + 1 }, addInt64, n)
}

// eventWindow builds the operator: a state stream of each key's open
// windows, and the output and late streams read from it.
func eventWindow[T any, K comparable, A any](s *Stream[Event[T]], name string, key func(T) K, w EventWindows, mode OutputMode,
	first func(T) A, add func(A, T) A, merge func(A, A) A, n int) *EventWindowStream[T, K, A] {
	c := s.ctx
	sources := eventSourcesOf(c, s.rt)
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
	type entry = ewEntry[T, K, A]
	step := func(wm int64, hasWM bool, kg Pair[K, rdd.Grouped[entry, Event[T]]]) []Pair[K, entry] {
		var e entry
		if len(kg.Value.Left) > 0 {
			e = kg.Value.Left[0]
			e.Wins = slices.Clone(e.Wins)
		}
		e.Out, e.Late = nil, nil
		for i := range e.Wins {
			e.Wins[i].Changed = false
		}
		closed := func(end int64) bool { return hasWM && end <= wm }
		recs := slices.Clone(kg.Value.Right)
		slices.SortStableFunc(recs, func(a, b Event[T]) int { return cmp.Compare(a.Time.UnixMilli(), b.Time.UnixMilli()) })
		for _, r := range recs {
			ts := r.Time.UnixMilli()
			if w.session() {
				end := ts + w.gap.Milliseconds()
				if closed(end) {
					e.Late = append(e.Late, r)
					continue
				}
				e.Wins = addToSession(e.Wins, ts, end, r.Value, first, add, merge)
				continue
			}
			size, slide := w.size.Milliseconds(), w.slide.Milliseconds()
			last := floorDiv(ts, slide) * slide
			open := false
			for start := last - (size-1)/slide*slide; start <= last; start += slide {
				if start+size <= ts || closed(start+size) {
					continue
				}
				open = true
				i, found := slices.BinarySearchFunc(e.Wins, start, func(x ewWin[A], s int64) int { return cmp.Compare(x.Start, s) })
				if found {
					e.Wins[i].Acc, e.Wins[i].Changed = add(e.Wins[i].Acc, r.Value), true
				} else {
					e.Wins = slices.Insert(e.Wins, i, ewWin[A]{Start: start, End: start + size, Acc: first(r.Value), Changed: true})
				}
			}
			if !open {
				e.Late = append(e.Late, r)
			}
		}
		kept := e.Wins[:0]
		for _, x := range e.Wins {
			out := x.Changed && mode == UpdateMode || closed(x.End) && mode == AppendMode
			if out {
				e.Out = append(e.Out, Windowed[K, A]{Key: kg.Key, Start: time.UnixMilli(x.Start).UTC(), End: time.UnixMilli(x.End).UTC(), Value: x.Acc})
			}
			if !closed(x.End) {
				kept = append(kept, x)
			}
		}
		e.Wins = kept
		if len(e.Wins) == 0 && len(e.Out) == 0 && len(e.Late) == 0 {
			return nil
		}
		return []Pair[K, entry]{{Key: kg.Key, Value: e}}
	}
	var self *Stream[Pair[K, entry]]
	self = newStream(c, name, s.slide, func(t time.Time) (*rdd.Dataset[Pair[K, entry]], error) {
		wm, hasWM, err := watermarkAt(c, sources, t)
		if err != nil {
			return nil, err
		}
		prev, err := self.At(t.Add(-s.slide))
		if err != nil {
			return nil, err
		}
		if prev == nil {
			prev = rdd.Empty[Pair[K, entry]](c.rctx())
		}
		in, err := s.rt.AtOrEmpty(t)
		if err != nil {
			return nil, err
		}
		keyed := rdd.Map(in, func(r Event[T]) Pair[K, Event[T]] { return Pair[K, Event[T]]{Key: key(r.Value), Value: r} })
		cg := rdd.Cogroup(prev, keyed, n)
		return rdd.FlatMapSameKey(cg, func(kg Pair[K, rdd.Grouped[entry, Event[T]]]) []Pair[K, entry] {
			return step(wm, hasWM, kg)
		}), nil
	}, s)
	self.rt.MarkState(n, w.String())
	self.rt.RememberAtLeast(2 * s.slide)
	out := FlatMap(self, func(p Pair[K, entry]) []Windowed[K, A] { return p.Value.Out })
	late := FlatMap(self, func(p Pair[K, entry]) []Event[T] { return p.Value.Late })
	out.nameTarget, late.nameTarget = self, self
	lc := &lateCounter[T, K, A]{state: self}
	lc.fn = engine.PartitionFunc(c.e, func(_ *rdd.TaskContext, records []Pair[K, entry], _ string) (int64, error) {
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

// addToSession adds a record at ts, opening [ts, end), to a key's sessions
// (sorted by start), merging every session it overlaps or touches.
func addToSession[T, A any](wins []ewWin[A], ts, end int64, x T, first func(T) A, add func(A, T) A, merge func(A, A) A) []ewWin[A] {
	lo := slices.IndexFunc(wins, func(w ewWin[A]) bool { return w.End >= ts && w.Start <= end })
	if lo < 0 {
		i, _ := slices.BinarySearchFunc(wins, ts, func(w ewWin[A], s int64) int { return cmp.Compare(w.Start, s) })
		return slices.Insert(wins, i, ewWin[A]{Start: ts, End: end, Acc: first(x), Changed: true})
	}
	hi := lo
	for hi+1 < len(wins) && wins[hi+1].Start <= end {
		hi++
	}
	m := wins[lo]
	for _, w := range wins[lo+1 : hi+1] {
		m.Acc = merge(m.Acc, w.Acc)
		m.End = max(m.End, w.End)
	}
	m.Acc = add(m.Acc, x)
	m.Start, m.End, m.Changed = min(m.Start, ts), max(m.End, end), true
	return slices.Replace(wins, lo, hi+1, m)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// lateCounter counts an operator's late records for the engine.
type lateCounter[T any, K comparable, A any] struct {
	state *Stream[Pair[K, ewEntry[T, K, A]]]
	fn    int
}

func (l *lateCounter[T, K, A]) OpID() int32 { return l.state.id }

func (l *lateCounter[T, K, A]) LateRecords(ctx context.Context, t time.Time) (int64, error) {
	ds, err := l.state.At(t)
	if ds == nil || err != nil {
		return 0, err
	}
	parts, err := rdd.RunPartitionFunc[Pair[K, ewEntry[T, K, A]], int64](ctx, ds, l.fn, "", nil)
	var n int64
	for _, p := range parts {
		n += p
	}
	return n, err
}

// eventOp is an event-time window operator, as Watermarks lists it.
type eventOp struct {
	id      int32 // its state stream's
	name    string
	sources []int32
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
		if wm, ok, err := watermarkAt(c, op.sources, t); err == nil && ok {
			w.Watermark, w.HasWatermark = time.UnixMilli(wm).UTC(), true
		}
		out = append(out, w)
	}
	return out, true
}
