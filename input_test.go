package dstream_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// TestTextFileStreamWithSlack runs a real receiver (a folder source) under
// the manual clock. The records are cut into a block at the first block
// boundary and stored asynchronously; the interval's job waits for the slack,
// so the block is in the interval however late the store completes.
func TestTextFileStreamWithSlack(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x\ny\nz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.Slack = 500 * time.Millisecond
	}})
	lines := dstream.TextFileStream(h.Ctx, dir)
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
