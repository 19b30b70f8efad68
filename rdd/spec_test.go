package rdd_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/rdd"
)

// A lineage runs tasks from their specs alone: results equal the actions',
// and specs the lineage cannot run are errors naming the task.
func TestExecuteSpecs(t *testing.T) {
	c, _ := newCtx(t, 2, 1<<20)
	words := rdd.Parallelize(c, []string{"a", "b", "a", "c", "b", "a"}, 3)
	counts := rdd.ReduceByKey(rdd.Map(words, func(w string) rdd.Pair[string, int] { return rdd.Pair[string, int]{Key: w, Value: 1} }),
		func(a, b int) int { return a + b }, 2)
	lin := rdd.IndexLineage(counts.Node())
	var shuffle *rdd.ID
	for _, d := range counts.Node().Deps() {
		if sd, ok := d.(*rdd.ShuffleDep); ok {
			shuffle = &sd.ID
		}
	}
	if shuffle == nil {
		t.Fatal("no shuffle")
	}
	mapSide := counts.Node().Deps()[0].(*rdd.ShuffleDep).Parent.ID
	run := func(spec rdd.TaskSpec) (any, error) {
		return lin.Execute(rdd.NewTaskContext(context.Background(), 1, 0, spec.Partition, spec.Attempt), spec)
	}
	for p := range 3 {
		if _, err := run(rdd.TaskSpec{Dataset: mapSide, Partition: p, Shuffle: shuffle}); err != nil {
			t.Fatal(err)
		}
	}
	var got []rdd.Pair[string, int]
	for p := range 2 {
		r, err := run(rdd.TaskSpec{Dataset: counts.ID(), Partition: p, Result: rdd.KindCollect})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.([]rdd.Pair[string, int])...)
	}
	want, err := counts.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("by spec %v, by action %v", got, want)
	}
	if n, err := run(rdd.TaskSpec{Dataset: words.ID(), Partition: 0, Result: rdd.KindCount}); err != nil || n.(int64) != 2 {
		t.Fatalf("count = %v, %v", n, err)
	}
	if xs, err := run(rdd.TaskSpec{Dataset: words.ID(), Partition: 2, Result: rdd.KindTake(1)}); err != nil || !reflect.DeepEqual(xs, []string{"b"}) {
		t.Fatalf("take(1) = %v, %v", xs, err)
	}

	bad := []struct {
		name string
		spec rdd.TaskSpec
		want string
	}{
		{"unknown dataset", rdd.TaskSpec{Dataset: rdd.ID{Op: 9, Seq: 9}, Result: rdd.KindCount}, "no such dataset"},
		{"unknown shuffle", rdd.TaskSpec{Dataset: mapSide, Shuffle: &rdd.ID{Op: 9}}, "no such shuffle"},
		{"shuffle of another dataset", rdd.TaskSpec{Dataset: words.ID(), Shuffle: shuffle}, "no such shuffle"},
		{"partition out of range", rdd.TaskSpec{Dataset: words.ID(), Partition: 3, Result: rdd.KindCount}, "has 3 partitions"},
		{"unnamed kind", rdd.TaskSpec{Dataset: words.ID(), Result: rdd.ResultKind{Name: "reduce"}}, "not a built-in"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := run(tt.spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Execute(%s) = %v, want an error saying %q", tt.spec, err, tt.want)
			}
		})
	}
}

// A registered output runs from its spec: once per partition, with the
// dataset's interval time; a dataset of another type is an error naming both.
func TestRegisteredOutput(t *testing.T) {
	c, _ := newCtx(t, 2, 1<<20)
	words := rdd.Parallelize(c, []string{"a", "b", "c"}, 3)
	var mu sync.Mutex
	got := map[int][]string{}
	rdd.RegisterOutput(c, 7, func(tc *rdd.TaskContext, ms int64, p int, recs []string) error {
		mu.Lock()
		defer mu.Unlock()
		got[p] = recs
		return nil
	})
	if err := words.RunOutput(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[int][]string{0: {"a"}, 1: {"b"}, 2: {"c"}}) {
		t.Fatalf("output saw %v", got)
	}
	nums := rdd.Parallelize(c, []int{1}, 1)
	err := nums.RunOutput(context.Background(), 7)
	if err == nil || !strings.Contains(err.Error(), "[]string") || !strings.Contains(err.Error(), "int") {
		t.Fatalf("output of the wrong type: %v", err)
	}
	if err := nums.RunOutput(context.Background(), 8); err == nil || !strings.Contains(err.Error(), "no output 8") {
		t.Fatalf("unregistered output: %v", err)
	}
}

// A shuffle bucket of another type than the reduce side reads is an error
// naming both types, never an empty bucket.
func TestWrongBucketTypeIsAnError(t *testing.T) {
	c, _ := newCtx(t, 2, 1<<20)
	words := rdd.Parallelize(c, []string{"a", "b", "a"}, 2)
	counts := rdd.ReduceByKey(rdd.Map(words, func(w string) rdd.Pair[string, int] { return rdd.Pair[string, int]{Key: w, Value: 1} }),
		func(a, b int) int { return a + b }, 2)
	if _, err := counts.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	shuffle := counts.Node().Deps()[0].(*rdd.ShuffleDep).ID
	if err := c.Shuffles().PutMapOutput(shuffle, 0, []any{[]int{1}, []int{2}}); err != nil {
		t.Fatal(err)
	}
	_, err := counts.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "holds []int") || !strings.Contains(err.Error(), "want []") {
		t.Fatalf("Collect over a bucket of the wrong type = %v", err)
	}
}

// A lineage walks a node's input shuffles once: later tasks of the stage get
// the first answer, which a cut made meanwhile (Truncate) cannot shrink.
func TestLineageInputShuffles(t *testing.T) {
	c, _ := newCtx(t, 2, 1<<20)
	pairs := rdd.Map(rdd.Parallelize(c, []string{"a", "b", "a"}, 2), func(w string) rdd.Pair[string, int] { return rdd.Pair[string, int]{Key: w, Value: 1} })
	counts := rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2)
	top := rdd.Map(counts, func(p rdd.Pair[string, int]) int { return p.Value })
	lin := rdd.IndexLineage(top.Node())
	cases := []struct {
		name string
		n    *rdd.Node
		want int
	}{
		{"through narrow dependencies to the shuffle", top.Node(), 1},
		{"the reduce side itself", counts.Node(), 1},
		{"the map side reads none", pairs.Node(), 0},
	}
	for _, tc := range cases {
		got := lin.InputShuffles(tc.n)
		if len(got) != tc.want || !reflect.DeepEqual(got, rdd.InputShuffles(tc.n)) {
			t.Errorf("%s: %d shuffles, want %d (as InputShuffles)", tc.name, len(got), tc.want)
		}
	}
	counts.Truncate(nil)
	if got := lin.InputShuffles(top.Node()); len(got) != 1 {
		t.Errorf("after a cut: %d shuffles, want the first answer's 1", len(got))
	}
}
