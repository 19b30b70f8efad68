package rdd

import (
	"sync"
	"sync/atomic"
)

// sizeHints remembers how many keys an operator's combiners held the last
// time it ran, so that the next interval's combiner is sized at once instead
// of growing from small and reallocating on the way (in a stream the same
// operator runs every interval with about as many keys). It is keyed by the
// dataset ID without its interval; static datasets (Op 0) get no hint, and
// past maxHints operators new ones get none, so it stays bounded.
type sizeHints struct {
	m sync.Map // hintKey -> *atomic.Int64
	n atomic.Int64
}

// Sides of a dataset's hints beside its combiners' (0, 1).
const (
	hintCollect int8 = 2 // a persisted partition's records, collected to be cached
)

type hintKey struct {
	op, seq int32
	side    int8 // which combiner of the dataset: map side, reduce side, ...
}

const maxHints = 4096

// get returns the last size recorded for (id, side), or def.
func (h *sizeHints) get(id ID, side int8, def int) int {
	if id.Op == 0 {
		return def
	}
	if v, ok := h.m.Load(hintKey{id.Op, id.Seq, side}); ok {
		return max(def, int(v.(*atomic.Int64).Load()))
	}
	return def
}

// put records n keys for (id, side).
func (h *sizeHints) put(id ID, side int8, n int) {
	if id.Op == 0 {
		return
	}
	k := hintKey{id.Op, id.Seq, side}
	v, ok := h.m.Load(k)
	if !ok {
		if h.n.Load() >= maxHints {
			return
		}
		var loaded bool
		if v, loaded = h.m.LoadOrStore(k, new(atomic.Int64)); !loaded {
			h.n.Add(1)
		}
	}
	v.(*atomic.Int64).Store(int64(n))
}
