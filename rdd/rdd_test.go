package rdd_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
)

// newCtx returns a local context with the given slots and block store size.
func newCtx(t testing.TB, slots int, mem int64) (*rdd.Context, *block.Store) {
	t.Helper()
	bs := block.New(block.Options{MaxBytes: mem})
	sh := shuffle.New(bs)
	c, err := rdd.NewContext(rdd.Config{
		Runner:      sched.NewLocal(sched.LocalConfig{Slots: slots}),
		Blocks:      bs,
		Shuffles:    sh,
		Parallelism: slots,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, bs
}

var bg = context.Background()

func collectSorted[T any](t *testing.T, d *rdd.Dataset[T]) string {
	t.Helper()
	xs, err := d.Collect(bg)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	ss := make([]string, len(xs))
	for i, x := range xs {
		ss[i] = fmt.Sprint(x)
	}
	slices.Sort(ss)
	return strings.Join(ss, " ")
}

func TestNarrowOperators(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	d := rdd.Parallelize(c, []int{1, 2, 3, 4, 5, 6}, 3)
	m := rdd.Map(d, func(x int) int { return x * 10 })
	f := rdd.Filter(m, func(x int) bool { return x > 20 })
	fm := rdd.FlatMap(f, func(x int) []int { return []int{x, x + 1} })
	if got := collectSorted(t, fm); got != "30 31 40 41 50 51 60 61" {
		t.Errorf("map/filter/flatMap = %s", got)
	}
	u := rdd.Union(d, rdd.Parallelize(c, []int{7}, 1))
	if u.NumPartitions() != 4 {
		t.Errorf("union partitions = %d, want 4", u.NumPartitions())
	}
	if n, err := u.Count(bg); err != nil || n != 7 {
		t.Errorf("union count = %d, %v", n, err)
	}
	mp := rdd.MapPartitions(d, func(xs iter.Seq[int]) iter.Seq[int] {
		return func(yield func(int) bool) {
			n := 0
			for range xs {
				n++
			}
			yield(n)
		}
	})
	if got := collectSorted(t, mp); got != "2 2 2" {
		t.Errorf("mapPartitions = %s", got)
	}
}

func TestShuffleOperators(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	words := rdd.Parallelize(c, strings.Fields("a b a c b a d"), 3)
	pairs := rdd.Map(words, func(w string) rdd.Pair[string, int] { return rdd.KV(w, 1) })
	if got := collectSorted(t, rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2)); got != "(a,3) (b,2) (c,1) (d,1)" {
		t.Errorf("reduceByKey = %s", got)
	}
	if got := collectSorted(t, rdd.GroupByKey(pairs, 4)); got != "(a,[1 1 1]) (b,[1 1]) (c,[1]) (d,[1])" {
		t.Errorf("groupByKey = %s", got)
	}
	avg := rdd.CombineByKey(rdd.Parallelize(c, []rdd.Pair[string, float64]{{Key: "x", Value: 1}, {Key: "x", Value: 3}, {Key: "y", Value: 5}}, 2),
		rdd.Aggregator[float64, [2]float64]{
			Create:         func(v float64) [2]float64 { return [2]float64{v, 1} },
			MergeValue:     func(c [2]float64, v float64) [2]float64 { return [2]float64{c[0] + v, c[1] + 1} },
			MergeCombiners: func(a, b [2]float64) [2]float64 { return [2]float64{a[0] + b[0], a[1] + b[1]} },
		}, rdd.NewHashPartitioner[string](2), true)
	if got := collectSorted(t, rdd.MapValues(avg, func(c [2]float64) float64 { return c[0] / c[1] })); got != "(x,2) (y,5)" {
		t.Errorf("combineByKey average = %s", got)
	}
	if got := collectSorted(t, rdd.Distinct(words, 2)); got != "a b c d" {
		t.Errorf("distinct = %s", got)
	}
	r := rdd.Repartition(words, 5)
	if n, _ := r.Count(bg); n != 7 || r.NumPartitions() != 5 {
		t.Errorf("repartition count %d partitions %d", n, r.NumPartitions())
	}
}

func TestJoins(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	a := rdd.Parallelize(c, []rdd.Pair[int, string]{{Key: 1, Value: "a"}, {Key: 2, Value: "b"}, {Key: 2, Value: "bb"}, {Key: 3, Value: "c"}}, 2)
	b := rdd.Parallelize(c, []rdd.Pair[int, int]{{Key: 2, Value: 20}, {Key: 3, Value: 30}, {Key: 4, Value: 40}}, 3)
	if got := collectSorted(t, rdd.Join(a, b, 2)); got != "(2,(b,20)) (2,(bb,20)) (3,(c,30))" {
		t.Errorf("join = %s", got)
	}
	if got := collectSorted(t, rdd.LeftOuterJoin(a, b, 2)); got != "(1,(a,None)) (2,(b,Some(20))) (2,(bb,Some(20))) (3,(c,Some(30)))" {
		t.Errorf("leftOuterJoin = %s", got)
	}
	if got := collectSorted(t, rdd.Cogroup(a, b, 2)); got != "(1,{[a] []}) (2,{[b bb] [20]}) (3,{[c] [30]}) (4,{[] [40]})" {
		t.Errorf("cogroup = %s", got)
	}
}

func TestSortByKey(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	var in []rdd.Pair[int, int]
	for i := range 500 {
		in = append(in, rdd.KV(rng.IntN(100), i))
	}
	for _, asc := range []bool{true, false} {
		s, err := rdd.SortByKey(bg, rdd.Parallelize(c, in, 4), asc, 3)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Collect(bg)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(in)
		slices.SortStableFunc(want, func(a, b rdd.Pair[int, int]) int {
			if asc {
				return a.Key - b.Key
			}
			return b.Key - a.Key
		})
		if len(got) != len(want) {
			t.Fatalf("sorted %d records, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Key != want[i].Key {
				t.Fatalf("ascending=%v: position %d has key %d, want %d", asc, i, got[i].Key, want[i].Key)
			}
		}
	}
}

func TestActions(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	d := rdd.Parallelize(c, []int{5, 1, 4, 2, 3}, 3)
	if s, err := d.Reduce(bg, func(a, b int) int { return a + b }); err != nil || s != 15 {
		t.Errorf("reduce = %d, %v", s, err)
	}
	if _, err := rdd.Empty[int](c).Reduce(bg, func(a, b int) int { return a + b }); !errors.Is(err, rdd.ErrEmpty) {
		t.Errorf("reduce of empty = %v, want ErrEmpty", err)
	}
	if xs, err := d.Take(bg, 2); err != nil || len(xs) != 2 || xs[0] != 5 || xs[1] != 1 {
		t.Errorf("take(2) = %v, %v", xs, err)
	}
	if xs, err := d.Take(bg, 10); err != nil || len(xs) != 5 {
		t.Errorf("take(10) = %v, %v", xs, err)
	}
	m, err := rdd.CountByValue(bg, rdd.Parallelize(c, []string{"x", "y", "x"}, 2))
	if err != nil || m["x"] != 2 || m["y"] != 1 {
		t.Errorf("countByValue = %v, %v", m, err)
	}
}

func TestTextFile(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	var lines []string
	for i := range 1000 {
		lines = append(lines, strings.Repeat("x", i%37)+fmt.Sprint(i))
	}
	lines = append(lines, "", "last-without-newline")
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, parts := range []int{1, 2, 7, 64} {
		d, err := rdd.TextFile(c, path, parts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Collect(bg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, lines) {
			t.Fatalf("%d partitions: read %d lines, want %d (first difference matters)", parts, len(got), len(lines))
		}
	}
	if _, err := rdd.TextFile(c, filepath.Join(t.TempDir(), "missing"), 1); err == nil {
		t.Error("TextFile of a missing file did not fail")
	}
}

func TestPanicInUserCodeIsRetriedThenReported(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	var calls int
	d := rdd.Map(rdd.Parallelize(c, []int{1}, 1), func(x int) int {
		calls++
		panic("boom")
	})
	_, err := d.Collect(bg)
	var te *rdd.TaskError
	if !errors.As(err, &te) || te.Op != "map" || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want a TaskError in map with the panic message", err)
	}
	if calls != 4 {
		t.Errorf("user function ran %d times, want 4 attempts", calls)
	}
}

func TestPersistServesFromBlockStoreAndRecomputesAfterEviction(t *testing.T) {
	c, bs := newCtx(t, 1, 0)
	var computed int
	d := rdd.Map(rdd.Parallelize(c, []int{1, 2, 3}, 1), func(x int) int { computed++; return x }).Persist()
	for range 3 {
		if n, err := d.Count(bg); err != nil || n != 3 {
			t.Fatalf("count = %d, %v", n, err)
		}
	}
	if computed != 3 {
		t.Errorf("computed %d records for 3 counts of a persisted dataset, want 3", computed)
	}
	bs.RemoveIf(func(string) bool { return true }) // as if evicted
	if n, err := d.Count(bg); err != nil || n != 3 {
		t.Fatalf("count after eviction = %d, %v", n, err)
	}
	if computed != 6 {
		t.Errorf("after eviction computed = %d, want 6 (recomputed from lineage)", computed)
	}
}

func TestLostShuffleOutputIsRecomputedFromLineage(t *testing.T) {
	c, bs := newCtx(t, 2, 0)
	pairs := rdd.Map(rdd.Parallelize(c, strings.Fields("a b a c"), 2), func(w string) rdd.Pair[string, int] { return rdd.KV(w, 1) })
	red := rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2)
	if got := collectSorted(t, red); got != "(a,2) (b,1) (c,1)" {
		t.Fatal(got)
	}
	// Drop every shuffle bucket: the next action must rerun the map stage.
	n := bs.RemoveIf(func(k string) bool { return strings.HasPrefix(k, "shuffle_") })
	if n == 0 {
		t.Fatal("no shuffle blocks to drop")
	}
	if got := collectSorted(t, red); got != "(a,2) (b,1) (c,1)" {
		t.Errorf("after losing shuffle output: %s", got)
	}
}

func TestCheckpointTruncatesLineage(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	d := rdd.Map(rdd.Parallelize(c, []int{1, 2, 3}, 2), func(x int) int { return x + 1 })
	if err := d.Checkpoint(bg); err != nil {
		t.Fatal(err)
	}
	if len(d.Node().Deps()) != 0 || !d.Checkpointed() {
		t.Fatalf("deps after checkpoint = %v", d.Node().Deps())
	}
	if got := collectSorted(t, d); got != "2 3 4" {
		t.Errorf("checkpointed dataset = %s", got)
	}
}

// LineageDepth counts the longest chain of dependencies, narrow or shuffle,
// and a checkpoint cuts it.
func TestLineageDepth(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	src := rdd.Parallelize(c, []int{1, 2, 3}, 2)
	m := rdd.Map(src, func(x int) int { return x + 1 })
	pairs := rdd.Map(m, func(x int) rdd.Pair[int, int] { return rdd.KV(x%2, x) })
	red := rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2)
	u := rdd.Union(m, src)
	type depths struct{ src, m, red, u int }
	measure := func() depths {
		return depths{src.LineageDepth(), m.LineageDepth(), red.LineageDepth(), u.LineageDepth()}
	}
	if got, want := measure(), (depths{0, 1, 3, 2}); got != want {
		t.Errorf("depths {source map reduceByKey union} = %v, want %v", got, want)
	}
	if err := m.Checkpoint(bg); err != nil {
		t.Fatal(err)
	}
	if got, want := measure(), (depths{0, 0, 2, 1}); got != want {
		t.Errorf("after checkpointing the map, depths = %v, want %v", got, want)
	}
}

// TestPartitioningDoesNotChangeResults is metamorphic: the same word count
// over any number of input and shuffle partitions gives the same answer.
func TestPartitioningDoesNotChangeResults(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var words []string
	for range 2000 {
		words = append(words, fmt.Sprintf("w%d", rng.IntN(50)))
	}
	var want string
	for _, slots := range []int{1, 3} {
		c, _ := newCtx(t, slots, 0)
		for _, in := range []int{1, 4, 9} {
			for _, out := range []int{1, 2, 7} {
				pairs := rdd.Map(rdd.Parallelize(c, words, in), func(w string) rdd.Pair[string, int] { return rdd.KV(w, 1) })
				got := collectSorted(t, rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, out))
				if want == "" {
					want = got
				} else if got != want {
					t.Fatalf("slots=%d in=%d out=%d gives a different result", slots, in, out)
				}
			}
		}
	}
}

func TestCogroupReadsCoPartitionedInputInPlace(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	a := rdd.ReduceByKey(rdd.Parallelize(c, []rdd.Pair[string, int]{{Key: "x", Value: 1}, {Key: "y", Value: 2}, {Key: "x", Value: 3}}, 3), func(a, b int) int { return a + b }, 4)
	b := rdd.Parallelize(c, []rdd.Pair[string, string]{{Key: "x", Value: "X"}, {Key: "z", Value: "Z"}}, 2)
	cg := rdd.Cogroup(a, b, 4)
	deps := cg.Node().Deps()
	if _, narrow := deps[0].(rdd.NarrowDep); !narrow {
		t.Errorf("a hash-partitioned input over the same 4 partitions is shuffled again")
	}
	if _, shuffled := deps[1].(*rdd.ShuffleDep); !shuffled {
		t.Errorf("an unpartitioned input is not shuffled")
	}
	if got := collectSorted(t, cg); got != "(x,{[4] [X]}) (y,{[2] []}) (z,{[] [Z]})" {
		t.Errorf("cogroup = %s", got)
	}
	// Over a different number of partitions, the input must be shuffled.
	if _, narrow := rdd.Cogroup(a, b, 3).Node().Deps()[0].(rdd.NarrowDep); narrow {
		t.Error("input partitioned over 4 read in place by a 3-partition cogroup")
	}
	// A FlatMapSameKey keeps the partitioning; a FlatMap does not.
	kept := rdd.FlatMapSameKey(a, func(p rdd.Pair[string, int]) []rdd.Pair[string, int] { return []rdd.Pair[string, int]{p} })
	if _, narrow := rdd.Cogroup(kept, b, 4).Node().Deps()[0].(rdd.NarrowDep); !narrow {
		t.Error("FlatMapSameKey lost the partitioning")
	}
	lost := rdd.FlatMap(a, func(p rdd.Pair[string, int]) []rdd.Pair[string, int] { return []rdd.Pair[string, int]{p} })
	if _, narrow := rdd.Cogroup(lost, b, 4).Node().Deps()[0].(rdd.NarrowDep); narrow {
		t.Error("FlatMap kept a partitioning it cannot know")
	}
}

// FlatMapSeq stops pulling from f's sequence and from its input as soon as
// the consumer stops (Take), and yields in order.
func TestFlatMapSeqStopsEarly(t *testing.T) {
	c, _ := newCtx(t, 1, 0)
	pulled := 0
	d := rdd.FlatMapSeq(rdd.Parallelize(c, []int{1, 2, 3, 4}, 1), func(n int) iter.Seq[int] {
		return func(yield func(int) bool) {
			for i := range n {
				pulled++
				if !yield(10*n + i) {
					return
				}
			}
		}
	})
	got, err := d.Take(bg, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{10, 20, 21, 30}; !slices.Equal(got, want) {
		t.Fatalf("Take(4) = %v, want %v", got, want)
	}
	if pulled != 4 {
		t.Fatalf("pulled %d records, want 4", pulled)
	}
	all, err := d.Collect(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1+2+3+4 {
		t.Fatalf("Collect = %v", all)
	}
}

// An f whose sequence ignores the consumer's stop does not make FlatMapSeq
// yield past it.
func TestFlatMapSeqIgnoredStop(t *testing.T) {
	c, _ := newCtx(t, 1, 0)
	d := rdd.FlatMapSeq(rdd.Parallelize(c, []int{5}, 1), func(n int) iter.Seq[int] {
		return func(yield func(int) bool) {
			for i := range n {
				yield(i) // ignores false
			}
		}
	})
	got, err := d.Take(bg, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("Take(2) = %v", got)
	}
}

// FlatMapEmit gives what FlatMapSeq gives for the same f, record for
// record and in order, over partitions of every size, empty ones included.
func TestFlatMapEmitAgainstFlatMapSeq(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 23))
	for trial := range 40 {
		parts := make([][]int, rng.IntN(4)+1)
		for p := range parts {
			for range rng.IntN(6) {
				parts[p] = append(parts[p], rng.IntN(5))
			}
		}
		c, _ := newCtx(t, 2, 0)
		in := rdd.FromPartitions(c, "in", parts)
		// n makes n records: n, n+1, ..., 2n-1 (none for 0).
		emitted := rdd.FlatMapEmit(in, func(n int, emit func(string)) {
			for i := range n {
				emit(fmt.Sprint(n + i))
			}
		})
		seq := rdd.FlatMapSeq(in, func(n int) iter.Seq[string] {
			return func(yield func(string) bool) {
				for i := range n {
					if !yield(fmt.Sprint(n + i)) {
						return
					}
				}
			}
		})
		got, err := emitted.Collect(bg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := seq.Collect(bg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d, partitions %v: FlatMapEmit = %v, FlatMapSeq = %v", trial, parts, got, want)
		}
		if emitted.NumPartitions() != in.NumPartitions() {
			t.Fatalf("FlatMapEmit has %d partitions, its input %d", emitted.NumPartitions(), in.NumPartitions())
		}
	}
}

// Once the consumer stops, FlatMapEmit reads no more input and drops what f
// still emits: a Take gets exactly its records, and a consumer that breaks
// out of a range loop (which panics if its sequence yields again) sees one.
func TestFlatMapEmitStops(t *testing.T) {
	c, _ := newCtx(t, 1, 0)
	called := 0
	d := rdd.FlatMapEmit(rdd.Parallelize(c, []int{1, 3, 2, 4}, 1), func(n int, emit func(int)) {
		called++
		for i := range n {
			emit(10*n + i) // no stop check: emit drops records after the stop
		}
	})
	mapped := 0
	counted := rdd.Map(d, func(x int) int { mapped++; return x })
	got, err := counted.Take(bg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{10, 30, 31}; !slices.Equal(got, want) {
		t.Fatalf("Take(3) = %v, want %v", got, want)
	}
	if called != 2 || mapped != 3 {
		t.Fatalf("f called for %d records and the next operator for %d, want 2 and 3 (nothing read or passed on after the stop)", called, mapped)
	}
	for _, after := range []struct {
		name string
		d    *rdd.Dataset[int]
		want int
	}{
		{"flatMap", d, 10},
		{"map", rdd.Map(d, func(x int) int { return x + 1 }), 11},
	} {
		first := rdd.MapPartitions(after.d, func(xs iter.Seq[int]) iter.Seq[int] {
			return func(yield func(int) bool) {
				for x := range xs {
					yield(x)
					break
				}
			}
		})
		one, err := first.Collect(bg)
		if err != nil || !slices.Equal(one, []int{after.want}) {
			t.Fatalf("first after %s = %v, %v; want [%d]", after.name, one, err, after.want)
		}
	}
	all, err := d.Collect(bg)
	if want := []int{10, 30, 31, 32, 20, 21, 40, 41, 42, 43}; err != nil || !slices.Equal(all, want) {
		t.Fatalf("Collect = %v, %v; want %v", all, err, want)
	}
}

// Map and Filter after a FlatMapSeq whose f ignores the stop yield nothing
// past it, whether the flatMap is computed, persisted or read from the
// store, and a consumer that breaks out of a range loop never sees another
// record: whatever sits between f's sequences and the consumer must keep
// the guard's promise (guarded).
func TestStopAfterFlatMapSeq(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ignore   bool // f's sequences ignore the consumer's false
		persist  bool
		filter   bool
		take     int
		wantTake []int
	}{
		{"map", false, false, false, 3, []int{0, 10, 20}},
		{"map/ignoring", true, false, false, 3, []int{0, 10, 20}},
		{"map/ignoring/persisted", true, true, false, 4, []int{0, 10, 20, 30}},
		{"filter/ignoring", true, false, true, 2, []int{0, 2}},
		{"filter", false, false, true, 5, []int{0, 2, 4, 0, 2}},
		{"filter/ignoring/persisted", true, true, true, 1, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCtx(t, 1, 0)
			flat := rdd.FlatMapSeq(rdd.Parallelize(c, []int{5, 5, 0, 3}, 1), func(n int) iter.Seq[int] {
				return func(yield func(int) bool) {
					for i := range n {
						if !yield(i) && !tc.ignore {
							return
						}
					}
				}
			})
			if tc.persist {
				flat.Persist()
			}
			var d *rdd.Dataset[int]
			if tc.filter {
				d = rdd.Filter(flat, func(x int) bool { return x%2 == 0 })
			} else {
				d = rdd.Map(flat, func(x int) int { return 10 * x })
			}
			// A range loop that breaks panics if its sequence yields again.
			first := rdd.MapPartitions(d, func(xs iter.Seq[int]) iter.Seq[int] {
				return func(yield func(int) bool) {
					for x := range xs {
						yield(x)
						break
					}
				}
			})
			for range 2 { // computed, then (persisted) from the store
				got, err := d.Take(bg, tc.take)
				if err != nil || !slices.Equal(got, tc.wantTake) {
					t.Fatalf("Take(%d) = %v, %v; want %v", tc.take, got, err, tc.wantTake)
				}
				one, err := first.Collect(bg)
				if err != nil || !slices.Equal(one, tc.wantTake[:1]) {
					t.Fatalf("first = %v, %v; want %v", one, err, tc.wantTake[:1])
				}
			}
			all, err := d.Collect(bg)
			want := []int{0, 10, 20, 30, 40, 0, 10, 20, 30, 40, 0, 10, 20}
			if tc.filter {
				want = []int{0, 2, 4, 0, 2, 4, 0, 2}
			}
			if err != nil || !slices.Equal(all, want) {
				t.Fatalf("Collect = %v, %v; want %v", all, err, want)
			}
		})
	}
}

func TestCountAndFoldPartitions(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	d := rdd.FromPartitions(c, "in", [][]int{{1, 2, 3}, nil, {4}})
	counts, err := rdd.CountPartitions(d).Collect(bg)
	if err != nil || !slices.Equal(counts, []int64{3, 0, 1}) {
		t.Errorf("CountPartitions = %v, %v; want [3 0 1]", counts, err)
	}
	sums, err := rdd.FoldPartitions(d, func(a, b int) int { return a + b }).Collect(bg)
	if err != nil || !slices.Equal(sums, []int{6, 4}) {
		t.Errorf("FoldPartitions = %v, %v; want [6 4] (nothing for the empty partition)", sums, err)
	}
	_, err = rdd.FoldPartitions(d, func(a, b int) int { panic("boom") }).Collect(bg)
	var te *rdd.TaskError
	if !errors.As(err, &te) || te.Op != "reduce" {
		t.Errorf("a panicking fold: %v, want a task error in operator reduce", err)
	}
}

// A MapPartitions f whose sequence ignores the consumer's stop does not make
// the dataset yield past it.
func TestMapPartitionsIgnoredStop(t *testing.T) {
	c, _ := newCtx(t, 1, 0)
	d := rdd.MapPartitions(rdd.Parallelize(c, []int{1, 2, 3, 4, 5}, 1), func(xs iter.Seq[int]) iter.Seq[int] {
		return func(yield func(int) bool) {
			for x := range xs {
				yield(x * 2) // ignores false
			}
		}
	})
	got, err := d.Take(bg, 2)
	if err != nil || !slices.Equal(got, []int{2, 4}) {
		t.Fatalf("Take(2) = %v, %v", got, err)
	}
}
