package rdd

import (
	"sync"
	"sync/atomic"
)

// combinerPool keeps the combiners of tasks that ended, cleared, for the
// next task of the same operator and side. A stream runs the same operators
// every interval with about as many keys, and a map made for them each
// time (allocated, zeroed, then collected) costs more than one cleared.
// Like sizeHints it is keyed by the dataset ID without its interval, and
// bounded: at most maxIdleCombiners idle combiners per operator and side,
// each of at most maxPooledKeys keys (a larger one is left to the
// collector, so one burst's map is not held for good), for at most
// maxHints operators; static datasets (Op 0) get none.
type combinerPool struct {
	m sync.Map // hintKey -> *idleCombiners
	n atomic.Int64
}

// idleCombiners are the idle combiners of one operator and side, all of
// the same type (the operator's).
type idleCombiners struct {
	mu   sync.Mutex
	free []any // *combiner[K, C]
}

const (
	maxIdleCombiners = 4
	maxPooledKeys    = 1 << 15
)

// getCombiner returns an empty combiner for side of dataset id: an idle one
// if the pool has one, else a new one sized by the hints (def at least).
func getCombiner[K comparable, C any](c *Context, id ID, side int8, def int) *combiner[K, C] {
	if id.Op != 0 {
		if v, ok := c.combiners.m.Load(hintKey{id.Op, id.Seq, side}); ok {
			ic := v.(*idleCombiners)
			ic.mu.Lock()
			var x any
			if n := len(ic.free); n > 0 {
				x = ic.free[n-1]
				ic.free[n-1] = nil
				ic.free = ic.free[:n-1]
			}
			ic.mu.Unlock()
			if m, ok := x.(*combiner[K, C]); ok {
				if m.pairs == nil {
					m.pairs = make([]Pair[K, C], 0, c.hints.get(id, side, def))
				}
				return m
			}
		}
	}
	return newCombiner[K, C](c.hints.get(id, side, def))
}

// putCombiner records m's size in the hints and gives m back to the pool,
// cleared. ownPairs says the task is done with m.pairs (its records were
// copied or yielded): the array is reused too; otherwise it went on (a
// bucket refers to it) and the next task gets a new one.
func putCombiner[K comparable, C any](c *Context, id ID, side int8, m *combiner[K, C], ownPairs bool) {
	n := len(m.pairs)
	c.hints.put(id, side, n)
	if id.Op == 0 || n > maxPooledKeys {
		return
	}
	k := hintKey{id.Op, id.Seq, side}
	v, ok := c.combiners.m.Load(k)
	if !ok {
		if c.combiners.n.Load() >= maxHints {
			return
		}
		var loaded bool
		if v, loaded = c.combiners.m.LoadOrStore(k, new(idleCombiners)); !loaded {
			c.combiners.n.Add(1)
		}
	}
	ic := v.(*idleCombiners)
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if len(ic.free) >= maxIdleCombiners {
		return
	}
	clear(m.idx)
	if ownPairs {
		clear(m.pairs) // hold no records of the task that ended
		m.pairs = m.pairs[:0]
	} else {
		m.pairs = nil
	}
	ic.free = append(ic.free, m)
}
