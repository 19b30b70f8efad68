// Package block is the block store: named, in-memory blocks (materialised
// partitions, shuffle buckets, received input, state) accounted in bytes and
// bounded by an LRU policy. Pinned blocks (input awaiting processing, state
// checkpoints) are never evicted; when they alone would exceed the bound, Put
// fails with ErrFull, which callers turn into backpressure.
package block

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
)

// ErrTooLarge is returned by Put for an unpinned block larger than the store:
// the caller simply does not cache it.
var ErrTooLarge = errors.New("block larger than the store")

// ErrFull is returned by Put when pinned blocks leave no room even after every
// unpinned block has been evicted: the store is overloaded.
var ErrFull = errors.New("block store full of pinned blocks")

// Options configure a Store.
type Options struct {
	MaxBytes int64            // capacity; <= 0 means 512 MiB
	OnEvict  func(key string) // called, outside the lock, after an unpinned block is evicted
}

// Stats describe a store's occupancy and activity.
type Stats struct {
	Blocks                       int
	Bytes, PinnedBytes, MaxBytes int64
	Hits, Misses, Evictions      uint64
}

type entry struct {
	key    string
	value  any
	size   int64
	pinned bool
	elem   *list.Element // position in the LRU list (unpinned blocks only)
}

// Store is a byte-bounded LRU block store, safe for concurrent use.
type Store struct {
	opts Options

	mu      sync.Mutex
	blocks  map[string]*entry
	lru     *list.List // unpinned blocks, most recently used at the front
	bytes   int64
	pinned  int64
	hits    uint64
	misses  uint64
	evicted uint64
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 512 << 20
	}
	return &Store{opts: opts, blocks: make(map[string]*entry), lru: list.New()}
}

// Put stores v under key with the given estimated size, replacing any block
// of that key. Unpinned blocks are evicted, least recently used first, to make
// room. Errors: ErrTooLarge (an unpinned block larger than the store) and
// ErrFull (no room even after evicting every unpinned block); on error the
// store is unchanged except for evictions already made.
func (s *Store) Put(key string, v any, size int64, pinned bool) error {
	if size < 0 {
		size = 0
	}
	var evictedKeys []string
	s.mu.Lock()
	if !pinned && size > s.opts.MaxBytes {
		s.mu.Unlock()
		return fmt.Errorf("block %s (%d bytes, store %d bytes): %w", key, size, s.opts.MaxBytes, ErrTooLarge)
	}
	var old int64
	if e, ok := s.blocks[key]; ok {
		old = e.size
	}
	for s.bytes-old+size > s.opts.MaxBytes {
		victim := s.lru.Back()
		for victim != nil && victim.Value.(*entry).key == key {
			victim = victim.Prev()
		}
		if victim == nil {
			s.mu.Unlock()
			s.notify(evictedKeys)
			return fmt.Errorf("block %s (%d bytes; %d of %d bytes pinned): %w", key, size, s.pinned, s.opts.MaxBytes, ErrFull)
		}
		e := victim.Value.(*entry)
		s.removeLocked(e)
		s.evicted++
		evictedKeys = append(evictedKeys, e.key)
	}
	if e, ok := s.blocks[key]; ok {
		s.removeLocked(e)
	}
	e := &entry{key: key, value: v, size: size, pinned: pinned}
	if pinned {
		s.pinned += size
	} else {
		e.elem = s.lru.PushFront(e)
	}
	s.blocks[key] = e
	s.bytes += size
	s.mu.Unlock()
	s.notify(evictedKeys)
	return nil
}

func (s *Store) notify(keys []string) {
	if s.opts.OnEvict == nil {
		return
	}
	for _, k := range keys {
		s.opts.OnEvict(k)
	}
}

// removeLocked unlinks e; s.mu must be held.
func (s *Store) removeLocked(e *entry) {
	delete(s.blocks, e.key)
	s.bytes -= e.size
	if e.pinned {
		s.pinned -= e.size
	} else {
		s.lru.Remove(e.elem)
	}
}

// Get returns the block under key and marks it most recently used.
func (s *Store) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.blocks[key]
	if !ok {
		s.misses++
		return nil, false
	}
	s.hits++
	if !e.pinned {
		s.lru.MoveToFront(e.elem)
	}
	return e.value, true
}

// Contains reports whether key is present, without touching LRU order or counters.
func (s *Store) Contains(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blocks[key]
	return ok
}

// Remove deletes the block under key and reports whether it was present.
func (s *Store) Remove(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.blocks[key]
	if ok {
		s.removeLocked(e)
	}
	return ok
}

// RemoveIf deletes every block whose key matches pred and returns how many.
// pred runs with the store locked: it must not call the store.
func (s *Store) RemoveIf(pred func(key string) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.blocks {
		if pred(k) {
			s.removeLocked(e)
			n++
		}
	}
	return n
}

// Unpin makes a pinned block evictable and reports whether it was pinned.
func (s *Store) Unpin(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.blocks[key]
	if !ok || !e.pinned {
		return false
	}
	e.pinned = false
	s.pinned -= e.size
	e.elem = s.lru.PushFront(e)
	return true
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Blocks: len(s.blocks), Bytes: s.bytes, PinnedBytes: s.pinned, MaxBytes: s.opts.MaxBytes,
		Hits: s.hits, Misses: s.misses, Evictions: s.evicted}
}

// checkInvariants verifies the accounting; tests call it after operations.
func (s *Store) checkInvariants() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bytes, pinned int64
	unpinned := 0
	for k, e := range s.blocks {
		if k != e.key {
			return fmt.Errorf("key %q maps to entry %q", k, e.key)
		}
		bytes += e.size
		if e.pinned {
			pinned += e.size
			if e.elem != nil && e.elem.Value == e {
				for el := s.lru.Front(); el != nil; el = el.Next() {
					if el.Value == e {
						return fmt.Errorf("pinned block %q is in the LRU list", k)
					}
				}
			}
		} else {
			unpinned++
		}
	}
	if bytes != s.bytes || pinned != s.pinned {
		return fmt.Errorf("accounted %d bytes (%d pinned), blocks hold %d (%d pinned)", s.bytes, s.pinned, bytes, pinned)
	}
	if s.lru.Len() != unpinned {
		return fmt.Errorf("LRU list has %d entries, %d unpinned blocks", s.lru.Len(), unpinned)
	}
	if s.bytes > s.opts.MaxBytes && s.bytes != s.pinned {
		return fmt.Errorf("%d bytes stored over a %d-byte bound with unpinned blocks present", s.bytes, s.opts.MaxBytes)
	}
	return nil
}
