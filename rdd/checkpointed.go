package rdd

// FromCheckpoint returns dataset id as a checkpoint left it: its parts
// partitions are pinned blocks in the block store (BlockKey(id, p)), and it
// has no lineage. A process that did not compute the dataset (a worker, a
// restarted master) adopts a checkpoint the manifest names this way, so its
// copy of the state has the same ID, shape and lineage depth as the
// original's. hashN is the number of partitions its records are hash
// partitioned over (HashPartitions of the original; 0 if unknown).
func FromCheckpoint[T any](c *Context, id ID, name string, parts, hashN int) *Dataset[T] {
	d := (&Dataset[T]{node: &Node{ID: id, Name: name, NumPartitions: parts, ctx: c}, hashN: hashN}).bind()
	d.checkpointed.Store(true)
	return d
}

// HashPartitions returns n when the records are known to be placed by a hash
// partitioner over n partitions, else 0.
func (d *Dataset[T]) HashPartitions() int { return d.hashN }
