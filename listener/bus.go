// Package listener carries the engine's events (batches submitted, started
// and completed, output operations, receiver errors) to whoever listens: the
// demo's summary line, the web UI, metrics. Posting never blocks the engine:
// the queue is bounded and, when a listener falls behind, events are dropped
// and counted, as Spark's LiveListenerBus does.
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

// Listener receives events on the bus's goroutine, one at a time, in order.
type Listener interface{ OnEvent(Event) }

// Func adapts a function to Listener.
type Func func(Event)

// OnEvent calls f.
func (f Func) OnEvent(e Event) { f(e) }

// Bus delivers events to listeners asynchronously through a bounded queue.
type Bus struct {
	mu        sync.Mutex
	listeners []Listener
	queue     chan Event
	dropped   atomic.Int64
	done      chan struct{}
	stopOnce  sync.Once
}

// NewBus returns a running bus whose queue holds capacity events (default 10000).
func NewBus(capacity int) *Bus {
	if capacity <= 0 {
		capacity = 10000
	}
	b := &Bus{queue: make(chan Event, capacity), done: make(chan struct{})}
	go b.loop()
	return b
}

// Add registers a listener.
func (b *Bus) Add(l Listener) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listeners = append(b.listeners, l)
}

// Post queues e; if the queue is full the event is dropped and counted.
func (b *Bus) Post(e Event) {
	select {
	case b.queue <- e:
	default:
		b.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

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
