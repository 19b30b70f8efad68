package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/timeline"
)

// Recovery: what a master that starts with a checkpoint folder does before
// its first interval, top to bottom.
//
//  1. resume opens the folder's metadata log (metalog.go). A fresh folder
//     gets its start record (the graph and the zero) and the job starts now.
//     Otherwise the start record must match this program's batch interval,
//     and its graph must be this program's or one graphspec.Upgrade finds
//     compatible (upgrade.go: then the log's records of streams that start
//     afresh are passed over, and the start record is rewritten with this
//     graph once everything is restored), and the log is replayed: the manifests of intervals started
//     (and not yet truncated), the receivers' logged blocks, and the last
//     completed interval. The timeline resumes after it (package timeline).
//  2. resumeFileInputs: every file stream takes back the files its logged
//     intervals took, and the selections it persisted for intervals cut but
//     not run (filestream.go writes them).
//  3. walRestore: with the write-ahead log, the blocks received and logged
//     but not yet processed are read back from their objects and allocated
//     to the intervals their manifests name, or to the next one (wal.go).
//  4. restoreState: every state stream the plan resumes adopts its newest
//     committed checkpoint of a completed interval that still reads,
//     falling back to older ones; a named state finds it by name.
//  5. At Start, seedManifests gives back the manifests of the completed
//     intervals a window or state still reaches, so workers learn them as
//     any interval; the intervals started but not completed run again,
//     their outputs told so (Rerun).

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
	graph := c.resolvedGraph()
	b, err := store.Get(ctx, metaStartName)
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		if err := c.putStart(ctx, store, metaStart{Graph: graph, Zero: tl.Zero().UnixMilli(), Batch: c.cfg.BatchInterval}); err != nil {
			return tl, err
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
	plan, err := graphspec.Upgrade(st.Graph, graph, graphspec.UpgradeOptions{AllowDroppedState: c.cfg.AllowDroppedState})
	if err != nil {
		return tl, fmt.Errorf("checkpoint folder %s was written by another graph: %w", c.cfg.CheckpointDir, err)
	}
	zero := time.UnixMilli(st.Zero)
	log, err := checkpoint.OpenLog(ctx, store, metaLogPrefix)
	if err != nil {
		return tl, fmt.Errorf("checkpoint folder: %w", err)
	}
	var doneEventTimes []manifest.EventTime // the last completion's (eventtime.go)

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
			if d.Time >= lastDone {
				doneEventTimes = d.EventTimes
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
	if plan.Changed {
		logged, blocks, doneEventTimes = resumedOnly(plan, logged, blocks, doneEventTimes)
	}
	c.resumeEventTimes(logged, doneEventTimes)
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
	if plan.Changed {
		if err := c.upgrade(ctx, store, plan, st); err != nil {
			return tl, fmt.Errorf("checkpoint folder %s: %w", c.cfg.CheckpointDir, err)
		}
	}
	restored := 0
	for _, n := range c.nodes {
		old, ok := plan.States[n.OpID()]
		if !n.Checkpoints() || !ok {
			continue
		}
		ok, err := c.restoreState(ctx, n, old, lastDone)
		if err != nil {
			return tl, err
		}
		if ok {
			restored++
		}
	}
	if plan.Changed {
		// The folder is this graph's from now on: the next restart
		// compares with it.
		st.Graph = graph
		st.Note = fmt.Sprintf("graph changed at interval %d", lastDone)
		if err := c.putStart(ctx, store, st); err != nil {
			return tl, err
		}
	}
	c.log.Info("resuming from the checkpoint folder", "folder", c.cfg.CheckpointDir, "zero", st.Zero,
		"last_completed", lastDone, "first", first.UnixMilli(), "reruns_up_to", lastStarted, "states_restored", restored)
	if len(c.inputs) > 0 && lastDone > 0 && !c.cfg.WriteAheadLog {
		c.log.Warn("receivers have no write-ahead log yet: records received but not processed before the restart are lost, and state fed by a receiver is rebuilt from its checkpoint without the records received since")
	}
	return tl, nil
}

// decodeSelection decodes into sel a stream's selection record, as file
// and offset streams write them at the cut: a frame of kind holding JSON.
// An error says what the object holds instead.
func decodeSelection(b []byte, kind string, sel any) error {
	k, _, payload, err := checkpoint.Unframe(b)
	if err == nil && k != kind {
		err = fmt.Errorf("holds a %q record", k)
	}
	if err == nil {
		err = json.Unmarshal(payload, sel)
	}
	return err
}

// resumeFileInputs restores every file and offset stream's selections
// after a restart (resumer).
func (c *Engine) resumeFileInputs(ctx context.Context, store checkpoint.Store, logged map[int64]loggedManifest, first time.Time) error {
	for _, in := range c.cutters {
		if r, ok := in.(resumer); ok && !c.fresh[in.OpID()] {
			if err := r.resume(ctx, store, logged, first); err != nil {
				return err
			}
		}
	}
	return nil
}

// resume gives a restarted master the selections it made before: the
// written ones, and those of the manifests logged for intervals not
// completed (what the interval ran with, even when it took no file).
// Intervals the restart runs again take exactly those files; the names
// taken within the remember window are not taken again.
func (fi *FileInput) resume(ctx context.Context, store checkpoint.Store, logged map[int64]loggedManifest, first time.Time) error {
	c := fi.c
	from := first.UnixMilli() - fi.keep().Milliseconds()
	names, err := store.List(ctx, fi.prefix())
	if err != nil {
		return fmt.Errorf("file stream %d: %w", fi.OpID(), err)
	}
	for _, n := range names {
		t, err := strconv.ParseInt(strings.TrimPrefix(n, fi.prefix()), 10, 64)
		if err != nil || t < from {
			continue
		}
		b, err := store.Get(ctx, n)
		if errors.Is(err, checkpoint.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("file stream %d: %w", fi.OpID(), err)
		}
		var sel fileSelection
		err = decodeSelection(b, fileSelectionKind, &sel)
		if err != nil || sel.Time != t || sel.Stream != fi.OpID() {
			// The interval selects again by the rule (a file taken in
			// it before may be taken again: said here).
			c.log.Warn("file stream: a written selection is unreadable; its interval's files are selected again", "name", n, "err", err)
			continue
		}
		fi.record(t, sel.Files)
	}
	for _, t := range slices.Sorted(maps.Keys(logged)) {
		var files []manifest.File
		for _, in := range logged[t].m.Inputs {
			if in.Stream == fi.OpID() {
				files = in.Files
			}
		}
		fi.record(t, files)
	}
	fi.mu.Lock()
	n := len(fi.selected)
	fi.mu.Unlock()
	if n > 0 {
		c.log.Info("file stream: selections made before the restart restored", "stream", fi.OpID(), "intervals", n)
	}
	return nil
}

// walRestore gives a restarted master the blocks its log holds: blocks
// names the "block" records (with their record's sequence number), logged
// the manifests still in the log, lastDone the last completed interval and
// first the first interval it runs. See the comment at the top.
func (c *Engine) walRestore(ctx context.Context, store checkpoint.Store, blocks []loggedBlock, logged map[int64]loggedManifest, lastDone int64, first time.Time) error {
	book := c.meta.wal
	if !c.cfg.WriteAheadLog {
		if len(blocks) > 0 {
			c.log.Warn("the checkpoint folder holds a receiver write-ahead log, which this run does not use (Config.WriteAheadLog, --write-ahead-log): the blocks received but not processed before the restart are not restored", "blocks", len(blocks))
		}
		return nil
	}
	names, err := store.List(ctx, "wal/")
	if err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	seqOf := map[walKey]uint64{}
	for _, b := range blocks {
		k := walKey{b.Stream, b.Key}
		if _, ok := seqOf[k]; !ok {
			seqOf[k] = b.seq
		}
	}
	consumed := map[walKey]bool{}
	for _, lm := range logged {
		for _, in := range lm.m.Inputs {
			for _, blk := range in.Blocks {
				consumed[walKey{in.Stream, blk.Key}] = true
			}
		}
	}
	lo := first.Add(-c.walRetention()).UnixMilli()
	lost := 0
	restored, pending := 0, 0
	for _, t := range slices.Sorted(maps.Keys(logged)) {
		lm := logged[t]
		if t < lo {
			continue
		}
		at := time.UnixMilli(t)
		var keys []walKey
		for _, in := range lm.m.Inputs {
			if c.receiverOf(in.Stream) == nil {
				continue // a queue's blocks: not in the log
			}
			var bs []received.Block
			for _, blk := range in.Blocks {
				k := walKey{in.Stream, blk.Key}
				if _, ok := seqOf[k]; !ok || !have[k.name()] {
					lost++
					c.log.Warn("write-ahead log: a block of a logged interval is missing; the interval runs without it", "time", t, "block", blk.Key)
					continue
				}
				bs = append(bs, received.Block{Stream: in.Stream, Key: blk.Key, Time: at, Records: blk.Records, Bytes: blk.Bytes})
				keys = append(keys, k)
			}
			c.tracker.AddAllocated(at, in.Stream, bs)
			restored += len(bs)
		}
		if t > lastDone {
			// Allocated again as logged, even when empty: its cut does
			// not allocate other blocks to it.
			c.tracker.MarkAllocated(at)
		}
		book.mu.Lock()
		book.byInterval[t] = keys
		book.manifestSeq[t] = lm.seq
		for _, k := range keys {
			book.blockSeq[k] = seqOf[k]
		}
		book.mu.Unlock()
	}
	for _, b := range blocks {
		k := walKey{b.Stream, b.Key}
		if consumed[k] || c.receiverOf(b.Stream) == nil {
			continue
		}
		consumed[k] = true // once, if logged twice
		if !have[k.name()] {
			lost++
			c.log.Warn("write-ahead log: a block received before the restart is missing from it", "block", b.Key)
			continue
		}
		c.tracker.Add(received.Block{Stream: b.Stream, Key: b.Key, Time: time.Unix(0, b.Time), Records: b.Records, Bytes: b.Bytes})
		book.mu.Lock()
		book.blockSeq[k] = b.seq
		book.mu.Unlock()
		pending++
	}
	c.log.Info("write-ahead log: blocks restored", "allocated_again", restored, "not_yet_allocated", pending, "missing", lost)
	return nil
}

// loggedBlock is a "block" record read back, with its sequence number.
type loggedBlock struct {
	metaBlock
	seq uint64
}

// loggedManifest is an "interval" record read back.
type loggedManifest struct {
	m   *manifest.Interval
	seq uint64
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
// errRunsAgain rejects, in restoreState, a checkpoint of an interval after
// the last completed one (it wraps ErrNotFound: checkpoint.Latest passes
// such a checkpoint over for an older one).
var errRunsAgain = fmt.Errorf("checkpoint of an interval that runs again: %w", checkpoint.ErrNotFound)

func (c *Engine) restoreState(ctx context.Context, n Node, old graphspec.Node, upTo int64) (bool, error) {
	store, err := c.CheckpointStore()
	if err != nil {
		return false, err
	}
	// Only a checkpoint of a completed interval (at or before upTo) is
	// adopted. One of an interval that runs again (its checkpoint was
	// committed, but the master stopped before the interval completed)
	// would make the state there a checkpoint read on this master, while
	// the interval's manifest, which names the checkpoints before it,
	// has the workers compute it from lineage: they would read shuffles
	// this master never runs.
	// Every part is read and its frame checked: a corrupt checkpoint is
	// passed over for the one before, said in the log.
	// A named state's checkpoints are found by name, whatever operator ID
	// wrote them (the graph may have changed: upgrade.go).
	verify := func(ctx context.Context, rec *checkpoint.CommitRecord) error {
		m, err := CommitMetaOf(rec)
		if err == nil && m.Dataset.Time > upTo {
			return errRunsAgain
		}
		if err == nil && (m.State != old.StateName || old.StateName == "" && m.Stream != old.ID) {
			return fmt.Errorf("written by stream %d (state %q), not %d (state %q)", m.Stream, m.State, old.ID, old.StateName)
		}
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
	rec, skipped, err := checkpoint.Latest(ctx, store, StatePrefix(old.ID, old.StateName), verify)
	for _, s := range skipped {
		if errors.Is(s.Err, errRunsAgain) {
			c.log.Info("state checkpoint of an interval that runs again passed over", "stream", n.OpID(), "checkpoint", s.Dir)
			continue
		}
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
	if m.Stream != m.Dataset.Op {
		return false, fmt.Errorf("state checkpoint %s is of dataset %v, not of stream %d", rec.Dir, m.Dataset, m.Stream)
	}
	// Written under another operator ID (a changed graph), the dataset
	// takes this graph's: its ID is {Op, Time, Seq}, and the operator's
	// computation gives its result the same Seq in every graph.
	ds := m.Dataset
	ds.Op = n.OpID()
	cp := manifest.Checkpoint{Stream: n.OpID(), Dataset: ds, Name: m.Name, Partitions: m.Partitions,
		HashPartitions: m.HashPartitions, Durable: rec.Dir}
	if err := n.Adopt(cp); err != nil {
		return false, err
	}
	c.log.Info("state restored from its checkpoint", "stream", n.OpID(), "state", old.StateName, "time", m.Dataset.Time, "checkpoint", rec.Dir)
	return true, nil
}
