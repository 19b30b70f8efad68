package block

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testSeries reads keys "s<series>_<at>_<n>"; other keys are of no series.
func testSeries(key string) (series, at int64, ok bool) {
	f := strings.Split(key, "_")
	if len(f) != 3 || !strings.HasPrefix(f[0], "s") {
		return 0, 0, false
	}
	s, e1 := strconv.ParseInt(f[0][1:], 10, 64)
	a, e2 := strconv.ParseInt(f[1], 10, 64)
	return s, a, e1 == nil && e2 == nil
}

// TestRemoveSeries: RemoveSeries drops what RemoveIf with the same
// predicate drops, in memory and spilled, and the index follows every
// put, replacement, eviction, spill and removal.
func TestRemoveSeries(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			dir := filepath.Join(t.TempDir(), "spill")
			mk := func(series bool) *Store {
				o := Options{MaxBytes: 400, SpillDir: dir + fmt.Sprint(series), Encode: encodeForTest, MaxSpillBytes: 200}
				if series {
					o.Series = testSeries
				}
				return New(o)
			}
			indexed, scanned := mk(true), mk(false)
			for step := range 400 {
				var key string
				if rng.IntN(10) == 0 {
					key = fmt.Sprintf("other_%d", rng.IntN(5))
				} else {
					key = fmt.Sprintf("s%d_%d_%d", rng.IntN(3), rng.IntN(12), rng.IntN(3))
				}
				switch op := rng.IntN(10); {
				case op < 6:
					class := []Class{Cache, Shuffle, State, Input}[rng.IntN(4)]
					size := int64(10 + rng.IntN(40))
					e1 := indexed.Put(key, key, size, class)
					e2 := scanned.Put(key, key, size, class)
					if (e1 == nil) != (e2 == nil) {
						t.Fatalf("step %d: Put %s: %v and %v", step, key, e1, e2)
					}
				case op < 7:
					if indexed.Remove(key) != scanned.Remove(key) {
						t.Fatalf("step %d: Remove %s differs", step, key)
					}
				default:
					series, upTo := int64(rng.IntN(3)), int64(rng.IntN(14))-1
					n1, ok := indexed.RemoveSeries(series, upTo)
					n2 := scanned.RemoveIf(func(k string) bool {
						s, a, ok := testSeries(k)
						return ok && s == series && a <= upTo
					})
					if !ok || n1 != n2 {
						t.Fatalf("step %d: RemoveSeries(%d, %d) = %d, %v; RemoveIf removed %d", step, series, upTo, n1, ok, n2)
					}
				}
				if err := indexed.checkInvariants(); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				k1, k2 := indexed.Keys(Cache), scanned.Keys(Cache)
				slices.Sort(k1)
				slices.Sort(k2)
				if !slices.Equal(k1, k2) || indexed.Stats().SpilledBlocks != scanned.Stats().SpilledBlocks {
					t.Fatalf("step %d: the stores hold different blocks", step)
				}
			}
		})
	}
	if _, ok := New(Options{}).RemoveSeries(1, 1); ok {
		t.Fatal("a store with no index says it removed a series")
	}
}
