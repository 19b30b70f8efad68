package dstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/internal/engine"
)

// TestFailedDurableWriteStopsTheJob: once the checkpoint folder refuses
// writes (a full disk, through a fault seam: a full disk cannot be made
// portably), the metadata log's records are retried, then the job stops
// with a DurableError: never a warning and a clean exit.
func TestFailedDurableWriteStopsTheJob(t *testing.T) {
	var full atomic.Bool
	inject := func(op checkpoint.Op, name string) error {
		if op == checkpoint.OpPut && full.Load() {
			return errors.New("write: no space left on device")
		}
		return nil
	}
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	cfg := Config{Master: "local[2]", BatchInterval: time.Second, Clock: clk, CheckpointDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard}
	cfg.sim = &engine.Sim{OpenStore: func(dir string) (checkpoint.Store, error) {
		d, err := checkpoint.OpenDir(dir)
		if err != nil {
			return nil, err
		}
		return &checkpoint.FaultStore{Store: d, Inject: inject}, nil
	}}
	sctx, err := NewContext(cfg)
	if err != nil {
		t.Fatal(err)
	}
	words := GeneratedStream(sctx, "words", func(time.Time) [][]string { return [][]string{{"a", "b"}} })
	ForeachRDD(words, func(context.Context, *Dataset[string], time.Time) error { return nil })
	if err := sctx.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := sctx.StartTime().Add(time.Second)
	clk.Set(first)
	if err := sctx.AwaitBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	clk.Set(first.Add(time.Second))
	select {
	case <-sctx.Done():
	case <-ctx.Done():
		t.Fatal("the job did not stop when its metadata log could not be written")
	}
	err = sctx.Stop(true)
	var de *engine.DurableError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "metadata log") {
		t.Fatalf("Stop: %v, want a DurableError naming the metadata log and the cause", err)
	}
}
