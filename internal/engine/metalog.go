package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/timeline"
)

// The master's metadata log (the D-Stream paper's "master fault
// tolerance"): with Config.CheckpointDir, the master writes what it needs to
// resume into the checkpoint store. "meta/start" holds the job's identity
// (its graph, the time before its first interval, the batch interval); the
// log under "meta/log/" holds each interval's manifest before it runs and
// its completion after. A master started again with the same folder checks
// that its graph is the one that wrote it (refusing, with the first
// difference, if not), takes the same zero, restores every state stream
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

// resume opens the metadata log in the checkpoint folder and returns the
// zero to start from and the first interval to run: a fresh job starts at
// now, a resumed one after its last completed interval. It restores the
// state streams' checkpoints.
func (c *Engine) resume(ctx context.Context, now time.Time) (tl timeline.Timeline, err error) {
	tl = c.tl.Start(now)
	if c.meta == nil {
		c.meta = newMetaLog()
	}
	meta := c.meta
	defer meta.markReady()
	store, err := c.CheckpointStore()
	if err != nil {
		return tl, err
	}
	graph := c.Graph()
	b, err := store.Get(ctx, metaStartName)
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		st, err := json.Marshal(metaStart{Graph: graph, Zero: tl.Zero().UnixMilli(), Batch: c.cfg.BatchInterval})
		if err != nil {
			return tl, err
		}
		if err := store.Put(ctx, metaStartName, checkpoint.Frame("dstream.start", 1, st)); err != nil {
			return tl, fmt.Errorf("checkpoint folder: %w", err)
		}
		log, err := checkpoint.OpenLog(ctx, store, metaLogPrefix)
		if err != nil {
			return tl, fmt.Errorf("checkpoint folder: %w", err)
		}
		meta.log = log
		return tl, nil
	case err != nil:
		return tl, fmt.Errorf("checkpoint folder: %w", err)
	}
	kind, _, payload, err := checkpoint.Unframe(b)
	if err == nil && kind != "dstream.start" {
		err = fmt.Errorf("holds a %q record", kind)
	}
	var st metaStart
	if err == nil {
		err = json.Unmarshal(payload, &st)
	}
	if err != nil {
		return tl, fmt.Errorf("checkpoint folder %s: %s is unreadable (%w); move the folder aside to start afresh", c.cfg.CheckpointDir, metaStartName, err)
	}
	if st.Batch != c.cfg.BatchInterval {
		return tl, fmt.Errorf("checkpoint folder %s was written with batch interval %v; this program's is %v", c.cfg.CheckpointDir, st.Batch, c.cfg.BatchInterval)
	}
	if err := graphspec.Diff(graph, st.Graph); err != nil {
		return tl, fmt.Errorf("checkpoint folder %s was written by another graph: %w", c.cfg.CheckpointDir, err)
	}
	zero := time.UnixMilli(st.Zero)
	log, err := checkpoint.OpenLog(ctx, store, metaLogPrefix)
	if err != nil {
		return tl, fmt.Errorf("checkpoint folder: %w", err)
	}
	var lastDone, lastStarted int64
	logged := map[int64]loggedManifest{} // the manifests still in the log
	var blocks []loggedBlock             // the receivers' blocks it logged (wal.go)
	err = log.Replay(ctx, func(seq uint64, kind string, payload []byte) error {
		switch kind {
		case "interval":
			m, _, err := manifest.Unmarshal(payload)
			if err != nil {
				return err
			}
			logged[m.Time] = loggedManifest{m, seq}
			lastStarted = max(lastStarted, m.Time)
		case "block":
			var b metaBlock
			if err := json.Unmarshal(payload, &b); err != nil {
				return err
			}
			blocks = append(blocks, loggedBlock{b, seq})
		case "done":
			var d metaDone
			if err := json.Unmarshal(payload, &d); err != nil {
				return err
			}
			lastDone = max(lastDone, d.Time)
		}
		return nil
	})
	var torn *checkpoint.TornTailError
	if errors.As(err, &torn) {
		c.log.Warn("metadata log: its last record was torn by a crash; resuming from the one before", "seq", torn.Seq, "err", torn.Err)
	} else if err != nil {
		return tl, fmt.Errorf("checkpoint folder %s: metadata log: %w", c.cfg.CheckpointDir, err)
	}
	meta.log, meta.rerunUpTo = log, lastStarted
	switch {
	case lastDone > 0:
		tl = c.tl.Resume(zero, time.UnixMilli(lastDone))
	case lastStarted > 0: // stopped before any interval completed
		tl = c.tl.Resume(zero, time.Time{})
	default: // stopped before any interval started
		tl = c.tl.Restart(zero, now)
	}
	first := tl.First()
	// File streams replay the files their intervals took (filestream.go),
	// receivers the blocks their write-ahead log holds (wal.go).
	if err := c.resumeFileInputs(ctx, store, logged, first); err != nil {
		return tl, fmt.Errorf("checkpoint folder %s: %w", c.cfg.CheckpointDir, err)
	}
	if err := c.walRestore(ctx, store, blocks, logged, lastDone, first); err != nil {
		return tl, fmt.Errorf("checkpoint folder %s: %w", c.cfg.CheckpointDir, err)
	}
	restored := 0
	for _, n := range c.nodes {
		if !n.Checkpoints() {
			continue
		}
		ok, err := c.restoreState(ctx, n)
		if err != nil {
			return tl, err
		}
		if ok {
			restored++
		}
	}
	c.log.Info("resuming from the checkpoint folder", "folder", c.cfg.CheckpointDir, "zero", st.Zero,
		"last_completed", lastDone, "first", first.UnixMilli(), "reruns_up_to", lastStarted, "states_restored", restored)
	if len(c.inputs) > 0 && lastDone > 0 && !c.cfg.WriteAheadLog {
		c.log.Warn("receivers have no write-ahead log yet: records received but not processed before the restart are lost, and state fed by a receiver is rebuilt from its checkpoint without the records received since")
	}
	return tl, nil
}

// seedManifests gives a resumed master the manifests of the intervals it
// completed before the restart and may rebuild: those a state stream's
// lineage reaches back to, from its restored checkpoint to the last
// completed interval (the ones a window or state still remembers). Their
// inputs are what can be replayed (a generated stream; no received block
// survived), and workers learn them as they learn any interval, before they
// build a dataset of one.
func (c *Engine) seedManifests() {
	if !c.metaOpen() {
		return
	}
	// The intervals before first, as far back as the graph remembers.
	back := c.tl.Intervals(c.MaxRemember()) + 1
	for _, t := range c.tl.Since(c.tl.First(), back) {
		c.manifests.Add(c.manifestOf(t))
	}
}

// restoreState adopts the newest usable committed checkpoint of state
// stream n, falling back to older ones (said in the log).
func (c *Engine) restoreState(ctx context.Context, n Node) (bool, error) {
	store, err := c.CheckpointStore()
	if err != nil {
		return false, err
	}
	// Every part is read and its frame checked: a corrupt checkpoint is
	// passed over for the one before, said in the log.
	verify := func(ctx context.Context, rec *checkpoint.CommitRecord) error {
		for _, part := range rec.Parts {
			b, err := store.Get(ctx, rec.Dir+"/"+part)
			if err != nil {
				return err
			}
			if _, _, _, err := checkpoint.Unframe(b); err != nil {
				return fmt.Errorf("%s/%s: %w", rec.Dir, part, err)
			}
		}
		return nil
	}
	rec, skipped, err := checkpoint.Latest(ctx, store, fmt.Sprintf("state/%06d/", n.OpID()), verify)
	for _, s := range skipped {
		c.log.Warn("state checkpoint unusable; falling back to an older one", "stream", n.OpID(), "checkpoint", s.Dir, "err", s.Err)
	}
	if errors.Is(err, checkpoint.ErrNotFound) {
		c.log.Warn("no state checkpoint to restore: the state is rebuilt from the intervals' inputs", "stream", n.OpID())
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state checkpoint of stream %d: %w", n.OpID(), err)
	}
	m, err := CommitMetaOf(rec)
	if err != nil {
		return false, err
	}
	if m.Stream != n.OpID() || m.Dataset.Op != n.OpID() {
		return false, fmt.Errorf("state checkpoint %s belongs to stream %d, not %d", rec.Dir, m.Stream, n.OpID())
	}
	cp := manifest.Checkpoint{Stream: m.Stream, Dataset: m.Dataset, Name: m.Name, Partitions: m.Partitions,
		HashPartitions: m.HashPartitions, Durable: rec.Dir}
	if err := n.Adopt(cp); err != nil {
		return false, err
	}
	c.log.Info("state restored from its checkpoint", "stream", n.OpID(), "time", m.Dataset.Time, "checkpoint", rec.Dir)
	return true, nil
}

// metaAppend appends one record to the metadata log, if there is one, and
// returns its sequence number (0: not written). A failure is logged: the
// job goes on, and a restart resumes from an earlier record.
func (c *Engine) metaAppend(kind string, payload []byte) uint64 {
	if !c.metaOpen() {
		return 0
	}
	seq, err := c.metaAppendSeq(kind, payload)
	if err != nil {
		c.log.Warn("metadata log: record not written", "kind", kind, "err", err)
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
	b, err := m.Marshal()
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
	b, _ := json.Marshal(metaDone{Time: t.UnixMilli(), Failed: failed})
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
	return ctx
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

// CheckpointStore opens the checkpoint folder on first use.
func (c *Engine) CheckpointStore() (checkpoint.Store, error) {
	c.ckOnce.Do(func() {
		dir := c.checkpointFolder()
		if dir == "" {
			c.ckErr = errors.New("no checkpoint folder (Config.CheckpointDir, --checkpoint)")
			return
		}
		open := func(dir string) (checkpoint.Store, error) { return checkpoint.OpenDir(dir) }
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
