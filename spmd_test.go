package dstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// spmdGraph builds the same graph in any context: a queue input, a plain
// shuffle, an incremental window (state), per-key state and a plain window;
// it returns the streams to compare, rendered as text.
func spmdGraph(ctx *dstream.Context, q *dstream.Queue[string]) map[string]*dstream.Stream[string] {
	add := func(a, b int64) int64 { return a + b }
	sub := func(a, b int64) int64 { return a - b }
	show := func(s *dstream.Stream[dstream.Pair[string, int64]]) *dstream.Stream[string] {
		return dstream.Map(s, func(p dstream.Pair[string, int64]) string { return fmt.Sprint(p.Key, "=", p.Value) })
	}
	words := dstream.FlatMap(dstream.QueueStream(ctx, q), strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	out := map[string]*dstream.Stream[string]{
		"reduceByKey": show(dstream.ReduceByKey(pairs, add, 2)),
		"window-inv":  show(dstream.ReduceByKeyAndWindowInv(pairs, add, sub, 3*time.Second, time.Second, 2, nil)),
		"state": show(dstream.UpdateStateByKey(pairs, func(vs []int64, st dstream.Opt[int64]) dstream.Opt[int64] {
			return dstream.Some(st.Value + int64(len(vs)))
		}, 2)),
		"window": show(dstream.CountByValue(dstream.Window(words, 2*time.Second, time.Second), 2)),
	}
	for _, name := range slices.Sorted(maps.Keys(out)) {
		dstream.ForeachRDD(out[name], func(context.Context, *rdd.Dataset[string], time.Time) error { return nil })
	}
	return out
}

// lineage renders a dataset's lineage: IDs, names, partition counts and
// dependency kinds, depth first.
func lineage(n *rdd.Node) string {
	var b strings.Builder
	var walk func(n *rdd.Node, depth int)
	walk = func(n *rdd.Node, depth int) {
		fmt.Fprintf(&b, "%s%s(%d)\n", strings.Repeat("  ", depth), n, n.NumPartitions)
		for _, d := range n.Deps() {
			if sd, ok := d.(*rdd.ShuffleDep); ok {
				fmt.Fprintf(&b, "%s shuffle %s -> %d\n", strings.Repeat("  ", depth), sd.ID, sd.NumReduce)
			}
			walk(rdd.ParentOf(d), depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}

// partitions computes every partition of ds, in order.
func partitions(t *testing.T, ds *rdd.Dataset[string]) [][]string {
	t.Helper()
	parts := make([][]string, ds.NumPartitions())
	err := ds.ForeachPartition(context.Background(), func(p int, recs []string) error {
		parts[p] = slices.Clone(recs)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// runBySpec plans a collect of the master's dataset with the master's
// scheduler and runs each task on the worker from its spec, after a JSON
// round trip; the worker's shuffle store tells which map outputs exist.
func runBySpec(t *testing.T, master *rdd.Dataset[string], worker *dstream.Context, workerDS *rdd.Dataset[string]) [][]string {
	t.Helper()
	parts := make([]int, master.NumPartitions())
	for i := range parts {
		parts[i] = i
	}
	js := sched.NewJob(1, &rdd.Job{Name: "collect", Final: master.Node(), Partitions: parts, Kind: rdd.KindCollect}, worker.Datasets().Shuffles(), 4)
	lin := rdd.IndexLineage(workerDS.Node())
	maps := 0
	acts := js.Start()
	for {
		var next []sched.Action
		for _, a := range acts {
			switch a := a.(type) {
			case sched.Done:
				if a.Err != nil {
					t.Fatal(a.Err)
				}
				if maps == 0 {
					t.Fatal("no map task ran on the worker")
				}
				out := make([][]string, len(a.Results))
				for i, r := range a.Results {
					out[i] = r.([]string)
				}
				return out
			case sched.Launch:
				b, err := json.Marshal(a.Task.Spec)
				if err != nil {
					t.Fatal(err)
				}
				var spec rdd.TaskSpec
				if err := json.Unmarshal(b, &spec); err != nil {
					t.Fatal(err)
				}
				if spec.Shuffle != nil {
					maps++
				}
				tc := rdd.NewTaskContext(context.Background(), a.Task.Job, a.Task.Stage, spec.Partition, spec.Attempt)
				res, err := lin.Execute(tc, spec)
				next = append(next, js.TaskEnded(a.Task, res, err)...)
			}
		}
		if len(next) == 0 {
			t.Fatal("the job stalled")
		}
		acts = next
	}
}

// worker is a context standing for a worker process: the same graph, never
// started, fed the master's manifests and the blocks they name.
type worker struct {
	ctx  *dstream.Context
	outs map[string]*dstream.Stream[string]
}

func newWorker(t *testing.T) *worker {
	ctx, err := dstream.NewContext(dstream.Config{Master: "local[2]", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return &worker{ctx: ctx, outs: spmdGraph(ctx, dstream.NewQueue[string]())}
}

// learn copies the blocks m names that the master still holds (as a worker
// would fetch them) and materializes m, after a round trip through its
// serialised form.
func (w *worker) learn(t *testing.T, master *dstream.Context, m *manifest.Interval) {
	t.Helper()
	from, to := master.Datasets().Blocks(), w.ctx.Datasets().Blocks()
	copyBlock := func(key string, class block.Class) {
		v, ok := from.Get(key)
		if !ok {
			// The master forgot it: nothing from now on reads it. (A worker
			// fetches what a task reads; a missing block fails that task.)
			return
		}
		if err := to.Put(key, v, block.EstimateSize(v), class); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range m.Inputs {
		for _, b := range in.Blocks {
			copyBlock(b.Key, block.Input)
		}
	}
	for _, cp := range m.Checkpoints {
		for p := range cp.Partitions {
			copyBlock(rdd.BlockKey(rdd.ID{Op: cp.Dataset.Op, Time: cp.Dataset.Time, Seq: cp.Dataset.Seq}, p), block.State)
		}
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m2, _, err := manifest.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ctx.Materialize(m2); err != nil {
		t.Fatal(err)
	}
}

// TestSameManifestsSameDatasets is the SPMD promise: contexts with different
// histories, given the same manifests, name every interval's datasets alike,
// give them the same lineage (state one interval deep in both), and compute
// the same partitions, record for record, as the context that ran them.
func TestSameManifestsSameDatasets(t *testing.T) {
	clk := clock.NewManual(dstreamtest.Start)
	master, err := dstream.NewContext(dstream.Config{Master: "local[2]", Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	q := dstream.NewQueue[string]()
	masterOuts := spmdGraph(master, q)
	const intervals = 10
	for i := range intervals {
		var recs []string
		for j := range 5 + i%3 {
			recs = append(recs, fmt.Sprintf("w%d w%d w%d", (i+j)%7, j%3, i%4))
		}
		q.Push(recs...)
	}
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = master.Stop(false) })
	tick := func(k int) time.Time {
		clk.Advance(time.Second)
		tk := master.StartTime().Add(time.Duration(k) * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := master.AwaitBatch(ctx, tk); err != nil {
			t.Fatal(err)
		}
		return tk
	}
	early, late := newWorker(t), newWorker(t) // late joins at interval 6
	const join = 6
	for k := 1; k <= intervals; k++ {
		tk := tick(k)
		m, ok := master.Manifest(tk)
		if !ok {
			t.Fatalf("no manifest for interval %d", k)
		}
		early.learn(t, master, m)
		if k == join {
			// A late worker learns the intervals its windows reach back to:
			// the 3 s incremental window subtracts the interval leaving it,
			// whose reduced data interval join-2's manifest names.
			for back := join - 2; back < join; back++ {
				prev, ok := master.Manifest(tk.Add(time.Duration(back-join) * time.Second))
				if !ok {
					t.Fatalf("master forgot interval %d, which a window still needs", back)
				}
				late.learn(t, master, prev)
			}
		}
		if k >= join {
			late.learn(t, master, m)
		}
		if k < join {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(masterOuts)) {
			want, err := masterOuts[name].At(tk)
			if err != nil {
				t.Fatal(err)
			}
			a, errA := early.outs[name].At(tk)
			b, errB := late.outs[name].At(tk)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if name == "reduceByKey" || name == "window" {
				// Named tasks: the master's scheduler plans the job over its
				// own lineage, and the late worker runs every task from its
				// spec alone (as JSON, as it would arrive), map tasks too.
				// (Not the state streams: here the master has already
				// checkpointed their interval and cut its lineage, which in
				// a cluster happens only after the interval's jobs.)
				got := runBySpec(t, want, late.ctx, b)
				if pw := partitions(t, want); !reflect.DeepEqual(got, pw) {
					t.Fatalf("interval %d %s: tasks run by spec on a worker returned %q, want %q", k, name, got, pw)
				}
			}
			if a.ID() != want.ID() || b.ID() != want.ID() {
				t.Fatalf("interval %d %s: IDs master %s, early %s, late %s", k, name, want.ID(), a.ID(), b.ID())
			}
			if la, lb := lineage(a.Node()), lineage(b.Node()); la != lb {
				t.Fatalf("interval %d %s: lineage differs\nearly:\n%slate:\n%s", k, name, la, lb)
			}
			pw, pa, pb := partitions(t, want), partitions(t, a), partitions(t, b)
			if !reflect.DeepEqual(pa, pw) || !reflect.DeepEqual(pb, pw) {
				t.Fatalf("interval %d %s: partitions differ\nmaster %q\nearly  %q\nlate   %q", k, name, pw, pa, pb)
			}
		}
	}
	// State stays one interval deep on a worker too: its lineage stops at
	// the adopted checkpoint.
	last := master.StartTime().Add(intervals * time.Second)
	st, _ := late.outs["state"].At(last)
	if l := lineage(st.Node()); strings.Count(l, "\n") > 12 {
		t.Errorf("a worker's state lineage is %d nodes deep:\n%s", strings.Count(l, "\n"), l)
	}
}
