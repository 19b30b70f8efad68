package dstream_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/clock"
)

// The graph grows only before Start: a stream, an output or a query added
// after it is a graph error (Err), and the output is not registered.
func TestGraphGrowsOnlyBeforeStart(t *testing.T) {
	c, err := dstream.NewContext(dstream.Config{Master: "local[1]", Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)),
		Logger: slog.New(slog.DiscardHandler), Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	in := dstream.QueueStream(c, dstream.NewQueue[int]())
	in.Print(1)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(false)
	before := len(c.Graph())
	for _, tc := range []struct {
		name string
		add  func()
	}{
		{"a stream", func() { dstream.Map(in, func(x int) int { return x }) }},
		{"an output", func() {
			dstream.ForeachRDD(in, func(context.Context, *dstream.Dataset[int], time.Time) error { return nil })
		}},
		{"a query", func() { dstream.CountQuery(in, "n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.add()
			if err := c.Err(); err == nil || !strings.Contains(err.Error(), "before") {
				t.Fatalf("Err() = %v, want a graph error", err)
			}
		})
	}
	// The first error is the one kept; the output was not registered (the
	// stream was, as streams always were).
	if err := c.Err(); !strings.Contains(err.Error(), "map: streams must be created before the context starts") {
		t.Errorf("Err() = %v, want the first graph error", err)
	}
	if got := len(c.Graph()); got != before+1 {
		t.Errorf("the graph has %d nodes, want %d (the stream, not the output)", got, before+1)
	}
}
