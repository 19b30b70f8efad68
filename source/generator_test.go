package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var epoch = time.UnixMilli(1_700_000_000_000) // aligned to every interval used here

// memSink stores blocks in memory. When gate is set, each StoreBlock first
// takes a token from it (or fails with fail, when set).
type memSink struct {
	mu     sync.Mutex
	blocks []Block
	gate   chan struct{}
	fail   error
	calls  int
}

func (s *memSink) StoreBlock(ctx context.Context, b Block) error {
	s.mu.Lock()
	s.calls++
	fail := s.fail
	s.mu.Unlock()
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks = append(s.blocks, b)
	return nil
}

func (s *memSink) stored() []Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.blocks)
}

func (s *memSink) records() []string {
	var out []string
	for _, b := range s.stored() {
		out = append(out, b.Records...)
	}
	return out
}

// eventually polls cond every millisecond until it holds, failing the test
// after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stillBlocked fails the test if done delivers within a short while: the
// only negative check, kept short.
func stillBlocked(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	case <-time.After(30 * time.Millisecond):
	}
}

func write(t *testing.T, g *BlockGenerator, recs ...string) {
	t.Helper()
	for _, r := range recs {
		if err := g.Write(r); err != nil {
			t.Fatalf("Write(%q) = %v", r, err)
		}
	}
}

func TestBlockGeneratorCutsOnTheClock(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Stream: 3, Interval: 200 * time.Millisecond, Clock: clk, Sink: sink, Logger: quiet})
	g.Start(context.Background())
	write(t, g, "a", "b")
	clk.Advance(200 * time.Millisecond)
	eventually(t, "first block", func() bool { return len(sink.stored()) == 1 })
	clk.Advance(200 * time.Millisecond) // nothing written: no block, no Seq used
	write(t, g, "c")
	clk.Advance(300 * time.Millisecond) // crosses the 600 ms boundary
	eventually(t, "second block", func() bool { return len(sink.stored()) == 2 })
	clk.Advance(50 * time.Millisecond)
	write(t, g, "d")
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := g.Write("e"); !errors.Is(err, ErrStopped) {
		t.Errorf("Write after Stop = %v, want ErrStopped", err)
	}
	if err := g.Stop(); err != nil {
		t.Errorf("second Stop = %v", err)
	}
	want := []struct {
		at   time.Duration
		recs []string
	}{
		{200 * time.Millisecond, []string{"a", "b"}},
		{600 * time.Millisecond, []string{"c"}},
		{750 * time.Millisecond, []string{"d"}}, // the final cut of Stop, at the clock's reading
	}
	got := sink.stored()
	if len(got) != len(want) {
		t.Fatalf("%d blocks, want %d: %+v", len(got), len(want), got)
	}
	for i, b := range got {
		if b.Seq != int64(i) || b.Stream != 3 || !b.Time.Equal(epoch.Add(want[i].at)) || !slices.Equal(b.Records, want[i].recs) {
			t.Errorf("block %d = seq %d stream %d at +%v %q; want seq %d stream 3 at +%v %q",
				i, b.Seq, b.Stream, b.Time.Sub(epoch), b.Records, i, want[i].at, want[i].recs)
		}
	}
	if st := g.Stats(); st.Records != 4 || st.Blocks != 3 || st.Bytes != 4 || st.Pending != 0 || st.Buffered != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestBlockGeneratorStampsByWriteTime advances the clock without waiting for
// the cutter: each record still lands in the block of its own interval.
func TestBlockGeneratorStampsByWriteTime(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Interval: 100 * time.Millisecond, Clock: clk, Sink: sink, MaxPending: 4, Logger: quiet})
	g.Start(context.Background())
	const n = 200
	for i := range n {
		write(t, g, fmt.Sprint(i))
		if i%7 == 3 {
			write(t, g, fmt.Sprint(i, "b"))
		}
		clk.Advance(100 * time.Millisecond)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	blocks := sink.stored()
	if len(blocks) != n {
		t.Fatalf("%d blocks, want %d", len(blocks), n)
	}
	for i, b := range blocks {
		want := []string{fmt.Sprint(i)}
		if i%7 == 3 {
			want = append(want, fmt.Sprint(i, "b"))
		}
		if b.Seq != int64(i) || !b.Time.Equal(epoch.Add(time.Duration(i+1)*100*time.Millisecond)) || !slices.Equal(b.Records, want) {
			t.Fatalf("block %d = seq %d at +%v %q, want at +%v %q", i, b.Seq, b.Time.Sub(epoch), b.Records, time.Duration(i+1)*100*time.Millisecond, want)
		}
	}
}

func TestBlockGeneratorCutsEarlyWhenTheBlockIsFull(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Interval: time.Second, Clock: clk, Sink: sink, MaxRecords: 3, MaxBytes: 1000, Logger: quiet})
	g.Start(context.Background())
	write(t, g, "1", "2", "3", "4", "5", "6", "7")
	eventually(t, "two full blocks", func() bool { return len(sink.stored()) == 2 })
	clk.Advance(10 * time.Millisecond)
	big := string(make([]byte, 1000)) // over MaxBytes on its own: a block of one
	write(t, g, big)
	eventually(t, "the big block", func() bool { return len(sink.stored()) == 3 })
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	got := sink.stored()
	if len(got) != 3 || !slices.Equal(got[0].Records, []string{"1", "2", "3"}) || !slices.Equal(got[1].Records, []string{"4", "5", "6"}) ||
		!slices.Equal(got[2].Records, []string{"7", big}) {
		t.Fatalf("blocks %+v", got)
	}
	if !got[0].Time.Equal(epoch) || !got[2].Time.Equal(epoch.Add(10*time.Millisecond)) {
		t.Errorf("early cuts stamped %v, %v; want the clock's readings", got[0].Time, got[2].Time)
	}
}

func TestBlockGeneratorBackpressure(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{gate: make(chan struct{})}
	g := NewBlockGenerator(GeneratorConfig{Interval: 100 * time.Millisecond, Clock: clk, Sink: sink, MaxPending: 2, Logger: quiet})
	g.Start(context.Background())
	// Two blocks are cut; the sink is stuck storing the first.
	for i := range 2 {
		write(t, g, fmt.Sprint("r", i))
		clk.Advance(100 * time.Millisecond)
		eventually(t, "a cut", func() bool { return g.Stats().Pending == i+1 })
	}
	wrote := make(chan error, 1)
	go func() { wrote <- g.Write("r2") }()
	stillBlocked(t, "Write with MaxPending blocks unstored", wrote)
	sink.gate <- struct{}{} // the engine stores one block: room for one
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- g.Stop() }()
	stillBlocked(t, "Stop with blocks unstored", stopped)
	close(sink.gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got := sink.records(); !slices.Equal(got, []string{"r0", "r1", "r2"}) {
		t.Errorf("stored %q", got)
	}
}

func TestBlockGeneratorStopReleasesBlockedWriter(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{gate: make(chan struct{})}
	g := NewBlockGenerator(GeneratorConfig{Interval: 100 * time.Millisecond, Clock: clk, Sink: sink, MaxPending: 1, Logger: quiet})
	g.Start(context.Background())
	write(t, g, "a")
	clk.Advance(100 * time.Millisecond)
	eventually(t, "a cut", func() bool { return g.Stats().Pending == 1 })
	wrote := make(chan error, 1)
	go func() { wrote <- g.Write("b") }()
	stillBlocked(t, "Write", wrote)
	stopped := make(chan error, 1)
	go func() { stopped <- g.Stop() }()
	if err := <-wrote; !errors.Is(err, ErrStopped) {
		t.Errorf("blocked Write after Stop = %v, want ErrStopped", err)
	}
	close(sink.gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got := sink.records(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("stored %q", got)
	}
}

func TestBlockGeneratorSinkFailure(t *testing.T) {
	clk := clock.NewManual(epoch)
	boom := errors.New("store is broken")
	sink := &memSink{fail: boom}
	g := NewBlockGenerator(GeneratorConfig{Stream: 2, Interval: 100 * time.Millisecond, Clock: clk, Sink: sink, Logger: quiet})
	g.Start(context.Background())
	write(t, g, "a")
	clk.Advance(100 * time.Millisecond)
	eventually(t, "Write to fail", func() bool { return g.Write("b") != nil })
	if err := g.Write("c"); !errors.Is(err, boom) {
		t.Errorf("Write after a failed store = %v, want the sink's error", err)
	}
	if err := g.Stop(); !errors.Is(err, boom) {
		t.Errorf("Stop = %v, want the sink's error", err)
	}
	if st := g.Stats(); st.Blocks != 0 {
		t.Errorf("stats %+v count a failed block", st)
	}
}

func TestBlockGeneratorAbortedByContext(t *testing.T) {
	clk := clock.NewManual(epoch)
	g := NewBlockGenerator(GeneratorConfig{Clock: clk, Sink: &memSink{}, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	write(t, g, "a")
	cancel()
	eventually(t, "Write to fail", func() bool { return g.Write("b") != nil })
	if err := g.Stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop after cancel = %v", err)
	}
}

func TestBlockGeneratorRateLimitOnTheClock(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Interval: time.Second, Clock: clk, Sink: sink, RateLimit: 20, Logger: quiet})
	g.Start(context.Background())
	write(t, g, "a", "b") // the bucket holds a tenth of a second's worth: 2
	wrote := make(chan error, 1)
	go func() { wrote <- g.Write("c") }()
	stillBlocked(t, "Write over the rate", wrote)
	clk.Advance(50 * time.Millisecond) // one record's worth at 20/s
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	go func() { wrote <- g.Write("d") }()
	stillBlocked(t, "Write over the rate", wrote)
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; !errors.Is(err, ErrStopped) {
		t.Errorf("rate-limited Write after Stop = %v", err)
	}
	if got := sink.records(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("stored %q", got)
	}
}

// jumpClock jumps to whatever time it is waited for.
type jumpClock struct{ now time.Time }

func (c *jumpClock) Now() time.Time { return c.now }
func (c *jumpClock) WaitUntil(_ context.Context, t time.Time) error {
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

func TestBucketLongRunRate(t *testing.T) {
	clk := &jumpClock{now: epoch}
	b := newBucket(1000) // burst 100
	for range 1100 {
		if err := b.take(context.Background(), clk); err != nil {
			t.Fatal(err)
		}
	}
	if d := clk.now.Sub(epoch); d < 999*time.Millisecond || d > time.Second {
		t.Errorf("1100 records at 1000/s with a burst of 100 took %v, want 1s", d)
	}
	// After an idle second the bucket holds its burst again, no more.
	clk.now = clk.now.Add(time.Second)
	start := clk.now
	for range 150 {
		b.take(context.Background(), clk)
	}
	if d := clk.now.Sub(start); d < 49*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("150 records after idling took %v, want 50ms (100 from the bucket)", d)
	}
}

func TestBlockGeneratorConcurrentWritersLoseNothing(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Interval: 10 * time.Millisecond, Clock: clk, Sink: sink, MaxPending: 2, MaxRecords: 37, Logger: quiet})
	g.Start(context.Background())
	var wg sync.WaitGroup
	var want []string
	for w := range 4 {
		for i := range 2000 {
			want = append(want, fmt.Sprintf("w%d-%d", w, i))
		}
		wg.Go(func() {
			for i := range 2000 {
				if err := g.Write(fmt.Sprintf("w%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		for range 50 {
			clk.Advance(10 * time.Millisecond)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	wg.Wait()
	<-ticking
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	blocks := sink.stored()
	var got []string
	for i, b := range blocks {
		if b.Seq != int64(i) {
			t.Fatalf("block %d has seq %d", i, b.Seq)
		}
		if i > 0 && b.Time.Before(blocks[i-1].Time) {
			t.Fatalf("block %d stamped %v before block %d at %v", i, b.Time, i-1, blocks[i-1].Time)
		}
		if b.Time.After(clk.Now()) || len(b.Records) == 0 || len(b.Records) > 37 {
			t.Fatalf("block %d: at %v with %d records", i, b.Time, len(b.Records))
		}
		got = append(got, b.Records...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stored %d records, want each of %d exactly once", len(got), len(want))
	}
}

func TestBlockGeneratorStopWithoutStart(t *testing.T) {
	g := NewBlockGenerator(GeneratorConfig{Sink: &memSink{}, Logger: quiet})
	if err := g.Stop(); err != nil {
		t.Errorf("Stop of an unused generator = %v", err)
	}
	g = NewBlockGenerator(GeneratorConfig{Sink: &memSink{}, Logger: quiet})
	write(t, g, "x")
	if err := g.Stop(); err == nil {
		t.Error("Stop before Start dropped a record silently")
	}
}
