package dstream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/plot"
	"github.com/dstream/dstream/rdd"
)

// TestEventTimeFigures measures (DSTREAM_ETFIGURES=1; BENCHMARKS.md, "Event
// time"): an event-time tumbling count over out-of-order input (10% of the
// records up to 5 s late) at 1 s intervals against the arrival-time window
// on the same input, in the same run, and the event-time state's size
// interval by interval. DSTREAM_ETFIGURES=long runs 300 intervals (5
// minutes of event time) and draws the state's size over them in
// docs/eventtime-state.svg.
func TestEventTimeFigures(t *testing.T) {
	mode := os.Getenv("DSTREAM_ETFIGURES")
	if mode == "" {
		t.Skip("figures: DSTREAM_ETFIGURES=1 (or long)")
	}
	const perInterval, keys = 100_000, 1000
	intervals := 60
	if mode == "long" {
		intervals = 300
	}
	mean := map[string]time.Duration{}
	for _, kind := range []string{"arrival", "event"} {
		h := dstreamtest.New[kv](t, dstreamtest.Options{})
		rng := rand.New(rand.NewPCG(1, 2))
		var openWindows, stateBytes []int64
		switch kind {
		case "arrival":
			out := dstream.ReduceByKeyAndWindowInv(h.In, add, sub, 10*sec, sec, 4, nil)
			dstream.ForeachRDD(out, func(ctx context.Context, ds *rdd.Dataset[kv], _ time.Time) error { _, err := ds.Count(ctx); return err })
		case "event":
			ev := dstream.WithEventTime(h.In, func(x kv) time.Time { return time.UnixMilli(int64(x.Value)) }, 3*sec)
			w := dstream.CountByEventWindow(ev, func(x kv) string { return x.Key }, dstream.TumblingWindows(10*sec), dstream.AppendMode, 4)
			dstream.ForeachRDD(w.Stream, func(ctx context.Context, ds *rdd.Dataset[dstream.Windowed[string, int64]], _ time.Time) error {
				_, err := ds.Count(ctx)
				return err
			})
			dstream.ForeachRDD(w.OpenWindows(), func(ctx context.Context, ds *rdd.Dataset[dstream.Windowed[string, int64]], at time.Time) error {
				n, err := ds.Count(ctx)
				openWindows = append(openWindows, n)
				return err
			})
		}
		h.Start()
		var total time.Duration
		for i := range intervals {
			at := h.Clock.Now().Add(time.Second)
			b := make([]kv, perInterval)
			for j := range b {
				late := 0
				if rng.IntN(10) == 0 {
					late = rng.IntN(5000)
				} else {
					late = rng.IntN(200)
				}
				b[j] = p(fmt.Sprint("k", rng.IntN(keys)), int(at.UnixMilli())-late)
			}
			h.Input.Push(b...)
			start := time.Now()
			h.Tick()
			d := time.Since(start)
			if i >= 5 {
				total += d
			}
			// The state's blocks (the operator keeps two intervals' state:
			// the one being built reads the one before).
			stateBytes = append(stateBytes, h.Ctx.BlockStats().StateBytes)
		}
		per := total / time.Duration(intervals-5)
		mean[kind] = per
		if kind == "event" {
			var peak, peakBytes int64
			for i, n := range openWindows {
				peak, peakBytes = max(peak, n), max(peakBytes, stateBytes[i])
			}
			step := intervals / 6
			t.Logf("open windows: every %dth interval %v; peak %d", step, every(openWindows, step), peak)
			t.Logf("state bytes (block store, state class): every %dth interval %v; peak %d", step, every(stateBytes, step), peakBytes)
			if mode == "long" {
				plotEventState(t, openWindows, stateBytes)
			}
		}
		t.Logf("%s: %d records/interval, mean interval %v, %.0f records/s sustained (2 cores shared)", kind, perInterval, per.Round(100*time.Microsecond), float64(perInterval)/per.Seconds())
		_ = h.Ctx.Stop(false)
	}
	t.Logf("ratio: event-time mean interval / arrival-time mean interval = %.2f", float64(mean["event"])/float64(mean["arrival"]))
}

// plotEventState draws the event-time state's size, interval by interval,
// in docs/eventtime-state.svg.
func plotEventState(t *testing.T, openWindows, stateBytes []int64) {
	wins := plot.Series{Name: "open windows"}
	kib := plot.Series{Name: "state in the block store (KiB)", Right: true}
	for i := range openWindows {
		x := float64(i + 1)
		wins.X, wins.Y = append(wins.X, x), append(wins.Y, float64(openWindows[i]))
		kib.X, kib.Y = append(kib.X, x), append(kib.Y, float64(stateBytes[i])/1024)
	}
	f, err := os.Create(filepath.Join("docs", "eventtime-state.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chart := plot.Chart{Title: "Event-time count, 10 s tumbling windows, maxDelay 3 s, 1,000 keys; 100,000 records a 1 s interval, 10% up to 5 s late",
		XLabel: "interval (seconds of event time)", YLabel: "open windows", Y2Label: "KiB", Series: []plot.Series{wins, kib}}
	if err := chart.SVG(f); err != nil {
		t.Fatal(err)
	}
}

func every(xs []int64, n int) []int64 {
	var out []int64
	for i := n - 1; i < len(xs); i += n {
		out = append(out, xs[i])
	}
	return out
}
