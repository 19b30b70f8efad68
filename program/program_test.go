package program_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/program"
	"github.com/dstream/dstream/rdd"
)

// errOutput is what the failing job's output returns.
var errOutput = errors.New("the output is broken")

// running is a Run in progress on a goroutine, with what its hooks saw.
type running struct {
	started chan struct{} // closed by Started
	done    chan error    // Run's result
	mu      sync.Mutex
	why     []program.Reason // Stopping's arguments
}

// start runs h's context with program.Run on a goroutine; the hooks of m
// are replaced by ones that record what they are given.
func start(ctx context.Context, h *dstreamtest.Harness[string], m program.Master) *running {
	r := &running{started: make(chan struct{}), done: make(chan error, 1)}
	m.Started = func(context.Context) { close(r.started) }
	m.Stopping = func(why program.Reason) {
		r.mu.Lock()
		r.why = append(r.why, why)
		r.mu.Unlock()
	}
	go func() { r.done <- program.Run(ctx, h.Ctx, m) }()
	return r
}

// wait returns Run's result, failing the test after a minute.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute")
		return nil
	}
}

func (r *running) reasons() []program.Reason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.why)
}

// TestRunMaster runs a local job to each of the ends of a master's run:
// the reason Stopping is given, Run's result and its exit status, and the
// intervals processed (a graceful stop processes the intervals cut).
func TestRunMaster(t *testing.T) {
	for _, c := range []struct {
		name    string
		fail    bool          // every interval's output fails
		dur     time.Duration // Master.Duration
		advance int           // intervals the clock moves before the end
		end     func(cancel context.CancelFunc, abandon chan struct{})
		why     program.Reason
		code    int
		ran     int // intervals whose output ran
	}{
		{name: "signal", advance: 1, end: func(cancel context.CancelFunc, _ chan struct{}) { cancel() }, why: program.Interrupted, code: program.ExitOK, ran: 1},
		{name: "duration", dur: 2 * time.Second, advance: 2, why: program.Elapsed, code: program.ExitOK, ran: 2},
		{name: "failed interval", fail: true, advance: 1, why: program.StoppedItself, code: program.ExitFailed, ran: 1},
		{name: "abandon", advance: 1, end: func(_ context.CancelFunc, abandon chan struct{}) { close(abandon) }, why: program.Abandoned, code: program.ExitOK, ran: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := dstreamtest.New[string](t, dstreamtest.Options{})
			var (
				mu  sync.Mutex
				ran []int64
			)
			dstream.ForeachRDD(dstream.CountByValue(h.In, 2), func(ctx context.Context, ds *rdd.Dataset[dstream.Pair[string, int64]], at time.Time) error {
				if _, err := ds.Collect(ctx); err != nil {
					return err
				}
				mu.Lock()
				ran = append(ran, at.UnixMilli())
				mu.Unlock()
				if c.fail {
					return errOutput
				}
				return nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			abandon := make(chan struct{})
			r := start(ctx, h, program.Master{Duration: c.dur, Abandon: abandon})
			<-r.started
			for i := range c.advance {
				h.Input.Push("a", "b", "a")
				h.Clock.Advance(time.Second)
				at := dstreamtest.Start.Add(time.Duration(i+1) * time.Second)
				if !c.fail && c.end != nil {
					// The interval is processed before the run is ended.
					if err := h.Ctx.AwaitBatch(ctx, at); err != nil {
						t.Fatal(err)
					}
				}
			}
			if c.end != nil {
				c.end(cancel, abandon)
			}
			err := r.wait(t)
			if got := program.ExitCode(err); got != c.code || c.fail != errors.Is(err, errOutput) {
				t.Errorf("Run: %v, exit status %d; want status %d", err, got, c.code)
			}
			if got := r.reasons(); !slices.Equal(got, []program.Reason{c.why}) {
				t.Errorf("Stopping saw %v, want [%v]", got, c.why)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(ran) != c.ran {
				t.Errorf("intervals processed: %v, want %d", ran, c.ran)
			}
			select {
			case <-h.Ctx.Done():
			default:
				t.Error("the context is not stopped after Run")
			}
		})
	}
}

// TestRunFailsToStart: a context whose Start fails gives a *StartError
// (exit status 2), and no hook runs.
func TestRunFailsToStart(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	// A window that is not a multiple of the batch interval: Start fails.
	dstream.ForeachRDD(dstream.Window(h.In, 1500*time.Millisecond, time.Second), func(context.Context, *rdd.Dataset[string], time.Time) error { return nil })
	called := false
	err := program.Run(context.Background(), h.Ctx, program.Master{
		Started:  func(context.Context) { called = true },
		Stopping: func(program.Reason) { called = true },
	})
	var se *program.StartError
	if !errors.As(err, &se) || program.ExitCode(err) != program.ExitUsage || called {
		t.Errorf("Run: %v (%T), hooks called %v; want a *StartError, exit status 2, no hook", err, err, called)
	}
}

// TestRunWorker runs a local-cluster[1] job whose worker is this test,
// again, in another process (dstreamtest): there Run serves the master's
// tasks without calling the hooks and returns nil once the master releases
// it, which the worker writes to a file the master's test reads.
func TestRunWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker process")
	}
	dir := dstreamtest.SharedDir(t, "PROGRAM_TEST_WORKER_DIR")
	h := dstreamtest.New[string](t, dstreamtest.Options{Master: "local-cluster[1]"})
	col := dstreamtest.Collect(dstream.CountByValue(h.In, 2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if h.Ctx.IsWorker() {
		hooks := 0
		err := program.Run(ctx, h.Ctx, program.Master{
			Started:  func(context.Context) { hooks++ },
			Stopping: func(program.Reason) { hooks++ },
		})
		_ = os.WriteFile(filepath.Join(dir, "worker"), fmt.Appendf(nil, "err %v hooks %d", err, hooks), 0o644)
		t.SkipNow()
	}
	r := start(ctx, h, program.Master{})
	<-r.started
	h.Input.Push("a", "b", "a")
	at := h.Tick()
	if got := col.At(at); len(got) != 2 {
		t.Errorf("interval 1: %v, want the counts of a and b", got)
	}
	if !slices.ContainsFunc(h.Ctx.Workers(), func(w dstream.WorkerInfo) bool { return w.ID != "master" && w.State == "alive" }) {
		t.Errorf("no worker joined: %+v", h.Ctx.Workers())
	}
	cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The master's stop waits for its workers to exit.
	b, err := os.ReadFile(filepath.Join(dir, "worker"))
	if err != nil || string(b) != "err <nil> hooks 0" {
		t.Errorf("the worker says %q (%v), want %q", b, err, "err <nil> hooks 0")
	}
}

// TestSignals: SIGTERM ends the context Signals returns, and does not kill
// the process.
func TestSignals(t *testing.T) {
	ctx, stop := program.Signals(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("SIGTERM did not end the context")
	}
}

func TestReasonString(t *testing.T) {
	var names []string
	for _, r := range []program.Reason{0, program.Interrupted, program.Elapsed, program.StoppedItself, program.Abandoned} {
		names = append(names, r.String())
	}
	if got := strings.Join(names, ", "); got != "unknown, interrupted, elapsed, stopped by itself, abandoned" {
		t.Errorf("reasons: %s", got)
	}
}

// TestRunStandbyStopsOnSignal: a second master on the same checkpoint
// location waits in Run as a standby; the signal (ctx done) ends the wait:
// Run returns nil (nothing ran), without calling the hooks, and the first
// master still acts.
func TestRunStandbyStopsOnSignal(t *testing.T) {
	dir := t.TempDir()
	newJob := func() *dstreamtest.Harness[string] {
		h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = dir }})
		dstream.ForeachRDD(h.In, func(context.Context, *rdd.Dataset[string], time.Time) error { return nil })
		return h
	}
	active := newJob()
	active.Start()
	standby := newJob()
	ctx, cancel := context.WithCancel(context.Background())
	r := start(ctx, standby, program.Master{})
	deadline := time.Now().Add(10 * time.Second)
	for err := standby.Ctx.Ready(); err == nil || !strings.Contains(err.Error(), "standby"); err = standby.Ctx.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the second master's Ready = %v; want it to say it is a standby", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := r.wait(t); err != nil {
		t.Errorf("Run of a standby stopped by a signal = %v, want nil", err)
	}
	select {
	case <-r.started:
		t.Error("Started was called for a standby that never acted")
	default:
	}
	if why := r.reasons(); len(why) > 0 {
		t.Errorf("Stopping was called (%v) for a standby that never acted", why)
	}
	active.Tick()
}
