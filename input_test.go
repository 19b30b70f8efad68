package dstream_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/source"
)

// TestReceiverWithSlack runs a real receiver (a folder receiver,
// source.Directory) under the manual clock. The records are cut into a block at the first block
// boundary and stored asynchronously; the interval's job waits for the slack,
// so the block is in the interval however late the store completes.
func TestReceiverWithSlack(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x\ny\nz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.Slack = 500 * time.Millisecond
	}})
	lines := dstream.ReceiverStream(h.Ctx, source.NewDirectory(dir, source.DirectoryOptions{Poll: 200 * time.Millisecond, Clock: h.Clock, Logger: slog.New(slog.DiscardHandler)}))
	col := dstreamtest.Collect(lines)
	h.Start()
	// Wait until the receiver has read the file (polls at start), then
	// advance to the interval's end: the block is cut and stored.
	waitUntil(t, func() bool { return h.Ctx.ReceivedRecords() == 3 })
	h.Clock.Advance(time.Second)
	waitUntil(t, func() bool { return h.Ctx.BlockStats().Blocks >= 1 })
	h.Clock.Advance(500 * time.Millisecond) // the slack
	t1 := h.Ctx.StartTime().Add(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Ctx.AwaitBatch(ctx, t1); err != nil {
		t.Fatal(err)
	}
	got := col.At(t1)
	slices.Sort(got)
	if !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Errorf("interval 1 = %v, want [x y z]", got)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached in 10s")
}

// flood writes a 4 KiB record for every token it takes, until its context ends.
type flood chan struct{}

func (flood) Name() string { return "flood" }
func (flood) Open() error  { return nil }
func (f flood) Receive(ctx context.Context, w source.Writer) error {
	rec := strings.Repeat("x", 4096)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f:
			if err := w.Write(rec); err != nil {
				return err
			}
		}
	}
}

// A hard stop returns even when a receiver's block waits for room in a block
// store full of input that no interval will now free (it used to wait for
// ever: the block's store was cancelled only after the receiver stopped).
func TestHardStopWithFullBlockStore(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{BatchInterval: time.Minute, Config: func(c *dstream.Config) {
		c.MemoryBytes = 1 << 20
		c.BlockInterval = 100 * time.Millisecond
	}})
	tokens := make(flood)
	dstreamtest.Collect(dstream.ReceiverStream(h.Ctx, tokens))
	h.Start()
	// 128 KiB an interval (32 records) until the input share is nearly
	// full, then more that cannot fit: its store waits for room.
	waitUntil(t, func() bool {
		for range 32 {
			tokens <- struct{}{}
		}
		h.Clock.Advance(100 * time.Millisecond)
		st := h.Ctx.BlockStats()
		return st.InputBytes+(128<<10) > st.MaxInputBytes
	})
	// 256 KiB more: past the input share and the blocks the generator may
	// hold, so the receiver ends up blocked (a send that is not taken for
	// 200ms means it is).
	for range 64 {
		select {
		case tokens <- struct{}{}:
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	h.Clock.Advance(100 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- h.Ctx.Stop(false) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("hard stop did not return in 20s")
	}
}
