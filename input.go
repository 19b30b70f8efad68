package dstream

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rate"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/source"
)

// input is a stream fed from outside the engine.
type input interface {
	node
	// open acquires the receiver's resources; errors fail Start.
	open() error
	// receive runs the receiver until ctx is done, then flushes every record
	// it took in into the tracker before returning.
	receive(ctx context.Context) error
}

// ReceiverStream is a stream of the records a receiver takes in. Each
// interval's dataset has one partition per block cut during the interval.
// With Config.WriteAheadLog every block is also written to the checkpoint
// folder, and its addition logged by the master, before it is
// acknowledged; a restarted master reads back the blocks not yet processed
// (wal.go).
func ReceiverStream(c *Context, r source.Receiver) *Stream[string] {
	in := &receiverInput{recv: r}
	s := newStream(c, "receiver "+r.Name(), c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[string], error) {
		return blocksDataset[string](c, in.stream.id, c.tracker.Blocks(in.stream.id, t)), nil
	})
	in.stream = s
	if c.cfg.WriteAheadLog && c.cfg.CheckpointDir == "" {
		c.setErr(fmt.Errorf("ReceiverStream (%s): Config.WriteAheadLog (--write-ahead-log) needs a checkpoint folder (Config.CheckpointDir, --checkpoint): the log is written there", caller()))
	}
	c.mu.Lock()
	c.inputs = append(c.inputs, in)
	if c.cfg.WriteAheadLog && c.meta == nil {
		// Blocks a receiver reports before Start opens the log wait for
		// it (wal.go).
		c.meta = newMetaLog()
	}
	c.mu.Unlock()
	return s
}

// SocketTextStream listens on addr (host:port) for TCP connections and
// receives newline-delimited text records from each; `dstream send` is its
// client.
func SocketTextStream(c *Context, addr string) *Stream[string] {
	return ReceiverStream(c, source.NewSocket(addr, source.SocketOptions{Logger: c.log}))
}

// blocksDataset makes an interval's input dataset: partition i reads block i
// from the block store.
func blocksDataset[T any](c *Context, stream int32, blocks []received.Block) *rdd.Dataset[T] {
	if len(blocks) == 0 {
		return rdd.Empty[T](c.rctx)
	}
	keys := make([]string, len(blocks))
	locs := make([][]string, len(blocks))
	for i, b := range blocks {
		keys[i], locs[i] = b.Key, b.Locations
	}
	what := fmt.Sprintf("input of stream %d", stream)
	ds := rdd.FromFunc(c.rctx, "input", len(keys), func(tc *rdd.TaskContext, p int) iter.Seq[T] {
		return func(yield func(T) bool) {
			for _, rec := range readInput[T](tc, c, stream, keys[p], locs[p], what) {
				if !yield(rec) {
					return
				}
			}
		}
	})
	if c.cluster != nil || c.worker != nil {
		ds.SetLocations(func(p int) []string { return locs[p] })
	}
	return ds
}

type receiverInput struct {
	stream  *Stream[string]
	recv    source.Receiver
	written atomic.Int64
	// at is the worker running the receiver, when the master placed it
	// on one (receivers.go); "" when it runs in this process. It changes
	// when the master places it again after that worker is lost.
	atMu   sync.Mutex
	at     string
	active atomic.Bool

	errMu   sync.Mutex
	lastErr error
	errTime time.Time

	// Backpressure (backpressure.go): the controller setting the rate of
	// the receiver's generator, and the records of recent intervals.
	rate    *rate.Controller
	records perStreamRecords
	gen     atomic.Pointer[source.BlockGenerator] // the generator running here, if any
	unrate  func()                                // unregisters a remote receiver's limiter
}

// worker returns the worker running the receiver ("" for this process).
func (in *receiverInput) worker() string {
	in.atMu.Lock()
	defer in.atMu.Unlock()
	return in.at
}

func (in *receiverInput) setWorker(addr string) {
	in.atMu.Lock()
	in.at = addr
	in.atMu.Unlock()
}

// failed records the receiver's latest error.
func (in *receiverInput) failed(err error, at time.Time) {
	in.errMu.Lock()
	defer in.errMu.Unlock()
	in.lastErr, in.errTime = err, at
}

func (in *receiverInput) opID() int32                       { return in.stream.id }
func (in *receiverInput) slideDuration() time.Duration      { return in.stream.slide }
func (in *receiverInput) rememberAtLeast(d time.Duration)   { in.stream.rememberAtLeast(d) }
func (in *receiverInput) forget(t time.Time)                {}
func (in *receiverInput) finishInterval(t time.Time) error  { return nil }
func (in *receiverInput) rememberDuration() time.Duration   { return in.stream.rememberDuration() }
func (in *receiverInput) parentNodes() []node               { return nil }
func (in *receiverInput) checkpoints() bool                 { return false }
func (in *receiverInput) checkpointInterval() time.Duration { return 0 }
func (in *receiverInput) loseHolder(string)                 {}
func (in *receiverInput) adopt(manifest.Checkpoint) error   { return nil }
func (in *receiverInput) nodeAt(t time.Time) (*rdd.Node, error) {
	return in.stream.nodeAt(t)
}
func (in *receiverInput) describe() GraphNode                             { return in.stream.describe() }
func (in *receiverInput) lastCheckpoints(time.Time) []manifest.Checkpoint { return nil }

func (in *receiverInput) open() error { return in.recv.Open() }

func (in *receiverInput) receive(ctx context.Context) error {
	if in.worker() != "" {
		return in.stream.ctx.receiveRemote(ctx, in)
	}
	sink := blockSink{c: in.stream.ctx}
	if sink.c.cfg.WriteAheadLog {
		sink.run = newRunTag()
	}
	return in.receiveWith(ctx, in.stream.ctx.runCtx(), sink)
}

// receiveWith runs the receiver in this process until ctx is done, storing
// its blocks through sink; genParent ends the generator's waits for room
// (a hard stop).
func (in *receiverInput) receiveWith(ctx, genParent context.Context, sink source.BlockSink) error {
	c := in.stream.ctx
	// A receiver on a worker cuts blocks on the wall clock: the master
	// allocates them by when they reach it, on its own clock (which a test
	// may drive by hand; a worker's copy of that clock never moves).
	clk := c.cfg.Clock
	if c.worker != nil {
		clk = clock.Real{}
	}
	// Blocks are cut well under the input share, so a block always fits
	// once earlier ones are processed, and the blocks a generator holds
	// before the store admits them (MaxPending+1) stay a fraction of it.
	gen := source.NewBlockGenerator(source.GeneratorConfig{
		Stream:     int(in.stream.id),
		Interval:   c.cfg.BlockInterval,
		Clock:      clk,
		Sink:       sink,
		MaxPending: inputBlocksPending,
		MaxBytes:   max(1, min(64<<20, c.blocks.MaxInputBytes()/int64(16*len(c.inputs)))),
		RateLimit:  c.cfg.MaxRate,
		Logger:     c.log,
	})
	// The generator outlives ctx, to store the blocks it still holds when
	// the receiver stops, and waits for room in a full block store while
	// intervals run; a hard stop (the run's context) ends that wait, since
	// no interval will run to free room.
	genCtx, stopGen := context.WithCancel(genParent)
	defer stopGen()
	gen.Start(genCtx)
	in.gen.Store(gen)
	defer in.gen.CompareAndSwap(gen, nil)
	if in.rate != nil {
		defer in.rate.Register(gen)()
	}
	err := in.recv.Receive(ctx, countingWriter{gen, &in.written})
	if serr := gen.Stop(); serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}

// inputBlocksPending is how many blocks a receiver's generator holds, cut but
// not yet admitted to the block store, before its writer waits.
const inputBlocksPending = 4

// countingWriter counts the records a receiver hands over.
type countingWriter struct {
	w *source.BlockGenerator
	n *atomic.Int64
}

func (c countingWriter) Write(rec string) error {
	if err := c.w.Write(rec); err != nil {
		return err
	}
	c.n.Add(1)
	return nil
}

// WriteTagged implements source.TaggedWriter: a socket receiver's sender
// that asked for acknowledgements learns when its records' block is stored
// (in a cluster: stored, replicated and reported to the master).
func (c countingWriter) WriteTagged(rec string, t *source.Tag) error {
	if err := c.w.WriteTagged(rec, t); err != nil {
		return err
	}
	c.n.Add(1)
	return nil
}

// ReceiverWaits returns how many times a receiver's block found the input
// memory full and waited for processed intervals to free it: how often
// backpressure held the receivers back.
func (c *Context) ReceiverWaits() int64 { return c.inputWaits.Load() }

// ReceivedRecords returns how many records the receivers have taken in.
func (c *Context) ReceivedRecords() int64 {
	var n int64
	for _, in := range c.inputs {
		if r, ok := in.(*receiverInput); ok {
			n += r.written.Load()
		}
	}
	return n
}

// blockSink stores received blocks in the block store's input share and
// reports them to the tracker: storing is the acknowledgement. When the input
// share is full it waits for processed intervals to free room (backpressure
// reaches the receiver through the block generator, the socket reader and TCP
// flow control behind it); it never drops a block it was handed. With the
// write-ahead log the block is also written to the checkpoint store and its
// addition logged before it is reported (wal.go).
type blockSink struct {
	c   *Context
	run string // with the write-ahead log: this receiver run's tag, in its keys
}

func (s blockSink) StoreBlock(ctx context.Context, b source.Block) error {
	key := fmt.Sprintf("input_%d_%d", b.Stream, b.Seq)
	if s.run != "" {
		key = fmt.Sprintf("input_%d_%s_%d", b.Stream, s.run, b.Seq)
	}
	size, err := s.c.storeInput(ctx, key, b)
	if err != nil {
		return err
	}
	if s.c.cfg.WriteAheadLog {
		if err := s.c.walWrite(ctx, int32(b.Stream), key, b.Records); err != nil {
			s.c.blocks.Remove(key)
			return err
		}
	}
	locs := replicate(s.c, ctx, key, b.Records)
	blk := received.Block{Stream: int32(b.Stream), Key: key, Time: b.Time, Records: len(b.Records), Bytes: size, Locations: locs}
	if s.c.cfg.WriteAheadLog {
		if err := s.c.walCommit(blk); err != nil {
			s.c.blocks.Remove(key)
			return err
		}
	}
	s.c.tracker.Add(blk)
	return nil
}

// storeInput stores a received block in the input share, waiting for room
// when it is full (and saying so), and returns its estimated size.
func (c *Context) storeInput(ctx context.Context, key string, b source.Block) (int64, error) {
	size := block.EstimateSize(b.Records)
	err := c.blocks.Put(key, b.Records, size, block.Input)
	if errors.Is(err, block.ErrFull) {
		st := c.blocks.Stats()
		c.log.Warn("input memory full: the receiver waits for processed intervals to free it (backpressure)",
			"stream", b.Stream, "block", key, "bytes", size, "input_bytes", st.InputBytes, "max_input_bytes", st.MaxInputBytes)
		c.inputWaits.Add(1)
		err = c.blocks.PutWait(ctx, key, b.Records, size, block.Input)
	}
	return size, err
}

// Queue feeds a QueueStream: each interval takes the next pushed batch of
// records (or none). It is the deterministic input of tests.
type Queue[T any] struct {
	mu      sync.Mutex
	batches [][]T
}

// NewQueue returns an empty queue.
func NewQueue[T any]() *Queue[T] { return &Queue[T]{} }

// Push appends one interval's records.
func (q *Queue[T]) Push(records ...T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batches = append(q.batches, records)
}

// Len returns the number of batches waiting.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.batches)
}

func (q *Queue[T]) pop() ([]T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.batches) == 0 {
		return nil, false
	}
	b := q.batches[0]
	q.batches[0] = nil
	q.batches = q.batches[1:]
	return b, true
}

// QueueStream is a stream whose dataset at each interval is the next batch
// pushed to q, split into the context's default number of partitions (an
// empty dataset when q is empty). The batch is taken when the interval is
// cut, whether or not anything computes the stream at that interval, so
// every interval takes exactly one batch, and it is stored as input blocks,
// named in the interval's manifest like a receiver's.
func QueueStream[T any](c *Context, q *Queue[T]) *Stream[T] {
	in := &queueInput[T]{q: q}
	in.stream = newStream(c, "queue", c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[T], error) {
		return blocksDataset[T](c, in.stream.id, c.tracker.Blocks(in.stream.id, t)), nil
	})
	c.mu.Lock()
	c.cutters = append(c.cutters, in)
	c.mu.Unlock()
	return in.stream
}

// cutter is an input the generator feeds when it cuts an interval.
type cutter interface {
	opID() int32
	rememberDuration() time.Duration
	// cut stores the input's blocks for interval t and reports them to the
	// tracker, allocated to t.
	cut(ctx context.Context, t time.Time) error
}

type queueInput[T any] struct {
	stream *Stream[T]
	q      *Queue[T]
	seq    int64 // blocks stored so far; the generator's only
}

func (in *queueInput[T]) opID() int32                     { return in.stream.id }
func (in *queueInput[T]) rememberDuration() time.Duration { return in.stream.rememberDuration() }

func (in *queueInput[T]) cut(ctx context.Context, t time.Time) error {
	recs, ok := in.q.pop()
	if !ok {
		return nil
	}
	c := in.stream.ctx
	parts := c.rctx.Parallelism()
	infos := make([]received.Block, 0, parts)
	for p := range parts {
		lo, hi := p*len(recs)/parts, (p+1)*len(recs)/parts
		part := recs[lo:hi:hi]
		key := fmt.Sprintf("input_%d_%d", in.stream.id, in.seq)
		in.seq++
		size := block.EstimateSize(part)
		if err := c.blocks.PutWait(ctx, key, part, size, block.Input); err != nil {
			return fmt.Errorf("queue stream %d: %w", in.stream.id, err)
		}
		locs := replicate(c, ctx, key, part)
		infos = append(infos, received.Block{Stream: in.stream.id, Key: key, Time: t, Records: len(part), Bytes: size, Locations: locs})
	}
	c.tracker.AddAllocated(t, in.stream.id, infos)
	return nil
}

// GeneratedStream is an in-memory input: its dataset at interval t holds the
// partitions gen returns for t, called when the interval's job is built.
// gen must be a deterministic function of t: it is part of the program, and
// every process that builds interval t calls it (no manifest names its data).
// Benchmarks use it to measure the engine without ingestion.
func GeneratedStream[T any](c *Context, name string, gen func(t time.Time) [][]T) *Stream[T] {
	return newStream(c, name, c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[T], error) {
		parts := gen(t)
		if len(parts) == 0 {
			return rdd.Empty[T](c.rctx), nil
		}
		return rdd.FromFunc(c.rctx, name, len(parts), func(tc *rdd.TaskContext, p int) iter.Seq[T] {
			return func(yield func(T) bool) {
				for _, x := range parts[p] {
					if !yield(x) {
						return
					}
				}
			}
		}), nil
	})
}
