package dstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// placeFile puts a file into dir as writers into a watched folder must:
// written under an ignored name, its modification time set, then renamed in.
func placeFile(t *testing.T, dir, name, data string, mtime time.Time) {
	t.Helper()
	tmp := filepath.Join(dir, "_"+name)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// ms is a time d after the manual clock's start (the job's zero).
func ms(d int) time.Time { return dstreamtest.Start.Add(time.Duration(d) * time.Millisecond) }

// fileNames returns the names of a file stream's files in interval t's
// manifest.
func fileNames(h *dstreamtest.Harness[string], t time.Time) []string {
	m, ok := h.Ctx.Manifest(t)
	if !ok {
		return nil
	}
	var names []string
	for _, in := range m.Inputs {
		for _, f := range in.Files {
			names = append(names, fmt.Sprintf("%s:%d", f.Name, f.Size))
		}
	}
	return names
}

// A file stream takes each file in the interval its modification time falls
// in, (t - batch, t]; a file that appears late by the next interval to list
// it (within the remember window); a file too old, never. The manifest names
// every file taken, with its size; the files' lines are the dataset, the
// same whatever the split size.
func TestTextFileStreamSelectsByModificationTime(t *testing.T) {
	for _, split := range []int64{0, 3} {
		t.Run(fmt.Sprint("split-", split), func(t *testing.T) {
			dir := t.TempDir()
			h := dstreamtest.New[string](t, dstreamtest.Options{})
			lines := dstream.TextFileStream(h.Ctx, dir, dstream.FileStreamOptions{SplitBytes: split, MinRemember: 5 * sec})
			col := dstreamtest.Collect(lines)
			placeFile(t, dir, "ancient", "too old\n", ms(-6000)) // beyond the 5 s window
			placeFile(t, dir, "recent", "r1\nr2\n", ms(-3500))   // there at the start, within the window
			placeFile(t, dir, "a", "a1\na2 x\n", ms(500))
			h.Start()
			t1 := h.Tick()
			names1 := fileNames(h, t1) // while the context remembers the manifest
			placeFile(t, dir, "b", "b1\n", ms(1500))
			placeFile(t, dir, "c", "c1\nc2", ms(2000)) // the interval's end is in it
			placeFile(t, dir, "d", "d1\n", ms(2001))   // the next interval's
			placeFile(t, dir, ".hidden", "h\n", ms(1500))
			placeFile(t, dir, "_tmp", "t\n", ms(1500))
			t2 := h.Tick()
			placeFile(t, dir, "late", "l1\n", ms(1200)) // after interval 2 listed the folder
			t3 := h.Tick()
			names3 := fileNames(h, t3)
			t4 := h.Tick()
			want := map[time.Time][]string{
				t1: {"a1", "a2 x", "r1", "r2"},
				t2: {"b1", "c1", "c2"},
				t3: {"d1", "l1"},
				t4: {},
			}
			for _, at := range []time.Time{t1, t2, t3, t4} {
				if got := dstreamtest.Sorted(col.At(at)); !slices.Equal(got, want[at]) {
					t.Errorf("interval %v = %q, want %q", at.Sub(dstreamtest.Start), got, want[at])
				}
			}
			if got, want := names1, []string{"a:8", "recent:6"}; !slices.Equal(got, want) {
				t.Errorf("interval 1's manifest names %v, want %v", got, want)
			}
			if got, want := names3, []string{"d:3", "late:3"}; !slices.Equal(got, want) {
				t.Errorf("interval 3's manifest names %v, want %v", got, want)
			}
		})
	}
}

// With NewFilesOnly (Spark's textFileStream) the files modified at or
// before the job's start are ignored.
func TestTextFileStreamNewFilesOnly(t *testing.T) {
	dir := t.TempDir()
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	col := dstreamtest.Collect(dstream.TextFileStream(h.Ctx, dir, dstream.FileStreamOptions{NewFilesOnly: true}))
	placeFile(t, dir, "before", "old\n", ms(-1000))
	placeFile(t, dir, "at-start", "old\n", ms(0))
	placeFile(t, dir, "new", "new\n", ms(1))
	h.Start()
	if got := col.At(h.Tick()); !slices.Equal(got, []string{"new"}) {
		t.Errorf("interval 1 = %q, want [new]", got)
	}
}

// A file named by a manifest that vanishes before its interval is
// processed fails that interval with an error naming the file (Spark's
// job fails the same way), never a panic; the job may carry on, and the
// next intervals read their files.
func TestTextFileStreamVanishedFileFailsItsInterval(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var failed []*dstream.BatchError
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.OnBatchError = func(err *dstream.BatchError) error {
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, err)
			return nil
		}
	}})
	lines := dstream.TextFileStream(h.Ctx, dir)
	// The first output deletes interval 1's file after the interval took
	// it and before the second output reads it.
	dstream.ForeachRDD(lines, func(_ context.Context, _ *rdd.Dataset[string], at time.Time) error {
		if at.Equal(ms(1000)) {
			return os.Remove(filepath.Join(dir, "gone"))
		}
		return nil
	})
	col := dstreamtest.Collect(lines)
	placeFile(t, dir, "gone", "x\n", ms(500))
	h.Start()
	t1 := h.Tick()
	placeFile(t, dir, "next", "y\n", ms(1500))
	t2 := h.Tick()
	err := col.Err(t1)
	if err == nil || !strings.Contains(err.Error(), "gone") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("interval 1's error = %v; want one naming the vanished file", err)
	}
	mu.Lock()
	if len(failed) != 1 || !failed[0].Time.Equal(t1) {
		t.Errorf("failed intervals %v, want interval 1 only", failed)
	}
	mu.Unlock()
	if got := col.At(t2); !slices.Equal(got, []string{"y"}) {
		t.Errorf("interval 2 = %q, want [y]", got)
	}
}

// A folder that does not exist is a clear error at Start.
func TestTextFileStreamMissingFolder(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	missing := filepath.Join(t.TempDir(), "missing")
	dstreamtest.Collect(dstream.TextFileStream(h.Ctx, missing))
	if err := h.Ctx.Start(); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "no such directory") {
		t.Fatalf("Start = %v; want an error naming the missing folder", err)
	}
}

// fileJob is the job every run of the file stream's restart test runs:
// word counts per interval, running totals (state, checkpointed every two
// intervals) and a 3 s window, which after a restart recomputes intervals
// run before it from their files. block, when set, holds interval at in
// its first output until the run stops (a crash mid-interval).
func fileJob(h *dstreamtest.Harness[string], dir string, block func(at time.Time) bool) (perInterval, totals, window *dstreamtest.Collector[kv]) {
	lines := dstream.TextFileStream(h.Ctx, dir, dstream.FileStreamOptions{MinRemember: 4 * sec})
	dstream.ForeachRDD(lines, func(ctx context.Context, _ *rdd.Dataset[string], at time.Time) error {
		if block != nil && block(at) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	pairs := dstream.Map(dstream.FlatMap(lines, strings.Fields), func(w string) kv { return p(w, 1) })
	perInterval = dstreamtest.Collect(dstream.ReduceByKey(pairs, add, 2))
	totals = dstreamtest.Collect(dstream.UpdateStateByKey(pairs, runningSum, 2).Checkpoint(2 * sec))
	window = dstreamtest.Collect(dstream.ReduceByKeyAndWindow(pairs, add, 3*sec, sec, 2))
	return perInterval, totals, window
}

// fileSchedule places interval k's files (k from 1), before its cut.
func fileSchedule(t *testing.T, dir string, k int) {
	t.Helper()
	base := (k - 1) * 1000
	placeFile(t, dir, fmt.Sprintf("f%02d-a", k), fmt.Sprintf("w%d common\nshared w%d\n", k%3, k), ms(base+300))
	if k%2 == 0 {
		placeFile(t, dir, fmt.Sprintf("f%02d-b", k), fmt.Sprintf("common\nw%d\n", k%4), ms(base+1000))
	}
}

// lateFile places, after interval k was cut, a file modified within it:
// the next interval takes it.
func lateFile(t *testing.T, dir string, k int) {
	t.Helper()
	placeFile(t, dir, fmt.Sprintf("late%02d", k), fmt.Sprintf("late common w%d\n", k%2), ms((k-1)*1000+600))
}

// A master stopped (hard, as if killed) in the middle of interval 7, and
// started again with the same checkpoint folder once the clock has moved on
// to interval 10, gives every interval the output of a fault-free run:
// interval 7 takes the files it took before (not the late file that came
// while the master was down, which the rule would give it, but which the
// fault-free run's interval 8 took); intervals 8-10, missed, select their
// files with the rule; the window recomputes intervals 5 and 6 from their
// files; the running totals resume from their checkpoint.
func TestTextFileStreamRestartReplaysFiles(t *testing.T) {
	const n = 10
	late := map[int]bool{3: true, 7: true} // a late file comes after interval k

	refDir := t.TempDir()
	ref := dstreamtest.New[string](t, dstreamtest.Options{})
	r1, r2, r3 := fileJob(ref, refDir, nil)
	ref.Start()
	var times []time.Time
	for k := 1; k <= n; k++ {
		fileSchedule(t, refDir, k)
		times = append(times, ref.Tick())
		if late[k] {
			lateFile(t, refDir, k)
		}
	}
	render := func(c1, c2, c3 *dstreamtest.Collector[kv], at time.Time) string {
		return fmt.Sprint(dstreamtest.Sorted(c1.At(at)), dstreamtest.Sorted(c2.At(at)), dstreamtest.Sorted(c3.At(at)))
	}
	want := func(i int) string { return render(r1, r2, r3, times[i]) }
	if len(r1.At(times[7])) == 0 || !slices.ContainsFunc(r1.At(times[7]), func(x kv) bool { return x.Key == "late" }) {
		t.Fatalf("the reference's interval 8 = %v; want the late file's words", r1.At(times[7]))
	}

	dir, ck := t.TempDir(), t.TempDir()
	withCk := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = ck }}
	first := dstreamtest.New[string](t, withCk)
	crashAt := times[6]
	entered := make(chan struct{})
	f1, f2, f3 := fileJob(first, dir, func(at time.Time) bool {
		if at.Equal(crashAt) {
			close(entered)
			return true
		}
		return false
	})
	first.Start()
	for k := 1; k <= 6; k++ {
		fileSchedule(t, dir, k)
		if got := render(f1, f2, f3, first.Tick()); got != want(k-1) {
			t.Fatalf("first run, interval %d = %s, want %s", k, got, want(k-1))
		}
		if late[k] {
			lateFile(t, dir, k)
		}
	}
	fileSchedule(t, dir, 7)
	first.Clock.Advance(sec)
	<-entered // interval 7 took its files and runs
	_ = first.Ctx.Stop(false)

	// While the master is down: the late file of interval 7 comes, then
	// intervals 8-10's files.
	lateFile(t, dir, 7)
	for k := 8; k <= n; k++ {
		fileSchedule(t, dir, k)
	}
	second := dstreamtest.New[string](t, withCk)
	s1, s2, s3 := fileJob(second, dir, nil)
	second.Start()
	second.Clock.Advance(times[n-1].Sub(second.Clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := second.Ctx.AwaitBatch(ctx, times[n-1]); err != nil {
		t.Fatal(err)
	}
	for i := 6; i < n; i++ {
		if got := render(s1, s2, s3, times[i]); got != want(i) {
			t.Errorf("resumed, interval %d = %s\nwant %s", i+1, got, want(i))
		}
	}
	for i := range 6 {
		if s1.Ran(times[i]) {
			t.Errorf("the resumed job ran interval %d again; it had completed", i+1)
		}
	}
}

// In local-cluster the workers read the files the manifest names from the
// same folder: every line of interval 1's files is read once, on a worker
// (the master reads none), split into many partitions.
func TestLocalClusterFileStreamWorkersReadNamedFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	// The workers are this test binary: they build the graph over the
	// folder the master made, named in their environment.
	dir := dstreamtest.SharedDir(t, "DSTREAM_TEST_FILE_STREAM_DIR")
	h := dstreamtest.New[string](t, dstreamtest.Options{Master: "local-cluster[2]", Config: func(c *dstream.Config) {
		// The lines are counted by the process that reads them, which is
		// not deterministic: a speculative copy of a map task would count
		// its lines under a second process as well.
		c.Speculation = &sched.Speculation{}
	}})
	lines := dstream.TextFileStream(h.Ctx, dir, dstream.FileStreamOptions{SplitBytes: 100})
	pids := dstreamtest.Collect(dstream.ReduceByKey(dstream.Map(lines, func(string) dstream.Pair[int, int] { return dstream.KV(os.Getpid(), 1) }), add, 2))
	col := dstreamtest.Collect(lines)
	h.Start()
	var want []string
	for f := range 3 {
		var b strings.Builder
		for i := range 50 {
			l := fmt.Sprintf("file%d-line%02d", f, i)
			want = append(want, l)
			b.WriteString(l + "\n")
		}
		placeFile(t, dir, fmt.Sprint("f", f), b.String(), ms(200+100*f))
	}
	t1 := h.Tick()
	if got := dstreamtest.Sorted(col.At(t1)); !slices.Equal(got, dstreamtest.Sorted(want)) {
		t.Fatalf("interval 1 read %d lines, want the %d lines of the files", len(got), len(want))
	}
	total := 0
	for _, c := range pids.At(t1) {
		if c.Key == os.Getpid() {
			t.Errorf("%d lines were read on the master", c.Value)
		}
		total += c.Value
	}
	if total != len(want) {
		t.Errorf("lines per process %v, want %d in all", pids.At(t1), len(want))
	}
	m, ok := h.Ctx.Manifest(t1)
	if !ok || len(m.Inputs) != 1 || len(m.Inputs[0].Files) != 3 || m.Inputs[0].Files[0].Name != "f0" {
		t.Fatalf("interval 1's manifest %+v; want the three files named", m)
	}
}
