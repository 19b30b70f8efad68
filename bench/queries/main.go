// Command queries measures named queries on a running stream: a windowed
// count over --keys distinct keys (100K by default) runs on the wall clock
// at --rate records a second, and --qps queries a second (get and top, in
// turn) are asked of its latest interval, each timed. It prints the query
// latencies and the stream's interval processing times, so a run with
// --qps 0 beside one with --qps 10 says what the queries cost the stream.
//
//	go run ./bench/queries --rate 500000 --qps 10 --duration 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "queries:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("queries", flag.ContinueOnError)
	rate := fs.Int("rate", 500_000, "records a second into the stream")
	keys := fs.Int("keys", 100_000, "distinct keys in the window's state")
	qps := fs.Int("qps", 10, "queries a second (get and top in turn); 0 for none")
	duration := fs.Duration("duration", 60*time.Second, "how long to run")
	batch := fs.Duration("batch", time.Second, "batch interval")
	window := fs.Duration("window", 10*time.Second, "the window the state covers")
	master := fs.String("master", "local[2]", "where tasks run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *keys <= 0 || *qps < 0 || *duration <= 0 {
		return errors.New("--rate, --keys and --duration must be positive, --qps not negative")
	}
	ctx, err := dstream.NewContext(dstream.Config{Master: *master, BatchInterval: *batch, Logger: slog.New(slog.DiscardHandler), Out: io.Discard})
	if err != nil {
		return err
	}
	perInterval := int(float64(*rate) * batch.Seconds())
	parts := ctx.Datasets().Parallelism()
	names := make([]string, *keys)
	for i := range names {
		names[i] = "key" + strconv.Itoa(i)
	}
	// Interval k's records: perInterval keys, cycling through the keys, so
	// the window's state holds every key once the window has filled.
	in := dstream.GeneratedStream(ctx, "keys", func(t time.Time) [][]string {
		k := int(t.Sub(ctx.StartTime()) / *batch)
		out := make([][]string, parts)
		for i := range perInterval {
			p := i % parts
			out[p] = append(out[p], names[(k*perInterval+i)%len(names)])
		}
		return out
	})
	ones := dstream.Map(in, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKeyAndWindow(ones, func(a, b int64) int64 { return a + b }, *window, *batch, 0)
	dstream.GetQuery(counts, "get")
	dstream.TopQuery(counts, "top", func(a, b dstream.Pair[string, int64]) bool {
		return a.Value > b.Value || a.Value == b.Value && a.Key < b.Key
	})
	dstream.ForeachRDD(counts, func(c context.Context, ds *rdd.Dataset[dstream.Pair[string, int64]], _ time.Time) error {
		_, err := ds.Count(c)
		return err
	})
	var mu sync.Mutex
	var batches []listener.BatchInfo
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			mu.Lock()
			batches = append(batches, c.Batch)
			mu.Unlock()
		}
	}))
	if err := ctx.Start(); err != nil {
		return err
	}
	// Queries start once the window has filled.
	time.Sleep(*window + *batch)
	lat := map[string][]time.Duration{}
	var failed int
	if *qps > 0 {
		tick := time.NewTicker(time.Second / time.Duration(*qps))
		end := time.Now().Add(*duration)
		var qmu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; time.Now().Before(end); i++ {
			<-tick.C
			name, args := "get", map[string]string{"key": names[(i*7919)%len(names)]}
			if i%2 == 1 {
				name, args = "top", map[string]string{"k": "10"}
			}
			wg.Go(func() {
				start := time.Now()
				_, err := ctx.RunQuery(context.Background(), name, "latest", args)
				took := time.Since(start)
				qmu.Lock()
				defer qmu.Unlock()
				if err != nil {
					failed++
					return
				}
				lat[name] = append(lat[name], took)
			})
		}
		tick.Stop()
		wg.Wait()
	} else {
		time.Sleep(*duration)
	}
	if err := ctx.Stop(false); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	skip := int((*window + *batch) / *batch)
	var proc, sched []time.Duration
	for i, b := range batches {
		if i < skip {
			continue
		}
		proc = append(proc, b.ProcessingTime)
		sched = append(sched, b.SchedulingDelay)
	}
	fmt.Fprintf(out, "rate %d records/s, %d keys, %d queries/s, %s, %d intervals measured\n", *rate, *keys, *qps, *master, len(proc))
	fmt.Fprintf(out, "interval processing: p50 %v, p99 %v; scheduling delay max %v\n", pct(proc, 50), pct(proc, 99), pct(sched, 100))
	for _, name := range []string{"get", "top"} {
		if xs := lat[name]; len(xs) > 0 {
			fmt.Fprintf(out, "query %s: %d answered, p50 %v, p99 %v\n", name, len(xs), pct(xs, 50), pct(xs, 99))
		}
	}
	if failed > 0 {
		fmt.Fprintf(out, "queries failed: %d\n", failed)
	}
	return nil
}

// pct returns the p-th percentile of xs.
func pct(xs []time.Duration, p int) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(100 * time.Microsecond)
}
