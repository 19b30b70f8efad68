package rdd

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/dstream/dstream/block"
)

// Named tasks. A task is a spec, never a closure: which dataset, which
// partition, and what to do with it, in terms every process that built the
// same graph (and materialized the same interval manifests) understands.
// Map tasks name the shuffle they write; result tasks name a ResultKind.
// The functions a task runs are the process's own copy of the graph's: a
// dataset's operators, a shuffle's map side, and the built-in result kinds
// below. Jobs whose function exists only at run time (Reduce, Foreach and
// ForeachPartition with a closure) have no kind: they run where the job is
// submitted.

// ResultKind names what a result task computes from its partition.
type ResultKind struct {
	Name string `json:"name"`        // "count", "collect", "take" or "output"; "" for a job with only a Func
	N    int    `json:"n,omitempty"` // take: the records wanted from the partition; output, partition function: its id
	// Arg is a partition function's run-time argument (RunPartitionFunc).
	Arg string `json:"arg,omitempty"`
}

// The built-in result kinds.
var (
	KindCount   = ResultKind{Name: "count"}
	KindCollect = ResultKind{Name: "collect"}
	// KindCheckpoint stores the partition, pinned, in the block store of
	// the process that computes it, and returns that process's location
	// (TaskContext.Location).
	KindCheckpoint = ResultKind{Name: "checkpoint"}
)

// KindOutput runs the per-partition output registered as id (RegisterOutput).
func KindOutput(id int) ResultKind { return ResultKind{Name: "output", N: id} }

// RegisterOutput registers fn as per-partition output id of c: a result task
// of kind KindOutput(id) calls fn with the interval time of its dataset (its
// ID's Time, Unix ms), the partition and its records; the task's attempt is
// in tc. Register outputs while the graph is built, so every process has the
// same ones. fn must be idempotent per (interval, partition): attempts of a
// task may run more than once, in any process.
func RegisterOutput[T any](c *Context, id int, fn func(tc *TaskContext, t int64, p int, records []T) error) {
	c.outputs.Store(id, fn)
}

// RunOutput runs output id on every partition of d and returns when all
// have been written.
func (d *Dataset[T]) RunOutput(ctx context.Context, id int) error {
	_, err := runNamed[T, struct{}](ctx, d, KindOutput(id), allPartitions(d.node.NumPartitions))
	return err
}

// KindTake asks for the first n records of the partition.
func KindTake(n int) ResultKind { return ResultKind{Name: "take", N: n} }

// Named reports whether the kind names a built-in function.
func (k ResultKind) Named() bool { return k.Name != "" }

func (k ResultKind) String() string {
	if k.Name == "take" {
		return fmt.Sprintf("take(%d)", k.N)
	}
	return k.Name
}

// TaskSpec names one task attempt. The interval is the dataset's ID.Time.
type TaskSpec struct {
	Dataset   ID         `json:"dataset"` // the dataset whose partition the task computes
	Partition int        `json:"partition"`
	Shuffle   *ID        `json:"shuffle,omitempty"` // a map task: the shuffle whose output it writes
	Result    ResultKind `json:"result,omitzero"`   // a result task: what it returns
	Attempt   int        `json:"attempt"`
}

func (s TaskSpec) String() string {
	if s.Shuffle != nil {
		return fmt.Sprintf("map %s[%d] -> shuffle %s, attempt %d", s.Dataset, s.Partition, *s.Shuffle, s.Attempt)
	}
	return fmt.Sprintf("%s %s[%d], attempt %d", s.Result, s.Dataset, s.Partition, s.Attempt)
}

// partitionRunner is the typed face a dataset gives its node, so a result
// kind runs on a node found by ID.
type partitionRunner interface {
	runResult(tc *TaskContext, p int, k ResultKind) (any, error)
	encodeResult(k ResultKind, v any) ([]byte, error)
	decodeResult(k ResultKind, b []byte) (any, error)
}

// bind makes d the typed face of its node; every dataset constructor calls it.
func (d *Dataset[T]) bind() *Dataset[T] {
	registerCodec[T]()
	d.node.typed = d
	return d
}

func (d *Dataset[T]) runResult(tc *TaskContext, p int, k ResultKind) (any, error) {
	switch k.Name {
	case KindCount.Name:
		n := countOf(d.Iterator(tc, p))
		tc.wrote(n)
		return n, nil
	case KindCollect.Name:
		xs := d.partition(tc, p) // the caller's own: Collect hands it to user code
		tc.wrote(int64(len(xs)))
		return xs, nil
	case "take":
		xs := takeOf(d.Iterator(tc, p), k.N)
		tc.wrote(int64(len(xs)))
		return xs, nil
	case KindCheckpoint.Name:
		// A partition already stored here (persisted, computed by an
		// earlier job of the interval) is pinned as it is: the store's
		// records are never changed, so the block needs no copy.
		xs, ok := d.stored(tc, p)
		if !ok {
			xs = collectOf(d.Iterator(tc, p))
		}
		tc.wrote(int64(len(xs)))
		if err := d.node.ctx.cfg.Blocks.Put(BlockKey(d.node.ID, p), xs, block.EstimateSize(xs), block.State); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", d.node, err)
		}
		return tc.Location, nil
	case partitionFuncKind:
		pf, err := d.node.ctx.partitionFunc(k.N)
		if err != nil {
			return nil, err
		}
		return pf.run(tc, d, p, k.Arg)
	case "output":
		v, ok := d.node.ctx.outputs.Load(k.N)
		if !ok {
			return nil, fmt.Errorf("no output %d is registered", k.N)
		}
		fn, ok := v.(func(*TaskContext, int64, int, []T) error)
		if !ok {
			return nil, fmt.Errorf("output %d is %T; dataset %s holds %v", k.N, v, d.node, reflect.TypeFor[T]())
		}
		xs := d.partition(tc, p)
		tc.wrote(int64(len(xs)))
		tc.enter(opForeachPartition)
		return struct{}{}, fn(tc, d.node.ID.Time, p, xs)
	}
	return nil, fmt.Errorf("result kind %q is not a built-in one", k.Name)
}

// takeOf returns the first n records seq yields.
func takeOf[T any](seq func(yield func(T) bool), n int) []T {
	xs := cell[[]T]()
	if n <= 0 {
		return nil
	}
	seq(func(x T) bool {
		*xs = append(*xs, x)
		return len(*xs) < n
	})
	return *xs
}

// Lineage indexes the datasets and shuffles of a lineage by ID, so tasks
// named by spec find theirs without walking the graph each time. The index
// is built on first need: a job whose tasks all compute the final dataset
// (no shuffle) never builds it.
type Lineage struct {
	root     *Node
	once     sync.Once
	nodes    map[ID]*Node
	shuffles map[ID]*ShuffleDep

	inputsMu sync.Mutex
	inputs   map[*Node][]*ShuffleDep // InputShuffles, by node asked
}

// IndexLineage returns the index of root and its ancestors.
func IndexLineage(root *Node) *Lineage { return &Lineage{root: root} }

func (l *Lineage) index() {
	l.once.Do(func() {
		l.nodes, l.shuffles = map[ID]*Node{}, map[ID]*ShuffleDep{}
		walkLineage(l.root, func(n *Node) bool {
			l.nodes[n.ID] = n
			for _, d := range n.Deps() {
				if sd, ok := d.(*ShuffleDep); ok {
					l.shuffles[sd.ID] = sd
				}
			}
			return true
		})
	})
}

// Find returns the node of dataset id, or nil.
func (l *Lineage) Find(id ID) *Node {
	if id == l.root.ID {
		return l.root
	}
	l.index()
	return l.nodes[id]
}

// InputShuffles returns the shuffles a task computing a partition of n, a
// node of the lineage, reads (the package's InputShuffles), walked once per
// node: every task of a stage asks for the same, and a state stream's
// lineage may be hundreds of intervals long. A lineage cut while its job
// runs (Truncate) only loses shuffles, so the first answer still holds
// every shuffle a task may read.
func (l *Lineage) InputShuffles(n *Node) []*ShuffleDep {
	l.inputsMu.Lock()
	defer l.inputsMu.Unlock()
	if deps, ok := l.inputs[n]; ok {
		return deps
	}
	deps := InputShuffles(n)
	if l.inputs == nil {
		l.inputs = map[*Node][]*ShuffleDep{}
	}
	l.inputs[n] = deps
	return deps
}

// Shuffle returns the shuffle dependency id, or nil.
func (l *Lineage) Shuffle(id ID) *ShuffleDep {
	l.index()
	return l.shuffles[id]
}

// walkLineage visits root and its ancestors once each until visit returns false.
func walkLineage(root *Node, visit func(*Node) bool) {
	seen := takeVisited()
	defer putVisited(seen)
	var walk func(n *Node) bool
	walk = func(n *Node) bool {
		if _, ok := seen[n]; ok {
			return true
		}
		seen[n] = struct{}{}
		if !visit(n) {
			return false
		}
		for _, d := range n.Deps() {
			if !walk(d.parent()) {
				return false
			}
		}
		return true
	}
	walk(root)
}

// Execute runs the task spec names, in this process: a map task writes its
// shuffle output to the context's shuffle store; a result task returns its
// kind's result. A spec naming a dataset or shuffle the lineage does not
// hold is an error, as is a result kind the dataset cannot run. Errors and
// panics in user code come back as *TaskError, as from RunTask.
//
// A map task's and a result task's figures (TaskContext.Figures) count what
// they read and wrote, and go where WithFigures asked, if it did.
func (l *Lineage) Execute(tc *TaskContext, spec TaskSpec) (any, error) {
	if f := tc.claimFigures(); f != nil {
		defer func() { *f = tc.fig }()
	}
	tc.wrote(0)
	if spec.Shuffle != nil {
		dep := l.Shuffle(*spec.Shuffle)
		if dep == nil || dep.Parent.ID != spec.Dataset {
			return nil, fmt.Errorf("task %s: no such shuffle in the lineage of %s", spec, l.root)
		}
		return RunTask(tc, func() (any, error) { return nil, dep.Write(tc, spec.Partition) })
	}
	n := l.Find(spec.Dataset)
	switch {
	case n == nil:
		return nil, fmt.Errorf("task %s: no such dataset in the lineage of %s", spec, l.root)
	case n.typed == nil:
		return nil, fmt.Errorf("task %s: dataset %s has no typed face", spec, n)
	case spec.Partition < 0 || spec.Partition >= n.NumPartitions:
		return nil, fmt.Errorf("task %s: %s has %d partitions", spec, n, n.NumPartitions)
	}
	return RunTask(tc, func() (any, error) { return n.typed.runResult(tc, spec.Partition, spec.Result) })
}
