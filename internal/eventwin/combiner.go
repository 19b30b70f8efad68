package eventwin

import "iter"

// Combiner folds one map partition's records into a partial State per key
// before the shuffle (the map-side combine of the count and reduce
// operators): what crosses the shuffle is one partial state per key and
// map partition, a few windows each, instead of every record. Keys come
// out in order of their first record, so a recomputed partition comes out
// as the original did.
type Combiner[K comparable, E, A any] struct {
	w      Windows
	wm     Watermark
	f      *Fold[E, A]
	idx    map[K]int32
	keys   []K
	states []State[E, A]
}

// NewCombiner returns an empty combiner for an interval's windows and
// watermark, sized for hint keys.
func NewCombiner[K comparable, E, A any](w Windows, wm Watermark, f *Fold[E, A], hint int) *Combiner[K, E, A] {
	return &Combiner[K, E, A]{w: w, wm: wm, f: f, idx: make(map[K]int32, hint),
		keys: make([]K, 0, hint), states: make([]State[E, A], 0, hint)}
}

// Add folds the record x of key k at event time ts.
func (c *Combiner[K, E, A]) Add(k K, ts int64, x E) {
	i, ok := c.idx[k]
	if !ok {
		i = int32(len(c.keys))
		c.idx[k] = i
		c.keys = append(c.keys, k)
		c.states = append(c.states, State[E, A]{})
	}
	c.states[i].Add(c.w, c.wm, ts, x, c.f)
}

// Len is the number of keys.
func (c *Combiner[K, E, A]) Len() int { return len(c.keys) }

// All yields each key's partial state, in order of its first record.
func (c *Combiner[K, E, A]) All() iter.Seq2[K, State[E, A]] {
	return func(yield func(K, State[E, A]) bool) {
		for i, k := range c.keys {
			if !yield(k, c.states[i]) {
				return
			}
		}
	}
}
