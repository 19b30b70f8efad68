package dstream

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/source"
)

// idle is a receiver that takes nothing in.
type idle struct{}

func (idle) Name() string                                       { return "idle" }
func (idle) Open() error                                        { return nil }
func (idle) Receive(ctx context.Context, _ source.Writer) error { <-ctx.Done(); return nil }

// How long a receiver keeps its blocks is what its consumers need to
// recompute from them: a window over a mapped stream needs them for the
// window, an incremental window (which checkpoints each interval's reduced
// data) or a state stream for one interval.
func TestRememberPropagatesToInputs(t *testing.T) {
	pairs := func(s *Stream[string]) *Stream[Pair[string, int64]] {
		return Map(s, func(w string) Pair[string, int64] { return KV(w, int64(1)) })
	}
	add := func(a, b int64) int64 { return a + b }
	sub := func(a, b int64) int64 { return a - b }
	tests := []struct {
		name  string
		build func(in *Stream[string])
		want  time.Duration
	}{
		{"no window", func(in *Stream[string]) { Count(Map(in, func(s string) int { return len(s) })).Print(1) }, time.Second},
		{"window over a map", func(in *Stream[string]) {
			Window(Map(in, func(s string) int { return len(s) }), 3*time.Second, time.Second).Print(1)
		}, 4 * time.Second},
		{"reduceByKeyAndWindow recomputed", func(in *Stream[string]) {
			ReduceByKeyAndWindow(pairs(in), add, 3*time.Second, time.Second, 0).Print(1)
		}, 4 * time.Second},
		{"incremental window", func(in *Stream[string]) {
			ReduceByKeyAndWindowInv(pairs(in), add, sub, 3*time.Second, time.Second, 0, nil).Print(1)
		}, time.Second},
		{"countByWindow", func(in *Stream[string]) { CountByWindow(in, 3*time.Second, time.Second).Print(1) }, time.Second},
		{"state", func(in *Stream[string]) {
			UpdateStateByKey(pairs(in), func(vs []int64, s Opt[int64]) Opt[int64] { return s }, 0).Print(1)
		}, time.Second},
		{"union of a window and a plain output", func(in *Stream[string]) {
			m := Map(in, func(s string) int { return len(s) })
			Union(Window(m, 2*time.Second, time.Second), m).Print(1)
		}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewContext(Config{Master: "local[1]", BatchInterval: time.Second, Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000))})
			if err != nil {
				t.Fatal(err)
			}
			in := ReceiverStream(c, idle{})
			tt.build(in)
			engine.PropagateRemember(c.e.Nodes(), false)
			if got := in.rt.RememberDuration(); got != tt.want {
				t.Errorf("receiver remembers %v, want %v", got, tt.want)
			}
		})
	}
}

// A window sliding by two intervals generates the in-between interval's
// reduced data only when it next slides; that data is checkpointed then too,
// since its input is no longer kept to recompute it.
func TestIncrementalWindowCheckpointsEveryIntervalsReducedData(t *testing.T) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	c, err := NewContext(Config{Master: "local[2]", BatchInterval: time.Second, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue[Pair[string, int64]]()
	add := func(a, b int64) int64 { return a + b }
	sub := func(a, b int64) int64 { return a - b }
	ReduceByKeyAndWindowInv(QueueStream(c, q), add, sub, 4*time.Second, 2*time.Second, 0, nil).Print(1)
	var reduced *engine.Series[Pair[string, int64]]
	for _, n := range c.e.Nodes() {
		if sn, ok := n.(*engine.Series[Pair[string, int64]]); ok && sn.Describe().Name == "reduceByKey" {
			reduced = sn
		}
	}
	if reduced == nil {
		t.Fatal("no reduceByKey stream in the graph")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(false)
	for i := 1; i <= 4; i++ {
		q.Push(KV("k", int64(i)))
		clk.Advance(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.AwaitBatch(ctx, c.StartTime().Add(time.Duration(i)*time.Second))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	dss, err := reduced.Slice(c.StartTime().Add(time.Second), c.StartTime().Add(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(dss) < 4 {
		t.Fatalf("reduced data of %d intervals remembered, want 4", len(dss))
	}
	for _, ds := range dss {
		if !ds.Checkpointed() {
			t.Errorf("reduced data of interval %d is not checkpointed", ds.ID().Time)
		}
	}
}
