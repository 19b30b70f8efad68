package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dstream/dstream/clock"
)

// GeneratorConfig configures a BlockGenerator.
type GeneratorConfig struct {
	Stream     int
	Interval   time.Duration // block interval; default 200 ms
	Clock      clock.Clock   // default the wall clock
	Sink       BlockSink
	MaxPending int   // blocks cut but not yet stored; default 16
	MaxRecords int   // records buffered in the current block before Write waits; default 1<<20
	MaxBytes   int64 // bytes buffered in the current block before Write waits; default 64 MiB
	RateLimit  int   // records per second; 0 means unlimited
	Logger     *slog.Logger
}

// ErrStopped is returned by Write after Stop.
var ErrStopped = errors.New("block generator stopped")

// GeneratorStats counts what a generator has cut.
type GeneratorStats struct {
	Records, Blocks, Bytes int64
}

// BlockGenerator buffers written records and, at every multiple of Interval
// on the clock, cuts them into a Block that a pusher goroutine stores through
// the sink, in order. When MaxPending blocks await storing, cutting waits;
// when the current buffer is full, Write waits: a slow engine slows the
// receiver, and memory stays bounded.
type BlockGenerator struct {
	cfg GeneratorConfig

	mu      sync.Mutex
	cond    *sync.Cond
	buf     []string
	bufSize int64
	stopped bool
	err     error
	stats   GeneratorStats
	limiter limiter

	queue    chan Block
	slots    chan struct{} // one per block cut and not yet stored
	stopCut  context.CancelFunc
	cutDone  chan struct{}
	pushDone chan struct{}
	seq      int64
}

// NewBlockGenerator returns a generator; call Start before writing.
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
	g := &BlockGenerator{cfg: cfg, queue: make(chan Block, cfg.MaxPending), slots: make(chan struct{}, cfg.MaxPending),
		cutDone: make(chan struct{}), pushDone: make(chan struct{})}
	g.cond = sync.NewCond(&g.mu)
	g.limiter = limiter{rate: cfg.RateLimit}
	return g
}

// Start starts cutting and pushing. ctx bounds the sink's StoreBlock calls.
func (g *BlockGenerator) Start(ctx context.Context) {
	cutCtx, cancel := context.WithCancel(ctx)
	g.stopCut = cancel
	// The first cut time is fixed now, so records written after Start and
	// before the first boundary land in the first block.
	go g.cutLoop(cutCtx, g.cfg.Clock.Now().Truncate(g.cfg.Interval).Add(g.cfg.Interval))
	go g.pushLoop(ctx)
}

// Write buffers one record for the current block, waiting while the buffer is
// full or the rate limit is reached.
func (g *BlockGenerator) Write(rec string) error {
	if g.cfg.RateLimit > 0 {
		if err := g.limiter.wait(g.cfg.Clock); err != nil {
			return err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.stopped && g.err == nil && (len(g.buf) >= g.cfg.MaxRecords || g.bufSize >= g.cfg.MaxBytes) {
		g.cond.Wait()
	}
	if g.err != nil {
		return g.err
	}
	if g.stopped {
		return ErrStopped
	}
	g.buf = append(g.buf, rec)
	g.bufSize += int64(len(rec)) + 16
	return nil
}

// cut moves the buffer into a block stamped at; it returns false if empty.
func (g *BlockGenerator) cut(at time.Time) (Block, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.buf) == 0 {
		return Block{}, false
	}
	b := Block{Stream: g.cfg.Stream, Seq: g.seq, Time: at, Records: g.buf}
	g.seq++
	g.stats.Records += int64(len(g.buf))
	g.stats.Blocks++
	g.stats.Bytes += g.bufSize
	g.buf, g.bufSize = nil, 0
	g.cond.Broadcast()
	return b, true
}

func (g *BlockGenerator) cutLoop(ctx context.Context, next time.Time) {
	defer close(g.cutDone)
	defer close(g.queue)
	for {
		if err := g.cfg.Clock.WaitUntil(ctx, next); err != nil {
			// Stopping: the final, partial block is cut now.
			g.slots <- struct{}{} // the pusher frees slots until it is done
			if b, ok := g.cut(g.cfg.Clock.Now()); ok {
				g.queue <- b
			}
			return
		}
		// Cut only when a slot is free: while MaxPending blocks await
		// storing, records stay in the buffer, which fills, and Write waits.
		select {
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			continue // the stop path above cuts the final block
		}
		if b, ok := g.cut(next); ok {
			g.queue <- b // never blocks: a slot is held for it
		} else {
			<-g.slots
		}
		next = next.Add(g.cfg.Interval)
	}
}

func (g *BlockGenerator) pushLoop(ctx context.Context) {
	defer close(g.pushDone)
	for b := range g.queue {
		g.mu.Lock()
		failed := g.err != nil
		g.mu.Unlock()
		if failed {
			<-g.slots
			continue // drain: nothing more can be acknowledged
		}
		err := g.cfg.Sink.StoreBlock(ctx, b)
		<-g.slots
		if err != nil {
			err = fmt.Errorf("storing block %d of stream %d (%d records): %w", b.Seq, b.Stream, len(b.Records), err)
			g.cfg.Logger.Error("receiver cannot store blocks", "err", err)
			g.mu.Lock()
			g.err = err
			g.cond.Broadcast()
			g.mu.Unlock()
		}
	}
}

// Stop cuts the final partial block, waits until every block has been stored
// and returns the first storing error. Writes after Stop fail with ErrStopped.
func (g *BlockGenerator) Stop() error {
	g.mu.Lock()
	g.stopped = true
	g.cond.Broadcast()
	g.mu.Unlock()
	if g.stopCut != nil {
		g.stopCut()
		<-g.cutDone
		<-g.pushDone
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Stats returns what has been cut so far.
func (g *BlockGenerator) Stats() GeneratorStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

// limiter paces records to rate per second on a clock.
type limiter struct {
	rate  int
	mu    sync.Mutex
	start time.Time
	n     int64
}

func (l *limiter) wait(c clock.Clock) error {
	l.mu.Lock()
	if l.start.IsZero() {
		l.start = c.Now()
	}
	l.n++
	due := l.start.Add(time.Duration(float64(l.n-1) / float64(l.rate) * float64(time.Second)))
	l.mu.Unlock()
	return c.WaitUntil(context.Background(), due)
}
