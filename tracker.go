package dstream

import (
	"sync"
	"time"
)

// blockInfo describes one received block stored in the block store.
type blockInfo struct {
	stream  int32
	key     string
	time    time.Time
	records int
	bytes   int64 // estimated size in the block store
	// locations are the processes holding the block (cluster.Peers
	// addresses); nil means this process.
	locations []string
}

// tracker is Spark's ReceivedBlockTracker: it holds the blocks receivers have
// stored and allocates them to intervals by their cut time. Interval t gets
// every unallocated block cut at or before t; a block that arrives after its
// interval was cut goes to the next one, so nothing is lost.
type tracker struct {
	mu          sync.Mutex
	unallocated []blockInfo
	allocated   map[int64]map[int32][]blockInfo // interval ms -> stream -> blocks
	lastCut     int64                           // latest interval allocated
}

func newTracker() *tracker {
	return &tracker{allocated: make(map[int64]map[int32][]blockInfo)}
}

func (t *tracker) add(b blockInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unallocated = append(t.unallocated, b)
}

// allocate assigns to interval at every unallocated block cut at or before at.
// Allocating the same interval twice is a no-op. It returns the number of
// records allocated.
func (t *tracker) allocate(at time.Time) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := at.UnixMilli()
	if _, ok := t.allocated[ms]; ok {
		return 0
	}
	byStream := make(map[int32][]blockInfo)
	var n int64
	rest := t.unallocated[:0]
	for _, b := range t.unallocated {
		if !b.time.After(at) {
			byStream[b.stream] = append(byStream[b.stream], b)
			n += int64(b.records)
		} else {
			rest = append(rest, b)
		}
	}
	for i := len(rest); i < len(t.unallocated); i++ {
		t.unallocated[i] = blockInfo{}
	}
	t.unallocated = rest
	t.allocated[ms] = byStream
	t.lastCut = max(t.lastCut, ms)
	return n
}

// addAllocated allocates blocks of stream directly to interval at (queue
// inputs, and a manifest's inputs on a process that does not cut intervals).
func (t *tracker) addAllocated(at time.Time, stream int32, blocks []blockInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := at.UnixMilli()
	byStream := t.allocated[ms]
	if byStream == nil {
		byStream = make(map[int32][]blockInfo)
		t.allocated[ms] = byStream
	}
	byStream[stream] = append(byStream[stream], blocks...)
}

// blocks returns the blocks of stream allocated to interval at.
func (t *tracker) blocks(stream int32, at time.Time) []blockInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allocated[at.UnixMilli()][stream]
}

// records returns how many records were allocated to interval at.
func (t *tracker) records(at time.Time) int64 {
	return t.sum(at, func(b blockInfo) int64 { return int64(b.records) })
}

// bytes returns the estimated size of the blocks allocated to interval at.
func (t *tracker) bytes(at time.Time) int64 {
	return t.sum(at, func(b blockInfo) int64 { return b.bytes })
}

// sum adds f over the blocks allocated to interval at.
func (t *tracker) sum(at time.Time, f func(blockInfo) int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for _, bs := range t.allocated[at.UnixMilli()] {
		for _, b := range bs {
			n += f(b)
		}
	}
	return n
}

// pending reports whether blocks await allocation.
func (t *tracker) pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.unallocated) > 0
}

// forget drops stream's allocations of intervals at or before cutoff and
// returns the keys of their blocks, for removal from the block store.
func (t *tracker) forget(stream int32, cutoff time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	c := cutoff.UnixMilli()
	for ms, byStream := range t.allocated {
		if ms > c {
			continue
		}
		for _, b := range byStream[stream] {
			keys = append(keys, b.key)
		}
		delete(byStream, stream)
		if len(byStream) == 0 {
			delete(t.allocated, ms)
		}
	}
	return keys
}
