package dstream_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
)

// restartInput is a replayable input: interval t's records are a function of
// t, so a restarted job sees the intervals it missed exactly.
func restartInput(t time.Time) [][]kv {
	i := int(t.Unix() % 1000)
	return [][]kv{
		{p(fmt.Sprint("k", i%5), 1+i%3), p("all", 1)},
		{p(fmt.Sprint("k", (i+2)%5), 2)},
	}
}

// restartJob builds the job every run of the restart tests runs: a running
// sum per key, checkpointed every two intervals.
func restartJob(h *dstreamtest.Harness[kv], extra bool) *dstreamtest.Collector[kv] {
	s := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
	if extra {
		s = dstream.Filter(s, func(kv) bool { return true })
	}
	st := dstream.UpdateStateByKey(s, runningSum, 2).Checkpoint(2 * sec)
	return dstreamtest.Collect(st)
}

// advanceTo moves h's clock to interval t and waits for it.
func advanceTo(t *testing.T, h *dstreamtest.Harness[kv], at time.Time) {
	t.Helper()
	h.Clock.Advance(at.Sub(h.Clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Ctx.AwaitBatch(ctx, at); err != nil {
		t.Fatalf("interval %d did not complete: %v", at.UnixMilli(), err)
	}
}

// A job stopped after interval 7 (hard: as if killed) and started again with
// the same checkpoint folder while the clock moved on to interval 10
// resumes: its state comes from the last committed checkpoint, the intervals
// it missed (8, 9, 10) run in order, and their output is exactly a
// fault-free run's. A corrupt newest checkpoint falls back to the one
// before; a different graph is refused, naming the difference.
func TestRestartResumesFromCheckpoint(t *testing.T) {
	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut := restartJob(ref, false)
	ref.Start()
	var times []time.Time
	for range 10 {
		times = append(times, ref.Tick())
	}
	want := func(i int) string { return fmt.Sprint(dstreamtest.Sorted(refOut.At(times[i]))) }

	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("corrupt-newest=%v", corrupt), func(t *testing.T) {
			dir := t.TempDir()
			withDir := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = dir }}
			first := dstreamtest.New[kv](t, withDir)
			out1 := restartJob(first, false)
			first.Start()
			for i := range 7 {
				if at := first.Tick(); fmt.Sprint(dstreamtest.Sorted(out1.At(at))) != want(i) {
					t.Fatalf("first run, interval %d = %v, want %s", i+1, out1.At(at), want(i))
				}
			}
			if err := first.Ctx.Stop(true); err != nil {
				t.Fatal(err)
			}
			if corrupt {
				parts, _ := filepath.Glob(filepath.Join(dir, "state", "*", "*", "part-00000"))
				if len(parts) < 2 {
					t.Fatalf("checkpoints written: %v; want at least two", parts)
				}
				newest := parts[len(parts)-1]
				b, err := os.ReadFile(newest)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0xff
				if err := os.WriteFile(newest, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			other := dstreamtest.New[kv](t, withDir)
			restartJob(other, true)
			err := other.Ctx.Start()
			if err == nil || !strings.Contains(err.Error(), "another graph") {
				t.Fatalf("Start with another graph = %v; want a refusal naming the difference", err)
			}
			t.Logf("another graph: %v", err)

			second := dstreamtest.New[kv](t, withDir)
			out2 := restartJob(second, false)
			second.Start()
			if got := second.Ctx.StartTime(); !got.Equal(ref.Ctx.StartTime()) {
				t.Fatalf("resumed with zero %v, want the first run's %v", got, ref.Ctx.StartTime())
			}
			advanceTo(t, second, times[9])
			for i := 7; i < 10; i++ {
				if got := fmt.Sprint(dstreamtest.Sorted(out2.At(times[i]))); got != want(i) {
					t.Errorf("resumed, interval %d = %s, want %s", i+1, got, want(i))
				}
			}
			for i := range 7 {
				if out2.Ran(times[i]) {
					t.Errorf("resumed job ran interval %d again; it had completed", i+1)
				}
			}
		})
	}
}

// A checkpoint folder that is not one (its start record unreadable) is a
// clear error at Start, never a panic or a silent fresh start.
func TestRestartRefusesUnreadableCheckpoint(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta", "start"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = dir }})
	restartJob(h, false)
	err := h.Ctx.Start()
	if err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("Start = %v; want an error saying the checkpoint is unreadable", err)
	}
}

// An interval the master started but did not complete before it stopped
// runs again after the restart, and its ForeachRDD function is told so
// (Rerun); the intervals after it are not re-runs. It holds for the very
// first interval too (no interval had completed).
func TestRestartTellsForeachRDDOfReruns(t *testing.T) {
	for _, crash := range []int64{1, 3} {
		t.Run(fmt.Sprint("crash-in-interval-", crash), func(t *testing.T) {
			dir := t.TempDir()
			withDir := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = dir }}
			first := dstreamtest.New[kv](t, withDir)
			entered := make(chan struct{})
			s := dstream.GeneratedStream(first.Ctx, "replayable", restartInput)
			dstream.ForeachRDD(s, func(ctx context.Context, _ *rdd.Dataset[kv], at time.Time) error {
				if at.Equal(first.Ctx.StartTime().Add(time.Duration(crash) * sec)) {
					close(entered)
					<-ctx.Done() // the process dies in the middle of this interval
					return ctx.Err()
				}
				return nil
			})
			first.Start()
			for range crash - 1 {
				first.Tick()
			}
			first.Clock.Advance(sec)
			<-entered
			_ = first.Ctx.Stop(false)

			second := dstreamtest.New[kv](t, withDir)
			var mu sync.Mutex
			reruns := map[int64]bool{}
			s2 := dstream.GeneratedStream(second.Ctx, "replayable", restartInput)
			dstream.ForeachRDD(s2, func(ctx context.Context, _ *rdd.Dataset[kv], at time.Time) error {
				mu.Lock()
				reruns[at.Sub(second.Ctx.StartTime()).Milliseconds()/1000] = dstream.Rerun(ctx)
				mu.Unlock()
				return nil
			})
			second.Start()
			advanceTo(t, second, second.Ctx.StartTime().Add(time.Duration(crash+1)*sec))
			mu.Lock()
			defer mu.Unlock()
			if want := map[int64]bool{crash: true, crash + 1: false}; !maps.Equal(reruns, want) {
				t.Fatalf("intervals run after the restart, and whether each was a re-run: %v, want %v", reruns, want)
			}
		})
	}
}

// A master that stopped after an interval's state checkpoint was committed
// but before the interval completed (its "done" record not logged) runs
// that interval again from the checkpoint before it, as the interval's
// manifest says: in a cluster, a master that adopted the newer checkpoint
// read the state there while its workers computed it from lineage, and
// they waited for shuffle outputs it never ran (a failover in the
// simulation, seed 138, found it).
func TestRestartPassesOverACheckpointOfAnIntervalThatRunsAgain(t *testing.T) {
	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut := restartJob(ref, false)
	ref.Start()
	var times []time.Time
	for range 10 {
		times = append(times, ref.Tick())
	}
	want := func(i int) string { return fmt.Sprint(dstreamtest.Sorted(refOut.At(times[i]))) }

	dir := t.TempDir()
	opts := dstreamtest.Options{Master: "local-cluster[2]", Config: func(c *dstream.Config) { c.CheckpointDir = dir }}
	first := dstreamtest.New[kv](t, opts)
	out1 := restartJob(first, false)
	first.Start()
	for i := range 8 {
		if at := first.Tick(); fmt.Sprint(dstreamtest.Sorted(out1.At(at))) != want(i) {
			t.Fatalf("first run, interval %d = %v, want %s", i+1, out1.At(at), want(i))
		}
	}
	if err := first.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	forgetCompletion(t, dir, times[7])
	if cps, _ := filepath.Glob(filepath.Join(dir, "state", "*", fmt.Sprintf("%020d", times[7].UnixMilli()))); len(cps) == 0 {
		t.Fatalf("no state checkpoint of interval 8: the test needs one")
	}

	second := dstreamtest.New[kv](t, opts)
	out2 := restartJob(second, false)
	second.Start()
	advanceTo(t, second, times[9])
	for i := 7; i < 10; i++ {
		if got := fmt.Sprint(dstreamtest.Sorted(out2.At(times[i]))); got != want(i) {
			t.Errorf("resumed, interval %d = %s, want %s", i+1, got, want(i))
		}
	}
}

// forgetCompletion deletes, in the checkpoint folder dir, the metadata log
// from the "done" record of interval t on: as if the master had stopped
// after t's outputs and checkpoints but before logging its completion.
func forgetCompletion(t *testing.T, dir string, at time.Time) {
	t.Helper()
	store, err := checkpoint.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	names, err := store.List(t.Context(), "meta/log/")
	if err != nil {
		t.Fatal(err)
	}
	cut := -1
	for i, name := range names {
		b, err := store.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if kind, _, payload, err := checkpoint.Unframe(b); err == nil && kind == "done" && strings.Contains(string(payload), fmt.Sprint(at.UnixMilli())) {
			cut = i
		}
	}
	if cut < 0 {
		t.Fatalf("no done record of interval %d in the log (%d records)", at.UnixMilli(), len(names))
	}
	for _, name := range names[cut:] {
		if err := store.Delete(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
}
