package rdd

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync/atomic"

	"github.com/dstream/dstream/block"
)

// Dataset is an immutable, partitioned collection of T with lineage: Spark's
// RDD. Operators on it (Map, ReduceByKey, ...) are functions in this package;
// actions (Count, Collect, ...) run a job.
type Dataset[T any] struct {
	node *Node
	// compute computes a partition from the lineage: nil once the lineage
	// is cut (Checkpoint, Truncate), under node.mu, since it holds the
	// parent datasets (a state stream's every earlier interval).
	compute func(tc *TaskContext, p int) iter.Seq[T]

	persisted    atomic.Bool
	checkpointed atomic.Bool // lineage truncated: partitions live pinned in the block store

	// hashN is n when the records are known to be placed by a hash
	// partitioner over n partitions (0: unknown). A cogroup reads such an
	// input in place, without shuffling it.
	hashN int
}

func newDataset[T any](c *Context, name string, parts int, compute func(*TaskContext, int) iter.Seq[T], deps ...Dep) *Dataset[T] {
	return (&Dataset[T]{node: c.newNode(name, parts, deps...), compute: compute}).bind()
}

// Node returns the dataset's untyped lineage node.
func (d *Dataset[T]) Node() *Node { return d.node }

// ID returns the dataset's process-independent ID.
func (d *Dataset[T]) ID() ID { return d.node.ID }

// NumPartitions returns the number of partitions.
func (d *Dataset[T]) NumPartitions() int { return d.node.NumPartitions }

// Context returns the context the dataset belongs to.
func (d *Dataset[T]) Context() *Context { return d.node.ctx }

func (d *Dataset[T]) String() string { return d.node.String() }

// Persist keeps the partitions in the block store once computed (evictable,
// least recently used first; an evicted partition is recomputed from lineage).
func (d *Dataset[T]) Persist() *Dataset[T] {
	d.persisted.Store(true)
	d.node.mu.Lock()
	d.node.persisted = true
	d.node.mu.Unlock()
	return d
}

// PinOnCompute persists d (Persist) and says it will be kept (Keep) once its
// interval's jobs ran: a task that computes one of its partitions stores it
// pinned (block.State) rather than evictable, and reports it
// (TaskContext.Pinned), so Keep, told where (NotePinned), runs no task for
// it: a state stream's datasets are kept without a job of their own after
// the interval's outputs computed them. A partition that could not be
// pinned (the store's pinned bound) is not reported: Keep computes and
// pins it as it does every partition of a dataset without PinOnCompute,
// and fails as that does when it cannot.
func (d *Dataset[T]) PinOnCompute() *Dataset[T] {
	d.Persist()
	d.node.mu.Lock()
	d.node.pinOnCompute = true
	d.node.mu.Unlock()
	return d
}

// Iterator returns partition p's records, from the block store when the
// dataset is persisted and the partition is there, else by computing it.
func (d *Dataset[T]) Iterator(tc *TaskContext, p int) iter.Seq[T] {
	d.node.mu.Lock()
	kept, compute, pin := d.node.kept, d.compute, d.node.pinOnCompute
	d.node.mu.Unlock()
	if kept || compute == nil || d.checkpointed.Load() {
		return d.keptIterator(tc, p)
	}
	if !d.persisted.Load() {
		return compute(tc, p)
	}
	return func(yield func(T) bool) {
		key := BlockKey(d.node.ID, p)
		blocks := d.node.ctx.cfg.Blocks
		if v, ok := blocks.Get(key); ok {
			sliceSeq(tc, v.([]T))(yield) // read from the cache: counted here
			return
		}
		// Sized as the last partition of the same dataset was (rdd/hint.go):
		// no growing from empty, copying as it goes. A partition much
		// smaller than that (skew) is copied to its size: the cache holds
		// no room it does not account.
		xs := collectInto(make([]T, 0, d.node.ctx.hints.get(d.node.ID, hintCollect, 0)), compute(tc, p)) // its inputs counted what it read
		d.node.ctx.hints.put(d.node.ID, hintCollect, len(xs))
		if cap(xs) > 2*len(xs)+64 {
			xs = slices.Clone(xs)
		}
		class := block.Cache
		if pin {
			class = block.State
		}
		switch err := blocks.Put(key, xs, block.EstimateSize(xs), class); {
		case err == nil && pin:
			tc.pinned = append(tc.pinned, PinnedPartition{Dataset: d.node.ID, Partition: p, node: d.node})
		case err != nil && pin:
			// Not reported: Keep pins it, or fails saying why.
		case err != nil && !errors.Is(err, block.ErrTooLarge):
			d.node.ctx.cfg.Logger.Warn("not caching partition", "dataset", d.node.String(), "partition", p, "err", err)
		}
		for _, x := range xs {
			if !yield(x) {
				return
			}
		}
	}
}

// stored returns partition p as this process's block store holds it, when
// d is kept, checkpointed or persisted and the block is here in its records
// (not encoded), counting them as read as Iterator would; else nil, false.
// The slice is the store's: read it, never change it.
func (d *Dataset[T]) stored(tc *TaskContext, p int) ([]T, bool) {
	n := d.node
	n.mu.Lock()
	kept := n.kept
	n.mu.Unlock()
	if !kept && !d.checkpointed.Load() && !d.persisted.Load() {
		return nil, false
	}
	v, ok := n.ctx.cfg.Blocks.Get(BlockKey(n.ID, p))
	if !ok {
		return nil, false
	}
	xs, ok := v.([]T)
	if ok {
		tc.read(len(xs))
	}
	return xs, ok
}

// partition returns partition p's records in a slice of the caller's own:
// a stored partition (stored) copied at its size in one step, else the
// records Iterator yields, collected.
func (d *Dataset[T]) partition(tc *TaskContext, p int) []T {
	if xs, ok := d.stored(tc, p); ok {
		return slices.Clone(xs)
	}
	return collectOf(d.Iterator(tc, p))
}

// Checkpoint materialises every partition into the block store, pinned, and
// truncates the lineage, so later datasets that depend on this one never
// recompute its history (Keep, then cut the lineage with no durable copy: a
// partition whose holder is lost is lost). Unpinning happens when the
// dataset is forgotten (Context.Forget).
func (d *Dataset[T]) Checkpoint(ctx context.Context) error {
	if d.checkpointed.Load() {
		return nil
	}
	if err := d.Keep(ctx); err != nil {
		return err
	}
	d.node.mu.Lock()
	d.cutLocked()
	d.node.mu.Unlock()
	d.checkpointed.Store(true)
	d.node.storage.Add(1)
	return nil
}

// cutLocked cuts d's lineage in memory: its dependencies and the function
// that computes it from them, which holds its parents, so that nothing
// before a cut stays reachable from it (a state stream's earlier
// intervals). The caller holds d.node.mu.
func (d *Dataset[T]) cutLocked() {
	d.node.deps = nil
	d.compute = nil
}

// Checkpointed reports whether the lineage has been truncated.
func (d *Dataset[T]) Checkpointed() bool { return d.checkpointed.Load() }

// LineageDepth returns the number of dependencies on the longest chain from
// the dataset back to a node with none (a source, or a checkpointed dataset):
// 0 for such a node. It is what recomputing a lost partition may have to
// replay; a state stream, checkpointed every interval, keeps it bounded.
func (d *Dataset[T]) LineageDepth() int { return lineageDepth(d.node, map[*Node]int{}) }

// lineageDepth is n's LineageDepth; memo holds the nodes already measured,
// so shared ancestors are walked once.
func lineageDepth(n *Node, memo map[*Node]int) int {
	if depth, ok := memo[n]; ok {
		return depth
	}
	depth := 0
	for _, dep := range n.Deps() {
		depth = max(depth, 1+lineageDepth(ParentOf(dep), memo))
	}
	memo[n] = depth
	return depth
}
