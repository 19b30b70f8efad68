package dstream_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

// walJob is the job of the write-ahead log's restart test: each record
// counted per interval, and running totals (checkpointed every two
// intervals). block, when set, holds interval at in its first output until
// the run stops (a crash mid-interval).
func walJob(h *dstreamtest.Harness[string], sock *source.Socket, block func(at time.Time) bool) (perInterval, totals *dstreamtest.Collector[kv]) {
	lines := dstream.ReceiverStream(h.Ctx, sock)
	dstream.ForeachRDD(lines, func(ctx context.Context, _ *rdd.Dataset[string], at time.Time) error {
		if block != nil && block(at) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	pairs := dstream.Map(lines, func(l string) kv { return p(l, 1) })
	perInterval = dstreamtest.Collect(dstream.ReduceByKey(pairs, add, 2))
	totals = dstreamtest.Collect(dstream.UpdateStateByKey(pairs, runningSum, 2).Checkpoint(2 * sec))
	return perInterval, totals
}

// sendAcked sends records to sock with acknowledgements and returns once
// every one is acknowledged: the test moves h's clock past the block
// boundary once the receiver has taken them in, so their block is cut and
// stored (and, with the write-ahead log, logged) and then acknowledged.
func sendAcked(t *testing.T, h *dstreamtest.Harness[string], sock *source.Socket, records []string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "records")
	if err := os.WriteFile(file, []byte(strings.Join(records, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.Ctx.ReceivedRecords()
	type result struct {
		st  client.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := client.Send(context.Background(), client.Options{To: sock.Addr().String(), File: file, Ack: true, Logger: slog.New(slog.DiscardHandler)})
		done <- result{st, err}
	}()
	waitUntil(t, func() bool { return h.Ctx.ReceivedRecords() == before+int64(len(records)) })
	h.Clock.Advance(200 * time.Millisecond) // the block interval: the block is cut
	select {
	case r := <-done:
		if r.err != nil || r.st.Acked != int64(len(records)) {
			t.Fatalf("send: %+v, %v; want %d records acknowledged", r.st, r.err, len(records))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the records were not acknowledged in 30s")
	}
}

func walRecords(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// With the write-ahead log, a socket stream whose sender got its
// acknowledgements loses nothing and counts nothing twice across a master
// restart. Batch A is processed by interval 1; batch B is allocated to
// interval 2, which the master is killed in the middle of; batch C is
// acknowledged and not yet allocated when it dies. The restarted master
// runs interval 2 again with B, gives C (and D, sent after the restart) to
// interval 3, and rebuilds the running totals from the logged blocks of
// interval 1 (no state checkpoint was committed): every record is counted
// exactly once in the sum of the intervals' outputs, and in the totals.
// The log's objects are deleted once no interval can need them.
func TestWriteAheadLogRestartLosesNothingAcknowledged(t *testing.T) {
	ck := t.TempDir()
	opts := dstreamtest.Options{Config: func(c *dstream.Config) {
		c.CheckpointDir = ck
		c.WriteAheadLog = true
	}}
	quiet := slog.New(slog.DiscardHandler)
	counts := map[string]int{}
	count := func(c *dstreamtest.Collector[kv], at time.Time) {
		for _, x := range c.At(at) {
			counts[x.Key] += x.Value
		}
	}
	at := func(k int) time.Time { return dstreamtest.Start.Add(time.Duration(k) * sec) }

	first := dstreamtest.New[string](t, opts)
	sock1 := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet})
	entered := make(chan struct{})
	per1, _ := walJob(first, sock1, func(t time.Time) bool {
		if t.Equal(at(2)) {
			close(entered)
			return true
		}
		return false
	})
	first.Start()
	a, b, c, d := walRecords("a", 500), walRecords("b", 700), walRecords("c", 300), walRecords("d", 400)
	sendAcked(t, first, sock1, a) // clock at 0.2 s
	advanceToT(t, first, at(1))
	count(per1, at(1))
	sendAcked(t, first, sock1, b) // 1.2 s: interval 2's
	first.Clock.Advance(800 * time.Millisecond)
	<-entered                     // interval 2 runs, with B
	sendAcked(t, first, sock1, c) // 2.2 s: acknowledged, not yet allocated
	_ = first.Ctx.Stop(false)     // killed

	second := dstreamtest.New[string](t, opts)
	sock2 := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet})
	per2, totals := walJob(second, sock2, nil)
	second.Start()
	second.Clock.Advance(2200 * time.Millisecond)
	sendAcked(t, second, sock2, d) // 2.4 s
	advanceToT(t, second, at(3))
	for k := 2; k <= 3; k++ {
		count(per2, at(k))
	}
	checkOnce(t, counts, totals.At(at(3)), a, b, c, d)
	if n := len(per2.At(at(2))); n != len(b) {
		t.Errorf("interval 2 ran again with %d records, want B's %d", n, len(b))
	}

	// Once the intervals are older than the retention (two checkpoint
	// intervals and two intervals here: 6 s), their objects go.
	walDir := filepath.Join(ck, "wal")
	objects := func() int {
		n := 0
		_ = filepath.WalkDir(walDir, func(_ string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				n++
			}
			return nil
		})
		return n
	}
	if objects() == 0 {
		t.Fatal("no write-ahead log objects written")
	}
	advanceToT(t, second, at(12))
	waitUntil(t, func() bool { return objects() == 0 })
}

// The write-ahead log needs a checkpoint folder: a clear error otherwise,
// from Start and from the flags.
func TestWriteAheadLogNeedsCheckpointFolder(t *testing.T) {
	if _, err := dstream.NewContext(dstream.Config{WriteAheadLog: true}); err == nil || !strings.Contains(err.Error(), "checkpoint folder") {
		t.Fatalf("NewContext = %v; want an error saying the write-ahead log needs a checkpoint folder", err)
	}
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	apply := dstream.JobFlags(fs)
	if err := fs.Parse([]string{"--write-ahead-log"}); err != nil {
		t.Fatal(err)
	}
	var cfg dstream.Config
	if err := apply(&cfg); err == nil || !strings.Contains(err.Error(), "--checkpoint") {
		t.Fatalf("--write-ahead-log alone = %v; want an error naming --checkpoint", err)
	}
	fs = flag.NewFlagSet("job", flag.ContinueOnError)
	apply = dstream.JobFlags(fs)
	if err := fs.Parse([]string{"--write-ahead-log", "--checkpoint", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := apply(&cfg); err != nil || !cfg.WriteAheadLog {
		t.Fatalf("--write-ahead-log --checkpoint DIR = %v, WriteAheadLog %v", err, cfg.WriteAheadLog)
	}
}

// advanceToT moves h's clock to interval at and waits for it.
func advanceToT[T any](t *testing.T, h *dstreamtest.Harness[T], at time.Time) {
	t.Helper()
	h.Clock.Advance(at.Sub(h.Clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Ctx.AwaitBatch(ctx, at); err != nil {
		t.Fatalf("interval %d did not complete: %v", at.UnixMilli(), err)
	}
}

// sendAckedWall sends records with acknowledgements to a receiver that
// runs on a worker (which cuts blocks on the wall clock) and returns once
// every one is acknowledged: stored on the worker, written to the log,
// replicated and reported to the master, which logged it.
func sendAckedWall(t *testing.T, addr string, records []string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "records")
	if err := os.WriteFile(file, []byte(strings.Join(records, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := client.Send(context.Background(), client.Options{To: addr, File: file, Ack: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil || st.Acked != int64(len(records)) {
		t.Fatalf("send: %+v, %v; want %d records acknowledged", st, err, len(records))
	}
}

// The same in local-cluster[2]: the receiver runs on a worker, which
// writes each block to the log before it reports it; the master logs the
// report before it answers. After the master (and its workers) die, the
// new master's workers read the restored blocks from the log.
func TestLocalClusterWriteAheadLogRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	// The workers are this test binary: they write to the folder the
	// master made, named in their environment.
	ck := dstreamtest.SharedDir(t, "DSTREAM_TEST_WAL_CHECKPOINT")
	opts := dstreamtest.Options{Master: "local-cluster[2]", Config: func(c *dstream.Config) {
		c.CheckpointDir = ck
		c.WriteAheadLog = true
	}}
	quiet := slog.New(slog.DiscardHandler)
	at := func(k int) time.Time { return dstreamtest.Start.Add(time.Duration(k) * sec) }
	counts := map[string]int{}
	count := func(c *dstreamtest.Collector[kv], at time.Time) {
		for _, x := range c.At(at) {
			counts[x.Key] += x.Value
		}
	}

	first := dstreamtest.New[string](t, opts)
	entered := make(chan struct{})
	per1, _ := walJob(first, source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet}), func(t time.Time) bool {
		if t.Equal(at(2)) {
			close(entered)
			return true
		}
		return false
	})
	first.Start() // a worker serves its master here, then skips the rest
	addr := first.Ctx.Receivers()[0].Address
	a, b, c, d := walRecords("a", 500), walRecords("b", 700), walRecords("c", 300), walRecords("d", 400)
	sendAckedWall(t, addr, a)
	advanceToT(t, first, at(1))
	count(per1, at(1))
	sendAckedWall(t, addr, b)
	first.Clock.Advance(sec)
	<-entered
	sendAckedWall(t, addr, c)
	_ = first.Ctx.Stop(false)

	second := dstreamtest.New[string](t, opts)
	per2, totals := walJob(second, source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet}), nil)
	second.Start()
	second.Clock.Advance(2 * sec)
	sendAckedWall(t, second.Ctx.Receivers()[0].Address, d)
	advanceToT(t, second, at(3))
	for k := 2; k <= 3; k++ {
		count(per2, at(k))
	}
	checkOnce(t, counts, totals.At(at(3)), a, b, c, d)
}

// checkOnce checks that every record of batches was counted exactly once
// over the intervals (counts) and that the running totals say the same.
func checkOnce(t *testing.T, counts map[string]int, totals []kv, batches ...[]string) {
	t.Helper()
	want := map[string]int{}
	for _, batch := range batches {
		for _, r := range batch {
			want[r] = 1
		}
	}
	if d := firstDiff(counts, want); d != "none" {
		t.Errorf("records counted over the intervals: first difference %s", d)
	}
	tot := map[string]int{}
	for _, x := range totals {
		tot[x.Key] = x.Value
	}
	if d := firstDiff(tot, want); d != "none" {
		t.Errorf("running totals at interval 3: first difference %s", d)
	}
}
