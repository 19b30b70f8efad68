package dstream_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
)

type kv = dstream.Pair[string, int]

func p(k string, v int) kv { return dstream.KV(k, v) }

func add(a, b int) int { return a + b }
func sub(a, b int) int { return a - b }

// check compares every interval's sorted output with the expected one.
func check[U any](t *testing.T, got, want [][]U) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d intervals, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range want {
		w := dstreamtest.Sorted(want[i])
		if !reflect.DeepEqual(fmt.Sprint(got[i]), fmt.Sprint(w)) {
			t.Errorf("interval %d:\n got %v\nwant %v", i+1, got[i], w)
		}
	}
}

func run[T, U any](t *testing.T, input [][]T, op func(*dstream.Stream[T]) *dstream.Stream[U], ticks int) [][]U {
	t.Helper()
	return dstreamtest.Run(t, dstreamtest.Options{}, input, op, ticks)
}

func TestMap(t *testing.T) {
	in := [][]int{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[string] {
		return dstream.Map(s, func(x int) string { return fmt.Sprint(x) })
	}, 3)
	check(t, got, [][]string{{"1", "2", "3", "4"}, {"5", "6", "7", "8"}, {"9", "10", "11", "12"}})
}

func TestFlatMap(t *testing.T) {
	in := [][]int{{1, 2}, {3}, {}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] {
		return dstream.FlatMap(s, func(x int) []int { return []int{x, x * 2} })
	}, 3)
	check(t, got, [][]int{{1, 2, 2, 4}, {3, 6}, {}})
}

func TestFlatMapSeqAndEmit(t *testing.T) {
	in := [][]string{{"a b", "b"}, {""}, {"c  a c"}}
	one := func(w string) dstream.Pair[string, int] { return dstream.KV(w, 1) }
	want := [][]dstream.Pair[string, int]{{one("a"), one("b"), one("b")}, {}, {one("c"), one("a"), one("c")}}
	seq := run(t, in, func(s *dstream.Stream[string]) *dstream.Stream[dstream.Pair[string, int]] {
		words := dstream.FlatMapSeq(s, strings.FieldsSeq)
		return dstream.Map(words, func(w string) dstream.Pair[string, int] { return dstream.KV(w, 1) })
	}, 3)
	check(t, seq, want)
	emit := run(t, in, func(s *dstream.Stream[string]) *dstream.Stream[dstream.Pair[string, int]] {
		return dstream.FlatMapEmit(s, func(line string, emit func(dstream.Pair[string, int])) {
			for w := range strings.FieldsSeq(line) {
				emit(dstream.KV(w, 1))
			}
		})
	}, 3)
	check(t, emit, want)
}

func TestFilter(t *testing.T) {
	in := [][]int{{1, 2, 3, 4}, {5, 6}, {7}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] {
		return dstream.Filter(s, func(x int) bool { return x%2 == 0 })
	}, 3)
	check(t, got, [][]int{{2, 4}, {6}, {}})
}

func TestMapPartitionsAndRepartition(t *testing.T) {
	in := [][]int{{1, 2, 3, 4, 5, 6}, {7, 8}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] {
		r := dstream.Repartition(s, 3)
		return dstream.Transform(r, func(ds *rdd.Dataset[int], _ time.Time) (*rdd.Dataset[int], error) {
			if ds.NumPartitions() != 3 {
				return nil, fmt.Errorf("repartition gave %d partitions", ds.NumPartitions())
			}
			return ds, nil
		})
	}, 2)
	check(t, got, [][]int{{1, 2, 3, 4, 5, 6}, {7, 8}})
	sums := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] {
		return dstream.Reduce(dstream.MapPartitions(s, func(xs iter.Seq[int]) iter.Seq[int] {
			return func(yield func(int) bool) {
				sum := 0
				for x := range xs {
					sum += x
				}
				yield(sum)
			}
		}), add)
	}, 2)
	check(t, sums, [][]int{{21}, {15}})
}

func TestUnion(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	q2 := dstream.NewQueue[int]()
	other := dstream.QueueStream(h.Ctx, q2)
	col := dstreamtest.Collect(dstream.Union(h.In, other))
	h.Input.Push(1, 2)
	h.Input.Push(3)
	q2.Push(10)
	q2.Push()
	h.Start()
	t1, t2 := h.Tick(), h.Tick()
	check(t, [][]int{dstreamtest.Sorted(col.At(t1)), dstreamtest.Sorted(col.At(t2))}, [][]int{{1, 2, 10}, {3}})
}

func TestCountReduceCountByValue(t *testing.T) {
	in := [][]string{{"a", "b", "a"}, {}, {"c"}}
	check(t, run(t, in, func(s *dstream.Stream[string]) *dstream.Stream[int64] { return dstream.Count(s) }, 3),
		[][]int64{{3}, {0}, {1}})
	check(t, run(t, in, func(s *dstream.Stream[string]) *dstream.Stream[string] {
		return dstream.Reduce(s, func(a, b string) string {
			if a < b {
				return a
			}
			return b
		})
	}, 3), [][]string{{"a"}, {}, {"c"}})
	check(t, run(t, in, func(s *dstream.Stream[string]) *dstream.Stream[dstream.Pair[string, int64]] {
		return dstream.CountByValue(s, 2)
	}, 3), [][]dstream.Pair[string, int64]{{dstream.KV("a", int64(2)), dstream.KV("b", int64(1))}, {}, {dstream.KV("c", int64(1))}})
}

func TestReduceByKeyGroupByKey(t *testing.T) {
	in := [][]kv{{p("a", 1), p("b", 2), p("a", 3)}, {p("b", 1), p("b", 1)}, {}}
	check(t, run(t, in, func(s *dstream.Stream[kv]) *dstream.Stream[kv] { return dstream.ReduceByKey(s, add, 3) }, 3),
		[][]kv{{p("a", 4), p("b", 2)}, {p("b", 2)}, {}})
	got := run(t, in, func(s *dstream.Stream[kv]) *dstream.Stream[dstream.Pair[string, []int]] {
		return dstream.GroupByKey(s, 2)
	}, 3)
	check(t, got, [][]dstream.Pair[string, []int]{{dstream.KV("a", []int{1, 3}), dstream.KV("b", []int{2})}, {dstream.KV("b", []int{1, 1})}, {}})
}

func TestJoinsAndCogroup(t *testing.T) {
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	q2 := dstream.NewQueue[dstream.Pair[string, string]]()
	right := dstream.QueueStream(h.Ctx, q2)
	join := dstreamtest.Collect(dstream.Join(h.In, right, 2))
	left := dstreamtest.Collect(dstream.LeftOuterJoin(h.In, right, 2))
	cg := dstreamtest.Collect(dstream.Cogroup(h.In, right, 2))
	h.Input.Push(p("a", 1), p("b", 2), p("a", 3))
	q2.Push(dstream.KV("a", "x"), dstream.KV("c", "y"))
	h.Start()
	t1 := h.Tick()
	if got, want := fmt.Sprint(dstreamtest.Sorted(join.At(t1))), "[(a,(1,x)) (a,(3,x))]"; got != want {
		t.Errorf("join = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(dstreamtest.Sorted(left.At(t1))), "[(a,(1,Some(x))) (a,(3,Some(x))) (b,(2,None))]"; got != want {
		t.Errorf("leftOuterJoin = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(dstreamtest.Sorted(cg.At(t1))), "[(a,{[1 3] [x]}) (b,{[2] []}) (c,{[] [y]})]"; got != want {
		t.Errorf("cogroup = %s, want %s", got, want)
	}
}

func TestTransformJoinsStaticDataset(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	static := rdd.Parallelize(h.Ctx.Datasets(), []dstream.Pair[string, string]{{Key: "go", Value: "lang"}, {Key: "tea", Value: "drink"}}, 2)
	pairs := dstream.Map(h.In, func(w string) kv { return p(w, 1) })
	joined := dstream.Transform(pairs, func(ds *rdd.Dataset[kv], _ time.Time) (*rdd.Dataset[dstream.Pair[string, dstream.Pair[int, string]]], error) {
		return rdd.Join(ds, static, 2), nil
	})
	col := dstreamtest.Collect(joined)
	h.Input.Push("go", "rust", "tea", "go")
	h.Start()
	t1 := h.Tick()
	if got, want := fmt.Sprint(dstreamtest.Sorted(col.At(t1))), "[(go,(1,lang)) (go,(1,lang)) (tea,(1,drink))]"; got != want {
		t.Errorf("stream-static join = %s, want %s", got, want)
	}
}

func TestTransformWith(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	q2 := dstream.NewQueue[int]()
	other := dstream.QueueStream(h.Ctx, q2)
	both := dstream.TransformWith(h.In, other, func(a, b *rdd.Dataset[int], _ time.Time) (*rdd.Dataset[int], error) {
		return rdd.Union(a, rdd.Map(b, func(x int) int { return -x })), nil
	})
	col := dstreamtest.Collect(both)
	h.Input.Push(1, 2)
	q2.Push(3)
	h.Start()
	t1 := h.Tick()
	check(t, [][]int{dstreamtest.Sorted(col.At(t1))}, [][]int{{-3, 1, 2}})
}

func TestUserPanicFailsIntervalNamingOperatorAndJobContinues(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{Config: carryOn})
	m := dstream.Map(h.In, func(x int) int {
		if x == 13 {
			panic("unlucky record")
		}
		return x
	})
	col := dstreamtest.Collect(m)
	h.Input.Push(1, 13)
	h.Input.Push(2)
	h.Start()
	t1 := h.Tick()
	err := col.Err(t1)
	if err == nil || !strings.Contains(err.Error(), "unlucky record") || !strings.Contains(err.Error(), "map") {
		t.Fatalf("interval 1 error = %v, want the panic message and the operator name", err)
	}
	if !strings.Contains(err.Error(), "failed 4 times") {
		t.Errorf("error %v does not say the task was tried 4 times", err)
	}
	var te *rdd.TaskError
	if !errors.As(err, &te) || te.Op != "map" {
		t.Errorf("error %v is not a TaskError for operator map", err)
	}
	t2 := h.Tick()
	if got := col.At(t2); !reflect.DeepEqual(got, []int{2}) {
		t.Errorf("interval 2 after a failed one = %v, want [2]", got)
	}
}

func TestWindowNotMultipleIsAnError(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	dstream.Window(h.In, 1500*time.Millisecond, time.Second).Print(1)
	err := h.Ctx.Start()
	if err == nil || !strings.Contains(err.Error(), "multiple") || !strings.Contains(err.Error(), "basic_test.go") {
		t.Fatalf("Start = %v, want an error about multiples that names the caller", err)
	}
}

func TestStartNeedsOutput(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	if err := h.Ctx.Start(); err == nil {
		t.Fatal("Start without outputs succeeded")
	}
}

func TestPrint(t *testing.T) {
	var out strings.Builder
	h := dstreamtest.New[int](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.Out = &out; c.Master = "local[1]" }})
	h.In.Print(2)
	h.Input.Push(1, 2, 3)
	h.Start()
	t1 := h.Tick()
	want := fmt.Sprintf("-------------------------------------------\nTime: %d ms\n-------------------------------------------\n1\n2\n...\n\n", t1.UnixMilli())
	if out.String() != want {
		t.Errorf("print wrote %q, want %q", out.String(), want)
	}
}

func TestForeachRDDGetsIntervalTimes(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	var times []int64
	dstream.ForeachRDD(h.In, func(_ context.Context, _ *rdd.Dataset[int], at time.Time) error {
		times = append(times, at.UnixMilli())
		return nil
	})
	h.Start()
	h.Tick()
	h.Tick()
	start := h.Ctx.StartTime().UnixMilli()
	if want := []int64{start + 1000, start + 2000}; !reflect.DeepEqual(times, want) {
		t.Errorf("times = %v, want %v", times, want)
	}
}

func TestDriverSidePanicsFailTheIntervalNotTheProcess(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{Config: carryOn})
	tr := dstream.Transform(h.In, func(ds *rdd.Dataset[int], _ time.Time) (*rdd.Dataset[int], error) {
		if n, _ := ds.Count(context.Background()); n == 13 {
			panic("transform blew up")
		}
		return ds, nil
	})
	col := dstreamtest.Collect(tr)
	var mu sync.Mutex
	var errs []error
	h.Ctx.AddListener(listener.Func(func(e listener.Event) { panic("listener blew up") }))
	h.Ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			mu.Lock()
			errs = append(errs, c.Batch.Err)
			mu.Unlock()
		}
	}))
	h.Input.Push(make([]int, 13)...)
	h.Input.Push(1)
	h.Start()
	h.Tick()
	t2 := h.Tick()
	if got := col.At(t2); len(got) != 1 {
		t.Errorf("interval after a driver-side panic = %v, want [1]", got)
	}
	if err := h.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) < 2 || errs[0] == nil || !strings.Contains(errs[0].Error(), "transform blew up") || errs[1] != nil {
		t.Errorf("interval errors = %v, want the panic in interval 1 only", errs)
	}
}
