package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

// Spilling is a Store that holds its objects in memory, up to a budget of
// bytes in all, and puts those that do not fit in another Store. It is for
// a store that lives and dies with its process, as a cluster master's
// temporary checkpoint folder does (OpenScratchDir): there a windowed
// reduction writes a part per partition every interval, and each object as
// a file costs the folder a file's creation and later its deletion (on a
// disk, 0.1-0.3 ms of kernel CPU each, the largest part of a master's
// fixed cost per interval at short intervals: BENCHMARKS.md, eighth
// session on #23) for a durability nothing needs, since the folder goes
// with the process.
//
// Spilling keeps the Store contract except durability: an object held in
// memory is gone when the process is. An object that does not fit in what
// is left of the budget (or is larger than it) is put in the other store,
// so memory stays bounded by the budget whatever is written; replacing or
// deleting an object frees its bytes.
//
// Spilling must be the only writer of the store under it from
// NewSpilling on: it lists that store once, at NewSpilling, and afterwards
// knows every object's place without asking it, so List and a Get of a
// missing object cost no I/O.
type Spilling struct {
	under  Store
	budget int64

	mu      sync.Mutex
	closed  bool
	mem     map[string][]byte
	used    int64           // bytes in mem
	spilled map[string]bool // names whose object is in under
	names   []string        // every name, in mem or spilled, sorted: List's index
}

// noteName adds name to the sorted index if it is new.
func (s *Spilling) noteName(name string) {
	if i, found := slices.BinarySearch(s.names, name); !found {
		s.names = slices.Insert(s.names, i, name)
	}
}

// dropName removes name from the sorted index.
func (s *Spilling) dropName(name string) {
	if i, found := slices.BinarySearch(s.names, name); found {
		s.names = slices.Delete(s.names, i, i+1)
	}
}

// NewSpilling returns a Spilling over under with a budget of bytes held
// in memory (0 or less: every object goes to under). Objects already in
// under stay there and are listed.
func NewSpilling(ctx context.Context, under Store, budget int64) (*Spilling, error) {
	names, err := under.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("checkpoint: spilling store: %w", err)
	}
	s := &Spilling{under: under, budget: max(budget, 0), mem: map[string][]byte{}, spilled: make(map[string]bool, len(names)), names: slices.Clone(names)}
	slices.Sort(s.names)
	for _, n := range names {
		s.spilled[n] = true
	}
	return s, nil
}

// ready fails when ctx is done or s is closed.
func (s *Spilling) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("checkpoint: spilling store: %w", fs.ErrClosed)
	}
	return nil
}

func (s *Spilling) check(ctx context.Context, name string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return ValidName(name)
}

// Put implements Store: in memory when the object fits in what is left of
// the budget (counting the bytes of the object it replaces), else in the
// store under it. A write to that store holds s's lock, which keeps each
// name in one place at a time; spilling is the exception (past the
// budget), so the common Put and Get do not wait on I/O.
func (s *Spilling) Put(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := int64(len(s.mem[name]))
	if n := int64(len(data)); s.used-old+n <= s.budget {
		if s.spilled[name] {
			// The older object goes first: a Get must never find it
			// after this Put returned.
			if err := s.under.Delete(ctx, name); err != nil {
				return err
			}
			delete(s.spilled, name)
		}
		s.mem[name] = append(make([]byte, 0, len(data)), data...)
		s.used += n - old
		s.noteName(name)
		return nil
	}
	if err := s.under.Put(ctx, name, data); err != nil {
		return err
	}
	s.spilled[name] = true
	s.noteName(name)
	if _, ok := s.mem[name]; ok {
		delete(s.mem, name)
		s.used -= old
	}
	return nil
}

// Get implements Store.
func (s *Spilling) Get(ctx context.Context, name string) ([]byte, error) {
	if err := s.check(ctx, name); err != nil {
		return nil, err
	}
	for range 2 {
		s.mu.Lock()
		if b, ok := s.mem[name]; ok {
			b = slices.Clone(b)
			s.mu.Unlock()
			return b, nil
		}
		onDisk := s.spilled[name]
		s.mu.Unlock()
		if !onDisk {
			break
		}
		// Read without the lock (a spilled object may be large); a Put
		// that moved it to memory meanwhile makes this miss: look again.
		b, err := s.under.Get(ctx, name)
		if !errors.Is(err, ErrNotFound) {
			return b, err
		}
	}
	return nil, fmt.Errorf("checkpoint: get %q: %w", name, ErrNotFound)
}

// List implements Store, from what Spilling knows: no I/O, and a binary
// search to the prefix's names.
func (s *Spilling) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearch(s.names, prefix)
	var names []string
	for _, n := range s.names[i:] {
		if !strings.HasPrefix(n, prefix) {
			break
		}
		names = append(names, n)
	}
	return names, nil
}

// Delete implements Store.
func (s *Spilling) Delete(ctx context.Context, name string) error {
	if err := s.check(ctx, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.mem[name]; ok {
		delete(s.mem, name)
		s.used -= int64(len(b))
	}
	if s.spilled[name] {
		if err := s.under.Delete(ctx, name); err != nil {
			return err
		}
		delete(s.spilled, name)
	}
	s.dropName(name)
	return nil
}

// Held returns the bytes held in memory and the objects put in the store
// under it.
func (s *Spilling) Held() (bytes int64, spilled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used, len(s.spilled)
}

// Close drops what is held in memory and closes the store under it when it
// can be closed; later operations fail (fs.ErrClosed).
func (s *Spilling) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mem, s.used, s.names = map[string][]byte{}, 0, nil
	s.mu.Unlock()
	if c, ok := s.under.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
