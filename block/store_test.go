package block

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func mustPut(t *testing.T, s *Store, k string, size int64, class Class) {
	t.Helper()
	if err := s.Put(k, k, size, class); err != nil {
		t.Fatalf("Put(%s): %v", k, err)
	}
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestLRUEvictionFollowsUse(t *testing.T) {
	var evicted []string
	s := New(Options{MaxBytes: 30, OnEvict: func(k string) { evicted = append(evicted, k) }})
	mustPut(t, s, "a", 10, Cache)
	mustPut(t, s, "b", 10, Cache)
	mustPut(t, s, "c", 10, Cache)
	s.Get("a") // b is now least recently used
	mustPut(t, s, "d", 10, Cache)
	if !slices.Equal(evicted, []string{"b"}) || s.Contains("b") || !s.Contains("a") {
		t.Fatalf("evicted %v; want [b]", evicted)
	}
	if st := s.Stats(); st.Evictions != 1 || st.Bytes != 30 || st.Hits != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPinnedBlocksAreNeverEvicted(t *testing.T) {
	s := New(Options{MaxBytes: 30})
	mustPut(t, s, "state", 20, State)
	mustPut(t, s, "x", 10, Cache)
	mustPut(t, s, "y", 10, Cache) // evicts x, never state
	if !s.Contains("state") || s.Contains("x") {
		t.Fatal("pinned block evicted or LRU wrong")
	}
	err := s.Put("more", nil, 20, State)
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "more") {
		t.Fatalf("pinned overflow = %v, want ErrFull naming the block", err)
	}
	if err := s.Put("huge", nil, 31, Cache); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized unpinned = %v, want ErrTooLarge", err)
	}
	if !s.Unpin("state") {
		t.Fatal("Unpin failed")
	}
	mustPut(t, s, "z", 25, Cache)
	if s.Contains("state") {
		t.Error("unpinned state block survived eviction pressure")
	}
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestReplaceAndRemove(t *testing.T) {
	s := New(Options{MaxBytes: 100})
	mustPut(t, s, "a", 10, Cache)
	mustPut(t, s, "a", 40, State)
	if st := s.Stats(); st.Bytes != 40 || st.PinnedBytes != 40 || st.Blocks != 1 {
		t.Fatalf("after replace: %+v", st)
	}
	mustPut(t, s, "b1", 1, Cache)
	mustPut(t, s, "b2", 1, Cache)
	if n := s.RemoveIf(func(k string) bool { return strings.HasPrefix(k, "b") }); n != 2 {
		t.Fatalf("RemoveIf removed %d", n)
	}
	if !s.Remove("a") || s.Remove("a") {
		t.Fatal("Remove reported wrongly")
	}
	if st := s.Stats(); st.Bytes != 0 || st.Blocks != 0 || st.PinnedBytes != 0 {
		t.Fatalf("after removes: %+v", st)
	}
}

// TestAgainstNaiveLRU is a property test: random operations on the store and
// on a naive slice-based LRU keep the same keys.
func TestAgainstNaiveLRU(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		const max = 100
		s := New(Options{MaxBytes: max})
		type item struct {
			k    string
			size int64
		}
		var ref []item // most recent last
		refBytes := func() (n int64) {
			for _, it := range ref {
				n += it.size
			}
			return n
		}
		find := func(k string) int { return slices.IndexFunc(ref, func(it item) bool { return it.k == k }) }
		for range 500 {
			k := fmt.Sprint(rng.IntN(15))
			switch rng.IntN(3) {
			case 0:
				size := int64(1 + rng.IntN(40))
				if i := find(k); i >= 0 {
					ref = slices.Delete(ref, i, i+1)
				}
				for refBytes()+size > max {
					ref = ref[1:]
				}
				ref = append(ref, item{k, size})
				if err := s.Put(k, k, size, Cache); err != nil {
					t.Fatal(err)
				}
			case 1:
				_, ok := s.Get(k)
				i := find(k)
				if ok != (i >= 0) {
					t.Fatalf("seed %d: Get(%s) = %v, reference has it: %v", seed, k, ok, i >= 0)
				}
				if i >= 0 {
					it := ref[i]
					ref = append(slices.Delete(ref, i, i+1), it)
				}
			case 2:
				if i := find(k); i >= 0 {
					ref = slices.Delete(ref, i, i+1)
				}
				s.Remove(k)
			}
			if err := s.checkInvariants(); err != nil {
				t.Fatal(err)
			}
			for _, it := range ref {
				if !s.Contains(it.k) {
					t.Fatalf("seed %d: store lost %s", seed, it.k)
				}
			}
			if st := s.Stats(); st.Blocks != len(ref) {
				t.Fatalf("seed %d: store has %d blocks, reference %d", seed, st.Blocks, len(ref))
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(Options{MaxBytes: 1000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for range 2000 {
				k := fmt.Sprint(rng.IntN(50))
				switch rng.IntN(4) {
				case 0, 1:
					_ = s.Put(k, k, int64(rng.IntN(100)), Class(rng.IntN(int(Input)+1)))
				case 2:
					s.Get(k)
				case 3:
					s.Remove(k)
				}
			}
		}()
	}
	wg.Wait()
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Bytes > st.MaxBytes {
		t.Fatalf("%d bytes over a %d bound", st.Bytes, st.MaxBytes)
	}
}

func TestEstimateSize(t *testing.T) {
	lines := make([]string, 1000)
	for i := range lines {
		lines[i] = strings.Repeat("x", 100)
	}
	want := int64(1000 * (16 + 100))
	if got := EstimateSize(lines); got < want/2 || got > want*2 {
		t.Errorf("[]string estimate %d, want about %d", got, want)
	}
	type pair struct {
		K string
		V int
	}
	pairs := make([]pair, 5000)
	for i := range pairs {
		pairs[i] = pair{K: fmt.Sprintf("key-%06d", i), V: i}
	}
	want = int64(5000 * (24 + 10))
	if got := EstimateSize(pairs); got < want/2 || got > want*2 {
		t.Errorf("[]pair estimate %d, want about %d", got, want)
	}
	type node struct {
		next *node
		_    [64]byte
	}
	a := &node{}
	a.next = a // a cycle
	if got := EstimateSize(a); got < 64 || got > 1000 {
		t.Errorf("cyclic estimate %d", got)
	}
	if EstimateSize(nil) != 0 {
		t.Error("nil has a size")
	}
	_ = EstimateSize(struct {
		f  func()
		ch chan int
		m  map[string][]int
	}{m: map[string][]int{"a": {1, 2}}})
}
