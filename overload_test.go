package dstream_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

// TestOverloadLosesNothing floods a word count through a real socket with a
// sender far faster than a 4 MiB memory budget lets the engine take in: the
// receiver must wait (backpressure through TCP) rather than drop anything or
// let input crowd out the running intervals' shuffle outputs. Every record
// sent is counted exactly once, no interval fails, and the block store never
// holds more than its share of the budget.
func TestOverloadLosesNothing(t *testing.T) {
	const (
		lines  = 100_000
		seed   = 7
		budget = 4 << 20
	)
	want := map[string]int64{}
	gen, err := generate.New("words", seed)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for range lines {
		buf = gen.Next(buf[:0])
		for _, w := range strings.Fields(string(buf)) {
			want[w]++
		}
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, err := dstream.NewContext(dstream.Config{Master: "local[2]", BatchInterval: 100 * time.Millisecond, MemoryBytes: budget, Logger: logger, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: logger})
	words := dstream.FlatMap(dstream.ReceiverStream(ctx, sock), strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 0)
	var mu sync.Mutex
	got := map[string]int64{}
	dstream.ForeachRDD(counts, func(ctx context.Context, ds *rdd.Dataset[dstream.Pair[string, int64]], _ time.Time) error {
		kvs, err := ds.Collect(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, kv := range kvs {
			got[kv.Key] += kv.Value
		}
		return nil
	})
	var failed []error
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok && c.Batch.Err != nil {
			mu.Lock()
			failed = append(failed, c.Batch.Err)
			mu.Unlock()
		}
	}))
	if err := ctx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctx.Stop(false) })

	sendCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := client.Send(sendCtx, client.Options{To: sock.Addr().String(), Generate: "words", Seed: seed, Count: lines, Logger: logger})
	if err != nil || st.Records != lines {
		t.Fatalf("send: %d records, %v", st.Records, err)
	}
	// The socket takes in everything the sender wrote, as fast as the
	// engine frees memory; then a graceful stop processes all of it.
	for ctx.ReceivedRecords() < lines {
		select {
		case <-sendCtx.Done():
			t.Fatalf("the socket source took in %d of %d records", ctx.ReceivedRecords(), lines)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := ctx.Stop(true); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d intervals failed, the first: %v", len(failed), failed[0])
	}
	if !maps.Equal(got, want) {
		var gotN, wantN int64
		for _, n := range got {
			gotN += n
		}
		for _, n := range want {
			wantN += n
		}
		t.Fatalf("counted %d words (%d distinct), want %d (%d distinct)", gotN, len(got), wantN, len(want))
	}
	bs := ctx.BlockStats()
	// The input share adapts (memory.go) but never exceeds the default.
	maxInput := int64(block.DefaultInputFraction * float64(bs.MaxBytes))
	if bs.PeakBytes > bs.MaxBytes || bs.MaxBytes > budget || bs.PeakInputBytes > maxInput {
		t.Errorf("block store peaked at %d bytes (%d input) over its bound %d (%d input) of a %d-byte budget",
			bs.PeakBytes, bs.PeakInputBytes, bs.MaxBytes, maxInput, budget)
	}
	if ctx.ReceiverWaits() == 0 {
		t.Errorf("the receiver never waited for memory (input peaked at %d of %d bytes): the test did not overload the engine",
			bs.PeakInputBytes, bs.MaxInputBytes)
	}
	t.Logf("receiver waited %d times; store peaked at %d of %d bytes, input at %d of %d", ctx.ReceiverWaits(), bs.PeakBytes, bs.MaxBytes, bs.PeakInputBytes, bs.MaxInputBytes)
}
