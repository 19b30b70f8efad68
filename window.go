package dstream

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/rdd"
)

// windowTimes lists the parent intervals in (from, to], oldest first.
func windowTimes(from, to time.Time, step time.Duration) []time.Time {
	var ts []time.Time
	for t := to; t.After(from); t = t.Add(-step) {
		ts = append([]time.Time{t}, ts...)
	}
	return ts
}

// collect returns s's datasets at times ts, skipping intervals where it has none.
func collect[T any](s *Stream[T], ts []time.Time) ([]*rdd.Dataset[T], error) {
	var out []*rdd.Dataset[T]
	for _, t := range ts {
		ds, err := s.At(t)
		if err != nil {
			return nil, err
		}
		if ds != nil {
			out = append(out, ds)
		}
	}
	return out, nil
}

// Window yields, every slide, the union of the intervals in the last window.
// window and slide must be multiples of s's slide.
func Window[T any](s *Stream[T], window, slide time.Duration) *Stream[T] {
	c := s.ctx
	ok := checkMultiple(c, "window", "window", window, s.slide)
	ok = checkMultiple(c, "window", "slide", slide, s.slide) && ok
	if !ok {
		window, slide = s.slide, s.slide
	}
	s.rt.RememberAtLeast(window + slide)
	return newStream(c, "window", slide, func(t time.Time) (*rdd.Dataset[T], error) {
		dss, err := collect(s, windowTimes(t.Add(-window), t, s.slide))
		if err != nil || len(dss) == 0 {
			if err == nil {
				return rdd.Empty[T](c.rctx()), nil
			}
			return nil, err
		}
		return rdd.Union(dss[0], dss[1:]...), nil
	}, s)
}

// CountByWindow yields, every slide, the number of records in the last window.
func CountByWindow[T any](s *Stream[T], window, slide time.Duration) *Stream[int64] {
	// Count yields a record (possibly 0) every interval, so every window
	// has a value, 0 when empty.
	return ReduceByWindowInv(Count(s), addInt64, subInt64, window, slide)
}

// ReduceByWindow yields, every slide, the fold by f of the records in the
// last window (nothing when the window is empty).
func ReduceByWindow[T any](s *Stream[T], f func(T, T) T, window, slide time.Duration) *Stream[T] {
	return Reduce(Window(Reduce(s, f), window, slide), f)
}

// ReduceByWindowInv is ReduceByWindow computed incrementally: the previous
// window's value, minus (by invF) the intervals that left, plus the ones that
// entered. invF must undo f. The window's value is kept even when it folds
// back to the identity (a window that never saw data yields nothing).
func ReduceByWindowInv[T any](s *Stream[T], f, invF func(T, T) T, window, slide time.Duration) *Stream[T] {
	keyed := Map(s, func(x T) Pair[struct{}, T] { return Pair[struct{}, T]{Value: x} })
	red := ReduceByKeyAndWindowInv(keyed, f, invF, window, slide, 1, nil)
	out := Map(red, func(p Pair[struct{}, T]) T { return p.Value })
	out.nameTarget = red
	return out
}

// ReduceByKeyAndWindow yields, every slide, each key's values in the last
// window folded by f, recomputed from the window's intervals.
func ReduceByKeyAndWindow[K comparable, V any](s *Stream[Pair[K, V]], f func(V, V) V, window, slide time.Duration, n int) *Stream[Pair[K, V]] {
	return ReduceByKey(Window(ReduceByKey(s, f, n), window, slide), f, n)
}

// ReduceByKeyAndWindowInv is ReduceByKeyAndWindow computed incrementally:
// the previous window's per-key values, minus (by invF) the values of the
// intervals that left the window, plus those that entered. invF must undo f
// (f(a,b) then invF(.,b) gives a back). When keep is non-nil, keys for which
// it returns false are dropped from the window (use it to drop keys whose
// value fell back to zero). The window's state is checkpointed every
// interval, so its lineage stays one step deep. f must be commutative and
// associative and invF its inverse, as in an abelian group (sums, counts).
func ReduceByKeyAndWindowInv[K comparable, V any](s *Stream[Pair[K, V]], f, invF func(V, V) V, window, slide time.Duration, n int, keep func(Pair[K, V]) bool) *Stream[Pair[K, V]] {
	c := s.ctx
	ok := checkMultiple(c, "reduceByKeyAndWindow", "window", window, s.slide)
	ok = checkMultiple(c, "reduceByKeyAndWindow", "slide", slide, s.slide) && ok
	if !ok {
		window, slide = s.slide, s.slide
	}
	// Each interval's reduced data is checkpointed, so the window reads old
	// intervals from it without their input: the input (its received
	// blocks) is kept for one interval, not for the window.
	reduced := ReduceByKey(s, f, n)
	// In a cluster its lineage is kept for one checkpoint interval, so it
	// is written durably every slide: its parents then remember two slides.
	reduced.rt.MarkState(n, "")
	reduced.rt.SetCheckpointEvery(reduced.slide)
	reduced.rt.RememberAtLeast(window + slide)
	var self *Stream[Pair[K, V]]
	self = newStream(c, "reduceByKeyAndWindow", slide, func(t time.Time) (*rdd.Dataset[Pair[K, V]], error) {
		prevT := t.Add(-slide)
		prev, err := self.At(prevT)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			prev = rdd.Empty[Pair[K, V]](c.rctx())
		}
		olds, err := collect(reduced, windowTimes(prevT.Add(-window), t.Add(-window), s.slide))
		if err != nil {
			return nil, err
		}
		news, err := collect(reduced, windowTimes(prevT, t, s.slide))
		if err != nil {
			return nil, err
		}
		all := append(append([]*rdd.Dataset[Pair[K, V]]{prev}, olds...), news...)
		nOld := len(olds)
		grouped := rdd.CogroupAll(n, all...)
		merged := rdd.FlatMapSameKey(grouped, func(kg Pair[K, [][]V]) []Pair[K, V] {
			g := kg.Value
			var acc V
			has := len(g[0]) > 0
			if has {
				acc = g[0][0]
			}
			for _, old := range g[1 : 1+nOld] {
				for _, v := range old {
					if !has {
						// The key was dropped by keep while values of it
						// were still in the window: start from the
						// identity, which invF(v, v) is.
						acc, has = invF(v, v), true
					}
					acc = invF(acc, v)
				}
			}
			for _, nw := range g[1+nOld:] {
				for _, v := range nw {
					if has {
						acc = f(acc, v)
					} else {
						acc, has = v, true
					}
				}
			}
			if !has {
				return nil
			}
			out := Pair[K, V]{Key: kg.Key, Value: acc}
			if keep != nil && !keep(out) {
				return nil
			}
			return []Pair[K, V]{out}
		})
		return merged, nil
	}, reduced)
	self.rt.MarkState(n, fmt.Sprintf("window %v slide %v", window, slide))
	self.companions = append(self.companions, reduced)
	self.rt.RememberAtLeast(2 * slide)
	return self
}

// GroupByKeyAndWindow yields, every slide, each key's values in the last window.
func GroupByKeyAndWindow[K comparable, V any](s *Stream[Pair[K, V]], window, slide time.Duration, n int) *Stream[Pair[K, []V]] {
	return GroupByKey(Window(s, window, slide), n)
}

// CountByValueAndWindow yields, every slide, each distinct record in the last
// window with its count, incrementally; records whose count falls to zero
// are dropped.
func CountByValueAndWindow[T comparable](s *Stream[T], window, slide time.Duration, n int) *Stream[Pair[T, int64]] {
	ones := Map(s, func(x T) Pair[T, int64] { return KV(x, int64(1)) })
	return ReduceByKeyAndWindowInv(ones, addInt64, subInt64, window, slide, n, func(p Pair[T, int64]) bool { return p.Value > 0 })
}
