package dstream_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/plot"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// Figures for BENCHMARKS.md that need worker processes and faults, so they
// are not Go benchmarks. They assert nothing; they run only when asked:
//
//	DSTREAM_FIGURES=1 go test -run TestFigure -v .
//
// and print what they measure.

func figures(t *testing.T) {
	if os.Getenv("DSTREAM_FIGURES") == "" && os.Getenv("DSTREAM_WORKER_OF") == "" {
		t.Skip("measures figures for BENCHMARKS.md: set DSTREAM_FIGURES=1")
	}
}

// figureWords is the straggler figure's input: n words over 6 partitions,
// a deterministic function of the interval.
func figureWords(n int) func(time.Time) [][]string {
	return func(at time.Time) [][]string {
		parts := make([][]string, 6)
		for i := range n {
			parts[i%6] = append(parts[i%6], fmt.Sprintf("w%d", (i*7919+int(at.Unix()))%5000))
		}
		return parts
	}
}

// TestFigureStraggler: WordCount in local-cluster[3], one worker made a
// straggler (every task there waits 1 s first), with and without
// speculation, and with speculation but no exclusion of the straggler's
// worker, against the same job with no straggler, at 1 s intervals and at
// 50 ms ones (a twentieth of the words). It prints each run's median and
// largest wall time per interval after the first two, and how many
// intervals took more than twice the normal run's median; and the first
// three intervals, where a straggler is met and excluded.
func TestFigureStraggler(t *testing.T) {
	figures(t)
	for _, batch := range []time.Duration{time.Second, 50 * time.Millisecond} {
		words := figureWordsPerInterval()
		intervals := 12
		if batch < time.Second {
			words, intervals = words/20, 60
		}
		var normal time.Duration
		for _, c := range []struct {
			name string
			slow string
			spec *sched.Speculation
		}{
			{"normal", "", nil},
			{"straggler, no speculation", "local-2=1s", &sched.Speculation{}},
			{"straggler, speculation without exclusion", "local-2=1s", &sched.Speculation{Enabled: true, ExcludeFor: -1}},
			{"straggler, speculation", "local-2=1s", nil},
		} {
			if batch < time.Second && c.spec != nil && !c.spec.Enabled {
				continue // every interval waits a second: nothing to learn
			}
			t.Run(fmt.Sprintf("%v/%s", batch, strings.ReplaceAll(c.name, " ", "_")), func(t *testing.T) {
				if c.slow != "" {
					t.Setenv("DSTREAM_SLOW_WORKER", c.slow)
				}
				h := dstreamtest.New[string](t, dstreamtest.Options{Master: "local-cluster[3]", BatchInterval: batch, Config: func(cfg *dstream.Config) {
					cfg.Speculation = c.spec
				}})
				in := dstream.GeneratedStream(h.Ctx, "words", figureWords(words))
				counts := dstream.ReduceByKey(dstream.Map(in, func(w string) kv { return p(w, 1) }), add, 6)
				col := dstreamtest.Collect(dstream.Count(counts))
				h.Start()
				var took []time.Duration
				for range intervals {
					start := time.Now()
					at := h.Tick()
					took = append(took, time.Since(start))
					if err := col.Err(at); err != nil {
						t.Fatal(err)
					}
				}
				steady := slices.Clone(took[2:]) // the first intervals warm up
				slices.Sort(steady)
				med := steady[len(steady)/2]
				if c.slow == "" {
					normal = med
				}
				slow := 0
				for _, d := range steady {
					if normal > 0 && d > 2*normal {
						slow++
					}
				}
				t.Logf("FIGURE straggler %v %-42s first three %4d %4d %4d ms; then median %4d ms, max %4d ms per interval, %2d of %d over twice the normal median",
					batch, c.name, took[0].Milliseconds(), took[1].Milliseconds(), took[2].Milliseconds(), med.Milliseconds(), steady[len(steady)-1].Milliseconds(), slow, len(steady))
			})
		}
	}
}

// figureWordsPerInterval is DSTREAM_FIGURE_WORDS, default 60 000.
func figureWordsPerInterval() int {
	n := 60000
	if v := os.Getenv("DSTREAM_FIGURE_WORDS"); v != "" {
		fmt.Sscan(v, &n)
	}
	return n
}

// TestFigureRecovery: a running word count (UpdateStateByKey over 200 000
// possible keys) in local-cluster[N]; halfway between two checkpoints one
// worker is SIGKILLed. It prints the wall time of the intervals before the
// kill (median), of the first interval after it (the one that recomputes
// the lost state from lineage: the checkpoint and the inputs since), and of
// the next ones, for checkpoint intervals of 2, 10 and 30 s (1 s batches)
// and 2 or 3 workers.
func TestFigureRecovery(t *testing.T) {
	figures(t)
	for _, workers := range []int{2, 3} {
		for _, ck := range []int{2, 10, 30} {
			t.Run(fmt.Sprintf("workers=%d/checkpoint=%ds", workers, ck), func(t *testing.T) {
				h := dstreamtest.New[string](t, dstreamtest.Options{Master: fmt.Sprintf("local-cluster[%d]", workers), Config: func(cfg *dstream.Config) {
					cfg.CheckpointInterval = time.Duration(ck) * time.Second
				}})
				col := figureStateJob(h)
				h.Start()
				tick := func() time.Duration {
					start := time.Now()
					at := h.Tick()
					if err := col.Err(at); err != nil {
						t.Fatal(err)
					}
					return time.Since(start)
				}
				var before []time.Duration
				for range ck + ck/2 + 1 {
					before = append(before, tick())
				}
				dstreamtest.KillWorker(t, h.Ctx, nil)
				var after []time.Duration
				for range 4 {
					after = append(after, tick())
				}
				steady := slices.Clone(before[2:])
				slices.Sort(steady)
				ms := func(ds []time.Duration) []int64 {
					out := make([]int64, len(ds))
					for i, d := range ds {
						out[i] = d.Milliseconds()
					}
					return out
				}
				t.Logf("FIGURE recovery workers=%d checkpoint=%2ds: before median %4d ms; after the kill %v ms", workers, ck, steady[len(steady)/2].Milliseconds(), ms(after))
			})
		}
	}
}

// TestFigureCheckpointCost: the same stateful job (a running count over
// 200 000 possible keys) in local[2] for 40 intervals, with its state
// written to a checkpoint folder every 2 s or every 10 s, and without a
// folder (the state is cut in memory every interval, as always in one
// process). It prints the wall time per interval: what durable
// checkpoints cost the steady state.
func TestFigureCheckpointCost(t *testing.T) {
	figures(t)
	for _, c := range []struct {
		name  string
		every time.Duration
		dir   bool
	}{{"no checkpoint folder", 0, false}, {"checkpoint every 10 s", 10 * time.Second, true}, {"checkpoint every 2 s", 2 * time.Second, true}} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(cfg *dstream.Config) {
				if c.dir {
					cfg.CheckpointDir, cfg.CheckpointInterval = dir, c.every
				}
			}})
			col := figureStateJob(h)
			h.Start()
			var took []time.Duration
			for range 40 {
				start := time.Now()
				at := h.Tick()
				took = append(took, time.Since(start))
				if err := col.Err(at); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.Ctx.Stop(true); err != nil { // waits for the checkpoints in flight
				t.Fatal(err)
			}
			var sum time.Duration
			for _, d := range took[5:] {
				sum += d
			}
			steady := slices.Clone(took[5:])
			slices.Sort(steady)
			t.Logf("FIGURE checkpoint cost %-22s mean %4d ms, median %4d ms, max %4d ms per interval", c.name, (sum / time.Duration(len(steady))).Milliseconds(), steady[len(steady)/2].Milliseconds(), steady[len(steady)-1].Milliseconds())
		})
	}
}

// TestFigureBackpressure: a flood (the sender as fast as it can, for 30 s)
// into a job whose every partition sleeps 50 µs a record (on two slots,
// about 40 000 records a second), with backpressure; it
// writes the input rate and the delays per interval to docs/backpressure.svg
// and prints them: the settling of issue #11's plot.
func TestFigureBackpressure(t *testing.T) {
	figures(t)
	const (
		batch    = 500 * time.Millisecond
		capacity = 20000
	)
	// Spark starts a receiver unlimited until the controller's first
	// estimate (two completed intervals); a flood then takes in minutes of
	// work in those two intervals, which the controller drains slowly at
	// its minimum rate. --initial-rate avoids that: floodJob starts at a
	// quarter of the job's capacity.
	ctx, sock, slow := floodJob(t, batch, capacity)
	dstream.ForeachRDD(dstream.Count(slow), func(c context.Context, ds *rdd.Dataset[int64], _ time.Time) error {
		_, err := ds.Collect(c)
		return err
	})
	var mu sync.Mutex
	var infos []listener.BatchInfo
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			mu.Lock()
			infos = append(infos, c.Batch)
			mu.Unlock()
		}
	}))
	if err := ctx.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Send(context.Background(), client.Options{To: sock.Addr().String(), Generate: "words", Seed: 3, Duration: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	rate := plot.Series{Name: "input rate (records/s)"}
	schedDelay := plot.Series{Name: "scheduling delay (ms)", Right: true}
	total := plot.Series{Name: "total delay (ms)", Right: true}
	start := infos[0].Time
	for _, b := range infos {
		x := b.Time.Sub(start).Seconds()
		rate.X, rate.Y = append(rate.X, x), append(rate.Y, float64(b.Records)/batch.Seconds())
		schedDelay.X, schedDelay.Y = append(schedDelay.X, x), append(schedDelay.Y, float64(b.SchedulingDelay.Milliseconds()))
		total.X, total.Y = append(total.X, x), append(total.Y, float64(b.TotalDelay.Milliseconds()))
		t.Logf("FIGURE backpressure t=%5.1fs rate %6.0f records/s, scheduling delay %4d ms, total delay %5d ms", x, float64(b.Records)/batch.Seconds(), b.SchedulingDelay.Milliseconds(), b.TotalDelay.Milliseconds())
	}
	f, err := os.Create(filepath.Join("docs", "backpressure.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chart := plot.Chart{Title: "A flood into a job that processes about 40 000 records/s (2 slots, 50 µs a record): --backpressure --initial-rate 5000, 500 ms batches",
		XLabel: "seconds since the first interval", YLabel: "records/s taken in", Y2Label: "delay (ms)", Series: []plot.Series{rate, schedDelay, total},
		Marks: []plot.Mark{{X: 0, Label: "flood starts"}}}
	if err := chart.SVG(f); err != nil {
		t.Fatal(err)
	}
}

// figureStateJob is the stateful job of the recovery and checkpoint-cost
// figures: a running count of words over 200 000 possible keys, generated
// (replayably) at figureWordsPerInterval a second; it collects the number
// of keys in the state each interval.
func figureStateJob(h *dstreamtest.Harness[string]) *dstreamtest.Collector[int64] {
	n := figureWordsPerInterval()
	words := dstream.GeneratedStream(h.Ctx, "words", func(at time.Time) [][]string {
		parts := make([][]string, 6)
		for i := range n {
			parts[i%6] = append(parts[i%6], fmt.Sprintf("w%d", (i*7919+int(at.Unix())*104729)%200000))
		}
		return parts
	})
	totals := dstream.UpdateStateByKey(dstream.Map(words, func(w string) kv { return p(w, 1) }), runningSum, 6)
	return dstreamtest.Collect(dstream.Count(totals))
}
