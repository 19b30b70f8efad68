package rdd

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Node is the untyped face of a dataset: what the scheduler needs to know to
// split a job into stages and run its tasks. Typed datasets (Dataset[T]) wrap one.
type Node struct {
	ID            ID
	Name          string // operator name, used in errors and the UI
	NumPartitions int
	ctx           *Context

	mu   sync.Mutex
	deps []Dep // nil once the lineage is truncated by a checkpoint

	// Kept partitions (kept.go): stored where they were computed, with
	// the lineage kept to recompute any that is lost.
	kept    bool                                             // every partition is stored somewhere
	durable func(ctx context.Context, p int) ([]byte, error) // reads partition p from durable storage

	typed  partitionRunner      // the Dataset[T] wrapping the node (spec.go)
	locate func(p int) []string // where partition p is stored, if known (remote.go)

	// A persisted dataset's partitions are cached where a task computed
	// them: computedAt says where, as the scheduler last heard
	// (NoteComputed), so a later job's task goes there (PreferredLocations).
	persisted  bool
	computedAt []string

	// A dataset to be kept at the end of its interval (PinOnCompute) is
	// stored pinned by the task that computes it, which reports it; the
	// process that runs the tasks notes where (NotePinned), and Keep runs
	// no task for a partition already pinned somewhere.
	pinOnCompute bool
	pinnedAt     []holder // by partition: the first process that reported it pinned

	// storage counts the changes to how n's partitions are read: kept,
	// located, checkpointed, lost (StorageVersion).
	storage atomic.Uint64
}

// holder is where a partition is pinned: addr ("" for the process itself)
// when set.
type holder struct {
	addr string
	set  bool
}

// StorageVersion changes (grows) whenever what a manifest says of n's
// partitions may have changed: whether they are kept or checkpointed, where
// they are (Locations), a durable copy. A caller that read the version, then
// that state, may reuse what it derived from the state for as long as the
// version stays the same (the master's manifest entries, built for every
// interval from a window's worth of kept datasets). Each change is made
// before the version grows, so a reader never pairs a new version with an
// old state.
func (n *Node) StorageVersion() uint64 { return n.storage.Load() }

// Deps returns the node's dependencies: its lineage, one step back (none
// once a checkpoint truncated it). A kept node (Keep) shows its lineage
// too: a scheduler plans its shuffles, whose outputs are kept as long as
// the lineage and so cost nothing while they are there, and are recomputed
// (in parallel, by the scheduler) when a lost worker held them.
func (n *Node) Deps() []Dep {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.deps
}

func (n *Node) String() string { return fmt.Sprintf("%s[%s]", n.Name, n.ID) }

// Dep is a dependency of a node on a parent node: NarrowDep or *ShuffleDep.
type Dep interface{ parent() *Node }

// NarrowDep means each child partition reads a bounded set of parent partitions
// in the same task (pipelined, no data movement).
type NarrowDep struct{ Parent *Node }

func (d NarrowDep) parent() *Node { return d.Parent }

// ShuffleDep means every child partition reads a bucket of every parent
// partition: a stage boundary. The shuffle's ID is the ID of the child node.
type ShuffleDep struct {
	ID        ID
	Parent    *Node
	NumReduce int
	// Write computes parent partition mapPart and stores its buckets, one per
	// reduce partition, in the shuffle store. It runs inside a map task.
	Write func(tc *TaskContext, mapPart int) error
}

func (d *ShuffleDep) parent() *Node { return d.Parent }

// ParentOf returns the parent a dependency points at.
func ParentOf(d Dep) *Node { return d.parent() }

// visited holds the sets of nodes lineage walks have seen, for reuse: a
// state stream's lineage spans every interval since its last durable
// checkpoint (hundreds of nodes at short intervals), and the master walks it
// several times a job, so a set grown anew for each walk was most of the
// walk's cost.
var visited = sync.Pool{New: func() any { return map[*Node]struct{}{} }}

// maxVisited bounds the sets kept for reuse: a larger one is left to the
// collector.
const maxVisited = 1 << 14

func takeVisited() map[*Node]struct{} { return visited.Get().(map[*Node]struct{}) }

// putVisited empties seen (it holds no node after) and keeps it for reuse.
func putVisited(seen map[*Node]struct{}) {
	if len(seen) > maxVisited {
		return
	}
	clear(seen)
	visited.Put(seen)
}

// NewNode returns a node with the given lineage. Typed datasets make their
// own; schedulers' tests and remote plans build bare ones.
func NewNode(id ID, name string, parts int, deps ...Dep) *Node {
	return &Node{ID: id, Name: name, NumPartitions: parts, deps: deps}
}
