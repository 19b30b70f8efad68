package shuffle_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/shuffle"
)

var _ rdd.ShuffleStore = (*shuffle.Store)(nil)

// fakeBlocks is a map-backed Blocks that records how blocks are put, can
// evict a block by its value (tests do not depend on key names) and can fail
// a Put.
type fakeBlocks struct {
	mu      sync.Mutex
	blocks  map[string]fakeBlock
	failOn  func(v any) error // when set, Put(v) fails with failOn(v) if not nil
	removed int
}

type fakeBlock struct {
	v     any
	size  int64
	class block.Class
}

func newFakeBlocks() *fakeBlocks { return &fakeBlocks{blocks: make(map[string]fakeBlock)} }

func (f *fakeBlocks) Put(key string, v any, size int64, class block.Class) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOn != nil {
		if err := f.failOn(v); err != nil {
			return err
		}
	}
	f.blocks[key] = fakeBlock{v, size, class}
	return nil
}

func (f *fakeBlocks) Get(key string) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blocks[key]
	return b.v, ok
}

func (f *fakeBlocks) Contains(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.blocks[key]
	return ok
}

func (f *fakeBlocks) Remove(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.blocks[key]
	delete(f.blocks, key)
	if ok {
		f.removed++
	}
	return ok
}

// evict drops the block holding v, as the block store's LRU would.
func (f *fakeBlocks) evict(t *testing.T, v string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, b := range f.blocks {
		if b.v == any(v) {
			delete(f.blocks, k)
			return
		}
	}
	t.Fatalf("no block holds %q", v)
}

func (f *fakeBlocks) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.blocks)
}

// values returns the values of every block, sorted.
func (f *fakeBlocks) values() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var vs []string
	for _, b := range f.blocks {
		vs = append(vs, b.v.(string))
	}
	slices.Sort(vs)
	return vs
}

// bucket is the (distinct) value of bucket r of map output m of shuffle s.
func bucket(s rdd.ID, m, r int) string { return fmt.Sprintf("%v m%d r%d", s, m, r) }

func buckets(s rdd.ID, m, n int) []any {
	bs := make([]any, n)
	for r := range bs {
		bs[r] = bucket(s, m, r)
	}
	return bs
}

func put(t *testing.T, st *shuffle.Store, s rdd.ID, m, n int) {
	t.Helper()
	if err := st.PutMapOutput(s, m, buckets(s, m, n)); err != nil {
		t.Fatalf("PutMapOutput(%v, %d): %v", s, m, err)
	}
}

// checkMissing compares Missing(s, numMaps) with want.
func checkMissing(t *testing.T, st *shuffle.Store, s rdd.ID, numMaps int, want []int) {
	t.Helper()
	if got := st.Missing(s, numMaps); !slices.Equal(got, want) {
		t.Fatalf("Missing(%v, %d) = %v, want %v", s, numMaps, got, want)
	}
}

// TestStoreBuckets checks that every bucket put is returned by Bucket, that
// buckets are stored as evictable (unpinned) blocks with their estimated
// size, and that what was not put is absent.
func TestStoreBuckets(t *testing.T) {
	blocks := newFakeBlocks()
	st := shuffle.New(blocks)
	s := rdd.ID{Op: 3, Time: 1_700_000_000_000, Seq: 2}
	const maps, reduces = 3, 4
	for m := range maps {
		put(t, st, s, m, reduces)
	}
	for m := range maps {
		for r := range reduces {
			v, ok := st.Bucket(s, m, r)
			if !ok || v != any(bucket(s, m, r)) {
				t.Errorf("Bucket(%v, %d, %d) = %v, %v", s, m, r, v, ok)
			}
		}
	}
	for _, mr := range [][2]int{{0, reduces}, {maps, 0}, {-1, 0}, {0, -1}} {
		if v, ok := st.Bucket(s, mr[0], mr[1]); ok {
			t.Errorf("Bucket(%v, %d, %d) = %v, true for a bucket never put", s, mr[0], mr[1], v)
		}
	}
	if v, ok := st.Bucket(rdd.ID{Op: 3, Time: 1_700_000_000_000, Seq: 3}, 0, 0); ok {
		t.Errorf("Bucket of another shuffle = %v, true", v)
	}
	if n := blocks.len(); n != maps*reduces {
		t.Errorf("%d blocks for %d buckets", n, maps*reduces)
	}
	for k, b := range blocks.blocks {
		if b.class != block.Shuffle {
			t.Errorf("bucket %s is %s: shuffle buckets must be of class shuffle", k, b.class)
		}
		if want := block.EstimateSize(b.v); b.size != want {
			t.Errorf("bucket %s stored with size %d, estimate %d", k, b.size, want)
		}
	}
}

// TestStoreKeysDoNotCollide puts buckets whose IDs and indices print alike
// when run together and checks that each keeps its own value.
func TestStoreKeysDoNotCollide(t *testing.T) {
	type coord struct {
		s    rdd.ID
		m, r int
	}
	coords := []coord{
		{rdd.ID{Op: 1, Time: 23, Seq: 4}, 5, 6},
		{rdd.ID{Op: 12, Time: 3, Seq: 4}, 5, 6},
		{rdd.ID{Op: 1, Time: 2, Seq: 34}, 5, 6},
		{rdd.ID{Op: 1, Time: 23, Seq: 45}, 0, 6},
		{rdd.ID{Op: 1, Time: 23, Seq: 4}, 56, 0},
		{rdd.ID{Op: 1, Time: 23, Seq: 4}, 0, 56},
		{rdd.ID{Op: 0, Time: 0, Seq: 0}, 0, 0},
		{rdd.ID{Op: 0, Time: 0, Seq: 0}, 0, 1},
		{rdd.ID{Op: 0, Time: 0, Seq: 0}, 1, 0},
		{rdd.ID{Op: 0, Time: -1, Seq: 0}, 0, 0},
	}
	// Each map output holds buckets 0..r for the largest r named above.
	type out struct {
		s rdd.ID
		m int
	}
	reduces := make(map[out]int)
	var outs []out
	for _, c := range coords {
		o := out{c.s, c.m}
		if _, ok := reduces[o]; !ok {
			outs = append(outs, o)
		}
		reduces[o] = max(reduces[o], c.r+1)
	}
	blocks := newFakeBlocks()
	st := shuffle.New(blocks)
	n := 0
	for _, o := range outs {
		put(t, st, o.s, o.m, reduces[o])
		n += reduces[o]
	}
	// Had two buckets shared a key, the later would have replaced the earlier.
	if got := blocks.len(); got != n {
		t.Errorf("%d blocks hold %d buckets", got, n)
	}
	for _, o := range outs {
		for r := range reduces[o] {
			if v, ok := st.Bucket(o.s, o.m, r); !ok || v != any(bucket(o.s, o.m, r)) {
				t.Errorf("Bucket(%v, %d, %d) = %v, %v; want %q", o.s, o.m, r, v, ok, bucket(o.s, o.m, r))
			}
		}
	}
}

// TestStoreMissing checks Missing: a map output counts only once all its
// buckets are stored, and it is missing again when any bucket is evicted.
func TestStoreMissing(t *testing.T) {
	s := rdd.ID{Op: 1, Time: 1000, Seq: 0}
	other := rdd.ID{Op: 1, Time: 1000, Seq: 1}
	type step struct {
		put   int    // map output to put (with reduces buckets), or -1
		evict string // bucket value to evict, or ""
		want  []int  // Missing(s, maps) after the step
	}
	const maps, reduces = 4, 3
	putAll := func() []step {
		return []step{{put: 0, want: []int{1, 2, 3}}, {put: 1, want: []int{2, 3}}, {put: 2, want: []int{3}}, {put: 3, want: nil}}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"nothing put", []step{{put: -1, want: []int{0, 1, 2, 3}}}},
		{"some put", []step{{put: 2, want: []int{0, 1, 3}}, {put: 0, want: []int{1, 3}}}},
		{"all put", []step{{put: 3, want: []int{0, 1, 2}}, {put: 1, want: []int{0, 2}}, {put: 0, want: []int{2}}, {put: 2, want: nil}}},
		{"put twice", []step{{put: 1, want: []int{0, 2, 3}}, {put: 1, want: []int{0, 2, 3}}}},
		{"first bucket evicted", append(putAll(), step{put: -1, evict: bucket(s, 1, 0), want: []int{1}})},
		{"last bucket evicted", append(putAll(), step{put: -1, evict: bucket(s, 3, reduces-1), want: []int{3}})},
		{"evicted then recomputed", append(putAll(),
			step{put: -1, evict: bucket(s, 2, 1), want: []int{2}},
			step{put: -1, evict: bucket(s, 0, 2), want: []int{0, 2}},
			step{put: 2, want: []int{0}},
			step{put: 0, want: nil},
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blocks := newFakeBlocks()
			st := shuffle.New(blocks)
			put(t, st, other, 0, reduces) // another shuffle changes nothing
			for _, step := range tc.steps {
				if step.put >= 0 {
					put(t, st, s, step.put, reduces)
				}
				if step.evict != "" {
					blocks.evict(t, step.evict)
				}
				checkMissing(t, st, s, maps, step.want)
			}
			checkMissing(t, st, other, 1, nil)
		})
	}
}

// TestStoreMissingEdges checks map outputs without buckets (a shuffle into
// zero partitions) and numMaps smaller or larger than what was put.
func TestStoreMissingEdges(t *testing.T) {
	st := shuffle.New(newFakeBlocks())
	s := rdd.ID{Op: 2, Time: 5, Seq: 1}
	checkMissing(t, st, s, 0, nil)
	if err := st.PutMapOutput(s, 0, nil); err != nil {
		t.Fatal(err)
	}
	put(t, st, s, 1, 2)
	checkMissing(t, st, s, 1, nil) // a map output with no buckets is complete
	checkMissing(t, st, s, 2, nil)
	checkMissing(t, st, s, 4, []int{2, 3})
	if st.Count() != 1 {
		t.Fatalf("Count() = %d, want 1", st.Count())
	}
}

// TestStoreEvictionByBlockStore runs the store over a real, small block
// store: putting buckets evicts the least recently used ones, and Missing
// and Bucket see it; recomputing a map output completes it again.
func TestStoreEvictionByBlockStore(t *testing.T) {
	s := rdd.ID{Op: 7, Time: 2000, Seq: 0}
	// Buckets of equal estimated size: the store holds exactly three.
	mk := func(m, r int) any { return []int64{int64(m), int64(r), 0, 0} }
	size := block.EstimateSize(mk(0, 0))
	var evicted []string
	var mu sync.Mutex
	bs := block.New(block.Options{MaxBytes: 3 * size, OnEvict: func(k string) {
		mu.Lock()
		evicted = append(evicted, k)
		mu.Unlock()
	}})
	st := shuffle.New(bs)
	putOut := func(m int) {
		t.Helper()
		if err := st.PutMapOutput(s, m, []any{mk(m, 0), mk(m, 1)}); err != nil {
			t.Fatalf("PutMapOutput(map %d): %v", m, err)
		}
	}

	putOut(0)
	checkMissing(t, st, s, 2, []int{1})
	putOut(1) // four buckets in room for three: map 0's bucket 0 goes
	if len(evicted) != 1 {
		t.Fatalf("evicted %v, want one bucket", evicted)
	}
	checkMissing(t, st, s, 2, []int{0})
	if _, ok := st.Bucket(s, 0, 0); ok {
		t.Fatalf("Bucket(map 0, reduce 0) present after its eviction")
	}
	if v, ok := st.Bucket(s, 0, 1); !ok || !reflect.DeepEqual(v, mk(0, 1)) {
		t.Fatalf("Bucket(map 0, reduce 1) = %v, %v", v, ok)
	}
	// Reading map 0's bucket 1 made it recently used; recomputing map 0
	// evicts map 1's bucket 0, the least recently used.
	putOut(0)
	checkMissing(t, st, s, 2, []int{1})
	for r := range 2 {
		if v, ok := st.Bucket(s, 0, r); !ok || !reflect.DeepEqual(v, mk(0, r)) {
			t.Fatalf("Bucket(map 0, reduce %d) = %v, %v after recompute", r, v, ok)
		}
	}
	if got := bs.Stats(); got.PinnedBytes != 0 {
		t.Fatalf("shuffle buckets pinned %d bytes: they must be evictable", got.PinnedBytes)
	}
}

// TestStorePutError checks a failing PutMapOutput: the error wraps the block
// store's and names the shuffle and map partition, the output is not
// recorded (Missing lists it), and the buckets it did store are not left
// behind, so RemoveIf drops the shuffle with all its buckets.
func TestStorePutError(t *testing.T) {
	s := rdd.ID{Op: 4, Time: 3000, Seq: 2}
	errBoom := errors.New("boom")
	for _, failAt := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("bucket %d fails", failAt), func(t *testing.T) {
			blocks := newFakeBlocks()
			st := shuffle.New(blocks)
			put(t, st, s, 0, 3)
			blocks.failOn = func(v any) error {
				if v == any(bucket(s, 1, failAt)) {
					return errBoom
				}
				return nil
			}
			err := st.PutMapOutput(s, 1, buckets(s, 1, 3))
			if !errors.Is(err, errBoom) {
				t.Fatalf("PutMapOutput = %v, want an error wrapping %v", err, errBoom)
			}
			if msg := err.Error(); !strings.Contains(msg, s.String()) || !strings.Contains(msg, "map 1") {
				t.Errorf("error %q names neither the shuffle %v nor the map partition", msg, s)
			}
			checkMissing(t, st, s, 2, []int{1})
			if got, want := blocks.values(), []string{bucket(s, 0, 0), bucket(s, 0, 1), bucket(s, 0, 2)}; !slices.Equal(got, want) {
				t.Errorf("blocks after the failed put: %q, want only map 0's %q", got, want)
			}
			st.RemoveIf(func(id rdd.ID) bool { return id == s })
			if n := blocks.len(); n != 0 {
				t.Errorf("RemoveIf left %d blocks of the shuffle: %q", n, blocks.values())
			}
			blocks.failOn = nil
			put(t, st, s, 0, 3)
			put(t, st, s, 1, 3)
			checkMissing(t, st, s, 2, nil)
		})
	}
}

// TestStorePutErrorFromBlockStore checks that a bucket too large for a real
// block store fails the map output with block.ErrTooLarge.
func TestStorePutErrorFromBlockStore(t *testing.T) {
	s := rdd.ID{Op: 4, Time: 3000, Seq: 3}
	small := []byte("x")
	bs := block.New(block.Options{MaxBytes: 2 * block.EstimateSize(small)})
	st := shuffle.New(bs)
	err := st.PutMapOutput(s, 0, []any{small, make([]byte, 1<<20)})
	if !errors.Is(err, block.ErrTooLarge) {
		t.Fatalf("PutMapOutput = %v, want block.ErrTooLarge", err)
	}
	checkMissing(t, st, s, 1, []int{0})
	if n := bs.Stats().Blocks; n != 0 {
		t.Fatalf("%d blocks left behind by the failed map output", n)
	}
}

// TestStoreRemoveIf checks that RemoveIf drops exactly the matching shuffles
// with all their buckets, and leaves the others whole.
func TestStoreRemoveIf(t *testing.T) {
	ids := []rdd.ID{
		{Op: 1, Time: 1000, Seq: 0},
		{Op: 1, Time: 1000, Seq: 1},
		{Op: 2, Time: 2000, Seq: 0},
		{Op: 1, Time: 3000, Seq: 0},
		{Op: 0, Time: 0, Seq: 5}, // a static dataset's shuffle
	}
	tests := []struct {
		name string
		pred func(rdd.ID) bool
		keep []rdd.ID
	}{
		{"none", func(rdd.ID) bool { return false }, ids},
		{"all", func(rdd.ID) bool { return true }, nil},
		{"intervals before 2500", func(id rdd.ID) bool { return id.Time > 0 && id.Time < 2500 }, []rdd.ID{ids[3], ids[4]}},
		{"one operator", func(id rdd.ID) bool { return id.Op == 1 }, []rdd.ID{ids[2], ids[4]}},
	}
	const maps, reduces = 2, 3
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blocks := newFakeBlocks()
			st := shuffle.New(blocks)
			for _, id := range ids {
				for m := range maps {
					put(t, st, id, m, reduces)
				}
			}
			st.RemoveIf(tc.pred)
			if got := st.Count(); got != len(tc.keep) {
				t.Errorf("Count() = %d, want %d", got, len(tc.keep))
			}
			var want []string
			for _, id := range ids {
				kept := slices.Contains(tc.keep, id)
				for m := range maps {
					for r := range reduces {
						if kept {
							want = append(want, bucket(id, m, r))
						}
						if _, ok := st.Bucket(id, m, r); ok != kept {
							t.Errorf("Bucket(%v, %d, %d) present = %v, want %v", id, m, r, ok, kept)
						}
					}
				}
				wantMissing := []int{0, 1}
				if kept {
					wantMissing = nil
				}
				checkMissing(t, st, id, maps, wantMissing)
			}
			slices.Sort(want)
			if got := blocks.values(); !slices.Equal(got, want) {
				t.Errorf("blocks left: %d, want %d", len(got), len(want))
			}
		})
	}
}

// TestStoreRemoveIfPartlyEvicted checks that RemoveIf copes with buckets
// already evicted, and that a removed shuffle can be recomputed.
func TestStoreRemoveIfPartlyEvicted(t *testing.T) {
	blocks := newFakeBlocks()
	st := shuffle.New(blocks)
	s := rdd.ID{Op: 1, Time: 1000, Seq: 0}
	put(t, st, s, 0, 2)
	put(t, st, s, 1, 2)
	blocks.evict(t, bucket(s, 1, 0))
	st.RemoveIf(func(id rdd.ID) bool { return id == s })
	if n := blocks.len(); n != 0 || st.Count() != 0 {
		t.Fatalf("after RemoveIf: %d blocks, Count() = %d", n, st.Count())
	}
	checkMissing(t, st, s, 2, []int{0, 1})
	put(t, st, s, 0, 2)
	put(t, st, s, 1, 2)
	checkMissing(t, st, s, 2, nil)
}

// TestStoreConcurrent puts, reads and removes from many goroutines (run with
// -race): every map output put is complete afterwards.
func TestStoreConcurrent(t *testing.T) {
	bs := block.New(block.Options{})
	st := shuffle.New(bs)
	const shuffles, maps, reduces = 4, 16, 4
	var wg sync.WaitGroup
	for i := range shuffles {
		s := rdd.ID{Op: 1, Time: int64(i), Seq: 0}
		for m := range maps {
			wg.Go(func() {
				if err := st.PutMapOutput(s, m, buckets(s, m, reduces)); err != nil {
					t.Error(err)
				}
				st.Missing(s, maps)
				st.Bucket(s, m, 0)
			})
		}
	}
	gone := rdd.ID{Op: 9, Time: 9, Seq: 9}
	wg.Go(func() { st.RemoveIf(func(id rdd.ID) bool { return id == gone }) })
	wg.Wait()
	for i := range shuffles {
		s := rdd.ID{Op: 1, Time: int64(i), Seq: 0}
		checkMissing(t, st, s, maps, nil)
		for m := range maps {
			for r := range reduces {
				if v, ok := st.Bucket(s, m, r); !ok || v != any(bucket(s, m, r)) {
					t.Fatalf("Bucket(%v, %d, %d) = %v, %v", s, m, r, v, ok)
				}
			}
		}
	}
	if got := st.Count(); got != shuffles {
		t.Fatalf("Count() = %d, want %d", got, shuffles)
	}
}

// TestStorePushedBuckets checks a bucket another process pushed here: Bucket
// returns it (a second push replaces it), it is no map output of this
// process (Missing still lists its map partition, Count ignores a shuffle
// with pushed buckets only), it is an evictable shuffle block, RemoveIf
// drops it with its shuffle, and a refused Put stores nothing.
func TestStorePushedBuckets(t *testing.T) {
	a := rdd.ID{Op: 1, Time: 1000}
	b := rdd.ID{Op: 1, Time: 2000}
	blocks := newFakeBlocks()
	st := shuffle.New(blocks)
	for _, c := range []struct {
		id   rdd.ID
		m, r int
		v    string
	}{{a, 0, 1, "a m0 r1"}, {a, 1, 1, "first"}, {a, 1, 1, "a m1 r1"}, {b, 0, 0, "b m0 r0"}} {
		if err := st.PutBucket(c.id, c.m, c.r, c.v); err != nil {
			t.Fatalf("PutBucket(%v, %d, %d): %v", c.id, c.m, c.r, err)
		}
	}
	if v, ok := st.Bucket(a, 1, 1); !ok || v != "a m1 r1" {
		t.Fatalf("Bucket(a, 1, 1) = %v, %v; want the second push", v, ok)
	}
	if _, ok := st.Bucket(a, 0, 0); ok {
		t.Fatalf("Bucket(a, 0, 0) present: nothing pushed or written it")
	}
	checkMissing(t, st, a, 2, []int{0, 1})
	if n := st.Count(); n != 0 {
		t.Fatalf("Count() = %d with pushed buckets only, want 0", n)
	}
	for k, fb := range blocks.blocks {
		if fb.class != block.Shuffle {
			t.Errorf("block %s stored as %v, want an evictable shuffle block", k, fb.class)
		}
	}
	put(t, st, a, 0, 2) // this process's own map output 0 of a
	st.RemoveIf(func(id rdd.ID) bool { return id == a })
	if got, want := blocks.values(), []string{"b m0 r0"}; !slices.Equal(got, want) {
		t.Fatalf("blocks after removing shuffle a: %q, want %q", got, want)
	}
	st.RemoveIf(func(rdd.ID) bool { return true })
	if n := blocks.len(); n != 0 {
		t.Fatalf("%d blocks left after removing every shuffle", n)
	}
	full := errors.New("full")
	blocks.failOn = func(any) error { return full }
	if err := st.PutBucket(b, 1, 0, "refused"); !errors.Is(err, full) {
		t.Fatalf("PutBucket into a full store: %v, want %v", err, full)
	}
	blocks.failOn = nil
	st.RemoveIf(func(rdd.ID) bool { return true })
	if _, ok := st.Bucket(b, 1, 0); ok {
		t.Fatalf("a refused bucket is present")
	}
}
