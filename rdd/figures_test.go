package rdd_test

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
)

// taskLog keeps the events of the task attempts that ended.
type taskLog struct {
	mu     sync.Mutex
	events []sched.TaskEvent
}

func (l *taskLog) add(e sched.TaskEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// take returns the events logged since the last take.
func (l *taskLog) take() []sched.TaskEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	es := l.events
	l.events = nil
	return es
}

// newLoggedCtx is newCtx whose scheduler logs every task attempt.
func newLoggedCtx(t *testing.T, slots int) (*rdd.Context, *taskLog) {
	t.Helper()
	log := &taskLog{}
	bs := block.New(block.Options{})
	c, err := rdd.NewContext(rdd.Config{
		Runner:      sched.NewLocal(sched.LocalConfig{Slots: slots, OnTask: log.add}),
		Blocks:      bs,
		Shuffles:    shuffle.New(bs),
		Parallelism: slots,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, log
}

// modPartitioner places int key k in partition k mod n: reduce partitions
// whose records a test can count.
type modPartitioner int

func (n modPartitioner) NumPartitions() int  { return int(n) }
func (n modPartitioner) Partition(k int) int { return k % int(n) }

// figureLines renders each attempt's figures as a line, sorted: map tasks
// first, then result tasks, by partition. Shuffle bytes show as 0, ">0" or
// -1 (their exact values are the block store's estimates).
func figureLines(es []sched.TaskEvent) []string {
	bytes := func(n int64) string {
		if n > 0 {
			return ">0"
		}
		return fmt.Sprint(n)
	}
	var lines []string
	for _, e := range es {
		kind := "result"
		if e.Task.IsMap() {
			kind = "map"
		}
		f := e.Figures
		l := fmt.Sprintf("%s %d: read %d, wrote %d, shuffle read %s, shuffle write %s",
			kind, e.Task.Partition(), f.RecordsRead, f.RecordsWritten, bytes(f.ShuffleReadBytes), bytes(f.ShuffleWriteBytes))
		if e.Err != nil {
			l += ", failed"
		}
		lines = append(lines, l)
	}
	slices.Sort(lines)
	return lines
}

func ints(n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	return xs
}

// TestTaskFigures runs jobs whose every task's records are known and
// checks the figures each attempt reports; in every job, the shuffle bytes
// the reduce tasks read sum to those the map tasks wrote (local[N]: each
// bucket is read once, where it was written).
func TestTaskFigures(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, c *rdd.Context) error // the jobs whose tasks are checked
		want []string
	}{{
		// 1000 distinct keys, 4 map partitions of 250, 3 reduce partitions
		// by key mod 3: 334, 333 and 333 records.
		name: "partitionBy",
		run: func(ctx context.Context, c *rdd.Context) error {
			pairs := rdd.Map(rdd.Parallelize(c, ints(1000), 4), func(i int) rdd.Pair[int, string] { return rdd.KV(i, fmt.Sprint("v", i)) })
			xs, err := rdd.PartitionBy(pairs, rdd.Partitioner[int](modPartitioner(3))).Collect(ctx)
			if err == nil && len(xs) != 1000 {
				err = fmt.Errorf("collected %d records", len(xs))
			}
			return err
		},
		want: []string{
			"map 0: read 250, wrote 250, shuffle read 0, shuffle write >0",
			"map 1: read 250, wrote 250, shuffle read 0, shuffle write >0",
			"map 2: read 250, wrote 250, shuffle read 0, shuffle write >0",
			"map 3: read 250, wrote 250, shuffle read 0, shuffle write >0",
			"result 0: read 334, wrote 334, shuffle read >0, shuffle write 0",
			"result 1: read 333, wrote 333, shuffle read >0, shuffle write 0",
			"result 2: read 333, wrote 333, shuffle read >0, shuffle write 0",
		},
	}, {
		// Keys i mod 10, combined on the map side: each map partition of
		// 250 writes its 10 keys; reduce partition r (keys of parity r)
		// reads 5 keys from each of the 4 map outputs and counts 5.
		name: "combineByKey count",
		run: func(ctx context.Context, c *rdd.Context) error {
			pairs := rdd.Map(rdd.Parallelize(c, ints(1000), 4), func(i int) rdd.Pair[int, int] { return rdd.KV(i%10, 1) })
			sum := func(a, b int) int { return a + b }
			n, err := rdd.CombineByKey(pairs, rdd.Aggregator[int, int]{Create: func(v int) int { return v }, MergeValue: sum, MergeCombiners: sum},
				rdd.Partitioner[int](modPartitioner(2)), true).Count(ctx)
			if err == nil && n != 10 {
				err = fmt.Errorf("counted %d keys", n)
			}
			return err
		},
		want: []string{
			"map 0: read 250, wrote 10, shuffle read 0, shuffle write >0",
			"map 1: read 250, wrote 10, shuffle read 0, shuffle write >0",
			"map 2: read 250, wrote 10, shuffle read 0, shuffle write >0",
			"map 3: read 250, wrote 10, shuffle read 0, shuffle write >0",
			"result 0: read 20, wrote 5, shuffle read >0, shuffle write 0",
			"result 1: read 20, wrote 5, shuffle read >0, shuffle write 0",
		},
	}, {
		// A take stops reading where it has enough.
		name: "take",
		run: func(ctx context.Context, c *rdd.Context) error {
			_, err := rdd.Parallelize(c, ints(100), 2).Take(ctx, 5)
			return err
		},
		want: []string{"result 0: read 5, wrote 5, shuffle read 0, shuffle write 0"},
	}, {
		// The first count computes and caches the partitions (its
		// source's records counted, not the cache's too); the second reads
		// them from the cache.
		name: "persisted",
		run: func(ctx context.Context, c *rdd.Context) error {
			d := rdd.Map(rdd.Parallelize(c, ints(100), 2), func(i int) int { return i }).Persist()
			evens := rdd.Filter(d, func(i int) bool { return i%2 == 0 })
			if _, err := evens.Count(ctx); err != nil {
				return err
			}
			_, err := evens.Count(ctx)
			return err
		},
		want: []string{
			"result 0: read 50, wrote 25, shuffle read 0, shuffle write 0",
			"result 0: read 50, wrote 25, shuffle read 0, shuffle write 0",
			"result 1: read 50, wrote 25, shuffle read 0, shuffle write 0",
			"result 1: read 50, wrote 25, shuffle read 0, shuffle write 0",
		},
	}, {
		// A source of yielded records; foreach visits the even ones.
		name: "fromFunc foreach",
		run: func(ctx context.Context, c *rdd.Context) error {
			src := rdd.FromFunc(c, "gen", 3, func(tc *rdd.TaskContext, p int) iter.Seq[int] { return slices.Values(ints(10)) })
			return rdd.Filter(src, func(i int) bool { return i%2 == 0 }).Foreach(ctx, func(int) {})
		},
		want: []string{
			"result 0: read 10, wrote 5, shuffle read 0, shuffle write 0",
			"result 1: read 10, wrote 5, shuffle read 0, shuffle write 0",
			"result 2: read 10, wrote 5, shuffle read 0, shuffle write 0",
		},
	}, {
		name: "reduce",
		run: func(ctx context.Context, c *rdd.Context) error {
			_, err := rdd.Parallelize(c, ints(100), 2).Reduce(ctx, func(a, b int) int { return a + b })
			return err
		},
		want: []string{
			"result 0: read 50, wrote 50, shuffle read 0, shuffle write 0",
			"result 1: read 50, wrote 50, shuffle read 0, shuffle write 0",
		},
	}, {
		// Keep checkpoints the partitions where they are computed; a
		// count then reads them from the block store.
		name: "kept",
		run: func(ctx context.Context, c *rdd.Context) error {
			d := rdd.Parallelize(c, ints(30), 3)
			if err := d.Keep(ctx); err != nil {
				return err
			}
			_, err := d.Count(ctx)
			return err
		},
		want: []string{
			"result 0: read 10, wrote 10, shuffle read 0, shuffle write 0",
			"result 0: read 10, wrote 10, shuffle read 0, shuffle write 0",
			"result 1: read 10, wrote 10, shuffle read 0, shuffle write 0",
			"result 1: read 10, wrote 10, shuffle read 0, shuffle write 0",
			"result 2: read 10, wrote 10, shuffle read 0, shuffle write 0",
			"result 2: read 10, wrote 10, shuffle read 0, shuffle write 0",
		},
	}, {
		// A job whose function is a closure from outside the package
		// reads through no dataset and does not say what it wrote.
		name: "closure job",
		run: func(ctx context.Context, c *rdd.Context) error {
			d := rdd.Parallelize(c, ints(10), 1)
			_, err := c.RunJob(ctx, &rdd.Job{Name: "f", Final: d.Node(), Partitions: []int{0},
				Func: func(*rdd.TaskContext, int) (any, error) { return 1, nil }})
			return err
		},
		want: []string{"result 0: read 0, wrote -1, shuffle read 0, shuffle write 0"},
	}, {
		// A failed task reports what it did before it failed.
		name: "failed task",
		run: func(ctx context.Context, c *rdd.Context) error {
			d := rdd.Map(rdd.Parallelize(c, ints(10), 1), func(i int) int {
				if i == 3 {
					panic("boom")
				}
				return i
			})
			if _, err := d.Collect(ctx); err == nil {
				return fmt.Errorf("the job did not fail")
			}
			return nil
		},
		want: slices.Repeat([]string{"result 0: read 4, wrote 0, shuffle read 0, shuffle write 0, failed"}, 4), // 4 attempts
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, log := newLoggedCtx(t, 2)
			if err := tc.run(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			es := log.take()
			if got, want := strings.Join(figureLines(es), "\n"), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("figures:\n%s\nwant:\n%s", got, want)
			}
			var read, written int64
			for _, e := range es {
				read += e.Figures.ShuffleReadBytes
				written += e.Figures.ShuffleWriteBytes
			}
			if read != written {
				t.Errorf("shuffle bytes read %d, written %d", read, written)
			}
		})
	}
}

// TestWithFigures: Lineage.Execute stores the figures of the task it ran
// where WithFigures asked, as a worker serving another process's task does;
// a later task under the same context leaves them.
func TestWithFigures(t *testing.T) {
	c, _ := newCtx(t, 1, 0)
	d := rdd.Parallelize(c, ints(12), 3)
	lin := rdd.IndexLineage(d.Node())
	fig := rdd.NotMeasured
	ctx := rdd.WithFigures(t.Context(), &fig)
	tc := rdd.NewTaskContext(ctx, 1, 0, 1, 0)
	n, err := lin.Execute(tc, rdd.TaskSpec{Dataset: d.ID(), Partition: 1, Result: rdd.KindTake(3)})
	if err != nil || len(n.([]int)) != 3 {
		t.Fatalf("take = %v, %v", n, err)
	}
	want := rdd.TaskFigures{RecordsRead: 3, RecordsWritten: 3}
	if fig != want || tc.Figures() != want {
		t.Errorf("figures %+v, task context's %+v; want %+v", fig, tc.Figures(), want)
	}
	if _, err := lin.Execute(rdd.NewTaskContext(ctx, 1, 0, 0, 0), rdd.TaskSpec{Dataset: d.ID(), Result: rdd.KindCount}); err != nil || fig != want {
		t.Errorf("after a second task: figures %+v, %v; want the first's, %+v", fig, err, want)
	}
}
