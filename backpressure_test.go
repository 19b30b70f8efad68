package dstream_test

import (
	"context"
	"iter"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

// A flood (the sender as fast as it can) into a job that processes about
// 20 000 records a second: with backpressure the receiver's rate settles
// near what the job processes, the scheduling delay stays bounded instead
// of growing with the flood, and every record sent is counted exactly once.
// It runs on the wall clock, since the controller learns from real
// processing times; its bounds are loose, so a slow machine still passes.
func TestBackpressureBoundsDelayUnderAFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("runs on the wall clock for several seconds")
	}
	const (
		batch    = 200 * time.Millisecond
		capacity = 20000 // records per second the job processes
		n        = 120000
	)
	ctx, sock, slow := floodJob(t, batch, capacity)
	var mu sync.Mutex
	var counted int64
	dstream.ForeachRDD(dstream.Count(slow), func(c context.Context, ds *rdd.Dataset[int64], _ time.Time) error {
		xs, err := ds.Collect(c)
		mu.Lock()
		for _, x := range xs {
			counted += x
		}
		mu.Unlock()
		return err
	})
	var delays []time.Duration
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok && c.Batch.Records > 0 {
			mu.Lock()
			delays = append(delays, c.Batch.TotalDelay)
			mu.Unlock()
		}
	}))
	if err := ctx.Start(); err != nil {
		t.Fatal(err)
	}
	st, err := client.Send(context.Background(), client.Options{To: sock.Addr().String(), Generate: "words", Seed: 3, Count: n, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if counted != st.Records || st.Records != n {
		t.Fatalf("sent %d records (of %d), counted %d", st.Records, n, counted)
	}
	// Without backpressure the flood's 120 000 records are taken in at
	// once, into one or two intervals, and the total delay grows to about
	// n/capacity = 6 s. With it the flood is spread over the intervals at
	// about the job's capacity, and once the controller has learned (the
	// second half) the delay stays near one interval.
	if len(delays) < 10 {
		t.Fatalf("the flood went into %d intervals (total delays %v); want it spread at about the job's capacity", len(delays), delays)
	}
	late := slices.Clone(delays[len(delays)/2:])
	slices.Sort(late)
	if worst := late[len(late)-1]; worst > 2*time.Second {
		t.Errorf("total delay reached %v in the second half of the run (all: %v); want it bounded", worst, delays)
	}
	t.Logf("%d intervals; second half's median total delay %v, worst %v", len(delays), late[len(late)/2], late[len(late)-1])
}

// floodJob is the job of the backpressure test and figure: a socket
// receiver with backpressure (starting at a quarter of capacity) in
// local[2], and its records after a cost of 1/capacity s each per
// partition, so an interval takes records/capacity seconds (per slot)
// whatever the machine. The caller adds outputs and starts it.
func floodJob(t *testing.T, batch time.Duration, capacity int) (*dstream.Context, *source.Socket, *dstream.Stream[string]) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ctx, err := dstream.NewContext(dstream.Config{Master: "local[2]", BatchInterval: batch, Backpressure: true, InitialRate: capacity / 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet})
	slow := dstream.MapPartitions(dstream.ReceiverStream(ctx, sock), func(rs iter.Seq[string]) iter.Seq[string] {
		all := slices.Collect(rs)
		time.Sleep(time.Duration(len(all)) * time.Second / time.Duration(capacity))
		return slices.Values(all)
	})
	return ctx, sock, slow
}
