package rdd

import (
	"context"

	"errors"
	"fmt"
	"github.com/dstream/dstream/block"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// BlockStore keeps materialised partitions. Implemented by block.Store.
type BlockStore interface {
	// Put stores v under key in class (block.Cache blocks may be evicted at
	// any time; block.State blocks are pinned).
	Put(key string, v any, size int64, class block.Class) error
	Get(key string) (any, bool)
	Remove(key string) bool
	RemoveIf(pred func(key string) bool) int
}

// ShuffleStore keeps the map outputs of shuffles. Implemented by shuffle.Store.
type ShuffleStore interface {
	// PutMapOutput stores the buckets (one per reduce partition) that map task
	// mapPart of shuffle wrote; the output counts only once all are stored.
	PutMapOutput(shuffle ID, mapPart int, buckets []any) error
	// Bucket returns the bucket reduce of map output mapPart, if it is present.
	Bucket(shuffle ID, mapPart, reduce int) (any, bool)
	// Missing lists the map partitions of shuffle whose output is not complete.
	Missing(shuffle ID, numMaps int) []int
	// RemoveIf drops every shuffle whose ID matches.
	RemoveIf(pred func(ID) bool)
}

// Job is one action on a dataset: on each of the given partitions of Final,
// run the result kind Kind when it is named (a task any process can run
// from its spec), else Func (a closure: the task runs where the job was
// submitted).
type Job struct {
	Name       string
	Final      *Node
	Partitions []int
	Kind       ResultKind
	Func       func(tc *TaskContext, p int) (any, error)
	// Background runs the job's tasks in each worker's background slot,
	// beside its task slots, not in one of them: for work that mostly
	// waits on I/O and must not hold back the next interval's tasks (a
	// state checkpoint's writes). A runner without such slots runs it as
	// any job.
	Background bool
}

// JobRunner runs jobs: splits them into stages, schedules tasks, retries.
// Implemented by sched.Local (and, for clusters, by the master).
type JobRunner interface {
	// RunJob runs job and returns Func's results in the order of job.Partitions.
	RunJob(ctx context.Context, job *Job) ([]any, error)
}

// Config wires a Context to the services it runs on.
type Config struct {
	Runner      JobRunner
	Blocks      BlockStore
	Shuffles    ShuffleStore
	Parallelism int // default number of partitions of shuffles and Parallelize
	Logger      *slog.Logger
}

// Context owns datasets: it names them, runs their jobs and stores their blocks.
type Context struct {
	cfg       Config
	scopes    scopes
	hints     sizeHints
	combiners combinerPool // idle combiners of ended tasks (combiners.go)
	outputs   sync.Map     // output id -> func(*TaskContext, int64, int, []T) error (RegisterOutput)
	funcs     sync.Map     // partition function id -> *partitionFunc (RegisterPartitionFunc)
}

// NewContext returns a Context over cfg's services.
func NewContext(cfg Config) (*Context, error) {
	if cfg.Runner == nil || cfg.Blocks == nil || cfg.Shuffles == nil {
		return nil, errors.New("rdd: Config needs a Runner, a BlockStore and a ShuffleStore")
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Context{cfg: cfg}, nil
}

// Parallelism is the default number of partitions.
func (c *Context) Parallelism() int { return c.cfg.Parallelism }

// Shuffles returns the shuffle store.
func (c *Context) Shuffles() ShuffleStore { return c.cfg.Shuffles }

// Blocks returns the block store.
func (c *Context) Blocks() BlockStore { return c.cfg.Blocks }

// RunJob runs a job through the configured runner.
func (c *Context) RunJob(ctx context.Context, job *Job) ([]any, error) {
	return c.cfg.Runner.RunJob(ctx, job)
}

func (c *Context) newNode(name string, parts int, deps ...Dep) *Node {
	return &Node{ID: c.scopes.newID(), Name: name, NumPartitions: parts, ctx: c, deps: deps}
}

// BlockKey is the block store key of partition p of dataset id.
func BlockKey(id ID, p int) string {
	return fmt.Sprintf("rdd_%d_%d_%d_%d", id.Op, id.Time, id.Seq, p)
}

// parseBlockKey inverts BlockKey. It allocates nothing: a block store's
// index (BlockSeries) calls it for every block stored and removed.
func parseBlockKey(key string) (ID, bool) {
	rest, ok := strings.CutPrefix(key, "rdd_")
	if !ok {
		return ID{}, false
	}
	var f [3]string
	for i := range f {
		if f[i], rest, ok = strings.Cut(rest, "_"); !ok {
			return ID{}, false
		}
	}
	if strings.Contains(rest, "_") {
		return ID{}, false // not four fields
	}
	op, e1 := strconv.ParseInt(f[0], 10, 32)
	t, e2 := strconv.ParseInt(f[1], 10, 64)
	seq, e3 := strconv.ParseInt(f[2], 10, 32)
	if e1 != nil || e2 != nil || e3 != nil {
		return ID{}, false
	}
	return ID{Op: int32(op), Time: t, Seq: int32(seq)}, true
}

// seriesRemover is a BlockStore that indexes the blocks of datasets by
// operator and interval (block.Store with Options.Series = BlockSeries).
type seriesRemover interface {
	// RemoveSeries drops the blocks of operator series' datasets of
	// intervals up to upTo; ok is false if the store keeps no index.
	RemoveSeries(series, upTo int64) (n int, ok bool)
}

// BlockSeries names the series of a dataset's block for a block store's
// index (block.Options.Series): the dataset's operator, and its interval as
// the place in it. ok is false for a key BlockKey did not make.
func BlockSeries(key string) (series, at int64, ok bool) {
	id, ok := parseBlockKey(key)
	return int64(id.Op), id.Time, ok
}

// ShuffleForgetter is implemented by job runners that track where shuffle
// outputs live (the scheduler's core): Forget tells them too.
type ShuffleForgetter interface {
	ForgetShuffles(pred func(ID) bool)
}

// ForgetRule names, by value, datasets to forget: those operator Op
// generated for intervals up to UpTo (Unix ms, inclusive). Rules, unlike
// predicates, can be sent to other processes.
type ForgetRule struct {
	Op   int32 `json:"op"`
	UpTo int64 `json:"upTo"`
}

// Matches reports whether the rule covers dataset id.
func (r ForgetRule) Matches(id ID) bool { return id.Op == r.Op && id.Time <= r.UpTo }

// Forget drops the cached blocks and shuffle outputs of every dataset that
// one of rules covers. The stream layer calls it for intervals that no
// window or state still needs, which bounds what a long-running job retains.
func (c *Context) Forget(rules ...ForgetRule) {
	if len(rules) == 0 {
		return
	}
	pred := func(id ID) bool {
		for _, r := range rules {
			if r.Matches(id) {
				return true
			}
		}
		return false
	}
	indexed := false
	if ix, ok := c.cfg.Blocks.(seriesRemover); ok {
		// Each rule's blocks, found by the store's index: forgetting an
		// interval costs what it holds, not a scan of every block.
		for _, r := range rules {
			_, indexed = ix.RemoveSeries(int64(r.Op), r.UpTo)
		}
	}
	if !indexed {
		c.cfg.Blocks.RemoveIf(func(key string) bool {
			id, ok := parseBlockKey(key)
			return ok && pred(id)
		})
	}
	c.cfg.Shuffles.RemoveIf(pred)
	if f, ok := c.cfg.Runner.(ShuffleForgetter); ok {
		f.ForgetShuffles(pred)
	}
}
