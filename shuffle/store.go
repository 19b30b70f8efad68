// Package shuffle keeps the map outputs of shuffles: one bucket per (map
// partition, reduce partition), stored as evictable blocks in the block store,
// and copies of buckets other processes' map tasks pushed to this one, the
// reader they expected (PutBucket).
// An evicted bucket is not an error: the map output counts as missing, and the
// scheduler recomputes it from lineage.
package shuffle

import (
	"fmt"
	"sync"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/rdd"
)

// Blocks is the part of the block store the shuffle store uses.
type Blocks interface {
	Put(key string, v any, size int64, class block.Class) error
	Get(key string) (any, bool)
	Contains(key string) bool
	Remove(key string) bool
}

// Store implements rdd.ShuffleStore over a block store.
type Store struct {
	blocks Blocks

	mu      sync.Mutex
	outputs map[rdd.ID]map[int]int // shuffle -> map partition -> number of buckets
	// pushed holds the buckets other processes' map tasks pushed here
	// (PutBucket), by shuffle: they are no output of this process.
	pushed map[rdd.ID][][2]int
}

// New returns a shuffle store keeping buckets in blocks.
func New(blocks Blocks) *Store {
	return &Store{blocks: blocks, outputs: make(map[rdd.ID]map[int]int), pushed: make(map[rdd.ID][][2]int)}
}

func key(s rdd.ID, m, r int) string {
	return fmt.Sprintf("shuffle_%d_%d_%d_%d_%d", s.Op, s.Time, s.Seq, m, r)
}

// PutMapOutput stores every bucket of map output mapPart, then records it as
// complete. If a bucket cannot be stored, it removes the buckets it stored
// (no recorded output accounts for them, so RemoveIf could not) and returns
// the error.
func (s *Store) PutMapOutput(shuffle rdd.ID, mapPart int, buckets []any) error {
	for r, b := range buckets {
		if err := s.blocks.Put(key(shuffle, mapPart, r), b, block.EstimateSize(b), block.Shuffle); err != nil {
			for i := range r {
				s.blocks.Remove(key(shuffle, mapPart, i))
			}
			return fmt.Errorf("shuffle %s map %d: %w", shuffle, mapPart, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.outputs[shuffle]
	if m == nil {
		m = make(map[int]int)
		s.outputs[shuffle] = m
	}
	m[mapPart] = len(buckets)
	return nil
}

// PutBucket stores a copy of bucket reduce of map output mapPart, which
// another process wrote and pushed here ahead of the reduce task that
// reads it: Bucket returns it, Missing does not count it (this process
// holds no such map output), and RemoveIf drops it with its shuffle. It
// replaces a copy already here (a map task that ran twice wrote the same
// records).
func (s *Store) PutBucket(shuffle rdd.ID, mapPart, reduce int, v any) error {
	if err := s.blocks.Put(key(shuffle, mapPart, reduce), v, block.EstimateSize(v), block.Shuffle); err != nil {
		return fmt.Errorf("shuffle %s map %d bucket %d: %w", shuffle, mapPart, reduce, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushed[shuffle] = append(s.pushed[shuffle], [2]int{mapPart, reduce})
	return nil
}

// Bucket returns bucket reduce of map output mapPart.
func (s *Store) Bucket(shuffle rdd.ID, mapPart, reduce int) (any, bool) {
	return s.blocks.Get(key(shuffle, mapPart, reduce))
}

// Missing lists the map partitions whose output is incomplete or partly evicted.
func (s *Store) Missing(shuffle rdd.ID, numMaps int) []int {
	s.mu.Lock()
	outs := s.outputs[shuffle]
	counts := make([]int, numMaps)
	for m := range counts {
		c, ok := outs[m]
		if !ok {
			c = -1
		}
		counts[m] = c
	}
	s.mu.Unlock()
	var missing []int
	for m, n := range counts {
		ok := n >= 0
		for r := 0; ok && r < n; r++ {
			ok = s.blocks.Contains(key(shuffle, m, r))
		}
		if !ok {
			missing = append(missing, m)
		}
	}
	return missing
}

// RemoveIf drops every shuffle whose ID matches pred, with its buckets.
func (s *Store) RemoveIf(pred func(rdd.ID) bool) {
	s.mu.Lock()
	var drop []rdd.ID
	var outs []map[int]int
	for id, m := range s.outputs {
		if pred(id) {
			drop = append(drop, id)
			outs = append(outs, m)
			delete(s.outputs, id)
		}
	}
	var pushedIDs []rdd.ID
	var pushed [][][2]int
	for id, bs := range s.pushed {
		if pred(id) {
			pushedIDs = append(pushedIDs, id)
			pushed = append(pushed, bs)
			delete(s.pushed, id)
		}
	}
	s.mu.Unlock()
	for i, id := range drop {
		for m, n := range outs[i] {
			for r := range n {
				s.blocks.Remove(key(id, m, r))
			}
		}
	}
	for i, id := range pushedIDs {
		for _, b := range pushed[i] {
			s.blocks.Remove(key(id, b[0], b[1]))
		}
	}
}

// Count returns the number of shuffles with recorded outputs.
func (s *Store) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.outputs)
}
