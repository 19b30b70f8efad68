package dstream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
)

// TestEventTimeFigures measures (DSTREAM_ETFIGURES=1; BENCHMARKS.md, "Event
// time"): an event-time tumbling count over out-of-order input (10% of the
// records up to 5 s late) at 1 s intervals against the arrival-time window
// on the same input, and the event-time state's size interval by interval.
func TestEventTimeFigures(t *testing.T) {
	if os.Getenv("DSTREAM_ETFIGURES") == "" {
		t.Skip("figures: DSTREAM_ETFIGURES=1")
	}
	const perInterval, keys = 100_000, 1000
	intervals := 60
	if os.Getenv("DSTREAM_ETFIGURES") == "long" {
		intervals = 300
	}
	for _, kind := range []string{"arrival", "event"} {
		h := dstreamtest.New[kv](t, dstreamtest.Options{})
		rng := rand.New(rand.NewPCG(1, 2))
		var openWindows []int64
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
		}
		per := total / time.Duration(intervals-5)
		if kind == "event" {
			var peak int64
			for _, n := range openWindows {
				peak = max(peak, n)
			}
			t.Logf("open windows: every 10th interval %v; peak %d", every(openWindows, 10), peak)
		}
		t.Logf("%s: %d records/interval, mean interval %v, %.0f records/s sustained (2 cores shared)", kind, perInterval, per.Round(time.Millisecond), float64(perInterval)/per.Seconds())
		_ = h.Ctx.Stop(false)
	}
}

func every(xs []int64, n int) []int64 {
	var out []int64
	for i := n - 1; i < len(xs); i += n {
		out = append(out, xs[i])
	}
	return out
}
