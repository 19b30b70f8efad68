package sched

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/rdd"
)

// stragglerExec runs every task at once, except attempt 0 of partition
// slow, which waits for its context (or release) and reports why it ended.
type stragglerExec struct {
	slow    int
	release chan struct{}

	mu      sync.Mutex
	calls   []string // "p#a@worker", in call order
	started chan string
	cause   chan error // the straggler's context's cause when it stopped
}

func (e *stragglerExec) Execute(ctx context.Context, worker string, t Task, _ *rdd.Job, _ *rdd.Lineage) (any, rdd.TaskFigures, error) {
	e.mu.Lock()
	e.calls = append(e.calls, fmt.Sprintf("%d#%d@%s", t.Partition(), t.Attempt(), worker))
	e.mu.Unlock()
	if t.Partition() == e.slow && t.Attempt() == 0 {
		e.started <- worker
		select {
		case <-ctx.Done():
			e.cause <- context.Cause(ctx)
			return nil, rdd.NotMeasured, ctx.Err()
		case <-e.release:
		}
	}
	return fmt.Sprintf("p%d#%d", t.Partition(), t.Attempt()), rdd.NotMeasured, nil
}

func (e *stragglerExec) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// runAsync runs job on s in a goroutine.
func runAsync(s *Shell, job *rdd.Job) chan JobDone {
	done := make(chan JobDone, 1)
	go func() {
		res, err := s.RunJob(context.Background(), job)
		done <- JobDone{Results: res, Err: err}
	}()
	return done
}

// A straggler gets a copy on the other worker once the clock (ticked by the
// shell's own goroutine) says it straggles; the copy wins, the shell
// cancels the original's context with ErrKilled, and OnTask reports both.
func TestShellSpeculationKillsTheLoser(t *testing.T) {
	clk := clock.NewManual(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	ex := &stragglerExec{slow: 3, started: make(chan string, 1), cause: make(chan error, 1)}
	var mu sync.Mutex
	var events []TaskEvent
	s := NewShell(ShellConfig{Executor: ex, Clock: clk, Speculation: Speculation{Enabled: true},
		OnTask: func(e TaskEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	s.AddWorker("a", 2)
	s.AddWorker("b", 2)
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 4)
	done := runAsync(s, &rdd.Job{Final: n, Partitions: allParts(4)})
	orig := <-ex.started
	var d JobDone
	deadline := time.After(20 * time.Second)
wait:
	for {
		select {
		case d = <-done:
			break wait
		case <-deadline:
			t.Fatalf("job not done; calls %v", ex.Calls())
		case <-time.After(2 * time.Millisecond):
			clk.Advance(50 * time.Millisecond) // the shell ticks every 100 ms
		}
	}
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	if want := []any{"p0#0", "p1#0", "p2#0", "p3#1"}; !slices.Equal(d.Results, want) {
		t.Fatalf("results %v, want %v", d.Results, want)
	}
	if cause := <-ex.cause; !errors.Is(cause, ErrKilled) {
		t.Fatalf("the original stopped for %v, want ErrKilled", cause)
	}
	var copyOn string
	for _, c := range ex.Calls() {
		if w, ok := strings.CutPrefix(c, "3#1@"); ok {
			copyOn = w
		}
	}
	if copyOn == "" || copyOn == orig {
		t.Fatalf("copy ran on %q, original on %q (calls %v)", copyOn, orig, ex.Calls())
	}
	mu.Lock()
	defer mu.Unlock()
	var sawCopy, sawKilled bool
	for _, e := range events {
		if e.Start.IsZero() || e.End.Before(e.Start) {
			t.Errorf("event %+v: bad times", e)
		}
		switch {
		case e.Task.Partition() == 3 && e.Task.Attempt() == 1:
			sawCopy = e.Speculative && e.Err == nil && e.Worker == copyOn && !e.Killed
		case e.Task.Partition() == 3 && e.Task.Attempt() == 0:
			sawKilled = e.Killed && !e.Speculative && e.Err != nil && e.Worker == orig
		}
	}
	if !sawCopy || !sawKilled || len(events) != 5 {
		t.Fatalf("events %+v", events)
	}
	for _, w := range s.Workers() {
		if w.Free != w.Slots {
			t.Errorf("worker %s: %d of %d slots free", w.ID, w.Free, w.Slots)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ticker != nil || len(s.cancels) != 0 {
		t.Errorf("after the job: ticker running %v, %d attempts' contexts kept", s.ticker != nil, len(s.cancels))
	}
}

// With one worker (local[N]) a copy could never be placed: the shell runs
// no tick goroutine, however long a task straggles, and runs no copy.
func TestShellOneWorkerNeverTicks(t *testing.T) {
	clk := clock.NewManual(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	ex := &stragglerExec{slow: 3, release: make(chan struct{}), started: make(chan string, 1), cause: make(chan error, 1)}
	s := NewShell(ShellConfig{Executor: ex, Clock: clk, Speculation: Speculation{Enabled: true}})
	s.AddWorker(LocalWorker, 4)
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 4)
	done := runAsync(s, &rdd.Job{Final: n, Partitions: allParts(4)})
	<-ex.started
	for range 20 {
		clk.Advance(time.Second)
		s.mu.Lock()
		ticking := s.ticker != nil
		s.mu.Unlock()
		if ticking {
			t.Fatal("a shell with one worker ticks")
		}
	}
	close(ex.release)
	if d := <-done; d.Err != nil {
		t.Fatal(d.Err)
	}
	if calls := ex.Calls(); len(calls) != 4 {
		t.Fatalf("calls %v, want one per partition", calls)
	}
	// The same with local[N], whose shell has speculation off: no clock
	// reads, no per-attempt contexts, no ticks.
	l := NewLocal(LocalConfig{Slots: 4})
	if _, err := l.RunJob(context.Background(), &rdd.Job{Final: n, Partitions: allParts(4), Func: func(tc *rdd.TaskContext, p int) (any, error) { return p, nil }}); err != nil {
		t.Fatal(err)
	}
	if l.spec || l.cancels != nil || l.ticker != nil || !l.core.now.IsZero() {
		t.Fatalf("local[N] speculates (%v), keeps contexts (%v), ticks (%v) or reads the clock (%v)", l.spec, l.cancels != nil, l.ticker != nil, l.core.now)
	}
}

// OnTask sees every attempt, with its times on the shell's clock, in
// local[N] too.
func TestLocalOnTask(t *testing.T) {
	clk := clock.NewManual(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	var events []TaskEvent
	l := NewLocal(LocalConfig{Slots: 2, Clock: clk, OnTask: func(e TaskEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 3)
	_, err := l.RunJob(context.Background(), &rdd.Job{Final: n, Partitions: allParts(3), Func: func(tc *rdd.TaskContext, p int) (any, error) {
		if p == 1 {
			return nil, errors.New("boom")
		}
		return p, nil
	}})
	if err == nil {
		t.Fatal("job with a failing partition succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	fails := 0
	for _, e := range events {
		if e.Worker != LocalWorker || e.Start != clk.Now() || e.End != clk.Now() || e.Speculative || e.Killed {
			t.Errorf("event %+v", e)
		}
		if e.Err != nil {
			fails++
		}
	}
	if fails != 4 {
		t.Errorf("%d failed attempts reported, want 4: %+v", fails, events)
	}
}
