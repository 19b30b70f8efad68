package dstream

import (
	"fmt"
	"sync"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

// ReceiverStream is a stream of the records a receiver takes in. Each
// interval's dataset has one partition per block cut during the interval.
// With Config.WriteAheadLog every block is also written to the checkpoint
// folder, and its addition logged by the master, before it is
// acknowledged; a restarted master reads back the blocks not yet processed
// (wal.go).
func ReceiverStream(c *Context, r source.Receiver) *Stream[string] {
	var s *Stream[string]
	s = newStream(c, "receiver "+r.Name(), c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[string], error) {
		return engine.BlocksDataset[string](c.e, s.id, c.e.BlocksAt(s.id, t)), nil
	})
	if c.cfg.WriteAheadLog && c.cfg.CheckpointDir == "" {
		c.setErr(fmt.Errorf("ReceiverStream (%s): Config.WriteAheadLog (--write-ahead-log) needs a checkpoint folder (Config.CheckpointDir, --checkpoint): the log is written there", caller()))
	}
	c.e.AddReceiver(r, s.rt)
	return s
}

// SocketTextStream listens on addr (host:port) for TCP connections and
// receives newline-delimited text records from each; `dstream send` is its
// client.
func SocketTextStream(c *Context, addr string) *Stream[string] {
	return ReceiverStream(c, source.NewSocket(addr, source.SocketOptions{Logger: c.log}))
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
	var s *Stream[T]
	s = newStream(c, "queue", c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[T], error) {
		return engine.BlocksDataset[T](c.e, s.id, c.e.BlocksAt(s.id, t)), nil
	})
	engine.AddQueue(c.e, s.rt, q.pop)
	return s
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
			return rdd.Empty[T](c.rctx()), nil
		}
		return rdd.FromPartitions(c.rctx(), name, parts), nil
	})
}
