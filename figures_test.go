package dstream_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
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
// speculation, against the same job with no straggler. It prints each
// run's median wall time per interval.
func TestFigureStraggler(t *testing.T) {
	figures(t)
	const intervals = 12
	for _, c := range []struct {
		name  string
		slow  string
		spec  bool
		delay time.Duration
	}{
		{"normal", "", true, 0},
		{"straggler, no speculation", "local-2=1s", false, time.Second},
		{"straggler, speculation", "local-2=1s", true, time.Second},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.slow != "" {
				t.Setenv("DSTREAM_SLOW_WORKER", c.slow)
			}
			h := dstreamtest.New[string](t, dstreamtest.Options{Master: "local-cluster[3]", Config: func(cfg *dstream.Config) {
				if !c.spec {
					cfg.Speculation = &sched.Speculation{}
				}
			}})
			words := dstream.GeneratedStream(h.Ctx, "words", figureWords(60000))
			counts := dstream.ReduceByKey(dstream.Map(words, func(w string) kv { return p(w, 1) }), add, 6)
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
			t.Logf("FIGURE straggler %-28s median %4d ms, max %4d ms per interval (%d intervals)", c.name, steady[len(steady)/2].Milliseconds(), steady[len(steady)-1].Milliseconds(), len(steady))
		})
	}
}
