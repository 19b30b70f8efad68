package cluster

import (
	"maps"
	"slices"
	"sync"

	"github.com/dstream/dstream/rdd"
)

// emptyBuckets remembers which buckets of each map output are empty, as
// the map tasks reported (RunTaskResponse.empty_buckets), and tells the
// tasks reading them (MapOutputs.empty_buckets), so that a reader skips an
// empty bucket rather than fetch nothing and the map task pushes none: at
// short intervals, with a few records a partition, most buckets are empty
// (Spark's map statuses carry block sizes for the same reason). Forgetting
// is always safe: the bucket is fetched.
//
// A recomputed map output has the same buckets (tasks are deterministic),
// so an entry stays true whoever holds the output. Entries go with the
// shuffle's map output locations (Runner.ForgetShuffles); past
// maxEmptyShuffles shuffles (a safety net: the forgetting bounds them
// first) it drops the older half. It is safe for concurrent use.
type emptyBuckets struct {
	mu sync.Mutex
	m  map[rdd.ID][][]byte // shuffle -> map partition -> bitmap
}

// maxEmptyShuffles bounds the shuffles remembered: a window's worth of
// intervals of a graph's shuffles, with room to spare.
const maxEmptyShuffles = 4096

// note records map output m's empty buckets (rdd.TaskContext.EmptyBuckets)
// of shuffle, which has n map outputs.
func (e *emptyBuckets) note(shuffle rdd.ID, n, m int, bits []byte) {
	if len(bits) == 0 || m < 0 || m >= n {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = make(map[rdd.ID][][]byte)
	}
	outs, ok := e.m[shuffle]
	if !ok && len(e.m) >= maxEmptyShuffles {
		e.dropOldest()
	}
	if len(outs) != n {
		outs = make([][]byte, n)
		e.m[shuffle] = outs
	}
	outs[m] = append([]byte(nil), bits...)
}

// dropOldest forgets the older half of the shuffles remembered, by
// interval: O(n log n) once every n/2 new shuffles.
func (e *emptyBuckets) dropOldest() {
	times := make([]int64, 0, len(e.m))
	for id := range e.m {
		times = append(times, id.Time)
	}
	slices.Sort(times)
	upTo := times[(len(times)-1)/2]
	for id := range e.m {
		if id.Time <= upTo {
			delete(e.m, id)
		}
	}
}

// forget drops the shuffles pred matches (rdd.ShuffleForgetter).
func (e *emptyBuckets) forget(pred func(rdd.ID) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	maps.DeleteFunc(e.m, func(id rdd.ID, _ [][]byte) bool { return pred(id) })
}

// of returns the empty buckets of each of shuffle's n map outputs, for
// MapOutputs.empty_buckets: nil when none is known.
func (e *emptyBuckets) of(shuffle rdd.ID, n int) [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	outs := e.m[shuffle]
	if len(outs) != n {
		return nil
	}
	// A copy of the list: note may replace an element while the request
	// is sent (a map task run again). The bitmaps are shared: note
	// replaces one, never writes into it.
	return slices.Clone(outs)
}
