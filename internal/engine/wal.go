package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
)

// The receiver write-ahead log (Config.WriteAheadLog; Spark's
// spark.streaming.receiver.writeAheadLog.enable with its driver-side
// ReceivedBlockTracker log). A receiver's block, once stored in the block
// store, is written to the checkpoint store as the object
// "wal/<stream>/<key>" (by the process running the receiver: the master in
// local[N] and standalone, a worker in local-cluster); then the master
// appends a "block" record to its metadata log (the block's addition: its
// stream, key, time, records and bytes), and only then is the block
// acknowledged. The record is the commit: a block whose object was written
// but whose record was not was never acknowledged, and its object is an
// orphan, deleted later. Allocations are the interval manifests the log
// holds already.
//
// A master that restarts replays the log: the blocks of the manifests of
// intervals it will run again, and of the completed intervals a window or
// a state may recompute (the retention below), are allocated to their
// intervals again; the blocks logged and named by no manifest go back to
// the unallocated blocks, to the next interval cut. Their data is not
// loaded: a task that finds a block neither in its block store nor at its
// locations reads its object (Spark's WriteAheadLogBackedBlockRDD).
//
// An object is deleted once its interval is completed and older than the
// retention (the longest remember duration in the graph, and two
// checkpoint intervals of any state stream, plus two intervals): no window
// or state can need it then. The metadata log keeps, past its usual 256
// records, every record from the oldest block whose object is kept, so a
// block's record never outlives the manifest that consumed it. Untracked
// objects (orphans) are deleted once two sweeps, at least walSweepEvery
// apart, have seen them.

// walKind is the frame kind of a write-ahead log object.
const walKind = "dstream.wal"

// walSweepEvery is the least time between two sweeps for orphans: longer
// than a block can take between its object's write and its record.
const walSweepEvery = time.Minute

// metaBlock is a "block" record: a block's addition.
type metaBlock struct {
	Stream  int32  `json:"stream"`
	Key     string `json:"key"`
	Time    int64  `json:"time"` // Unix ns: when it was cut (or reached the master)
	Records int    `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// walKey names a logged block.
type walKey struct {
	stream int32
	key    string
}

func (k walKey) name() string { return walName(k.stream, k.key) }

// walName is the object holding block key of stream.
func walName(stream int32, key string) string { return fmt.Sprintf("wal/%06d/%s", stream, key) }

// walBook is the master's bookkeeping of its write-ahead log.
type walBook struct {
	mu sync.Mutex
	// blockSeq holds the log record of every block whose object is kept.
	blockSeq map[walKey]uint64
	// byInterval holds the logged blocks each interval's manifest names.
	byInterval map[int64][]walKey
	// manifestSeq holds the log record of each manifest within the
	// retention.
	manifestSeq map[int64]uint64
	candidates  map[string]bool // untracked objects the last sweep saw
	lastSweep   time.Time
	cleaning    sync.Mutex // one cleanup at a time
}

func newWALBook() *walBook {
	return &walBook{blockSeq: map[walKey]uint64{}, byInterval: map[int64][]walKey{}, manifestSeq: map[int64]uint64{}}
}

// floor is the oldest log record that must be kept (0: none).
func (b *walBook) floor() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var f uint64
	for _, s := range b.blockSeq {
		if f == 0 || s < f {
			f = s
		}
	}
	for _, s := range b.manifestSeq {
		if s > 0 && (f == 0 || s < f) {
			f = s
		}
	}
	return f
}

// newRunTag returns a short random tag: block keys of a receiver run
// include it when the write-ahead log is on, so they never collide with
// those of another run, replayed from the log.
func newRunTag() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// walWrite writes a block's records to the checkpoint store (the process
// running the receiver does); it returns once they are durable, or a
// *DurableError once its retries failed.
func (c *Engine) walWrite(ctx context.Context, stream int32, key string, records []string) error {
	store, err := c.CheckpointStore()
	if err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	data, err := rdd.Encode(records)
	if err != nil {
		return fmt.Errorf("write-ahead log: block %s: %w", key, err)
	}
	frame := checkpoint.Frame(walKind, 1, data)
	return c.retryDurable(ctx, "write-ahead log block "+key, func() error {
		return store.Put(ctx, walName(stream, key), frame)
	})
}

// readWAL reads a block's records back from its object.
func readWAL[T any](ctx context.Context, c *Engine, stream int32, key string) ([]T, error) {
	store, err := c.CheckpointStore()
	if err != nil {
		return nil, err
	}
	b, err := store.Get(ctx, walName(stream, key))
	if err != nil {
		return nil, err
	}
	kind, _, payload, err := checkpoint.Unframe(b)
	if err == nil && kind != walKind {
		err = fmt.Errorf("holds a %q frame", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", walName(stream, key), err)
	}
	return rdd.DecodeBlock[T](rdd.Encoded(payload))
}

// walReady waits, on the master, until its metadata log is open (Start
// opens it after the receivers of a local cluster are placed), and
// returns it.
func (c *Engine) walReady() (*metaLog, error) {
	m := c.meta
	if m == nil {
		return nil, errors.New("write-ahead log: the master has no metadata log")
	}
	select {
	case <-m.ready:
	case <-time.After(startTimeout):
		return nil, errors.New("write-ahead log: the master's metadata log did not open in time")
	}
	if m.log == nil {
		return nil, errors.New("write-ahead log: the master's metadata log could not be opened")
	}
	return m, nil
}

// walCommit appends a block's addition to the master's metadata log: once
// it returns nil the block may be acknowledged.
func (c *Engine) walCommit(b received.Block) error {
	m, err := c.walReady()
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(metaBlock{Stream: b.Stream, Key: b.Key, Time: b.Time.UnixNano(), Records: b.Records, Bytes: b.Bytes})
	var seq uint64
	err = c.retryDurable(c.RunCtx(), "write-ahead log record of block "+b.Key, func() (err error) {
		seq, err = c.metaAppendSeq("block", payload)
		return err
	})
	if err != nil {
		// Not acknowledged, and no later block can be: the job stops.
		c.DurableFailed(err)
		return err
	}
	k := walKey{b.Stream, b.Key}
	m.wal.mu.Lock()
	if _, ok := m.wal.blockSeq[k]; !ok {
		m.wal.blockSeq[k] = seq
	}
	m.wal.mu.Unlock()
	return nil
}

// walRetention is how long after its interval a block's object is kept.
func (c *Engine) walRetention() time.Duration {
	var every time.Duration
	for _, n := range c.nodes {
		every = max(every, n.CheckpointInterval())
	}
	return c.Timeline().Retention(c.MaxRemember(), every)
}

// walStarted notes the logged blocks interval m's manifest names (its log
// record is seq; 0 if it was not written).
func (c *Engine) walStarted(m *manifest.Interval, seq uint64) {
	if !c.cfg.WriteAheadLog || c.meta == nil {
		return
	}
	b := c.meta.wal
	b.mu.Lock()
	defer b.mu.Unlock()
	var keys []walKey
	for _, in := range m.Inputs {
		for _, blk := range in.Blocks {
			if k := (walKey{in.Stream, blk.Key}); b.blockSeq[k] > 0 {
				keys = append(keys, k)
			}
		}
	}
	b.byInterval[m.Time] = keys
	if seq > 0 {
		b.manifestSeq[m.Time] = seq
	}
}

// walCompleted deletes, in the background, the objects of the blocks of
// the intervals completed before t's retention, and now and then the
// orphans.
func (c *Engine) walCompleted(t time.Time) {
	if !c.cfg.WriteAheadLog || c.meta == nil || c.meta.log == nil {
		return
	}
	b := c.meta.wal
	cutoff := t.Add(-c.walRetention()).UnixMilli()
	now := c.cfg.Clock.Now()
	b.mu.Lock()
	var dead []string
	for u, keys := range b.byInterval {
		if u > cutoff {
			continue
		}
		for _, k := range keys {
			dead = append(dead, k.name())
			delete(b.blockSeq, k)
		}
		delete(b.byInterval, u)
	}
	for u := range b.manifestSeq {
		if u <= cutoff {
			delete(b.manifestSeq, u)
		}
	}
	sweep := b.lastSweep.IsZero() || now.Sub(b.lastSweep) >= walSweepEvery
	if sweep {
		b.lastSweep = now
	}
	b.mu.Unlock()
	if len(dead) == 0 && !sweep {
		return
	}
	store, err := c.CheckpointStore()
	if err != nil {
		return
	}
	c.ckWG.Add(1) // Stop waits for it before it closes the store
	go func() {
		defer c.ckWG.Done()
		b.cleaning.Lock()
		defer b.cleaning.Unlock()
		ctx := context.Background()
		for _, n := range dead {
			if err := store.Delete(ctx, n); err != nil {
				c.log.Warn("write-ahead log: old block not deleted", "object", n, "err", err)
			}
		}
		if sweep {
			c.walSweep(ctx, store)
		}
	}()
}

// walSweep deletes the objects no logged block names that the sweep before
// saw already: blocks never acknowledged, or consumed by intervals whose
// cleanup a crash interrupted.
func (c *Engine) walSweep(ctx context.Context, store checkpoint.Store) {
	b := c.meta.wal
	names, err := store.List(ctx, "wal/")
	if err != nil {
		c.log.Warn("write-ahead log: cannot list it for orphans", "err", err)
		return
	}
	b.mu.Lock()
	tracked := make(map[string]bool, len(b.blockSeq))
	for k := range b.blockSeq {
		tracked[k.name()] = true
	}
	prev := b.candidates
	b.mu.Unlock()
	next := map[string]bool{}
	deleted := 0
	for _, n := range names {
		if tracked[n] {
			continue
		}
		if !prev[n] {
			next[n] = true
			continue
		}
		if err := store.Delete(ctx, n); err != nil {
			c.log.Warn("write-ahead log: orphan not deleted", "object", n, "err", err)
			continue
		}
		deleted++
	}
	b.mu.Lock()
	b.candidates = next
	b.mu.Unlock()
	if deleted > 0 {
		c.log.Info("write-ahead log: orphans deleted (blocks never acknowledged, or consumed long ago)", "objects", deleted)
	}
}

// readInput returns the records of input block key of stream: from this
// process's block store, else from one of locations, else (with the
// write-ahead log, for a receiver's block) from its object in the log. It
// fails the task when the block is nowhere to be had.
func readInput[T any](tc *rdd.TaskContext, c *Engine, stream int32, key string, locs []string, what string) []T {
	if !c.cfg.WriteAheadLog || c.receiverOf(stream) == nil {
		return rdd.ReadBlock[T](tc, c.blocks, key, locs, what)
	}
	if v, ok := c.blocks.Get(key); ok {
		xs, err := rdd.DecodeBlock[T](v)
		if err != nil {
			tc.Fail(fmt.Errorf("%s: block %s: %w", what, key, err))
		}
		return xs
	}
	var remoteErr error
	if tc.Remote != nil && len(locs) > 0 {
		b, err := tc.Remote.Block(tc.Ctx, key, locs)
		if err == nil {
			xs, err := rdd.DecodeBlock[T](rdd.Encoded(b))
			if err != nil {
				tc.Fail(fmt.Errorf("%s: block %s: %w", what, key, err))
			}
			return xs
		}
		remoteErr = err
	}
	xs, err := readWAL[T](tc.Ctx, c, stream, key)
	if err != nil {
		if remoteErr != nil {
			err = fmt.Errorf("%w (and at %s: %w)", err, strings.Join(locs, ", "), remoteErr)
		}
		tc.Fail(fmt.Errorf("%s: block %s is lost, and unreadable from the write-ahead log: %w", what, key, err))
	}
	return xs
}
