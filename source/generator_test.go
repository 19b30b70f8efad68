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
	"testing/synctest"
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
	b := newBucket(context.Background(), clk, 1000) // burst 100
	for range 1100 {
		if err := b.take(); err != nil {
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
		b.take()
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

// takers runs n takes of b, each in its own goroutine, and returns a
// channel that receives each one's result as it returns.
func takers(b *bucket, n int) <-chan error {
	done := make(chan error, n)
	for range n {
		go func() { done <- b.take() }()
	}
	return done
}

// returned counts what done holds now, after every goroutine of the bubble
// has run as far as it can; each must be nil.
func returned(t *testing.T, done <-chan error) int {
	t.Helper()
	synctest.Wait()
	n := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("take = %v", err)
			}
			n++
		default:
			return n
		}
	}
}

// TestBucketSetRate changes the rate under waiting takers, on a manual
// clock: after each step exactly the takers due have returned. Every case
// starts with a bucket drained of its burst, and waiters queued behind.
func TestBucketSetRate(t *testing.T) {
	type step struct {
		setRate int           // applied first, when not -1
		advance time.Duration // then the clock moves
		want    int           // total takers returned after the step
	}
	tests := []struct {
		name   string
		rate   int // initial; its burst is drained before the takers start
		takers int
		steps  []step
	}{
		{
			// 1/s: the waiter owes a second. At 1000/s it owes a millisecond.
			name: "speed-up: no waiting out the old rate", rate: 1, takers: 1,
			steps: []step{
				{-1, 0, 0},
				{-1, 500 * time.Millisecond, 0}, // half a token accrued at 1/s
				{1000, 0, 0},                    // owes half a token: 0.5 ms
				{-1, 499 * time.Microsecond, 0},
				{-1, time.Microsecond, 1},
			},
		},
		{
			name: "lifting the limit releases every waiter at once", rate: 2, takers: 5,
			steps: []step{
				{-1, 0, 0},
				{0, 0, 5},
			},
		},
		{
			// 1000/s (burst 100): the waiter owes 1 ms. At 10/s (burst 1) the
			// same token costs 100 ms.
			name: "slow-down: the debt is repaid at the new rate", rate: 1000, takers: 1,
			steps: []step{
				{-1, 0, 0},
				{10, time.Millisecond, 0},
				{-1, 98 * time.Millisecond, 0},
				{-1, time.Millisecond, 1},
			},
		},
		{
			// Three waiters owe 1, 2 and 3 tokens at 1/s; at 10/s they are
			// served in turn, 100 ms apart.
			name: "queued waiters are served in turn at the new rate", rate: 1, takers: 3,
			steps: []step{
				{-1, 999 * time.Millisecond, 0},
				{10, 0, 0}, // 0.999 accrued: owe 0.001, 1.001, 2.001 tokens
				{-1, 100 * time.Microsecond, 1},
				{-1, 99 * time.Millisecond, 1},
				{-1, 100 * time.Millisecond, 2},
				{-1, 100 * time.Millisecond, 3},
			},
		},
		{
			name: "setting the same rate changes nothing", rate: 4, takers: 1,
			steps: []step{
				{4, 200 * time.Millisecond, 0},
				{4, 50 * time.Millisecond, 1},
			},
		},
		{
			name: "several changes while waiting", rate: 1, takers: 1,
			steps: []step{
				{-1, 250 * time.Millisecond, 0}, // 0.25 accrued
				{2, 250 * time.Millisecond, 0},  // 0.75 accrued
				{1, 125 * time.Millisecond, 0},  // 0.875
				{8, 15 * time.Millisecond, 0},   // owes 0.125 at 8/s: 15.625 ms
				{-1, 625 * time.Microsecond, 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clock.NewManual(epoch)
				life, end := context.WithCancel(context.Background())
				defer end() // on failure, release the takers still waiting
				b := newBucket(life, clk, tc.rate)
				for range max(1, tc.rate/10) {
					if err := b.take(); err != nil {
						t.Fatal(err)
					}
				}
				done := takers(b, tc.takers)
				got := 0
				for i, s := range tc.steps {
					if s.setRate != -1 {
						b.setRate(s.setRate)
						synctest.Wait() // the waiters recompute before the clock moves
					}
					clk.Advance(s.advance)
					got += returned(t, done)
					if got != s.want {
						t.Fatalf("after step %d (rate %d, clock +%v): %d takers returned, want %d",
							i, b.currentRate(), clk.Now().Sub(epoch), got, s.want)
					}
				}
			})
		})
	}
}

// TestBucketLimitAfterUnlimited lifts a limit and sets one again: the new
// limit starts with a full bucket (a tenth of a second's worth), and a
// waiter's debt was forgiven.
func TestBucketLimitAfterUnlimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(epoch)
		b := newBucket(context.Background(), clk, 0)
		for range 1000 { // unlimited: no wait at all
			if err := b.take(); err != nil {
				t.Fatal(err)
			}
		}
		b.setRate(10) // burst 1
		done := takers(b, 2)
		if n := returned(t, done); n != 1 {
			t.Fatalf("%d of 2 takers passed at 10/s from a full bucket of 1, want 1", n)
		}
		b.setRate(0)
		if n := returned(t, done); n != 1 {
			t.Fatalf("lifting the limit released %d waiters, want 1", n)
		}
		b.setRate(20) // burst 2
		done = takers(b, 3)
		if n := returned(t, done); n != 2 {
			t.Fatalf("%d of 3 takers passed at 20/s from a full bucket of 2, want 2", n)
		}
		clk.Advance(50 * time.Millisecond)
		if n := returned(t, done); n != 1 {
			t.Fatalf("the third taker did not pass after 50 ms at 20/s")
		}
		if r := b.currentRate(); r != 20 {
			t.Errorf("rate %d, want 20", r)
		}
	})
}

// TestBucketStopEndsWaits: the generator's end (life) ends a wait, whatever
// the rate does.
func TestBucketStopEndsWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(epoch)
		life, end := context.WithCancel(context.Background())
		b := newBucket(life, clk, 1)
		b.take()
		done := takers(b, 1)
		b.setRate(2)
		synctest.Wait()
		end()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("take after the end = %v, want context.Canceled", err)
		}
		b.setRate(5) // after the end: harmless
	})
}

// TestBlockGeneratorSetRate changes a generator's rate while a Write waits
// on it, on a manual clock.
func TestBlockGeneratorSetRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(epoch)
		sink := &memSink{}
		g := NewBlockGenerator(GeneratorConfig{Interval: time.Second, Clock: clk, Sink: sink, RateLimit: 1, Logger: quiet})
		if r := g.Rate(); r != 1 {
			t.Fatalf("Rate() = %d, want RateLimit 1", r)
		}
		g.Start(context.Background())
		write(t, g, "a") // the bucket's one token
		wrote := make(chan error, 1)
		go func() { wrote <- g.Write("b") }()
		synctest.Wait()
		select {
		case err := <-wrote:
			t.Fatalf("Write over 1/s returned %v at once", err)
		default:
		}
		g.SetRate(100) // owes one token: 10 ms at 100/s, not 1 s at 1/s
		synctest.Wait()
		clk.Advance(9 * time.Millisecond)
		synctest.Wait()
		select {
		case err := <-wrote:
			t.Fatalf("Write returned (%v) before its token at the new rate", err)
		default:
		}
		clk.Advance(time.Millisecond)
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		g.SetRate(0) // unlimited
		for i := range 1000 {
			write(t, g, fmt.Sprint(i))
		}
		if r := g.Rate(); r != 0 {
			t.Errorf("Rate() = %d after SetRate(0)", r)
		}
		g.SetRate(-5) // negative: unlimited too
		if r := g.Rate(); r != 0 {
			t.Errorf("Rate() = %d after SetRate(-5)", r)
		}
		if err := g.Stop(); err != nil {
			t.Fatal(err)
		}
		g.SetRate(10) // after Stop: harmless
		if got := len(sink.records()); got != 1002 {
			t.Errorf("stored %d records, want 1002", got)
		}
	})
}

// TestBlockGeneratorSetRateBeforeStart limits a generator configured
// without a limit.
func TestBlockGeneratorSetRateBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(epoch)
		g := NewBlockGenerator(GeneratorConfig{Interval: time.Second, Clock: clk, Sink: &memSink{}, Logger: quiet})
		g.SetRate(20) // burst 2
		g.Start(context.Background())
		write(t, g, "a", "b")
		wrote := make(chan error, 1)
		go func() { wrote <- g.Write("c") }()
		synctest.Wait()
		select {
		case err := <-wrote:
			t.Fatalf("third Write at 20/s returned %v at once", err)
		default:
		}
		clk.Advance(50 * time.Millisecond)
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if err := g.Stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBlockGeneratorSetRateUnderWriters changes the rate all the time while
// writers write, on a manual clock moved step by step: nothing is lost, no
// writer is stuck, and (under -race) nothing races.
func TestBlockGeneratorSetRateUnderWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(epoch)
		sink := &memSink{}
		g := NewBlockGenerator(GeneratorConfig{Interval: 100 * time.Millisecond, Clock: clk, Sink: sink, RateLimit: 50, Logger: quiet})
		g.Start(context.Background())
		const writers, each = 4, 300
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := g.Write(fmt.Sprintf("w%d-%d", w, i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		rates := []int{50, 1000, 0, 7, 3000, 1}
		for step := 0; ; step++ {
			synctest.Wait()
			select {
			case <-finished:
			default:
				if step > 100_000 {
					t.Fatal("writers stuck")
				}
				g.SetRate(rates[step%len(rates)])
				clk.Advance(10 * time.Millisecond)
				continue
			}
			break
		}
		if err := g.Stop(); err != nil {
			t.Fatal(err)
		}
		if got := len(sink.records()); got != writers*each {
			t.Errorf("stored %d records, want %d", got, writers*each)
		}
	})
}
