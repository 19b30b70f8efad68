package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/rate"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/source"
)

// Inputs. A receiver's records reach the engine in blocks cut by its
// source.BlockGenerator, and the sink that stores a block decides what its
// records' acknowledgement means: StoreBlock returns only once the block is
// in the input share and, as the deployment asks, logged (the write-ahead
// log) and replicated (a cluster). blockSink is the sink of a receiver in
// this process (the master in local[N] and in a standalone cluster);
// workerSink (receivers.go) that of a receiver a local-cluster master
// placed on a worker. Queue inputs have no receiver: the generator cuts
// them with the interval (cutter). BlocksDataset is an interval's input
// dataset, one partition per block.

// input is a stream fed from outside the engine.
type input interface {
	OpID() int32
	RememberDuration() time.Duration
	// open acquires the receiver's resources; errors fail Start.
	open() error
	// receive runs the receiver until ctx is done, then flushes every record
	// it took in into the tracker before returning.
	receive(ctx context.Context) error
}

// BlocksDataset makes an interval's input dataset: partition i reads block i
// from the block store.
func BlocksDataset[T any](c *Engine, stream int32, blocks []received.Block) *rdd.Dataset[T] {
	if len(blocks) == 0 {
		return rdd.Empty[T](c.rctx)
	}
	keys := make([]string, len(blocks))
	locs := make([][]string, len(blocks))
	for i, b := range blocks {
		keys[i], locs[i] = b.Key, b.Locations
	}
	what := fmt.Sprintf("input of stream %d", stream)
	ds := rdd.FromSliceFunc(c.rctx, "input", len(keys), func(tc *rdd.TaskContext, p int) []T {
		return readInput[T](tc, c, stream, keys[p], locs[p], what)
	})
	if c.cluster != nil || c.worker != nil {
		ds.SetLocations(func(p int) []string { return locs[p] })
	}
	return ds
}

type ReceiverInput struct {
	c       *Engine
	node    Node // the receiver's stream
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
func (in *ReceiverInput) worker() string {
	in.atMu.Lock()
	defer in.atMu.Unlock()
	return in.at
}

func (in *ReceiverInput) setWorker(addr string) {
	in.atMu.Lock()
	in.at = addr
	in.atMu.Unlock()
}

// failed records the receiver's latest error.
func (in *ReceiverInput) failed(err error, at time.Time) {
	in.errMu.Lock()
	defer in.errMu.Unlock()
	in.lastErr, in.errTime = err, at
}

// OpID is the receiver's stream.
func (in *ReceiverInput) OpID() int32 { return in.node.OpID() }

// RememberDuration is how long the receiver's stream keeps its blocks.
func (in *ReceiverInput) RememberDuration() time.Duration { return in.node.RememberDuration() }

func (in *ReceiverInput) open() error { return in.recv.Open() }

func (in *ReceiverInput) receive(ctx context.Context) error {
	if in.worker() != "" {
		return in.c.receiveRemote(ctx, in)
	}
	sink := blockSink{c: in.c}
	if sink.c.cfg.WriteAheadLog {
		sink.run = newRunTag()
	}
	return in.receiveWith(ctx, in.c.RunCtx(), sink)
}

// receiveWith runs the receiver in this process until ctx is done, storing
// its blocks through sink; genParent ends the generator's waits for room
// (a hard stop).
func (in *ReceiverInput) receiveWith(ctx, genParent context.Context, sink source.BlockSink) error {
	c := in.c
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
		Stream:     int(in.OpID()),
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

// blockSink stores received blocks in the block store's input share and
// reports them to the tracker: storing is the acknowledgement. When the input
// share is full it waits for processed intervals to free room (backpressure
// reaches the receiver through the block generator, the socket reader and TCP
// flow control behind it); it never drops a block it was handed. With the
// write-ahead log the block is also written to the checkpoint store and its
// addition logged before it is reported (wal.go).
type blockSink struct {
	c   *Engine
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
			if ctx.Err() == nil {
				s.c.DurableFailed(err) // no block of the receiver can be acknowledged
			}
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
func (c *Engine) storeInput(ctx context.Context, key string, b source.Block) (int64, error) {
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

// cutter is an input the generator feeds when it cuts an interval.
type cutter interface {
	OpID() int32
	RememberDuration() time.Duration
	// cut stores the input's blocks for interval t and reports them to the
	// tracker, allocated to t.
	cut(ctx context.Context, t time.Time) error
}

type QueueInput[T any] struct {
	c    *Engine
	node Node               // the queue's stream
	pop  func() ([]T, bool) // the next pushed batch, if any
	seq  int64              // blocks stored so far; the generator's only
}

func (in *QueueInput[T]) OpID() int32                     { return in.node.OpID() }
func (in *QueueInput[T]) RememberDuration() time.Duration { return in.node.RememberDuration() }

func (in *QueueInput[T]) cut(ctx context.Context, t time.Time) error {
	recs, ok := in.pop()
	if !ok {
		return nil
	}
	c := in.c
	parts := c.rctx.Parallelism()
	infos := make([]received.Block, 0, parts)
	for p := range parts {
		lo, hi := p*len(recs)/parts, (p+1)*len(recs)/parts
		part := recs[lo:hi:hi]
		key := fmt.Sprintf("input_%d_%d", in.OpID(), in.seq)
		in.seq++
		size := block.EstimateSize(part)
		if err := c.blocks.PutWait(ctx, key, part, size, block.Input); err != nil {
			return fmt.Errorf("queue stream %d: %w", in.OpID(), err)
		}
		locs := replicate(c, ctx, key, part)
		infos = append(infos, received.Block{Stream: in.OpID(), Key: key, Time: t, Records: len(part), Bytes: size, Locations: locs})
	}
	c.tracker.AddAllocated(t, in.OpID(), infos)
	return nil
}

// AddReceiver adds the input of receiver r, whose records stream n is. With
// the write-ahead log, blocks the receiver reports before Start opens the
// log wait for it (wal.go).
func (c *Engine) AddReceiver(r source.Receiver, n Node) {
	in := &ReceiverInput{c: c, node: n, recv: r}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inputs = append(c.inputs, in)
	if c.cfg.WriteAheadLog && c.meta == nil {
		c.meta = newMetaLog()
	}
}

// AddQueue adds an input the generator feeds at each cut: stream n takes
// the batch pop returns (if any) as the interval's input blocks.
func AddQueue[T any](c *Engine, n Node, pop func() ([]T, bool)) {
	in := &QueueInput[T]{c: c, node: n, pop: pop}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutters = append(c.cutters, in)
}

// BlocksAt returns the input blocks of stream allocated to interval t.
func (c *Engine) BlocksAt(stream int32, t time.Time) []received.Block {
	return c.tracker.Blocks(stream, t)
}
