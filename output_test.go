package dstream_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
)

func TestSaveAsTextFilesLayout(t *testing.T) {
	dir := t.TempDir()
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstream.Repartition(h.In, 3).SaveAsTextFiles(filepath.Join(dir, "out", "words"), "txt")
	h.Input.Push("a", "b", "c", "d")
	h.Input.Push()
	h.Start()
	t1, t2 := h.Tick(), h.Tick()
	for _, at := range []time.Time{t1, t2} {
		d := filepath.Join(dir, "out", "words-"+itoa(at.UnixMilli())+".txt")
		parts, _ := filepath.Glob(filepath.Join(d, "part-*"))
		if len(parts) != 3 {
			t.Fatalf("%s has %d part files, want 3", d, len(parts))
		}
		if _, err := os.Stat(filepath.Join(d, "_SUCCESS")); err != nil {
			t.Errorf("no _SUCCESS in %s", d)
		}
	}
	var lines []string
	parts, _ := filepath.Glob(filepath.Join(dir, "out", "words-"+itoa(t1.UnixMilli())+".txt", "part-*"))
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		lines = append(lines, strings.Fields(string(b))...)
	}
	slices.Sort(lines)
	if strings.Join(lines, ",") != "a,b,c,d" {
		t.Errorf("saved records %v", lines)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestUnwritableOutputFolderFailsTheIntervalNotTheJob(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var mu sync.Mutex
	var completed []listener.BatchInfo
	// The job carries on after a failed interval only if OnBatchError says so.
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.OnBatchError = func(*dstream.BatchError) error { return nil }
	}})
	h.Ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			mu.Lock()
			completed = append(completed, c.Batch)
			mu.Unlock()
		}
	}))
	h.In.SaveAsTextFiles(filepath.Join(out, "words"), "")
	col := dstreamtest.Collect(h.In)
	h.Input.Push("a")
	h.Input.Push("b")
	h.Start()
	// The folder Start checked becomes a regular file while the job runs.
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Tick()
	t2 := h.Tick()
	if got := col.At(t2); len(got) != 1 || got[0] != "b" {
		t.Errorf("the other output's interval 2 = %v, want [b]", got)
	}
	if err := h.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(completed) < 2 {
		t.Fatalf("%d BatchCompleted events, want 2", len(completed))
	}
	err := completed[0].Err
	if err == nil || !strings.Contains(err.Error(), "output folder") || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("interval error = %v, want a clear output folder error", err)
	}
}

func TestSaveAsTextFilesStartFailsOnUnusableFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(dir, "ro")
	if err := os.Mkdir(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prefix, suffix string
		want                 []string
		skip                 bool
	}{
		{name: "under a regular file", prefix: filepath.Join(file, "sub", "words"),
			want: []string{"dstream: saveAsTextFiles: output folder " + filepath.Join(file, "sub") + ":", "not a directory", "choose another output prefix"}},
		{name: "parent is a regular file", prefix: filepath.Join(file, "words"),
			want: []string{"output folder " + file + ":", "not a directory"}},
		{name: "read-only folder", prefix: filepath.Join(readOnly, "words"),
			want: []string{"output folder " + readOnly + ":", "permission denied", "make it a folder this user can write"},
			skip: os.Geteuid() == 0}, // root writes anywhere
		{name: "suffix with a separator", prefix: filepath.Join(dir, "words"), suffix: "a/b",
			want: []string{"saveAsTextFiles: suffix \"a/b\" contains a path separator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("not checkable as this user")
			}
			h := dstreamtest.New[string](t, dstreamtest.Options{})
			h.In.SaveAsTextFiles(tc.prefix, tc.suffix)
			err := h.Ctx.Start()
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// lockedBuffer is an io.Writer safe for the context's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSaveAsTextFilesStartRemovesOnlyItsStaleTemps(t *testing.T) {
	type entry struct {
		name    string
		file    bool // a regular file, not a folder
		removed bool
	}
	for _, tc := range []struct {
		suffix  string
		entries []entry
	}{
		{"txt", []entry{
			{name: ".words-1700000000000.txt.tmp-123456", removed: true},
			{name: ".words-7.txt.tmp-", removed: true},
			{name: ".words-1700000000000.tmp-1"},     // no suffix: another output
			{name: ".words-1700000000000.csv.tmp-1"}, // another suffix
			{name: ".words-1700000000000.txt.tmp"},   // not the temporary pattern
			{name: ".other-1700000000000.txt.tmp-1"}, // another prefix
			{name: ".words-2-1700000000000.txt.tmp-1"},
			{name: ".word-1700000000000.txt.tmp-1"},
			{name: ".words-.txt.tmp-1"},
			{name: ".words-12a.txt.tmp-1"},
			{name: "..words-1.txt.tmp-1"},
			{name: "words-1.txt.tmp-1"},
			{name: "words-1700000000000.txt"}, // a completed output
			{name: ".words-1700000000000.txt.tmp-2", file: true},
			{name: "mine"},
		}},
		{"", []entry{
			{name: ".words-1700000000000.tmp-abc", removed: true},
			{name: ".words-1700000000000.txt.tmp-1"},
			{name: ".words-1700000000000"},
			{name: "words-1700000000000"},
			{name: ".words-1.tmp-x", file: true},
		}},
	} {
		t.Run("suffix="+tc.suffix, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			for _, e := range tc.entries {
				p := filepath.Join(out, e.name)
				if e.file {
					if err := os.MkdirAll(out, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, "part-00000"), []byte("x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var logs lockedBuffer
			h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			}})
			h.In.SaveAsTextFiles(filepath.Join(out, "words"), tc.suffix)
			h.Start()
			nRemoved := 0
			for _, e := range tc.entries {
				_, err := os.Lstat(filepath.Join(out, e.name))
				switch {
				case e.removed && err == nil:
					t.Errorf("stale %s was not removed", e.name)
				case !e.removed && err != nil:
					t.Errorf("%s was removed: %v", e.name, err)
				}
				if e.removed {
					nRemoved++
				}
			}
			// Start's writability probe leaves nothing behind.
			names, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(names), len(tc.entries)-nRemoved; got != want {
				t.Errorf("%d entries in the output folder after Start, want %d", got, want)
			}
			l := logs.String()
			if !strings.Contains(l, "removed stale temporary output of a killed run") || !strings.Contains(l, "count="+itoa(int64(nRemoved))) || !strings.Contains(l, out) {
				t.Errorf("no log of the removal, with its count and folder, in:\n%s", l)
			}
		})
	}
}

func TestSaveAsTextFilesStartLogsNothingWithoutStaleTemps(t *testing.T) {
	var logs lockedBuffer
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}})
	h.In.SaveAsTextFiles(filepath.Join(t.TempDir(), "words"), "")
	h.Start()
	if l := logs.String(); strings.Contains(l, "stale") {
		t.Errorf("unexpected log:\n%s", l)
	}
}

func TestPortAlreadyInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, err := dstream.NewContext(dstream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dstream.SocketTextStream(ctx, l.Addr().String()).Print(1)
	err = ctx.Start()
	if err == nil {
		ctx.Stop(false)
		t.Fatal("Start succeeded on a port in use")
	}
	if !strings.Contains(err.Error(), l.Addr().String()) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %q does not name the address and the cause", err)
	}
}

func TestBatchEventsCarryFigures(t *testing.T) {
	var mu sync.Mutex
	var events []listener.Event
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	h.Ctx.AddListener(listener.Func(func(e listener.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	dstream.Count(h.In).Print(1)
	h.Input.Push(1, 2, 3)
	h.Start()
	t1 := h.Tick()
	if err := h.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for _, e := range events {
		switch e := e.(type) {
		case listener.BatchSubmitted:
			kinds = append(kinds, "submitted")
		case listener.BatchStarted:
			kinds = append(kinds, "started")
		case listener.OutputOpCompleted:
			kinds = append(kinds, "output:"+e.Name)
		case listener.BatchCompleted:
			kinds = append(kinds, "completed")
			if !e.Batch.Time.Equal(t1) || e.Batch.Err != nil || e.Batch.TotalDelay < 0 {
				t.Errorf("completed batch = %+v", e.Batch)
			}
		}
	}
	if got := strings.Join(kinds, " "); !strings.HasPrefix(got, "submitted started output:print completed") {
		t.Errorf("events = %s", got)
	}
}

func TestGracefulStopProcessesEverythingReceived(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	var mu sync.Mutex
	total := 0
	dstream.ForeachRDD(h.In, func(ctx context.Context, ds *rdd.Dataset[int], _ time.Time) error {
		n, err := ds.Count(ctx)
		mu.Lock()
		total += int(n)
		mu.Unlock()
		return err
	})
	h.Input.Push(1, 2)
	h.Start()
	h.Tick()
	if err := h.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	if err := h.Ctx.Stop(true); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if total != 2 {
		t.Errorf("processed %d records, want 2", total)
	}
	if err := h.Ctx.Start(); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []struct {
		cfg  dstream.Config
		want string
	}{
		{dstream.Config{Master: "yarn"}, "master"},
		{dstream.Config{Master: "local[0]"}, "between 1 and"},
		{dstream.Config{BatchInterval: time.Second, BlockInterval: 2 * time.Second}, "at most the batch interval"},
		{dstream.Config{BatchInterval: time.Second, Slack: 2 * time.Second}, "slack"},
		{dstream.Config{BatchInterval: -time.Second}, "too short"},
	} {
		_, err := dstream.NewContext(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewContext(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

// Each task writes its part under its attempt's name and renames it (the
// task's commit); the interval's directory appears when all parts are in
// (the job's commit). What an earlier attempt at the interval left in the
// temporary directory never reaches the output.
func TestSaveAsTextFilesCommitsTasksThenTheInterval(t *testing.T) {
	dir := t.TempDir()
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstream.Repartition(h.In, 2).SaveAsTextFiles(filepath.Join(dir, "words"), "")
	h.Input.Push("a", "b", "c")
	h.Start()
	t1 := h.Ctx.StartTime().Add(time.Second)
	// An earlier attempt at interval 1, cut short: a half-written part and
	// a part of a partition that does not exist.
	tmp := filepath.Join(dir, ".words-"+itoa(t1.UnixMilli())+".tmp-out")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"part-00000.attempt-0", "part-00007"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.Tick()
	out := filepath.Join(dir, "words-"+itoa(t1.UnixMilli()))
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names, lines []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		lines = append(lines, strings.Fields(string(b))...)
	}
	slices.Sort(lines)
	if strings.Join(names, ",") != "_SUCCESS,part-00000,part-00001" || strings.Join(lines, ",") != "a,b,c" {
		t.Fatalf("interval directory holds %v with records %v", names, lines)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary directory left behind: %v", err)
	}
}
