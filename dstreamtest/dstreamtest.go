// Package dstreamtest runs stream graphs under a manual clock, interval by
// interval, the way Spark's TestSuiteBase does: known input per interval in,
// every interval's output collected, no sleeps. It is to dstream what
// httptest is to net/http.
//
// A Collector tells an interval whose output ran and produced nothing
// (At returns an empty, non-nil slice) from one with no output: not run
// yet, failed (Err), or a time the stream produces nothing at, such as
// between a window's slides (At returns nil; Ran says whether it ran).
package dstreamtest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/rdd"
)

// Start is the manual clock's initial reading: a round number of seconds, so
// intervals of any length that divides a second line up with it.
var Start = time.UnixMilli(1_700_000_000_000)

// Options tune a run; the zero value means local[2] and 1 s intervals.
type Options struct {
	// Master is local[N] (the default local[2]), local-cluster[N] (the
	// context starts N worker processes) or "cluster": a standalone master
	// that Workers worker processes join, as `dstream worker` processes
	// would, with no checkpoint folder and no folder shared with them.
	Master        string
	Workers       int // with Master "cluster": default 3
	BatchInterval time.Duration
	Config        func(*dstream.Config) // adjusts the config further
}

// Harness is a started context over a manual clock with a queue input.
type Harness[T any] struct {
	TB    testing.TB
	Ctx   *dstream.Context
	Clock *clock.Manual
	Input *dstream.Queue[T]
	// In is the input stream fed from Input, one pushed batch per interval.
	In *dstream.Stream[T]

	interval time.Duration
	ticks    int
	workers  int // standalone: workers to start, and wait for, at Start
	secret   []byte
}

// New returns a harness whose graph is not yet started: build on h.In, add
// outputs, then call h.Start.
func New[T any](tb testing.TB, o Options) *Harness[T] {
	tb.Helper()
	if o.BatchInterval == 0 {
		o.BatchInterval = time.Second
	}
	if o.Master == "" {
		o.Master = "local[2]"
	}
	clk := clock.NewManual(Start)
	cfg := dstream.Config{
		Master:        o.Master,
		BatchInterval: o.BatchInterval,
		Clock:         clk,
		Out:           io.Discard,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if strings.HasPrefix(o.Master, "local-cluster") {
		// The workers are this test binary, running this very test: it
		// builds the same graph, and its Start serves the master's tasks.
		cfg.WorkerArgs = []string{"-test.run=" + RunPattern(tb.Name()), "-test.count=1"}
	}
	var secret []byte
	if o.Master == "cluster" {
		if o.Workers <= 0 {
			o.Workers = 3
		}
		var err error
		if secret, err = cluster.GenerateSecret(); err != nil {
			tb.Fatal(err)
		}
		cfg.ClusterListen, cfg.Secret = "127.0.0.1:0", secret
		cfg.Parallelism = 2 * o.Workers // the workers learn it from their environment
	}
	// A lease far longer than any test's wait: tests stop their contexts
	// (which releases it), and a renewal a loaded machine delays must not
	// stop a job. Tests of the lease set their own.
	cfg.LeaseTTL = 30 * time.Second
	if o.Config != nil {
		o.Config(&cfg)
	}
	ctx, err := dstream.NewContext(cfg)
	if err != nil {
		tb.Fatalf("NewContext: %v", err)
	}
	q := dstream.NewQueue[T]()
	h := &Harness[T]{TB: tb, Ctx: ctx, Clock: clk, Input: q, In: dstream.QueueStream(ctx, q), interval: o.BatchInterval, secret: secret}
	if o.Master == "cluster" && !ctx.IsWorker() {
		h.workers = o.Workers
	}
	tb.Cleanup(func() { _ = ctx.Stop(false) })
	return h
}

// Start starts the context. In a worker process of a local-cluster test
// (the test binary, started by the test's master) it serves the master's
// tasks until the master is gone, then skips the rest of the test there.
func (h *Harness[T]) Start() {
	h.TB.Helper()
	if err := h.Ctx.Start(); err != nil {
		h.TB.Fatalf("Start: %v", err)
	}
	ServeIfWorker(h.TB, h.Ctx)
	if h.workers > 0 {
		h.joinWorkers()
	}
}

// joinWorkers starts a standalone master's workers (this test binary,
// running this very test, as local-cluster's are, but joining by address as
// `dstream worker` does) and waits until every one has joined.
func (h *Harness[T]) joinWorkers() {
	h.TB.Helper()
	exe, err := os.Executable()
	if err != nil {
		h.TB.Fatal(err)
	}
	procs, err := cluster.Spawn(cluster.SpawnConfig{N: h.workers, Master: h.Ctx.ClusterAddr(), Secret: h.secret, Slots: 2,
		Parallelism: 2 * h.workers, Executable: exe, Args: []string{"-test.run=" + RunPattern(h.TB.Name()), "-test.count=1"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		h.TB.Fatalf("starting workers: %v", err)
	}
	h.TB.Cleanup(func() {
		_ = h.Ctx.Stop(false)
		procs.Stop()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		alive := 0
		for _, w := range h.Ctx.Workers() {
			if w.State == "alive" && w.Address != "" {
				alive++
			}
		}
		if alive >= h.workers {
			return
		}
		if time.Now().After(deadline) {
			h.TB.Fatalf("%d of %d workers joined in a minute: %+v", alive, h.workers, h.Ctx.Workers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ServeIfWorker returns at once in the test's own process. In a worker
// process of a local-cluster test it waits until the worker stops, then
// skips the rest of the test: only the master's process checks results.
func ServeIfWorker(tb testing.TB, ctx *dstream.Context) {
	if !ctx.IsWorker() {
		return
	}
	<-ctx.Done()
	tb.SkipNow()
}

// RunPattern is the -test.run pattern that selects exactly the test (or
// subtest) named name.
func RunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// Tick advances the clock by one interval and waits until that interval has
// been processed. It returns the interval's time.
func (h *Harness[T]) Tick() time.Time {
	h.TB.Helper()
	h.ticks++
	h.Clock.Advance(h.interval)
	t := h.Ctx.StartTime().Add(time.Duration(h.ticks) * h.interval)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Ctx.AwaitBatch(ctx, t); err != nil {
		h.TB.Fatalf("interval %d (%d) did not complete: %v", h.ticks, t.UnixMilli(), err)
	}
	return t
}

// Collector gathers a stream's output interval by interval.
type Collector[U any] struct {
	mu   sync.Mutex
	out  map[int64][]U // never nil for an interval that was collected
	errs map[int64]error
}

// Collect registers an output that collects every interval of s. The output
// runs for every interval the stream produces a dataset at (every multiple
// of its slide).
func Collect[U any](s *dstream.Stream[U]) *Collector[U] {
	c := &Collector[U]{out: make(map[int64][]U), errs: make(map[int64]error)}
	dstream.ForeachRDD(s, func(ctx context.Context, ds *rdd.Dataset[U], t time.Time) error {
		xs, err := ds.Collect(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			delete(c.out, t.UnixMilli())
			c.errs[t.UnixMilli()] = err
			return err
		}
		if xs == nil {
			xs = []U{} // ran, produced nothing: not the nil of "no output"
		}
		delete(c.errs, t.UnixMilli())
		c.out[t.UnixMilli()] = xs
		return nil
	})
	return c
}

// At returns what was collected for interval t: a non-nil slice, empty when
// the interval ran and produced nothing, or nil when there is no output for
// t (the interval has not run or failed, or the stream produces nothing at
// t). Ran and Err tell those apart.
func (c *Collector[U]) At(t time.Time) []U {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out[t.UnixMilli()]
}

// Ran reports whether the output ran for interval t, collecting its records
// (At is then non-nil) or failing (Err is then non-nil). It is false for an
// interval not run yet and for a time the stream produces nothing at.
func (c *Collector[U]) Ran(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.out[t.UnixMilli()]
	return ok || c.errs[t.UnixMilli()] != nil
}

// Err returns the error of interval t, if its output failed (At is then nil).
func (c *Collector[U]) Err(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errs[t.UnixMilli()]
}

// Run is the common case: feed input[i] to interval i+1, build the graph with
// op, run ticks intervals (at least len(input)) and return every interval's
// output, sorted so results compare independently of partitioning.
func Run[T, U any](tb testing.TB, o Options, input [][]T, op func(in *dstream.Stream[T]) *dstream.Stream[U], ticks int) [][]U {
	tb.Helper()
	h := New[T](tb, o)
	for _, b := range input {
		h.Input.Push(b...)
	}
	col := Collect(op(h.In))
	h.Start()
	out := make([][]U, 0, ticks)
	for range max(ticks, len(input)) {
		t := h.Tick()
		if err := col.Err(t); err != nil {
			tb.Fatalf("interval %d failed: %v", t.UnixMilli(), err)
		}
		out = append(out, Sorted(col.At(t)))
	}
	return out
}

// Sorted returns a sorted copy of xs, ordered by their %v rendering.
func Sorted[U any](xs []U) []U {
	out := slices.Clone(xs)
	if out == nil {
		out = []U{}
	}
	slices.SortStableFunc(out, func(a, b U) int { return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// InWorker reports whether this process is a worker of a local-cluster test
// (started by the test's master): it serves tasks, and checks nothing.
func InWorker() bool { return os.Getenv(cluster.EnvWorkerOf) != "" }

// SharedDir returns a temporary folder that the local-cluster workers of
// this test (copies of the test binary, which inherit its environment)
// find too: the master makes it and names it in variable env; a worker
// reads it from there.
func SharedDir(tb testing.TB, env string) string {
	tb.Helper()
	if os.Getenv(env) == "" {
		tb.Setenv(env, tb.TempDir())
	}
	return os.Getenv(env)
}

// KillWorker SIGKILLs a worker process of ctx's cluster: the last alive
// worker for which pick returns true (every worker when pick is nil), never
// the master. It fails the test when there is none, and returns the worker
// killed.
func KillWorker(tb testing.TB, ctx *dstream.Context, pick func(dstream.WorkerInfo) bool) dstream.WorkerInfo {
	tb.Helper()
	var victim dstream.WorkerInfo
	for _, w := range ctx.Workers() {
		if w.ID != "master" && w.State == "alive" && w.PID > 0 && (pick == nil || pick(w)) {
			victim = w
		}
	}
	if victim.PID == 0 {
		tb.Fatalf("no worker to kill among %+v", ctx.Workers())
	}
	proc, err := os.FindProcess(victim.PID)
	if err == nil {
		err = proc.Kill()
	}
	if err != nil {
		tb.Fatalf("killing worker %s (pid %d): %v", victim.ID, victim.PID, err)
	}
	return victim
}
