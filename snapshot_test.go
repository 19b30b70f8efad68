package dstream_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
)

// Latest is the last completed interval's dataset: a query on it returns
// exactly that interval's output, even while the next interval is running.
func TestLatestIsTheLastCompletedInterval(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	words := dstream.FlatMap(h.In, strings.Fields)
	col := dstreamtest.Collect(words)
	entered, release := make(chan struct{}), make(chan struct{})
	dstream.ForeachRDD(words, func(ctx context.Context, ds *rdd.Dataset[string], at time.Time) error {
		if at.Equal(h.Ctx.StartTime().Add(2 * time.Second)) {
			close(entered)
			<-release
		}
		return nil
	})
	if _, _, ok := words.Latest(); ok {
		t.Fatal("Latest before any interval")
	}
	h.Input.Push("a b", "c")
	h.Input.Push("d e f")
	h.Start()
	t1 := h.Tick()
	h.Clock.Advance(time.Second) // interval 2 starts and blocks in its output
	<-entered
	ds, at, ok := words.Latest()
	if !ok || !at.Equal(t1) {
		t.Fatalf("Latest = %v at %v, want interval 1 (%v)", ok, at, t1)
	}
	got, err := ds.Collect(context.Background()) // runs beside the blocked interval
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if want := col.At(t1); !slices.Equal(dstreamtest.Sorted(got), dstreamtest.Sorted(want)) {
		t.Fatalf("query on Latest = %v, interval 1's output %v", got, want)
	}
}

// Slice over a range equals the union of those intervals' outputs (the
// window the engine computes over the same range), while the stream
// remembers them; further back, or past the last completed interval, is an
// error.
func TestSliceIsTheUnionOfItsIntervals(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	words := dstream.FlatMap(h.In, strings.Fields).Remember(4 * time.Second)
	col := dstreamtest.Collect(words)
	win := dstreamtest.Collect(dstream.Window(words, 3*time.Second, time.Second))
	for i := range 6 {
		h.Input.Push(strings.Repeat("w"+string(rune('a'+i))+" ", i+1))
	}
	h.Start()
	var ts []time.Time
	for range 6 {
		ts = append(ts, h.Tick())
	}
	dss, err := words.Slice(ts[3], ts[5])
	if err != nil {
		t.Fatal(err)
	}
	var got, union []string
	for _, ds := range dss {
		xs, err := ds.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, xs...)
	}
	for _, at := range ts[3:] {
		union = append(union, col.At(at)...)
	}
	if g, u, w := dstreamtest.Sorted(got), dstreamtest.Sorted(union), dstreamtest.Sorted(win.At(ts[5])); !slices.Equal(g, u) || !slices.Equal(g, w) {
		t.Fatalf("slice %v\nunion of outputs %v\nwindow %v", g, u, w)
	}
	// The window keeps 3 intervals; Remember(4s) keeps 5: the 4 s before the
	// latest interval and that interval.
	if dss, err := words.Slice(ts[1], ts[5]); err != nil || len(dss) != 5 {
		t.Fatalf("Slice over what Remember keeps: %d datasets, %v", len(dss), err)
	}
	for _, tt := range []struct {
		from, to time.Time
		want     string
	}{
		{ts[0], ts[5], "no longer remembered"},
		{ts[4], ts[5].Add(time.Second), "last completed interval"},
		{ts[5], ts[4], "empty"},
	} {
		if _, err := words.Slice(tt.from, tt.to); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Slice(%d, %d) = %v, want an error saying %q", tt.from.UnixMilli(), tt.to.UnixMilli(), err, tt.want)
		}
	}
}
