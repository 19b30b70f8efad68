// Package listener carries the engine's events (batches submitted, started
// and completed, output operations, jobs and tasks, receiver errors) to
// whoever listens: the demo's summary line, the web UI, metrics. Posting
// never blocks the engine: the queue is bounded and, when a listener falls
// behind, events are dropped and counted, as Spark's LiveListenerBus does.
//
// Task events are many (one per task attempt) and matter least, so they may
// use only the first three quarters of the queue (TaskQueueShare): past
// that they are dropped while the batch, output and job events still find
// room, and a flood of tasks cannot make the UI lose a batch.
package listener

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one of the types below.
type Event interface{ isEvent() }

// BatchInfo describes one interval's batch.
type BatchInfo struct {
	Time            time.Time     // the interval's time (its end)
	Records         int64         // records received in the interval
	SubmissionTime  time.Time     // when the generator cut the interval
	StartTime       time.Time     // when processing began (zero until then)
	EndTime         time.Time     // when processing ended (zero until then)
	SchedulingDelay time.Duration // StartTime - SubmissionTime
	ProcessingTime  time.Duration // EndTime - StartTime
	TotalDelay      time.Duration // EndTime - Time
	Err             error         // the first failed output operation's error
	FailedOutputs   int
}

// BatchSubmitted is posted when an interval is cut and queued.
type BatchSubmitted struct{ Batch BatchInfo }

// BatchStarted is posted when an interval's jobs begin.
type BatchStarted struct{ Batch BatchInfo }

// BatchCompleted is posted when an interval's jobs have all ended.
type BatchCompleted struct{ Batch BatchInfo }

// OutputOpCompleted is posted for every output operation of every interval.
type OutputOpCompleted struct {
	Time     time.Time
	OutputOp int    // index of the output operation, in registration order
	Name     string // e.g. "print", "saveAsTextFiles"
	Duration time.Duration
	Err      error
}

// JobStarted is posted when a job (one action: a count, a collect, an
// output's write) is submitted to the scheduler.
type JobStarted struct {
	Time     time.Time // the interval (batch) the job computes; zero for a job outside the intervals (a query's)
	OutputOp int       // the output operation that ran it, in registration order; -1 when unknown
	Job      int       // the job's ID, unique in the process's scheduler
	Name     string    // what the job does, e.g. "count", "saveAsTextFiles" (rdd.Job.Name)
	Start    time.Time // when it was submitted
}

// JobEnded is posted when a job has ended, its results in or its error
// final (after the retries).
type JobEnded struct {
	Time     time.Time // as in JobStarted
	OutputOp int
	Job      int
	Name     string
	Start    time.Time
	End      time.Time
	Err      error // nil when it succeeded
}

// TaskEnded is posted when one task attempt ends, whatever its outcome.
// Tasks are many: a listener must be cheap per TaskEnded, and the bus drops
// them first (see the package documentation). The key of a task is its
// interval, job, stage, partition and attempt.
type TaskEnded struct {
	Time        time.Time // the interval (batch) of its job; zero for a job outside the intervals
	Job         int       // the job's ID, as in JobStarted
	Stage       int       // the stage's ID within the job (0 is the result stage)
	Partition   int       // the partition it computes
	Attempt     int       // 0 for the first attempt
	Map         bool      // a map task (writes a shuffle's output); false for a result task
	Speculative bool      // a speculative copy of a task still running elsewhere
	Worker      string    // the worker that ran it ("local" in local[N])
	Start       time.Time // when it began running on the worker
	End         time.Time // when it ended
	// The task's figures (rdd.TaskFigures has the details). Records is how
	// many records the task wrote (a map task: to the shuffle; a result
	// task: handed to the job's action), RecordsRead how many it read (from
	// its sources, stored blocks and shuffle buckets), ShuffleReadBytes and
	// ShuffleWriteBytes the shuffle bytes it read and wrote. Each is -1 when
	// not measured: all four for an attempt that never ran, or ran on a
	// worker that did not report them; Records for a job whose function
	// is a closure that does not count what it takes.
	Records           int64
	RecordsRead       int64
	ShuffleReadBytes  int64
	ShuffleWriteBytes int64
	// ShuffleRemoteReads counts the buckets the task fetched from another
	// process, ShufflePushes those it pushed to the process expected to
	// read them (rdd.TaskFigures); -1 when not measured.
	ShuffleRemoteReads int64
	ShufflePushes      int64
	Err                error // nil when it succeeded
}

// ReceiverError is posted when a receiver fails.
type ReceiverError struct {
	Stream int
	Name   string
	Err    error
}

func (BatchSubmitted) isEvent()    {}
func (BatchStarted) isEvent()      {}
func (BatchCompleted) isEvent()    {}
func (OutputOpCompleted) isEvent() {}
func (ReceiverError) isEvent()     {}
func (JobStarted) isEvent()        {}
func (JobEnded) isEvent()          {}
func (TaskEnded) isEvent()         {}

// Listener receives events on the bus's goroutine, one at a time, in order.
type Listener interface{ OnEvent(Event) }

// Func adapts a function to Listener.
type Func func(Event)

// OnEvent calls f.
func (f Func) OnEvent(e Event) { f(e) }

// TaskQueueShare is the share of a bus's queue that TaskEnded events may
// fill: a TaskEnded that finds the queue holding this share of its capacity
// or more is dropped (and counted), so the rest stays for the other events.
const TaskQueueShare = 0.75

// Bus delivers events to listeners asynchronously through a bounded queue.
type Bus struct {
	mu           sync.Mutex
	listeners    []Listener
	queue        chan Event
	taskLimit    int // TaskEnded events are dropped when the queue holds this many
	dropped      atomic.Int64
	droppedTasks atomic.Int64
	done         chan struct{}
	stopOnce     sync.Once
}

// NewBus returns a running bus whose queue holds capacity events (default 10000).
func NewBus(capacity int) *Bus {
	if capacity <= 0 {
		capacity = 10000
	}
	b := &Bus{queue: make(chan Event, capacity), taskLimit: max(1, int(float64(capacity)*TaskQueueShare)), done: make(chan struct{})}
	go b.loop()
	return b
}

// Add registers a listener.
func (b *Bus) Add(l Listener) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listeners = append(b.listeners, l)
}

// Post queues e; if the queue is full the event is dropped and counted. A
// TaskEnded is dropped already when the queue holds TaskQueueShare of its
// capacity. Post never blocks.
func (b *Bus) Post(e Event) {
	if _, ok := e.(TaskEnded); ok && len(b.queue) >= b.taskLimit {
		b.dropped.Add(1)
		b.droppedTasks.Add(1)
		return
	}
	select {
	case b.queue <- e:
	default:
		b.dropped.Add(1)
		if _, ok := e.(TaskEnded); ok {
			b.droppedTasks.Add(1)
		}
	}
}

// Dropped returns how many events were dropped because the queue was full
// (for a TaskEnded: held TaskQueueShare of its capacity), task events
// included.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

// DroppedTasks returns how many of the dropped events were TaskEnded.
func (b *Bus) DroppedTasks() int64 { return b.droppedTasks.Load() }

func (b *Bus) loop() {
	defer close(b.done)
	for e := range b.queue {
		b.mu.Lock()
		ls := b.listeners
		b.mu.Unlock()
		for _, l := range ls {
			deliver(l, e)
		}
	}
}

// deliver hands e to l; a panicking listener loses the event, not the process.
func deliver(l Listener, e Event) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("listener panicked", "event", fmt.Sprintf("%T", e), "panic", r)
		}
	}()
	l.OnEvent(e)
}

// Stop delivers the events already queued, then stops. Post must not be
// called after Stop.
func (b *Bus) Stop() {
	b.stopOnce.Do(func() { close(b.queue) })
	<-b.done
}
