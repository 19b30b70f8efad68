package rdd

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// TaskContext is what a running task knows about itself. A task computes one
// partition of one stage; its identity (stage, partition, attempt) is
// meaningful in any process.
type TaskContext struct {
	Ctx       context.Context
	Job       int
	Stage     int
	Partition int
	Attempt   int
	// Remote reads what other processes hold; nil in local[N], where
	// everything a task reads is in this process.
	Remote Remote
	// Location is the peer address of the process running the task (""
	// in local[N]); a checkpoint task returns it as where its block is.
	Location string
	// PushTo is, for a map task, the peer address of the process expected
	// to run each reduce partition's task ("" none known; nil for all):
	// after storing its output, the task pushes each bucket to its reader's
	// process (Remote's BucketPusher), so the reduce task reads it in place
	// instead of fetching it. A hint: the map output is where it was
	// written whatever happens to a push.
	PushTo []string

	op     uint32            // the operator whose user code ran last (opID), for error reports
	fig    TaskFigures       // what the task has measured so far (figures.go)
	pinned []PinnedPartition // the partitions it stored pinned (PinOnCompute)
	empty  []byte            // a map task's empty buckets (EmptyBuckets)
}

// EmptyBuckets returns, for a map task that stored its output in a cluster
// (Remote set), which of its buckets are empty: bit r (byte r/8, bit r%8) set when bucket r holds no
// record; nil for any other task. The scheduler's process tells the
// readers (Remote's EmptyBucketer), which then need not fetch them, and the
// map task pushes none of them.
func (tc *TaskContext) EmptyBuckets() []byte { return tc.empty }

// BucketEmpty reports whether bit r of an EmptyBuckets bitmap is set.
func BucketEmpty(bits []byte, r int) bool {
	return r >= 0 && r/8 < len(bits) && bits[r/8]&(1<<(r%8)) != 0
}

// emptyBits returns the EmptyBuckets bitmap of buckets, nil when none is
// empty.
func emptyBits[X any](buckets [][]X) []byte {
	var bits []byte
	for r, b := range buckets {
		if len(b) == 0 {
			if bits == nil {
				bits = make([]byte, (len(buckets)+7)/8)
			}
			bits[r/8] |= 1 << (r % 8)
		}
	}
	return bits
}

// PinnedPartition names a partition of a PinOnCompute dataset that a task
// computed and stored pinned in its process's block store.
type PinnedPartition struct {
	Dataset   ID
	Partition int

	node *Node // the dataset's node, when it is this process's (not decoded from a peer)
}

// Pinned returns the partitions the task stored pinned (PinOnCompute), for
// the scheduler's process to note once the task succeeded (NotePinned).
func (tc *TaskContext) Pinned() []PinnedPartition { return tc.pinned }

// NewTaskContext returns the context of one task attempt. The task writes
// it once per record (enter), so it has its cache lines to itself (loop.go).
func NewTaskContext(ctx context.Context, job, stage, part, attempt int) *TaskContext {
	tc := cell[TaskContext]()
	*tc = TaskContext{Ctx: ctx, Job: job, Stage: stage, Partition: part, Attempt: attempt, fig: TaskFigures{RecordsWritten: -1}}
	return tc
}

// enter records that user code of operator op (an opID) is about to run. It
// runs once per record: an integer store, with no GC write barrier.
func (tc *TaskContext) enter(op uint32) { tc.op = op }

// opNames interns operator names, so that enter stores an integer. Names
// are the operators' own (a small fixed set); past maxOps distinct names,
// new ones share number 1, "operator".
var opNames = struct {
	sync.Mutex
	ids   map[string]uint32
	names []string
}{ids: map[string]uint32{"operator": 1}, names: []string{"", "operator"}}

const maxOps = 1024

// opID returns name's number; 0 is no operator.
func opID(name string) uint32 {
	opNames.Lock()
	defer opNames.Unlock()
	if id, ok := opNames.ids[name]; ok {
		return id
	}
	if len(opNames.names) >= maxOps {
		return 1
	}
	id := uint32(len(opNames.names))
	opNames.ids[name] = id
	opNames.names = append(opNames.names, name)
	return id
}

// opName returns the name of operator id.
func opName(id uint32) string {
	opNames.Lock()
	defer opNames.Unlock()
	if int(id) < len(opNames.names) {
		return opNames.names[id]
	}
	return ""
}

// abort carries an error out of an iterator; RunTask turns it back into an error.
type abort struct{ err error }

// Fail stops the task with err. It does not return.
func (tc *TaskContext) Fail(err error) { panic(abort{err}) }

// TaskError is a task's failure: the operator whose code failed and why.
type TaskError struct {
	Op    string // operator name, empty if the failure is not in user code
	Err   error  // the error, or a description of the panic
	Stack string // stack of a panic, if it was one
}

func (e *TaskError) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("in operator %s: %v", e.Op, e.Err)
}

func (e *TaskError) Unwrap() error { return e.Err }

// FetchFailedError reports that a shuffle output a reduce task needed is gone
// (evicted, or on a lost worker): the scheduler recomputes it from lineage.
type FetchFailedError struct {
	Shuffle ID
	Map     int
	Cause   error // why a remote fetch failed, if it was one
	// From is the peer the fetch went to, and Unreachable says it could
	// not be reached (rather than answered it does not hold the output):
	// the scheduler then takes every map output it holds for lost.
	From        string
	Unreachable bool
}

// PeerError is a Remote's error from a peer it could not reach (as opposed
// to one that answered it does not hold what was asked: ErrNotHeld).
type PeerError struct {
	Addr string
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer %s: %v", e.Addr, e.Err) }
func (e *PeerError) Unwrap() error { return e.Err }

func (e *FetchFailedError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("shuffle %s map output %d is missing: %v", e.Shuffle, e.Map, e.Cause)
	}
	return fmt.Sprintf("shuffle %s map output %d is missing", e.Shuffle, e.Map)
}

// RunTask runs fn as the body of a task, turning a panic or a Fail into a
// *TaskError naming the operator that failed.
func RunTask[R any](tc *TaskContext, fn func() (R, error)) (res R, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if a, ok := r.(abort); ok {
			var ff *FetchFailedError
			if errors.As(a.err, &ff) {
				err = a.err
				return
			}
			err = &TaskError{Op: opName(tc.op), Err: a.err}
			return
		}
		var perr error
		if e, ok := r.(error); ok {
			perr = fmt.Errorf("panic: %w", e)
		} else {
			perr = fmt.Errorf("panic: %v", r)
		}
		err = &TaskError{Op: opName(tc.op), Err: perr, Stack: string(debug.Stack())}
	}()
	res, err = fn()
	if err != nil {
		var te *TaskError
		var ff *FetchFailedError
		if !errors.As(err, &te) && !errors.As(err, &ff) {
			err = &TaskError{Op: opName(tc.op), Err: err}
		}
	}
	return res, err
}
