package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	_ "github.com/dstream/dstream/checkpoint/s3store" // s3:// locations for checkpoint.Open
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
)

// The master's metadata log (the D-Stream paper's "master fault
// tolerance"): with Config.CheckpointDir, the master writes what it needs to
// resume into the checkpoint store. "meta/start" holds the job's identity
// (its graph, the time before its first interval, the batch interval); the
// log under "meta/log/" holds each interval's manifest before it runs and
// its completion after. A master started again with the same folder checks
// that its graph is the one that wrote it or a compatible change of it
// (upgrade.go; refusing, saying why, if not), takes the same zero, restores every state stream
// from its newest usable committed checkpoint, and runs every interval
// after the last completed one: those pending when it stopped and those
// missed while it was down, in order, before it catches up with the clock.
// Outputs of intervals re-run are written once (SaveAsTextFiles commits an
// interval's folder once; a ForeachRDD function sees Rerun(ctx)). File
// streams write their selections under "files/" and replay them
// (filestream.go); with the receiver write-ahead log the log also holds
// each received block's addition, and its data lies under "wal/" (wal.go).

const (
	metaStartName = "meta/start"
	metaLogPrefix = "meta/log"
	// metaKept is how many log records the master keeps: resuming needs
	// the latest completion only; the rest is for whoever reads the log.
	metaKept = 256
)

// metaStart is the job's identity.
type metaStart struct {
	Graph []graphspec.Node `json:"graph"`
	Zero  int64            `json:"zero"`
	Batch time.Duration    `json:"batch"`
	Note  string           `json:"note,omitempty"`
}

// metaDone records an interval's completion.
type metaDone struct {
	Time   int64 `json:"time"`
	Failed bool  `json:"failed,omitempty"`
	// EventTimes is the event-time streams' progress after the interval:
	// what the next interval starts with (eventtime.go).
	EventTimes []manifest.EventTime `json:"eventTimes,omitempty"`
}

// metaCheckpoint records a committed state checkpoint.
type metaCheckpoint struct {
	Stream int32  `json:"stream"`
	Time   int64  `json:"time"`
	Dir    string `json:"dir"`
}

// metaLog is the master's side of the log.
type metaLog struct {
	log *checkpoint.Log // nil until resume opens it
	// rerunUpTo is the last interval logged as started but not completed
	// when the master resumed: intervals up to it are re-runs.
	rerunUpTo int64
	// ready is closed once resume has opened the log (or failed to). With
	// the write-ahead log the metaLog exists from the graph's first
	// receiver on, and blocks reported before then wait for it (wal.go).
	ready     chan struct{}
	readyOnce sync.Once
	wal       *walBook // the write-ahead log's bookkeeping (wal.go)
}

func newMetaLog() *metaLog { return &metaLog{ready: make(chan struct{}), wal: newWALBook()} }

// markReady says resume is done with the log.
func (m *metaLog) markReady() { m.readyOnce.Do(func() { close(m.ready) }) }

// metaOpen reports whether the master has an open metadata log.
func (c *Engine) metaOpen() bool { return c.meta != nil && c.meta.log != nil }

// metaAppend appends one record to the metadata log, if there is one, and
// returns its sequence number (0: not written). A failure is retried
// (durable.go); one that persists stops the job with a *DurableError: a
// restart could not resume from what the log lacks.
func (c *Engine) metaAppend(kind string, payload []byte) uint64 {
	if !c.metaOpen() {
		return 0
	}
	if err := c.holding(); err != nil {
		c.fence(err)
		return 0
	}
	var seq uint64
	err := c.retryDurable(c.RunCtx(), fmt.Sprintf("metadata log record %q", kind), func() (err error) {
		seq, err = c.metaAppendSeq(kind, payload)
		return err
	})
	if errors.Is(err, checkpoint.ErrConflict) {
		// Another master took over and appended (checkpoint.Log,
		// "Fencing"): this one may not act any more.
		c.fence(&LeaseLostError{Epoch: c.leaseEpoch(), Why: "another master appended to the metadata log: " + err.Error()})
		return 0
	}
	if err != nil {
		if c.RunCtx().Err() == nil {
			c.log.Error("metadata log: record not written; stopping the job", "kind", kind, "err", err)
			c.DurableFailed(err)
		}
		return 0
	}
	return seq
}

// metaAppendSeq appends one record to the open metadata log and returns
// its sequence number. Now and then it deletes old records: all but the
// last metaKept, and none the write-ahead log still needs (wal.go).
func (c *Engine) metaAppendSeq(kind string, payload []byte) (uint64, error) {
	seq, err := c.meta.log.Append(c.RunCtx(), kind, payload)
	if err != nil {
		return 0, err
	}
	if seq%metaKept == 0 && seq > metaKept {
		before := seq - metaKept
		if f := c.meta.wal.floor(); f > 0 && f < before {
			before = f
		}
		if err := c.meta.log.Truncate(c.RunCtx(), before); err != nil {
			c.log.Warn("metadata log: old records not deleted", "err", err)
		}
	}
	return seq, nil
}

// metaStarted logs interval m before it runs.
func (c *Engine) metaStarted(m *manifest.Interval) {
	if !c.metaOpen() {
		return
	}
	b, err := c.manifests.Frame(m) // marshaled once: workers are served the same frame
	if err != nil {
		c.log.Warn("metadata log: manifest not written", "time", m.Time, "err", err)
		c.walStarted(m, 0)
		return
	}
	c.walStarted(m, c.metaAppend("interval", b))
}

// metaDone logs interval t's completion.
func (c *Engine) metaCompleted(t time.Time, failed bool) {
	if !c.metaOpen() {
		return
	}
	b, _ := json.Marshal(metaDone{Time: t.UnixMilli(), Failed: failed, EventTimes: c.eventTimesNext()})
	c.metaAppend("done", b)
	c.walCompleted(t)
}

// MetaCheckpointed logs a committed state checkpoint.
func (c *Engine) MetaCheckpointed(stream int32, t int64, dir string) {
	if !c.metaOpen() {
		return
	}
	b, _ := json.Marshal(metaCheckpoint{Stream: stream, Time: t, Dir: dir})
	c.metaAppend("checkpoint", b)
}

// rerunKey carries whether an interval is a re-run in a ForeachRDD
// function's context.
type rerunKey struct{}

// OutputContext is the context an output function of interval t runs
// under: cancelled by a hard stop, and marked (Rerun) when t was started
// before a restart of the master.
func (c *Engine) OutputContext(t time.Time) context.Context {
	ctx := c.RunCtx()
	if m := c.meta; m != nil && t.UnixMilli() <= m.rerunUpTo {
		ctx = context.WithValue(ctx, rerunKey{}, true)
	}
	if c.lease != nil {
		ctx = context.WithValue(ctx, leaseKey{}, c)
	}
	return ctx
}

// leaseKey carries, in an output function's context, the engine whose
// lease the output acts under.
type leaseKey struct{}

// Epoch returns the epoch of the master's lease an output function's
// context acts under (dstream.Epoch); 0 when there is no lease.
func Epoch(ctx context.Context) uint64 {
	if c, ok := ctx.Value(leaseKey{}).(*Engine); ok {
		return c.leaseEpoch()
	}
	return 0
}

// Holding returns nil when the master an output function's context belongs
// to may still commit output as the holder of its lease (or there is no
// lease), and otherwise why not (a *LeaseLostError).
func Holding(ctx context.Context) error {
	if c, ok := ctx.Value(leaseKey{}).(*Engine); ok {
		return c.holding()
	}
	return nil
}

// Committing returns ctx, an output function's context, bounded by the
// deadline of the master's lease, for a commit: a write sent under it is
// abandoned when the lease would lapse, rather than land after a
// successor took over. It fails (a *LeaseLostError) when the lease is not
// held; without a lease it returns ctx as it is.
func Committing(ctx context.Context) (context.Context, context.CancelFunc, error) {
	c, ok := ctx.Value(leaseKey{}).(*Engine)
	if !ok || c.lease == nil {
		return ctx, func() {}, nil
	}
	_, until, held := c.lease.l.Active()
	if !held {
		return nil, nil, c.holding()
	}
	cctx, cancel := context.WithDeadline(ctx, until)
	return cctx, cancel, nil
}

// Rerun reports whether ctx, an output function's context, belongs to an
// interval run again after a restart of the master (dstream.Rerun).
func Rerun(ctx context.Context) bool {
	v, _ := ctx.Value(rerunKey{}).(bool)
	return v
}

// checkpointFolder is the checkpoint folder in use: Config.CheckpointDir,
// or a local-cluster master's temporary one.
func (c *Engine) checkpointFolder() string {
	if c.cfg.CheckpointDir != "" {
		return c.cfg.CheckpointDir
	}
	return c.ckTemp
}

func (c *Engine) HasCheckpointStore() bool { return c.checkpointFolder() != "" }

// ScratchCheckpoint reports what a master's temporary checkpoint folder
// holds (a job with state and no checkpoint location): bytes in memory, and
// objects that did not fit and were written as files. ok is false without
// one, or before its first write.
func (c *Engine) ScratchCheckpoint() (held int64, spilled int, ok bool) {
	s := c.scratch.Load()
	if s == nil {
		return 0, 0, false
	}
	held, spilled = s.Held()
	return held, spilled, true
}

// scratchMemory is how much of a master's memory budget its temporary
// checkpoint folder's objects may hold in memory (checkpoint.Spilling);
// the rest are files. A quarter, out of the share the block store leaves
// (storeFraction).
func scratchMemory(budget int64) int64 { return budget / 4 }

// isObjectStorage reports whether a checkpoint location is object storage
// (s3://...), which every process reaches by itself, rather than a folder
// (a path or a file:// URL), which is the master's.
func isObjectStorage(loc string) bool {
	return strings.Contains(loc, "://") && !strings.HasPrefix(loc, "file://")
}

// closeCheckpoints closes the checkpoint store, and deletes a temporary
// checkpoint folder.
func (c *Engine) closeCheckpoints() {
	if cl, ok := c.ckStore.(interface{ Close() error }); ok {
		_ = cl.Close()
	}
	if c.ckTemp != "" {
		if err := os.RemoveAll(c.ckTemp); err != nil {
			c.log.Warn("could not delete the temporary checkpoint folder", "folder", c.ckTemp, "err", err)
		}
	}
}

// CheckpointStore opens the checkpoint store on first use: a folder, or any
// location checkpoint.Open knows (s3://BUCKET/PREFIX, registered by the
// import of package checkpoint/s3store above).
func (c *Engine) CheckpointStore() (checkpoint.Store, error) {
	if c.worker != nil && !isObjectStorage(c.checkpointFolder()) {
		// A folder is the master's: a worker reaches it through the master
		// (cluster.RemoteStore), so no folder is shared between machines.
		if s := c.worker.masterStore.Load(); s != nil {
			return s, nil
		}
		return nil, errors.New("the master's checkpoint store: this worker is not serving yet")
	}
	c.ckOnce.Do(func() {
		dir := c.checkpointFolder()
		if dir == "" {
			c.ckErr = errors.New("no checkpoint folder (Config.CheckpointDir, --checkpoint)")
			return
		}
		open := func(dir string) (checkpoint.Store, error) { return checkpoint.Open(context.Background(), dir) }
		if dir == c.ckTemp {
			// The temporary folder dies with this master: its writes
			// need not be synced (checkpoint.OpenScratchDir), and what
			// fits in scratchMemory need not be a file at all
			// (checkpoint.Spilling).
			open = func(dir string) (checkpoint.Store, error) {
				d, err := checkpoint.OpenScratchDir(dir)
				if err != nil {
					return nil, err
				}
				s, err := checkpoint.NewSpilling(context.Background(), d, scratchMemory(c.cfg.MemoryBytes))
				if err != nil {
					d.Close()
					return nil, err
				}
				c.scratch.Store(s)
				return s, nil
			}
		}
		if c.cfg.Sim != nil && c.cfg.Sim.OpenStore != nil {
			open = c.cfg.Sim.OpenStore
		}
		d, err := open(dir)
		if err != nil {
			c.ckErr = fmt.Errorf("checkpoint folder: %w", err)
			return
		}
		c.ckStore = d
	})
	return c.ckStore, c.ckErr
}
