// Package block is the block store: named, in-memory blocks (materialised
// partitions, shuffle buckets, received input, state) accounted in bytes
// within one memory region, shared between classes of blocks the way Spark's
// unified memory manager shares storage and execution memory:
//
//   - Input (received blocks awaiting their intervals) and State
//     (checkpointed state) are pinned: never evicted. Together they may hold
//     at most MaxBytes minus the execution reserve, and input alone at most
//     its InputFraction. Past that, Put fails with ErrFull and the receiver
//     waits (PutWait): backpressure, never a loss.
//   - Shuffle (map outputs of running intervals) is execution memory:
//     evictable, but only to make room for other shuffle outputs and for the
//     state an interval produces (a lost map output is recomputed from
//     lineage; lost state could not be). Input and cached blocks never take
//     it, so newly received input cannot evict what a running interval needs.
//   - Cache (persisted partitions) is storage memory anyone may borrow:
//     every class evicts it, least recently used first.
package block

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrTooLarge is returned by Put for a block that can never fit its class's
// share of the store; the caller of a cache Put simply does not cache it.
var ErrTooLarge = errors.New("block larger than the store allows")

// ErrFull is returned by Put when there is no room for the block now:
// pinned blocks, or shuffle outputs the block's class may not evict, hold
// the memory. Room comes back as intervals complete; PutWait waits for it.
var ErrFull = errors.New("block store full")

// Class says what a block is for, which decides its share of the store and
// what it may evict.
type Class uint8

const (
	Cache   Class = iota // a persisted partition: evictable by every class
	Shuffle              // a shuffle map output: evictable by shuffle outputs only
	State                // a state checkpoint: pinned
	Input                // received input: pinned, within the input share
)

var classNames = [...]string{"cache", "shuffle", "state", "input"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", c)
}

func (c Class) pinned() bool { return c == State || c == Input }

// Default shares of the store (see Options).
const (
	DefaultInputFraction   = 0.5
	DefaultReserveFraction = 0.3
)

// Options configure a Store.
type Options struct {
	MaxBytes int64 // capacity; <= 0 means 512 MiB
	// InputFraction is the share of MaxBytes input blocks may hold; default
	// DefaultInputFraction. A negative value means no input share (testing).
	InputFraction float64
	// ReserveFraction is the share of MaxBytes pinned blocks (input and
	// state) never take: room for the shuffle outputs and cached partitions
	// of running intervals. Default DefaultReserveFraction.
	ReserveFraction float64
	OnEvict         func(key string) // called, outside the lock, after a block is evicted
	// SpillDir (the store's own folder: Close deletes it), with Encode,
	// makes the store write a shuffle output it
	// must evict to a file in SpillDir instead of dropping it; Get then
	// returns it as Encoded bytes (read from the file, not re-admitted).
	// A block that cannot be encoded or written is dropped as before.
	SpillDir string
	// Encode encodes a block's value for the disk (rdd.EncodeBlock).
	Encode func(v any) ([]byte, error)
	// MaxSpillBytes bounds the bytes on disk; past it, blocks are dropped.
	// Default 8 times MaxBytes.
	MaxSpillBytes int64
	// Series, if set, names the series a block belongs to and its place
	// in it (rdd.BlockSeries: a dataset's operator and interval); ok is
	// false for a block of none. The store then indexes its blocks by
	// series, and RemoveSeries drops a series' blocks up to a place at
	// the cost of the blocks it drops, not of the whole store.
	Series func(key string) (series, at int64, ok bool)
}

// Encoded is a block's records encoded (package codec): a replica from
// another process, or a block read back from the disk. The code that reads
// a block knows its record type and decodes it.
type Encoded []byte

// Stats describe a store's occupancy and activity.
type Stats struct {
	Blocks                       int
	Bytes, PinnedBytes, MaxBytes int64
	// Bytes by class, and the limits of the pinned classes.
	InputBytes, StateBytes, ShuffleBytes, CacheBytes int64
	MaxInputBytes, MaxPinnedBytes                    int64
	// PeakBytes and PeakInputBytes are the most the store and its input
	// ever held.
	PeakBytes, PeakInputBytes int64
	Hits, Misses, Evictions   uint64
	// SpilledBytes and SpilledBlocks are on disk now; Spills counts the
	// blocks ever written there.
	SpilledBytes  int64
	SpilledBlocks int
	Spills        uint64
}

type entry struct {
	key   string
	value any
	size  int64
	class Class
	elem  *list.Element // position in its class's LRU list (evictable classes only)
}

// Store is a byte-bounded block store, safe for concurrent use.
type Store struct {
	opts      Options
	maxInput  int64
	maxPinned int64

	mu      sync.Mutex
	blocks  map[string]*entry
	lru     [Shuffle + 1]*list.List // per evictable class, most recently used at the front
	bytes   int64
	byClass [Input + 1]int64
	peak    int64
	peakIn  int64
	peakSh  int64 // shuffle bytes high-water since ResetShufflePeak
	hits    uint64
	misses  uint64
	evicted uint64
	freed   chan struct{} // closed (and replaced) when bytes are released

	spilled      map[string]int64 // key -> bytes on disk (spill.go)
	spilledBytes int64
	spills       uint64

	series map[int64]*seriesIndex // Options.Series: the keys held (in memory or spilled) by series
}

// seriesIndex is one series' keys held, by place.
type seriesIndex struct {
	ats  []int64                       // the places with keys, ascending
	keys map[int64]map[string]struct{} // place -> keys
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 512 << 20
	}
	if opts.InputFraction == 0 {
		opts.InputFraction = DefaultInputFraction
	}
	if opts.ReserveFraction == 0 {
		opts.ReserveFraction = DefaultReserveFraction
	}
	if opts.MaxSpillBytes <= 0 {
		opts.MaxSpillBytes = 8 * opts.MaxBytes
	}
	s := &Store{opts: opts, blocks: make(map[string]*entry), freed: make(chan struct{}), spilled: map[string]int64{}}
	s.maxPinned = int64(float64(opts.MaxBytes) * (1 - max(0, min(1, opts.ReserveFraction))))
	s.maxInput = min(s.maxPinned, int64(float64(opts.MaxBytes)*max(0, min(1, opts.InputFraction))))
	for i := range s.lru {
		s.lru[i] = list.New()
	}
	return s
}

// MaxInputBytes is the most input blocks may hold: receivers size their
// blocks well under it.
func (s *Store) MaxInputBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInput
}

// SetMaxInputBytes changes the input share, within [0, the pinned share];
// input already stored stays, and waiting receivers retry when it grows.
func (s *Store) SetMaxInputBytes(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = max(0, min(n, s.maxPinned))
	if n > s.maxInput {
		s.released()
	}
	s.maxInput = n
}

// ResetShufflePeak returns the most shuffle outputs held since the last
// call (or since New), and starts the next measurement from what they hold now.
func (s *Store) ResetShufflePeak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peakSh
	s.peakSh = s.byClass[Shuffle]
	return p
}

// Put stores v under key with the given estimated size and class, replacing
// any block of that key. It makes room by evicting least recently used
// blocks of the classes the block's class may evict: cached partitions
// first, then, for a shuffle output or state, shuffle outputs. Errors:
// ErrTooLarge (the block can never fit its class's share) and ErrFull (no
// room now); on error the store is unchanged except for evictions already
// made.
func (s *Store) Put(key string, v any, size int64, class Class) error {
	if size < 0 {
		size = 0
	}
	var evictedKeys []string
	s.mu.Lock()
	err := s.putLocked(key, v, size, class, &evictedKeys)
	s.mu.Unlock()
	s.notify(evictedKeys)
	return err
}

// PutWait is Put that, while the store is full (ErrFull), waits for blocks
// to be released and tries again, until ctx is done. Receivers store input
// with it: a full store holds the receiver back instead of dropping input.
func (s *Store) PutWait(ctx context.Context, key string, v any, size int64, class Class) error {
	for {
		s.mu.Lock()
		freed := s.freed
		s.mu.Unlock()
		err := s.Put(key, v, size, class)
		if !errors.Is(err, ErrFull) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while waiting: %v)", context.Cause(ctx), err)
		case <-freed:
		}
	}
}

func (s *Store) putLocked(key string, v any, size int64, class Class, evictedKeys *[]string) error {
	limit := s.opts.MaxBytes
	switch class {
	case Input:
		limit = s.maxInput
	case State:
		limit = s.maxPinned
	}
	if size > limit {
		return fmt.Errorf("%s block %s (%d bytes, at most %d of a %d-byte store): %w", class, key, size, limit, s.opts.MaxBytes, ErrTooLarge)
	}
	var old *entry
	if e, ok := s.blocks[key]; ok {
		old = e
	}
	oldSize := func(cl Class) int64 {
		if old != nil && old.class == cl {
			return old.size
		}
		return 0
	}
	pinned := s.byClass[Input] + s.byClass[State]
	if class.pinned() {
		if pinned-oldSize(Input)-oldSize(State)+size > s.maxPinned ||
			class == Input && s.byClass[Input]-oldSize(Input)+size > s.maxInput {
			return fmt.Errorf("%s block %s (%d bytes): %d input and %d state bytes held, of %d and %d allowed: %w",
				class, key, size, s.byClass[Input], s.byClass[State], s.maxInput, s.maxPinned, ErrFull)
		}
	}
	var held int64
	if old != nil {
		held = old.size
	}
	for s.bytes-held+size > s.opts.MaxBytes {
		victim := s.victim(class, key)
		if victim == nil {
			return fmt.Errorf("%s block %s (%d bytes; %d input, %d state, %d shuffle bytes held in a %d-byte store): %w",
				class, key, size, s.byClass[Input], s.byClass[State], s.byClass[Shuffle], s.opts.MaxBytes, ErrFull)
		}
		s.removeLocked(victim)
		if !s.spillLocked(victim) {
			s.evicted++
			*evictedKeys = append(*evictedKeys, victim.key)
		}
	}
	if old != nil {
		s.removeLocked(old)
	}
	s.unspillLocked(key)
	e := &entry{key: key, value: v, size: size, class: class}
	if !class.pinned() {
		e.elem = s.lru[class].PushFront(e)
	}
	s.blocks[key] = e
	s.indexLocked(key)
	s.bytes += size
	s.byClass[class] += size
	s.peak = max(s.peak, s.bytes)
	s.peakIn = max(s.peakIn, s.byClass[Input])
	s.peakSh = max(s.peakSh, s.byClass[Shuffle])
	return nil
}

// victim returns the block to evict to make room for a block of class,
// other than key itself, or nil.
func (s *Store) victim(class Class, key string) *entry {
	classes := []Class{Cache}
	if class == Shuffle || class == State {
		classes = append(classes, Shuffle)
	}
	for _, cl := range classes {
		for el := s.lru[cl].Back(); el != nil; el = el.Prev() {
			if e := el.Value.(*entry); e.key != key {
				return e
			}
		}
	}
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
	if _, spilled := s.spilled[e.key]; !spilled {
		s.unindexLocked(e.key)
	}
	s.bytes -= e.size
	s.byClass[e.class] -= e.size
	if e.elem != nil {
		s.lru[e.class].Remove(e.elem)
		e.elem = nil
	}
}

// released wakes PutWait callers; s.mu must be held.
func (s *Store) released() {
	close(s.freed)
	s.freed = make(chan struct{})
}

// Get returns the block under key and marks it most recently used; a block
// spilled to disk comes back as Encoded bytes.
func (s *Store) Get(key string) (any, bool) {
	s.mu.Lock()
	e, ok := s.blocks[key]
	if !ok {
		if _, spilled := s.spilled[key]; spilled {
			s.hits++
			s.mu.Unlock()
			return s.readSpilled(key)
		}
		s.misses++
		s.mu.Unlock()
		return nil, false
	}
	defer s.mu.Unlock()
	s.hits++
	if e.elem != nil {
		s.lru[e.class].MoveToFront(e.elem)
	}
	return e.value, true
}

// Contains reports whether key is present, without touching LRU order or counters.
func (s *Store) Contains(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blocks[key]
	_, spilled := s.spilled[key]
	return ok || spilled
}

// Remove deletes the block under key and reports whether it was present.
func (s *Store) Remove(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.blocks[key]
	if ok {
		s.removeLocked(e)
		s.released()
	}
	return s.unspillLocked(key) || ok
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
	for k := range s.spilled {
		if pred(k) && s.unspillLocked(k) {
			n++
		}
	}
	if n > 0 {
		s.released()
	}
	return n
}

// RemoveSeries deletes every block of series (Options.Series) at a place
// up to upTo, in memory or spilled, and returns how many; ok is false, and
// nothing is deleted, when the store indexes no series (RemoveIf does it
// then). It costs what it deletes.
func (s *Store) RemoveSeries(series, upTo int64) (n int, ok bool) {
	if s.opts.Series == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.series[series]
	for ix != nil && len(ix.ats) > 0 && ix.ats[0] <= upTo {
		at := ix.ats[0]
		for key := range ix.keys[at] {
			// Either removal unindexes the key once it is gone from both.
			if e, ok := s.blocks[key]; ok {
				s.removeLocked(e)
				n++
			}
			if s.unspillLocked(key) {
				n++
			}
		}
		if len(ix.ats) > 0 && ix.ats[0] == at { // never: every key indexed is held
			delete(ix.keys, at)
			ix.ats = slices.Delete(ix.ats, 0, 1)
			if len(ix.ats) == 0 {
				delete(s.series, series)
			}
		}
		ix = s.series[series] // emptied places go, and an emptied series
	}
	if n > 0 {
		s.released()
	}
	return n, true
}

// indexLocked records key, held now, under its series; s.mu is held.
func (s *Store) indexLocked(key string) {
	if s.opts.Series == nil {
		return
	}
	series, at, ok := s.opts.Series(key)
	if !ok {
		return
	}
	if s.series == nil {
		s.series = make(map[int64]*seriesIndex)
	}
	ix := s.series[series]
	if ix == nil {
		ix = &seriesIndex{keys: make(map[int64]map[string]struct{})}
		s.series[series] = ix
	}
	keys := ix.keys[at]
	if keys == nil {
		keys = make(map[string]struct{})
		ix.keys[at] = keys
		// Places mostly come in time order: an append.
		i, _ := slices.BinarySearch(ix.ats, at)
		ix.ats = slices.Insert(ix.ats, i, at)
	}
	keys[key] = struct{}{}
}

// unindexLocked forgets key, held no more (in memory or spilled); s.mu is
// held.
func (s *Store) unindexLocked(key string) {
	if s.opts.Series == nil {
		return
	}
	series, at, ok := s.opts.Series(key)
	if !ok {
		return
	}
	ix := s.series[series]
	if ix == nil {
		return
	}
	keys := ix.keys[at]
	delete(keys, key)
	if len(keys) > 0 {
		return
	}
	delete(ix.keys, at)
	if i, found := slices.BinarySearch(ix.ats, at); found {
		ix.ats = slices.Delete(ix.ats, i, i+1)
	}
	if len(ix.ats) == 0 {
		delete(s.series, series)
	}
}

// Unpin makes a pinned block an evictable cached block and reports whether
// it was pinned.
func (s *Store) Unpin(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.blocks[key]
	if !ok || !e.class.pinned() {
		return false
	}
	s.byClass[e.class] -= e.size
	e.class = Cache
	s.byClass[Cache] += e.size
	e.elem = s.lru[Cache].PushFront(e)
	s.released()
	return true
}

// Keys returns the keys of the blocks of class held in memory (in no
// particular order).
func (s *Store) Keys(class Class) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k, e := range s.blocks {
		if e.class == class {
			keys = append(keys, k)
		}
	}
	return keys
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Blocks: len(s.blocks), Bytes: s.bytes, PinnedBytes: s.byClass[Input] + s.byClass[State], MaxBytes: s.opts.MaxBytes,
		InputBytes: s.byClass[Input], StateBytes: s.byClass[State], ShuffleBytes: s.byClass[Shuffle], CacheBytes: s.byClass[Cache],
		MaxInputBytes: s.maxInput, MaxPinnedBytes: s.maxPinned, PeakBytes: s.peak, PeakInputBytes: s.peakIn,
		Hits: s.hits, Misses: s.misses, Evictions: s.evicted,
		SpilledBytes: s.spilledBytes, SpilledBlocks: len(s.spilled), Spills: s.spills}
}

// checkInvariants verifies the accounting; tests call it after operations.
func (s *Store) checkInvariants() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bytes int64
	var byClass [Input + 1]int64
	var listed [Shuffle + 1]int
	for k, e := range s.blocks {
		if k != e.key {
			return fmt.Errorf("key %q maps to entry %q", k, e.key)
		}
		bytes += e.size
		byClass[e.class] += e.size
		if e.class.pinned() != (e.elem == nil) {
			return fmt.Errorf("block %q of class %s: LRU membership wrong", k, e.class)
		}
		if !e.class.pinned() {
			listed[e.class]++
		}
	}
	if bytes != s.bytes || byClass != s.byClass {
		return fmt.Errorf("accounted %d bytes %v, blocks hold %d %v", s.bytes, s.byClass, bytes, byClass)
	}
	if s.opts.Series != nil {
		indexed := 0
		for series, ix := range s.series {
			if len(ix.ats) == 0 || len(ix.ats) != len(ix.keys) || !slices.IsSorted(ix.ats) {
				return fmt.Errorf("series %d: places %v, keys at %d places", series, ix.ats, len(ix.keys))
			}
			for at, keys := range ix.keys {
				for k := range keys {
					_, held := s.blocks[k]
					_, spilled := s.spilled[k]
					if sr, a, ok := s.opts.Series(k); !ok || sr != series || a != at || !held && !spilled {
						return fmt.Errorf("series %d at %d indexes %q, which is not held there", series, at, k)
					}
					indexed++
				}
			}
		}
		want := 0
		for k := range s.blocks {
			if _, _, ok := s.opts.Series(k); ok {
				want++
			}
		}
		for k := range s.spilled {
			if _, held := s.blocks[k]; !held {
				if _, _, ok := s.opts.Series(k); ok {
					want++
				}
			}
		}
		if indexed != want {
			return fmt.Errorf("%d blocks of a series held, %d indexed", want, indexed)
		}
	}
	for cl, l := range s.lru {
		if l.Len() != listed[cl] {
			return fmt.Errorf("%s LRU list has %d entries, %d blocks", Class(cl), l.Len(), listed[cl])
		}
	}
	switch {
	case s.bytes > s.opts.MaxBytes:
		return fmt.Errorf("%d bytes stored over a %d-byte bound", s.bytes, s.opts.MaxBytes)
	case byClass[Input]+byClass[State] > s.maxPinned:
		return fmt.Errorf("%d pinned bytes over the %d-byte pinned bound", byClass[Input]+byClass[State], s.maxPinned)
	case s.peak > s.opts.MaxBytes:
		return fmt.Errorf("peak %d bytes over the %d-byte bound", s.peak, s.opts.MaxBytes)
	}
	return nil
}
