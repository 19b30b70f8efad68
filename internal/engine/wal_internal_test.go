package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/source"
)

// walContext is a context with an open metadata log and the write-ahead
// log on, as a master's after resume.
func walContext(tb testing.TB, wal bool) (*Engine, checkpoint.Store) {
	tb.Helper()
	c := newTestEngine(tb, Config{Master: "local[1]", CheckpointDir: tb.TempDir(), WriteAheadLog: wal,
		Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000))})
	tb.Cleanup(func() { c.Stop(false) })
	store, err := c.CheckpointStore()
	if err != nil {
		tb.Fatal(err)
	}
	log, err := checkpoint.OpenLog(context.Background(), store, metaLogPrefix)
	if err != nil {
		tb.Fatal(err)
	}
	c.meta = newMetaLog()
	c.meta.log = log
	c.meta.markReady()
	return c, store
}

// The metadata log keeps every record from the oldest block whose object
// is kept, past its usual 256 records; once the block's interval is older
// than the retention, the object and the records go.
func TestMetadataLogKeepsWhatTheWriteAheadLogNeeds(t *testing.T) {
	c, store := walContext(t, true)
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_001_000)
	if err := c.walWrite(ctx, 1, "input_1_x_0", []string{"r"}); err != nil {
		t.Fatal(err)
	}
	if err := c.walCommit(received.Block{Stream: 1, Key: "input_1_x_0", Time: t0, Records: 1}); err != nil {
		t.Fatal(err)
	}
	records := func() int {
		names, err := store.List(ctx, metaLogPrefix+"/")
		if err != nil {
			t.Fatal(err)
		}
		return len(names)
	}
	for i := range 2 * metaKept { // past a truncation (at record 512)
		c.metaAppend("note", fmt.Appendf(nil, "%d", i))
	}
	if n := records(); n != 2*metaKept+1 {
		t.Fatalf("%d records kept, want all %d: the block's record is needed", n, 2*metaKept+1)
	}
	// The block's interval runs, completes and falls out of the retention.
	c.metaStarted(&manifest.Interval{Version: manifest.Version, Zero: t0.UnixMilli() - 1000, Time: t0.UnixMilli(),
		Inputs: []manifest.Input{{Stream: 1, Blocks: []manifest.Block{{Key: "input_1_x_0", Records: 1}}}}})
	c.metaCompleted(t0.Add(time.Hour), false)
	c.ckWG.Wait()
	if _, err := store.Get(ctx, walName(1, "input_1_x_0")); err == nil {
		t.Error("the block's object is still there after its interval left the retention")
	}
	for i := range metaKept {
		c.metaAppend("note", fmt.Appendf(nil, "%d", i))
	}
	if n := records(); n > 2*metaKept {
		t.Errorf("%d records kept once the block is gone, want at most %d", n, 2*metaKept)
	}
}

// An object no logged block names is deleted by the second sweep that
// sees it, never by the first: it may belong to a block whose report is
// under way.
func TestWriteAheadLogSweepsOrphans(t *testing.T) {
	c, store := walContext(t, true)
	ctx := context.Background()
	put := func(key string) {
		if err := c.walWrite(ctx, 1, key, []string{"r"}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		_, err := store.Get(ctx, walName(1, key))
		return err == nil
	}
	put("kept")
	if err := c.walCommit(received.Block{Stream: 1, Key: "kept", Time: time.UnixMilli(1_700_000_000_500), Records: 1}); err != nil {
		t.Fatal(err)
	}
	put("orphan")
	c.walSweep(ctx, store)
	if !exists("orphan") {
		t.Fatal("the first sweep deleted an unnamed object")
	}
	put("late") // written after the first sweep: its report may be under way
	c.walSweep(ctx, store)
	if exists("orphan") || !exists("kept") || !exists("late") {
		t.Fatalf("after two sweeps: orphan %v (want gone), kept %v, late %v (want both)", exists("orphan"), exists("kept"), exists("late"))
	}
	c.walSweep(ctx, store)
	if exists("late") {
		t.Error("an orphan seen by two sweeps is still there")
	}
}

// BenchmarkReceiverBlockStore measures what storing a received block costs
// a receiver before it is acknowledged, without and with the write-ahead
// log (blocks of 1000 records of 100 bytes, local[1], the checkpoint
// folder on the test's temporary folder):
//
//	go test -run XXX -bench ReceiverBlockStore -benchtime 2000x ./internal/engine
func BenchmarkReceiverBlockStore(b *testing.B) {
	recs := make([]string, 1000)
	for i := range recs {
		recs[i] = fmt.Sprintf("%099d", i)
	}
	for _, wal := range []bool{false, true} {
		b.Run(fmt.Sprint("wal=", wal), func(b *testing.B) {
			c, store := walContext(b, wal)
			sink := blockSink{c: c}
			if wal {
				sink.run = newRunTag()
			}
			ctx := context.Background()
			b.SetBytes(int64(len(recs) * 100))
			b.ResetTimer()
			for i := range b.N {
				if err := sink.StoreBlock(ctx, source.Block{Stream: 1, Seq: int64(i), Time: c.cfg.Clock.Now(), Records: recs}); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 { // what processed intervals free
					b.StopTimer()
					at := c.cfg.Clock.Now().Add(time.Duration(i) * time.Second)
					c.tracker.Allocate(at)
					for _, k := range c.tracker.Forget(1, at) {
						c.blocks.Remove(k)
						if wal {
							_ = store.Delete(ctx, walName(1, k))
						}
					}
					b.StartTimer()
				}
			}
		})
	}
}
