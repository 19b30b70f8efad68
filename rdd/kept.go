package rdd

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/codec"
)

// Kept datasets: the D-Stream paper's state RDDs between checkpoints. Keep
// stores every partition in the block store of the process that computes it
// and keeps the lineage: a job reads a kept partition where it is, and only
// a partition whose holder is lost is recomputed from lineage (in the task
// that needs it, in parallel with the others), back to the last durable
// checkpoint. Truncate then cuts the lineage once a durable copy exists.

// Keep computes every partition of d and stores it, pinned (block.State),
// where it is computed; d records where (Locations), and tasks read it from
// there. A partition a task already pinned (PinOnCompute, NotePinned) is
// where that task ran, and Keep runs no task for it: with every partition
// pinned it runs no job. Calling it again is a no-op.
func (d *Dataset[T]) Keep(ctx context.Context) error {
	n := d.node
	n.mu.Lock()
	kept := n.kept || (n.deps == nil && d.checkpointed.Load())
	locs := make([]string, n.NumPartitions)
	var missing []int
	for p := range locs {
		if p < len(n.pinnedAt) && n.pinnedAt[p].set {
			locs[p] = n.pinnedAt[p].addr
		} else {
			missing = append(missing, p)
		}
	}
	n.mu.Unlock()
	if kept {
		return nil
	}
	c := n.ctx
	if len(missing) > 0 {
		// Each task stores its partition where it runs (KindCheckpoint), so the
		// block lives with the worker that computed it, and says where that is.
		res, err := c.RunJob(ctx, &Job{Name: "keep " + n.String(), Final: n, Partitions: missing, Kind: KindCheckpoint})
		if err != nil {
			return err
		}
		for i, r := range res {
			locs[missing[i]], _ = r.(string)
		}
	}
	located := slices.ContainsFunc(locs, func(l string) bool { return l != "" })
	n.mu.Lock()
	if located {
		n.locate = func(p int) []string { return locs[p : p+1 : p+1] }
	}
	n.kept = true
	n.pinnedAt = nil
	n.storage.Add(1)
	n.mu.Unlock()
	return nil
}

// NotePinned tells the scheduler's process that the task at addr ("" for
// this process), which succeeded, stored pinned the partitions it reported
// (TaskContext.Pinned): Keep reads them there rather than running a task.
// A partition already reported keeps its first holder (a copy pinned by
// another attempt stays unused until its interval is forgotten, as every
// block of it is); lin finds the datasets a peer's task reported by ID (a
// task of this process names its own), and one it does not hold, or one
// already kept, is ignored.
func NotePinned(lin *Lineage, pinned []PinnedPartition, addr string) {
	for _, pp := range pinned {
		n := pp.node
		if n == nil && lin != nil {
			n = lin.Find(pp.Dataset) // indexes the lineage once per job
		}
		if n == nil {
			continue
		}
		n.mu.Lock()
		if n.pinOnCompute && !n.kept && pp.Partition >= 0 && pp.Partition < n.NumPartitions {
			if n.pinnedAt == nil {
				n.pinnedAt = make([]holder, n.NumPartitions)
			}
			if !n.pinnedAt[pp.Partition].set {
				n.pinnedAt[pp.Partition] = holder{addr: addr, set: true}
			}
		}
		n.mu.Unlock()
	}
}

// MarkKept says d's partitions are stored at locs (one address per
// partition, "" for this process), as the process that kept them said: a
// process that did not run Keep (a worker, given the interval's manifest)
// reads them there, and recomputes one from lineage if its holder is gone.
func (d *Dataset[T]) MarkKept(locs []string) {
	locs = slices.Clone(locs)
	n := d.node
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case len(locs) == 0:
		n.locate = nil // no holder is known: read here, else recompute
	case len(locs) == n.NumPartitions:
		n.locate = func(p int) []string {
			if locs[p] == "" {
				return nil
			}
			return locs[p : p+1 : p+1]
		}
	}
	n.kept = true
	n.storage.Add(1)
}

// Kept reports whether d's partitions are kept (Keep, MarkKept) or
// checkpointed.
func (d *Dataset[T]) Kept() bool {
	d.node.mu.Lock()
	defer d.node.mu.Unlock()
	return d.node.kept || d.checkpointed.Load()
}

// LoseLocation forgets that any partition of d is stored at addr (a process
// that is gone) and reports whether one was. A lost partition is read from
// durable storage when there is a copy, else recomputed from lineage.
func (d *Dataset[T]) LoseLocation(addr string) bool {
	n := d.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.locate == nil || addr == "" {
		return false
	}
	locs := make([][]string, n.NumPartitions)
	hit := false
	for p := range locs {
		for _, l := range n.locate(p) {
			if l == addr {
				hit = true
				continue
			}
			locs[p] = append(locs[p], l)
		}
	}
	if !hit {
		return false
	}
	n.locate = func(p int) []string { return locs[p] }
	n.storage.Add(1)
	return true
}

// Truncate cuts d's lineage: from now on a partition that is not in any
// block store is read with durable (from a checkpoint store, encoded by the
// record type's codec), and never recomputed. Call it once a durable copy
// of every partition is committed.
func (d *Dataset[T]) Truncate(durable func(ctx context.Context, p int) ([]byte, error)) {
	n := d.node
	n.mu.Lock()
	n.durable = durable
	d.cutLocked()
	n.mu.Unlock()
	d.checkpointed.Store(true)
	n.storage.Add(1)
}

// Durable reports whether d's partitions can be read from durable storage.
func (d *Dataset[T]) Durable() bool {
	d.node.mu.Lock()
	defer d.node.mu.Unlock()
	return d.node.durable != nil
}

// EncodePartition returns partition p's records encoded by T's codec, for
// writing to durable storage (DecodeBlock reads them back).
func (d *Dataset[T]) EncodePartition(tc *TaskContext, p int) ([]byte, error) {
	c, err := codec.For[T]()
	if err != nil {
		return nil, fmt.Errorf("%s cannot be stored durably: %w", d.node, err)
	}
	return c.Append(nil, collectOf(d.Iterator(tc, p)))
}

// keptIterator reads partition p of a kept or checkpointed dataset: from
// this process's block store, else from a peer holding it, else from
// durable storage, else (lineage permitting) by recomputing it, which also
// keeps the result here. It fails the task when none of these can.
func (d *Dataset[T]) keptIterator(tc *TaskContext, p int) iter.Seq[T] {
	return func(yield func(T) bool) {
		xs, stored := d.readKept(tc, p)
		if stored {
			sliceSeq(tc, xs)(yield)
			return
		}
		for _, x := range xs {
			if !yield(x) {
				return
			}
		}
	}
}

// readKept returns partition p and whether it was read from a store (this
// process's, a peer's or durable storage) rather than recomputed: only
// then are its records read by the task (a recomputed partition's inputs
// counted theirs).
func (d *Dataset[T]) readKept(tc *TaskContext, p int) ([]T, bool) {
	n := d.node
	blocks := n.ctx.cfg.Blocks
	key := BlockKey(n.ID, p)
	what := fmt.Sprintf("partition %d of %s", p, n)
	if v, ok := blocks.Get(key); ok {
		xs, err := DecodeBlock[T](v)
		if err != nil {
			tc.Fail(fmt.Errorf("%s: block %s: %w", what, key, err))
		}
		return xs, true
	}
	var errs []error
	if locs := n.Locations(p); tc.Remote != nil && len(locs) > 0 {
		b, err := tc.Remote.Block(tc.Ctx, key, locs)
		if err == nil {
			xs, err := DecodeBlock[T](Encoded(b))
			if err != nil {
				tc.Fail(fmt.Errorf("%s: block %s: %w", what, key, err))
			}
			return xs, true
		}
		if tc.Ctx.Err() != nil {
			tc.Fail(tc.Ctx.Err())
		}
		errs = append(errs, err)
	}
	n.mu.Lock()
	durable, deps, compute := n.durable, n.deps, d.compute
	n.mu.Unlock()
	var xs []T
	stored := false
	switch {
	case durable != nil:
		stored = true
		b, err := durable(tc.Ctx, p)
		if err != nil {
			tc.Fail(fmt.Errorf("%s: %w", what, errors.Join(append(errs, err)...)))
		}
		xs, err = DecodeBlock[T](Encoded(b))
		if err != nil {
			tc.Fail(fmt.Errorf("%s from its checkpoint: %w", what, err))
		}
	case deps != nil && compute != nil:
		if len(errs) > 0 {
			n.ctx.cfg.Logger.Info("recomputing a kept partition from lineage", "dataset", n.String(), "partition", p, "err", errors.Join(errs...))
		} else {
			n.ctx.cfg.Logger.Info("recomputing a kept partition from lineage: no holder left", "dataset", n.String(), "partition", p)
		}
		xs = collectOf(compute(tc, p))
	default:
		errs = append(errs, errors.New("no copy is left and its lineage is truncated"))
		tc.Fail(fmt.Errorf("%s: block %s is lost: %w", what, key, errors.Join(errs...)))
	}
	// Keep what was fetched or recomputed here, so the interval's other
	// tasks (and the next interval's) read it instead of redoing it.
	if err := blocks.Put(key, xs, block.EstimateSize(xs), block.State); err != nil && !errors.Is(err, block.ErrTooLarge) {
		n.ctx.cfg.Logger.Warn("not keeping a recovered partition", "dataset", n.String(), "partition", p, "err", err)
	}
	return xs, stored
}
