package dstream_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
)

// carryOn configures a context whose failed intervals do not stop it.
func carryOn(c *dstream.Config) {
	c.OnBatchError = func(*dstream.BatchError) error { return nil }
}

// By default a failed interval stops the context with an error naming the
// interval, the output and the operator; the intervals after it are not run.
func TestFailedIntervalStopsTheContext(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	m := dstream.Map(h.In, func(x int) int {
		if x == 13 {
			panic("unlucky record")
		}
		return x
	})
	col := dstreamtest.Collect(m)
	h.Input.Push(1)
	h.Input.Push(13)
	h.Input.Push(2)
	h.Start()
	t1 := h.Tick()
	t2 := h.Tick()
	if got := col.At(t1); len(got) != 1 {
		t.Fatalf("interval 1 = %v", got)
	}
	// The context stops on its own: interval 3 is never run.
	h.Clock.Advance(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Ctx.AwaitBatch(ctx, t2.Add(time.Second)); !errors.Is(err, dstream.ErrStopped) {
		t.Fatalf("interval 3 after a failed interval: AwaitBatch = %v, want ErrStopped", err)
	}
	if t3 := t2.Add(time.Second); col.Ran(t3) {
		t.Fatalf("interval 3 ran after a failed interval: %v, %v", col.At(t3), col.Err(t3))
	}
	select {
	case <-h.Ctx.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the context stopped on its own")
	}
	err := h.Ctx.Stop(true)
	var be *dstream.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Stop = %v, want a *BatchError", err)
	}
	if !be.Time.Equal(t2) || be.OutputOp != 0 || be.Output != "foreachRDD" {
		t.Errorf("BatchError = {%v %d %q}, want interval %v, output 0 (foreachRDD)", be.Time, be.OutputOp, be.Output, t2)
	}
	var te *rdd.TaskError
	if !errors.As(err, &te) || te.Op != "map" {
		t.Errorf("error %v does not wrap the map operator's TaskError", err)
	}
	for _, want := range []string{"interval 1700000002000", "foreachRDD", "map", "unlucky record"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// RunUntil returns the failed interval's error without being cancelled.
func TestRunUntilReturnsTheFailedInterval(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{})
	dstream.ForeachRDD(h.In, func(ctx context.Context, ds *rdd.Dataset[int], _ time.Time) error {
		return errors.New("disk full")
	})
	h.Input.Push(1)
	done := make(chan error, 1)
	go func() { done <- h.Ctx.RunUntil(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for h.Ctx.Done() == nil { // RunUntil's Start has not happened yet
		select {
		case err := <-done:
			t.Fatalf("RunUntil returned %v before any interval", err)
		case <-ctx.Done():
			t.Fatal("context never started")
		case <-time.After(time.Millisecond):
		}
	}
	h.Clock.Advance(time.Second)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("RunUntil = %v, want the interval's error", err)
		}
	case <-ctx.Done():
		t.Fatal("RunUntil did not return after a failed interval")
	}
}

// OnBatchError sees every failed interval and decides: nil carries on, an
// error stops the context with it.
func TestOnBatchErrorDecides(t *testing.T) {
	var mu sync.Mutex
	var seen []int64
	stop := errors.New("two strikes")
	h := dstreamtest.New[int](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.OnBatchError = func(e *dstream.BatchError) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, e.Time.UnixMilli())
			if len(seen) == 2 {
				return stop
			}
			return nil
		}
	}})
	dstream.ForeachRDD(h.In, func(ctx context.Context, ds *rdd.Dataset[int], _ time.Time) error {
		if n, _ := ds.Count(ctx); n > 1 {
			return errors.New("too many")
		}
		return nil
	})
	h.Input.Push(1, 2)
	h.Input.Push(3)
	h.Input.Push(4, 5)
	h.Start()
	h.Tick()
	h.Tick()
	h.Tick()
	if err := h.Ctx.Stop(true); !errors.Is(err, stop) {
		t.Fatalf("Stop = %v, want OnBatchError's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 1_700_000_001_000 || seen[1] != 1_700_000_003_000 {
		t.Fatalf("OnBatchError saw %v, want intervals 1 and 3", seen)
	}
}

// An interval that cannot be formed (a queued batch larger than the whole
// input share) stops the context with an error saying so, instead of
// leaving it waiting for intervals that never come.
func TestUncuttableIntervalStopsTheContext(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.MemoryBytes = 1 << 20 }})
	dstreamtest.Collect(h.In)
	big := make([]string, 40_000)
	for i := range big {
		big[i] = "a record long enough to weigh"
	}
	h.Input.Push(big...)
	h.Start()
	h.Clock.Advance(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-h.Ctx.Done():
	case <-ctx.Done():
		t.Fatal("the context kept waiting for an interval it cannot form")
	}
	err := h.Ctx.Stop(true)
	var be *dstream.BatchError
	if !errors.As(err, &be) || be.Output != "input" || !strings.Contains(err.Error(), "queue stream") || !errors.Is(err, block.ErrTooLarge) {
		t.Fatalf("Stop = %v, want the input's BatchError wrapping ErrTooLarge", err)
	}
}
