package rdd

import (
	"context"
	"sync/atomic"

	"github.com/dstream/dstream/block"
)

// Task figures. Every task attempt counts, as it runs, the records it read
// and wrote and the shuffle bytes it read and wrote, for the UI and
// metrics. Counting is per block or bucket where the records come as a
// slice, and one integer increment in the task's own TaskContext (whose
// cache lines it has to itself) per record where they come one by one: a
// source whose records a function yields (FromFunc, TextFile), and the
// actions that visit records one by one (Foreach, Reduce).

// TaskFigures are what one task attempt measured of its work. A figure
// is -1 when it was not measured (NotMeasured). A failed attempt's figures
// count the work it did before it failed.
type TaskFigures struct {
	// RecordsRead counts the records the task took in from its inputs:
	// the partitions of sources (Parallelize, FromPartitions, TextFile,
	// FromFunc), stored blocks (a persisted dataset's cached partition, a
	// kept or checkpointed one), and shuffle buckets (each one whole, when
	// the task reads it). A partition a task recomputes counts its own
	// inputs, not itself. Every task measures it; records a job's closure
	// (Job.Func) reads other than through a dataset are not counted.
	RecordsRead int64
	// RecordsWritten counts, for a map task, the records it wrote to the
	// shuffle; for a result task, the records of its partition the job's
	// action took (counted, collected, taken, handed to an output or a
	// partition function, checkpointed, folded, visited). -1 for a result
	// task of a job whose function is a closure from outside this package
	// (Job.Func) that does not say.
	RecordsWritten int64
	// ShuffleReadBytes and ShuffleWriteBytes are the shuffle bytes the
	// task read and wrote (0 for a task that reads, or writes, no
	// shuffle). A map task's buckets count the bytes the shuffle store
	// holds them in (block.EstimateSize, as the block store accounts
	// them); a bucket a reduce task reads counts the same when this
	// process holds it (so in local[N], when each bucket is read once, the
	// bytes read sum to the bytes written), and the encoded bytes it
	// fetched or read back from disk when another process holds it or it
	// was spilled.
	ShuffleReadBytes  int64
	ShuffleWriteBytes int64
	// ShuffleRemoteReads counts the buckets a reduce task fetched from
	// another process (the rest it read in place: written or pushed here);
	// ShufflePushes the buckets a map task pushed to the process expected
	// to read them (TaskContext.PushTo). Both 0 in local[N].
	ShuffleRemoteReads int64
	ShufflePushes      int64
}

// NotMeasured is the figures of a task attempt that measured nothing (one
// that never ran, or ran where figures are not reported).
var NotMeasured = TaskFigures{RecordsRead: -1, RecordsWritten: -1, ShuffleReadBytes: -1, ShuffleWriteBytes: -1, ShuffleRemoteReads: -1, ShufflePushes: -1}

// Figures returns what the task has measured so far. Call it from the
// task's goroutine, or after the task has ended.
func (tc *TaskContext) Figures() TaskFigures { return tc.fig }

// read counts n records read.
func (tc *TaskContext) read(n int) { tc.fig.RecordsRead += int64(n) }

// wrote sets the records the task wrote (a map task: to the shuffle; a
// result task: handed to its job's action).
func (tc *TaskContext) wrote(n int64) { tc.fig.RecordsWritten = n }

// bucketRead counts a shuffle bucket read: its records and bytes.
func (tc *TaskContext) bucketRead(records int, bytes int64) {
	tc.fig.RecordsRead += int64(records)
	tc.fig.ShuffleReadBytes += bytes
}

// bucketBytes is what a bucket held in this process counts as shuffle bytes
// read: its encoded bytes when it was spilled, else its size as the shuffle
// store accounted it when its map task put it.
func bucketBytes(v any) int64 {
	if e, ok := v.(Encoded); ok {
		return int64(len(e))
	}
	return block.EstimateSize(v)
}

// figuresKey is the context key of WithFigures.
type figuresKey struct{}

// figuresSink is where WithFigures asked for the figures of a task.
type figuresSink struct {
	f       *TaskFigures
	claimed atomic.Bool // by the first task Lineage.Execute ran under it
}

// WithFigures returns a copy of ctx under which the first task that
// Lineage.Execute runs (with a TaskContext of that context, or of one
// derived from it) stores its figures in *f when it ends; tasks of jobs it
// may run in turn do not. The process serving a task for another one (a
// cluster's worker) uses it to report them with the task's result.
func WithFigures(ctx context.Context, f *TaskFigures) context.Context {
	return context.WithValue(ctx, figuresKey{}, &figuresSink{f: f})
}

// claimFigures returns where WithFigures asked for tc's figures, if it did
// and no other task has claimed them.
func (tc *TaskContext) claimFigures() *TaskFigures {
	if tc.Ctx == nil {
		return nil
	}
	s, ok := tc.Ctx.Value(figuresKey{}).(*figuresSink)
	if !ok || !s.claimed.CompareAndSwap(false, true) {
		return nil
	}
	return s.f
}
