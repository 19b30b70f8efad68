package rdd_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/dstream/dstream/rdd"
)

// The keyed operators of a stream reuse their combiners from one interval
// to the next (combiners.go): every interval's result must be what a fresh
// computation gives, whatever the interval before held.
func TestKeyedOperatorsAcrossIntervals(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	sizes := []int{500, 3, 0, 2000, 40, 40}
	for i, n := range sizes {
		words := make([]string, n)
		for j := range words {
			words[j] = fmt.Sprint("w", (j*7+i)%(n/3+1))
		}
		want := map[string]int{}
		for _, w := range words {
			want[w]++
		}
		var red *rdd.Dataset[rdd.Pair[string, int]]
		var grp *rdd.Dataset[rdd.Pair[string, []int]]
		var cg *rdd.Dataset[rdd.Pair[string, [][]int]]
		c.InScope(7, int64(1000*(i+1)), func() {
			ones := rdd.Map(rdd.Parallelize(c, words, 3), func(w string) rdd.Pair[string, int] { return rdd.Pair[string, int]{Key: w, Value: 1} })
			red = rdd.ReduceByKey(ones, func(a, b int) int { return a + b }, 2)
			grp = rdd.GroupByKey(ones, 2)
			cg = rdd.CogroupAll(2, red, ones)
		})
		for name, got := range map[string]func() (map[string]int, error){
			"reduceByKey": func() (map[string]int, error) {
				xs, err := red.Collect(bg)
				return pairsMap(xs, func(v int) int { return v }), err
			},
			"groupByKey": func() (map[string]int, error) {
				xs, err := grp.Collect(bg)
				return pairsMap(xs, func(v []int) int { return len(v) }), err
			},
			"cogroup": func() (map[string]int, error) {
				xs, err := cg.Collect(bg)
				return pairsMap(xs, func(v [][]int) int {
					if len(v[0]) != 1 || v[0][0] != len(v[1]) {
						return -1
					}
					return v[0][0]
				}), err
			},
		} {
			m, err := got()
			if err != nil {
				t.Fatalf("interval %d %s: %v", i, name, err)
			}
			if !maps.Equal(m, want) {
				t.Errorf("interval %d (%d words) %s: %d keys, want %d", i, n, name, len(m), len(want))
			}
		}
	}
}

// pairsMap is xs as a map (-2 for a key seen twice).
func pairsMap[V any](xs []rdd.Pair[string, V], f func(V) int) map[string]int {
	m := map[string]int{}
	for _, x := range xs {
		if _, ok := m[x.Key]; ok {
			m[x.Key] = -2
			continue
		}
		m[x.Key] = f(x.Value)
	}
	return m
}

// A partition function and Collect get records of their own even when the
// partition is stored (persisted, kept): reordering them changes nothing
// stored. Keep pins the stored block as it is.
func TestStoredPartitionsAreNotHandedOut(t *testing.T) {
	c, bs := newCtx(t, 1, 0)
	d := rdd.Map(rdd.Parallelize(c, []int{3, 1, 2}, 1), func(x int) int { return x }).Persist()
	if _, err := d.Count(bg); err != nil { // computed and cached
		t.Fatal(err)
	}
	const sortFn = 41
	if err := rdd.RegisterPartitionFunc(c, sortFn, func(_ *rdd.TaskContext, xs []int, _ string) (int, error) {
		slices.Sort(xs)
		return len(xs), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rdd.RunPartitionFunc[int, int](bg, d, sortFn, "", nil); err != nil {
		t.Fatal(err)
	}
	xs, err := d.Collect(bg)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(xs)
	if err := d.Keep(bg); err != nil {
		t.Fatal(err)
	}
	v, ok := bs.Get(rdd.BlockKey(d.ID(), 0))
	if !ok {
		t.Fatal("kept partition not stored")
	}
	if got := v.([]int); !slices.Equal(got, []int{3, 1, 2}) {
		t.Fatalf("stored partition %v, want [3 1 2]: a task changed it", got)
	}
	if got, err := d.Collect(bg); err != nil || !slices.Equal(got, []int{3, 1, 2}) {
		t.Fatalf("collect after keep: %v, %v", got, err)
	}
}

// A persisted partition is collected at the size the dataset's last
// partition had (a stream's next interval), and the cache keeps no more
// room than its records need when a partition is much smaller (skew).
func TestPersistedPartitionsHoldTheirSize(t *testing.T) {
	c, bs := newCtx(t, 1, 0)
	for i, n := range []int{5000, 10, 4000, 0} {
		var d *rdd.Dataset[int]
		c.InScope(9, int64(1000*(i+1)), func() {
			d = rdd.Map(rdd.Parallelize(c, make([]int, n), 1), func(x int) int { return x + i }).Persist()
		})
		if got, err := d.Count(bg); err != nil || got != int64(n) {
			t.Fatalf("interval %d: count %d, %v; want %d", i, got, err, n)
		}
		v, ok := bs.Get(rdd.BlockKey(d.ID(), 0))
		if !ok {
			t.Fatalf("interval %d: partition not cached", i)
		}
		xs := v.([]int)
		if len(xs) != n || cap(xs) > 2*n+64 {
			t.Errorf("interval %d: cached %d records in room for %d", i, len(xs), cap(xs))
		}
	}
}
