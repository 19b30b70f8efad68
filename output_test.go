package dstream_test

import (
	"context"
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
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var completed []listener.BatchInfo
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	h.Ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			mu.Lock()
			completed = append(completed, c.Batch)
			mu.Unlock()
		}
	}))
	h.In.SaveAsTextFiles(filepath.Join(blocker, "sub", "words"), "")
	col := dstreamtest.Collect(h.In)
	h.Input.Push("a")
	h.Input.Push("b")
	h.Start()
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
