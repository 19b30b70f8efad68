package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/clock"
)

// GeneratorConfig configures a BlockGenerator. Zero fields take their defaults.
type GeneratorConfig struct {
	Stream     int           // copied into every Block
	Interval   time.Duration // block interval; default 200 ms
	Clock      clock.Clock   // default the wall clock
	Sink       BlockSink     // required
	MaxPending int           // blocks cut but not yet stored before Write waits; default 16
	MaxRecords int           // records in the current block before it is cut early; default 1<<20
	MaxBytes   int64         // estimated bytes in the current block before it is cut early; default 64 MiB
	RateLimit  int           // records per second, paced on Clock; 0 means unlimited; SetRate changes it
	Logger     *slog.Logger  // default slog.Default()
}

// ErrStopped is returned by Write once the generator is stopped.
var ErrStopped = errors.New("block generator stopped")

// GeneratorStats count what a generator has stored through its sink
// (acknowledged), and what it holds.
type GeneratorStats struct {
	Records, Blocks, Bytes int64 // stored: records, blocks, record bytes (without separators)
	Pending                int   // blocks cut and not yet stored
	Buffered               int   // records written and not yet cut
}

// recordOverhead is what a buffered record costs beyond its bytes (its
// string header), counted against MaxBytes.
const recordOverhead = 16

// BlockGenerator is the Writer a receiver writes to. It buffers records and
// cuts them into Blocks, which a pusher goroutine stores through the sink, one
// block at a time and in Seq order.
//
// Cutting follows the clock. A record belongs to the block interval its Write
// happened in: written at clock time w, it goes into the block cut at the
// boundary B, the first multiple of Interval after w (w in [B-Interval, B)),
// and that block is stamped B. The cutting goroutine cuts at each boundary
// (visiting each in turn if it runs late, as when a manual clock jumps several
// intervals, like Spark's RecurringTimer); a Write that finds the clock past
// the current block's boundary cuts it first. So under a manual clock, what a
// test writes before advancing lands in a known block, however the goroutines
// are scheduled. Two cuts are stamped with the clock's reading instead: an
// early cut, when the current block reaches MaxRecords or MaxBytes, and the
// final cut of Stop, when earlier than the boundary. Stamps never decrease
// along Seq and never exceed the clock's reading at the cut, so a block is
// never stamped in the future. Empty blocks are not emitted, and Seq counts
// emitted blocks only, so it has no gaps.
//
// Backpressure: while MaxPending blocks are cut and not yet stored, Write
// waits, so a slow engine slows the receiver (and the socket reader behind
// it, and TCP flow control behind that), and memory stays within about
// MaxPending+1 blocks of at most MaxRecords records or MaxBytes bytes each. (A
// non-empty buffer always has a free slot to be cut into: every Write waits
// for one, and every cut empties the buffer.)
//
// Rate limit: with a rate limit (RateLimit, or SetRate at run time, as
// backpressure's rate controller does), Write paces records on the clock with
// a token bucket holding a tenth of a second's worth. A rate change takes
// effect at once, Writes waiting included: they are woken and wait only for
// what their turn costs at the new rate.
//
// A BlockGenerator is safe for concurrent use by any number of writers.
type BlockGenerator struct {
	cfg GeneratorConfig

	mu       sync.Mutex
	cond     *sync.Cond // signalled when pending drops, on stop and on failure
	buf      []string
	bufBytes int64     // record bytes in buf
	bufMem   int64     // bufBytes plus per-record overhead, against MaxBytes
	bufDue   time.Time // the boundary the buffered records belong to
	pending  int
	seq      int64
	last     time.Time // the latest stamp
	started  bool
	stopped  bool  // no more Writes; the cutter finishes
	err      error // the first failure; Writes fail with it
	stats    GeneratorStats
	tags     []tagCount   // the tagged records of buf, per tag, in first-write order
	tagIdx   map[*Tag]int // index in tags, once buf holds records of two tags or more

	limiter *bucket
	life    context.Context // cancelled by Stop: ends rate-limit waits
	kill    context.CancelFunc

	queue     chan cutBlock // capacity MaxPending+1: sends under mu never block
	cancelCut context.CancelFunc
	cutDone   chan struct{}
	pushDone  chan struct{}
}

// NewBlockGenerator returns a generator; call Start, then Write, then Stop.
func NewBlockGenerator(cfg GeneratorConfig) *BlockGenerator {
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 16
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 1 << 20
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &BlockGenerator{
		cfg:      cfg,
		queue:    make(chan cutBlock, cfg.MaxPending+1),
		cutDone:  make(chan struct{}),
		pushDone: make(chan struct{}),
	}
	g.cond = sync.NewCond(&g.mu)
	g.life, g.kill = context.WithCancel(context.Background())
	g.limiter = newBucket(g.life, cfg.Clock, cfg.RateLimit)
	return g
}

// Start starts the cutting and pushing goroutines; call it once. ctx is
// passed to the sink's StoreBlock calls; cancelling it aborts the generator
// (Writes fail, blocks not yet stored are dropped, Stop returns the cause).
// Stop, not a cancel, is the graceful end.
func (g *BlockGenerator) Start(ctx context.Context) {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		panic("source: BlockGenerator started twice")
	}
	g.started = true
	g.mu.Unlock()
	cutCtx, cancel := context.WithCancel(ctx)
	g.cancelCut = cancel
	// The first boundary is fixed now, so records written between Start and
	// the first boundary land in the first block.
	first := g.boundaryAfter(g.cfg.Clock.Now())
	go g.cutLoop(cutCtx, first)
	go g.pushLoop(ctx)
}

// Write buffers rec for the current block. It waits while the rate limit is
// reached (see SetRate) or MaxPending blocks await storing. It returns
// ErrStopped after Stop, and the sink's error once a block could not be
// stored.
func (g *BlockGenerator) Write(rec string) error { return g.write(rec, nil) }

// Tag names a writer whose records the generator reports as stored (a socket
// connection that acknowledges them): see NewTag and WriteTagged.
type Tag struct {
	onStored func(n int)
}

// NewTag returns a tag whose onStored is called, once per stored block that
// holds records written with it, with how many it holds: after the block's
// StoreBlock returned nil, in block order, from the goroutine storing blocks.
// onStored must be quick and must not call the generator (it holds up the
// storing of the next block); a block that fails to store or is dropped is
// not reported.
func NewTag(onStored func(n int)) *Tag { return &Tag{onStored: onStored} }

// TaggedWriter is a Writer that reports when records are stored: a
// BlockGenerator, or a Writer wrapping one that passes WriteTagged on. A
// socket receiver acknowledges records to senders that ask only when its
// Writer is one.
type TaggedWriter interface {
	Writer
	// WriteTagged writes rec as Write does, and counts it for t: once the
	// block holding it is stored, t's onStored hears of it.
	WriteTagged(rec string, t *Tag) error
}

var _ TaggedWriter = (*BlockGenerator)(nil)

// WriteTagged is Write, and counts rec for t (not nil), whose onStored is
// called once the block holding rec is stored. Untagged Writes cost nothing
// more for it.
func (g *BlockGenerator) WriteTagged(rec string, t *Tag) error { return g.write(rec, t) }

// tagCount is how many records of a block a tag wrote.
type tagCount struct {
	tag *Tag
	n   int
}

func (g *BlockGenerator) write(rec string, t *Tag) error {
	if g.limiter.limited.Load() {
		if g.limiter.take() != nil {
			g.mu.Lock()
			defer g.mu.Unlock()
			if err := g.failure(); err != nil {
				return err
			}
			return ErrStopped
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var now, due time.Time
	for {
		for g.err == nil && !g.stopped && g.pending >= g.cfg.MaxPending {
			g.cond.Wait()
		}
		if err := g.failure(); err != nil {
			return err
		}
		now = g.cfg.Clock.Now()
		if len(g.buf) > 0 && now.Before(g.bufDue) {
			break // the common case: the record joins the current block
		}
		due = g.boundaryAfter(now)
		if len(g.buf) == 0 || !due.After(g.bufDue) {
			break
		}
		// The clock passed the buffer's boundary before the cutter got to
		// it: cut it now, then wait for a slot again.
		g.cutLocked(g.bufDue)
	}
	if len(g.buf) == 0 {
		g.bufDue = due
	}
	g.buf = append(g.buf, rec)
	g.bufBytes += int64(len(rec))
	g.bufMem += int64(len(rec)) + recordOverhead
	if t != nil {
		g.tagLocked(t)
	}
	if len(g.buf) >= g.cfg.MaxRecords || g.bufMem >= g.cfg.MaxBytes {
		// Cut early; a slot is free: pending < MaxPending was checked under mu.
		g.cutLocked(now)
	}
	return nil
}

// tagLocked counts one more buffered record for t. g.mu is held.
func (g *BlockGenerator) tagLocked(t *Tag) {
	if n := len(g.tags); n > 0 && g.tags[n-1].tag == t {
		g.tags[n-1].n++ // the common case: the same connection again
		return
	}
	if len(g.tags) > 0 {
		if g.tagIdx == nil {
			g.tagIdx = make(map[*Tag]int)
		}
		if len(g.tagIdx) == 0 {
			for i, tc := range g.tags {
				g.tagIdx[tc.tag] = i
			}
		}
		if i, ok := g.tagIdx[t]; ok {
			g.tags[i].n++
			return
		}
		g.tagIdx[t] = len(g.tags)
	}
	g.tags = append(g.tags, tagCount{t, 1})
}

// SetRate sets the rate limit to n records per second; n <= 0 means
// unlimited. It is cheap, never waits, and may be called at any time, before
// Start, concurrently with Writes and after Stop. Writes waiting on the old
// rate are woken and wait only for what their turn costs at the new rate (a
// debt run up at a low rate is repaid at the new one, and is forgiven when
// the limit is lifted). Setting the rate it has changes nothing.
//
// It implements rate.Limiter: the caller (backpressure's rate controller)
// applies any maximum rate itself.
func (g *BlockGenerator) SetRate(n int) { g.limiter.setRate(n) }

// Rate returns the rate limit in records per second; 0 means unlimited.
func (g *BlockGenerator) Rate() int { return g.limiter.currentRate() }

// boundaryAfter returns the first multiple of Interval after t.
func (g *BlockGenerator) boundaryAfter(t time.Time) time.Time {
	return t.Truncate(g.cfg.Interval).Add(g.cfg.Interval)
}

// cutOverdueLocked cuts the buffer if its boundary is at or before now. A
// non-empty buffer has a slot (see BlockGenerator); the check is defensive.
// g.mu is held.
func (g *BlockGenerator) cutOverdueLocked(now time.Time) {
	if len(g.buf) > 0 && g.err == nil && g.pending < g.cfg.MaxPending && !g.bufDue.After(now) {
		g.cutLocked(g.bufDue)
	}
}

// failure returns why Writes fail now, or nil. g.mu is held.
func (g *BlockGenerator) failure() error {
	if g.err != nil {
		return g.err
	}
	if g.stopped {
		return ErrStopped
	}
	return nil
}

// cutLocked queues the buffer as the next block, stamped at (or at the
// previous stamp, if later). g.mu is held and the buffer is not empty; the
// caller made sure the queue has room.
func (g *BlockGenerator) cutLocked(at time.Time) {
	if at.Before(g.last) {
		at = g.last
	}
	g.last = at
	b := Block{Stream: g.cfg.Stream, Seq: g.seq, Time: at, Records: g.buf}
	g.seq++
	g.pending++
	g.queue <- cutBlock{b, g.bufBytes, g.tags} // never blocks: pending <= MaxPending+1 = cap(queue)
	g.buf, g.bufBytes, g.bufMem = nil, 0, 0
	if g.tags != nil {
		g.tags = nil
		clear(g.tagIdx)
	}
}

// cutBlock is a block on its way to the sink, with its record bytes and
// the tags of its tagged records.
type cutBlock struct {
	Block
	bytes int64
	tags  []tagCount
}

func (g *BlockGenerator) cutLoop(ctx context.Context, next time.Time) {
	defer close(g.cutDone)
	for g.cfg.Clock.WaitUntil(ctx, next) == nil {
		g.mu.Lock()
		g.cutOverdueLocked(next)
		g.mu.Unlock()
		next = next.Add(g.cfg.Interval)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped && g.err == nil {
		// Start's ctx was cancelled without Stop: abort.
		g.err = fmt.Errorf("block generator of stream %d aborted: %w", g.cfg.Stream, context.Cause(ctx))
		g.kill()
	}
	g.stopped = true
	g.cond.Broadcast()
	if len(g.buf) > 0 && g.err == nil {
		// The final, partial block may exceed MaxPending by one. It is
		// stamped at its boundary, or now if that is still ahead.
		at := g.cfg.Clock.Now()
		if g.bufDue.Before(at) {
			at = g.bufDue
		}
		g.cutLocked(at)
	}
	close(g.queue) // after stopped is set under mu, nothing else sends
}

func (g *BlockGenerator) pushLoop(ctx context.Context) {
	defer close(g.pushDone)
	for q := range g.queue {
		b := q.Block
		g.mu.Lock()
		failed := g.err != nil
		g.mu.Unlock()
		var err error
		if failed {
			g.cfg.Logger.Warn("receiver drops a block that cannot be stored after an earlier failure",
				"stream", b.Stream, "seq", b.Seq, "records", len(b.Records))
		} else {
			err = g.cfg.Sink.StoreBlock(ctx, b)
		}
		g.mu.Lock()
		g.pending--
		switch {
		case err != nil:
			err = fmt.Errorf("storing block %d of stream %d (%d records): %w", b.Seq, b.Stream, len(b.Records), err)
			g.cfg.Logger.Error("receiver cannot store blocks; it stops taking records", "err", err)
			if g.err == nil {
				g.err = err
			}
		case !failed:
			g.stats.Records += int64(len(b.Records))
			g.stats.Blocks++
			g.stats.Bytes += q.bytes
		}
		g.cond.Broadcast()
		g.mu.Unlock()
		if err == nil && !failed {
			for _, tc := range q.tags {
				tc.tag.onStored(tc.n)
			}
		}
	}
}

// Stop ends the generator: Writes fail with ErrStopped from now on, the
// buffered records are cut into a final block, and Stop returns once every
// block has been stored, with the first StoreBlock error if any. Stop is
// idempotent. Stopping a generator that was never started drops what was
// written, and says so.
func (g *BlockGenerator) Stop() error {
	g.mu.Lock()
	g.stopped = true
	g.cond.Broadcast()
	started := g.started
	dropped := len(g.buf)
	g.mu.Unlock()
	g.kill()
	if !started {
		if dropped > 0 {
			return fmt.Errorf("block generator of stream %d stopped before it started: %d records dropped", g.cfg.Stream, dropped)
		}
		return nil
	}
	g.cancelCut()
	<-g.cutDone
	<-g.pushDone
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Stats returns what has been stored so far and what is held.
func (g *BlockGenerator) Stats() GeneratorStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.stats
	st.Pending = g.pending
	st.Buffered = len(g.buf)
	return st
}

// bucket is a token bucket on a clock: it refills at rate tokens per second
// up to burst (a tenth of a second's worth, at least one). A taker that finds
// it empty reserves the next token (a ticket: tokens go negative, a debt) and
// waits on the clock until the bucket has refilled up to its ticket, so
// concurrent takers are served in turn and the long-run rate is exact.
//
// The rate can change at any time (setRate). A debt is counted in tokens, so
// it is repaid at the new rate: every waiter is woken, recomputes when its
// ticket is due at the new rate, and waits again (or returns). Rate 0 means
// unlimited: takers pass at once, waiters are released and the debt is
// forgiven; a later limit starts afresh with a full bucket.
type bucket struct {
	clk     clock.Clock
	life    context.Context // ends every wait: the generator's stop
	limited atomic.Bool     // rate > 0, read without mu on the unlimited path

	mu     sync.Mutex
	rate   float64 // tokens per second; 0: unlimited
	burst  float64
	tokens float64 // negative: the tickets issued and not yet covered
	issued int64   // tickets issued so far; a ticket's number is issued after its take
	last   time.Time
	begun  bool
	// forgiven counts the switches to unlimited, which release every
	// waiter whatever its ticket.
	forgiven int64
	// changed is cancelled, and replaced, by every rate change: it wakes the
	// waiters so they recompute their due time.
	changed context.Context
	wake    context.CancelFunc
}

// newBucket returns a bucket taking rate tokens per second (0: unlimited) on
// clk; cancelling life ends every wait, with life's error.
func newBucket(life context.Context, clk clock.Clock, rate int) *bucket {
	b := &bucket{clk: clk, life: life}
	b.changed, b.wake = context.WithCancel(life)
	b.setRateLocked(rate)
	return b
}

// setRate changes the rate (n <= 0: unlimited) and wakes the waiters.
func (b *bucket) setRate(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if max(n, 0) == int(b.rate) {
		return
	}
	if b.begun && b.rate > 0 {
		b.refillLocked(b.clk.Now()) // what accrued so far, at the old rate
	}
	b.setRateLocked(n)
	b.wake()
	b.changed, b.wake = context.WithCancel(b.life)
}

// setRateLocked sets the rate; b.mu is held (or b is new).
func (b *bucket) setRateLocked(n int) {
	if n <= 0 {
		// Unlimited: waiters pass, their debt is forgiven, and a later
		// limit starts with a full bucket.
		b.rate, b.begun = 0, false
		b.forgiven++
		b.limited.Store(false)
		return
	}
	if b.rate == 0 {
		b.begun = false
	}
	b.rate = float64(n)
	b.burst = max(1, b.rate/10)
	b.tokens = min(b.tokens, b.burst)
	b.limited.Store(true)
}

// currentRate returns the rate, 0 when unlimited.
func (b *bucket) currentRate() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.rate)
}

// refillLocked adds what accrued since last, up to burst. b.mu is held.
func (b *bucket) refillLocked(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// take takes a token, waiting for it on the clock; it fails with life's
// error once life is done.
func (b *bucket) take() error {
	if !b.limited.Load() {
		return nil
	}
	b.mu.Lock()
	if b.rate == 0 {
		b.mu.Unlock()
		return nil
	}
	now := b.clk.Now()
	if !b.begun {
		b.begun, b.tokens, b.last = true, b.burst, now
	}
	b.refillLocked(now)
	b.tokens--
	b.issued++
	ticket, epoch := b.issued, b.forgiven
	for {
		// The ticket is covered once what accrued (tokens + issued) reaches it.
		debt := float64(ticket-b.issued) - b.tokens
		if debt <= 0 || b.rate == 0 || b.forgiven != epoch {
			b.mu.Unlock()
			return nil
		}
		due := now.Add(time.Duration(math.Round(debt / b.rate * float64(time.Second))))
		changed := b.changed
		b.mu.Unlock()
		err := b.clk.WaitUntil(changed, due)
		if err == nil && changed.Err() == nil {
			return nil // due, at the rate it was computed at
		}
		if err := b.life.Err(); err != nil {
			return err
		}
		// The rate changed: recompute when the ticket is due.
		b.mu.Lock()
		now = b.clk.Now()
		if b.rate > 0 {
			b.refillLocked(now)
		}
	}
}
