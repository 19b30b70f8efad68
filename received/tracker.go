// Package received tracks the blocks receivers stored and allocates them to
// intervals: Spark's ReceivedBlockTracker. Interval t gets every unallocated
// block stamped at or before t; a block that arrives after its interval was
// cut goes to the next one, so nothing is lost. The runner allocates at each
// cut; a process that does not cut intervals (a worker) records the
// allocations the master's manifests name.
package received

import (
	"slices"
	"sync"
	"time"
)

// Block describes one received block stored in a block store.
type Block struct {
	Stream  int32
	Key     string
	Time    time.Time // when it was cut (or reached the master)
	Records int
	Bytes   int64 // estimated size in the block store
	// Locations are the processes holding the block (cluster.Peers
	// addresses); nil means this process.
	Locations []string
}

// Tracker holds the blocks receivers have stored and allocates them to
// intervals by their time. It is safe for concurrent use.
type Tracker struct {
	mu          sync.Mutex
	unallocated []Block
	allocated   map[int64]map[int32][]Block // interval ms -> stream -> blocks
	lastCut     int64                       // latest interval allocated
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{allocated: make(map[int64]map[int32][]Block)}
}

// Add records a stored block, to be allocated, and reports whether it was
// new: a block whose key the tracker holds already (reported twice, as when
// an acknowledgement was lost and the report resent) is not added again.
func (t *Tracker) Add(b Block) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.holdsLocked(b.Key) {
		return false
	}
	t.unallocated = append(t.unallocated, b)
	return true
}

// holdsLocked reports whether a block of key is unallocated or allocated;
// t.mu is held.
func (t *Tracker) holdsLocked(key string) bool {
	for _, b := range t.unallocated {
		if b.Key == key {
			return true
		}
	}
	for _, byStream := range t.allocated {
		for _, bs := range byStream {
			for _, b := range bs {
				if b.Key == key {
					return true
				}
			}
		}
	}
	return false
}

// Allocate assigns to interval at every unallocated block cut at or before at.
// Allocating the same interval twice is a no-op. It returns the number of
// Records allocated.
func (t *Tracker) Allocate(at time.Time) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := at.UnixMilli()
	if _, ok := t.allocated[ms]; ok {
		return 0
	}
	byStream := make(map[int32][]Block)
	var n int64
	rest := t.unallocated[:0]
	for _, b := range t.unallocated {
		if !b.Time.After(at) {
			byStream[b.Stream] = append(byStream[b.Stream], b)
			n += int64(b.Records)
		} else {
			rest = append(rest, b)
		}
	}
	for i := len(rest); i < len(t.unallocated); i++ {
		t.unallocated[i] = Block{}
	}
	t.unallocated = rest
	t.allocated[ms] = byStream
	t.lastCut = max(t.lastCut, ms)
	return n
}

// AddAllocated allocates blocks of stream directly to interval at (queue
// inputs, and a manifest's inputs on a process that does not cut intervals).
func (t *Tracker) AddAllocated(at time.Time, stream int32, blocks []Block) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := at.UnixMilli()
	byStream := t.allocated[ms]
	if byStream == nil {
		byStream = make(map[int32][]Block)
		t.allocated[ms] = byStream
	}
	byStream[stream] = append(byStream[stream], blocks...)
}

// MarkAllocated makes interval at allocated, with no blocks if it had none:
// a later Allocate of it is a no-op. A master that restarts marks the
// intervals it runs again as they were logged, so that blocks allocated
// to no logged interval go to the next interval cut.
func (t *Tracker) MarkAllocated(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := at.UnixMilli()
	if t.allocated[ms] == nil {
		t.allocated[ms] = make(map[int32][]Block)
	}
	t.lastCut = max(t.lastCut, ms)
}

// Blocks returns the blocks of stream allocated to interval at.
func (t *Tracker) Blocks(stream int32, at time.Time) []Block {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allocated[at.UnixMilli()][stream]
}

// Records returns how many records were allocated to interval at.
func (t *Tracker) Records(at time.Time) int64 {
	return t.sum(at, func(b Block) int64 { return int64(b.Records) })
}

// Bytes returns the estimated size of the blocks allocated to interval at.
func (t *Tracker) Bytes(at time.Time) int64 {
	return t.sum(at, func(b Block) int64 { return b.Bytes })
}

// sum adds f over the blocks allocated to interval at.
func (t *Tracker) sum(at time.Time, f func(Block) int64) int64 {
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

// Pending reports whether blocks await allocation.
func (t *Tracker) Pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.unallocated) > 0
}

// Forget drops stream's allocations of intervals at or before cutoff and
// returns the keys of their blocks, for removal from the block store.
func (t *Tracker) Forget(stream int32, cutoff time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	c := cutoff.UnixMilli()
	for ms, byStream := range t.allocated {
		if ms > c {
			continue
		}
		for _, b := range byStream[stream] {
			keys = append(keys, b.Key)
		}
		delete(byStream, stream)
		if len(byStream) == 0 {
			delete(t.allocated, ms)
		}
	}
	return keys
}

// Holds reports whether the tracker holds a block of key, allocated or not
// (it is not yet forgotten).
func (t *Tracker) Holds(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.holdsLocked(key)
}

// HeldBy returns the blocks, allocated or not, that name addr among their
// locations.
func (t *Tracker) HeldBy(addr string) []Block {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Block
	add := func(b Block) {
		if slices.Contains(b.Locations, addr) {
			out = append(out, b)
		}
	}
	for _, b := range t.unallocated {
		add(b)
	}
	for _, streams := range t.allocated {
		for _, bs := range streams {
			for _, b := range bs {
				add(b)
			}
		}
	}
	return out
}

// AddHolder adds addr to the locations of the blocks of keys the tracker
// holds, allocated or not, and returns those keys.
func (t *Tracker) AddHolder(keys []string, addr string) []string {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var found []string
	add := func(b *Block) {
		if !want[b.Key] {
			return
		}
		want[b.Key] = false
		found = append(found, b.Key)
		if !slices.Contains(b.Locations, addr) {
			b.Locations = append(slices.Clone(b.Locations), addr)
		}
	}
	for i := range t.unallocated {
		add(&t.unallocated[i])
	}
	for _, byStream := range t.allocated {
		for _, bs := range byStream {
			for i := range bs {
				add(&bs[i])
			}
		}
	}
	return found
}
