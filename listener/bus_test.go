package listener_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/listener"
)

// ev returns a distinct event numbered i.
func ev(i int) listener.Event {
	return listener.BatchSubmitted{Batch: listener.BatchInfo{Time: time.UnixMilli(int64(i)), Records: int64(i)}}
}

// num is the number ev gave e.
func num(e listener.Event) int { return int(e.(listener.BatchSubmitted).Batch.Records) }

// recorder keeps the numbers of the events it receives. It is not
// synchronised: the bus calls listeners one at a time, and Stop orders its
// calls before the test reads seen (the race detector checks both).
type recorder struct{ seen []int }

func (r *recorder) OnEvent(e listener.Event) { r.seen = append(r.seen, num(e)) }

// blocker hands every event it receives to got, then waits for release (if
// set) before returning: a listener that lags for as long as the test wants.
type blocker struct {
	got     chan int
	release chan struct{}
}

func (b *blocker) OnEvent(e listener.Event) {
	b.got <- num(e)
	if b.release != nil {
		<-b.release
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// captureLogs sends the default logger's records to the returned function's
// result for the rest of the test.
func captureLogs(t *testing.T) func() []slog.Record {
	t.Helper()
	h := &recordHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })
	return h.records
}

type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }
func (h *recordHandler) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.recs)
}

// TestBusDeliversInOrder checks that every listener gets every event, in
// the order posted, and that Stop delivers the events still queued.
func TestBusDeliversInOrder(t *testing.T) {
	for _, listeners := range []int{1, 3} {
		for _, events := range []int{0, 1, 100} {
			b := listener.NewBus(events + 1)
			rs := make([]*recorder, listeners)
			for i := range rs {
				rs[i] = &recorder{}
				b.Add(rs[i])
			}
			for i := range events {
				b.Post(ev(i))
			}
			b.Stop()
			for i, r := range rs {
				if !slices.Equal(r.seen, seq(0, events)) {
					t.Errorf("%d listeners, %d events: listener %d saw %v", listeners, events, i, r.seen)
				}
			}
			if d := b.Dropped(); d != 0 {
				t.Errorf("%d listeners, %d events: Dropped() = %d with room for every event", listeners, events, d)
			}
		}
	}
}

// TestBusDropsWhenListenerLags holds a listener inside OnEvent, fills the
// queue and posts more: Post never blocks, exactly the events that found the
// queue full are dropped and counted, and once the listener catches up it
// gets every event that was queued, in order (so do the other listeners,
// which share the bus's goroutine). NewBus(n) for n <= 0 holds 10000 events.
func TestBusDropsWhenListenerLags(t *testing.T) {
	tests := []struct {
		capacity int // passed to NewBus
		holds    int // events the queue holds
		extra    int // events posted to a full queue
	}{
		{capacity: 1, holds: 1, extra: 1},
		{capacity: 1, holds: 1, extra: 5},
		{capacity: 4, holds: 4, extra: 0},
		{capacity: 4, holds: 4, extra: 7},
		{capacity: 64, holds: 64, extra: 64},
		{capacity: 0, holds: 10000, extra: 3},
		{capacity: -1, holds: 10000, extra: 1},
	}
	for _, tc := range tests {
		b := listener.NewBus(tc.capacity)
		slow := &blocker{got: make(chan int, 1+tc.holds), release: make(chan struct{})}
		other := &recorder{}
		b.Add(slow)
		b.Add(other)

		// The bus takes event 0 off the queue and blocks in slow.OnEvent:
		// the queue is now empty and stays so until release.
		b.Post(ev(0))
		if got := <-slow.got; got != 0 {
			t.Fatalf("capacity %d: first event delivered is %d", tc.capacity, got)
		}
		total := 1 + tc.holds + tc.extra
		for i := 1; i < total; i++ {
			b.Post(ev(i)) // must not block: the test would hang
		}
		if d := b.Dropped(); d != int64(tc.extra) {
			t.Errorf("capacity %d: Dropped() = %d after %d posts to a full queue", tc.capacity, d, tc.extra)
		}

		close(slow.release)
		b.Stop()
		close(slow.got)
		var slowSeen []int
		for n := range slow.got {
			slowSeen = append(slowSeen, n)
		}
		want := seq(0, 1+tc.holds)
		if !slices.Equal(slowSeen, want[1:]) {
			t.Errorf("capacity %d: the lagging listener then got %d events (%v...), want events 1..%d", tc.capacity, len(slowSeen), slowSeen[:min(len(slowSeen), 5)], tc.holds)
		}
		if !slices.Equal(other.seen, want) {
			t.Errorf("capacity %d: the other listener got %d events, want events 0..%d", tc.capacity, len(other.seen), tc.holds)
		}
		if d := b.Dropped(); d != int64(tc.extra) {
			t.Errorf("capacity %d: Dropped() = %d after Stop, want %d", tc.capacity, d, tc.extra)
		}
	}
}

// TestBusSurvivesPanickingListener checks that a listener that panics loses
// only the event it panicked on: the process goes on, the other listeners
// (before and after it) get every event, it gets the later events, and the
// panic is logged.
func TestBusSurvivesPanickingListener(t *testing.T) {
	logs := captureLogs(t)
	b := listener.NewBus(16)
	before, after := &recorder{}, &recorder{}
	var flakySeen []int
	b.Add(before)
	b.Add(listener.Func(func(e listener.Event) {
		n := num(e)
		switch n % 3 {
		case 0:
			panic("listener bug")
		case 1:
			var m map[string]int
			//lint:ignore SA5000 the listener's runtime error is the point
			m["x"] = n // a runtime error: assignment to a nil map
		}
		flakySeen = append(flakySeen, n)
	}))
	b.Add(after)
	for i := range 9 {
		b.Post(ev(i))
	}
	b.Stop()

	if !slices.Equal(before.seen, seq(0, 9)) || !slices.Equal(after.seen, seq(0, 9)) {
		t.Errorf("listeners around the panicking one saw %v and %v, want 0..8", before.seen, after.seen)
	}
	if want := []int{2, 5, 8}; !slices.Equal(flakySeen, want) {
		t.Errorf("panicking listener completed %v, want %v", flakySeen, want)
	}
	var panics int
	for _, r := range logs() {
		if r.Level == slog.LevelError && r.Message == "listener panicked" {
			panics++
		}
	}
	if panics != 6 {
		t.Errorf("%d panics logged, want 6", panics)
	}
}

// TestBusAddWhileRunning checks that a listener added while the bus runs gets
// the events posted after Add, not those already delivered.
func TestBusAddWhileRunning(t *testing.T) {
	b := listener.NewBus(8)
	first := &blocker{got: make(chan int, 8)}
	b.Add(first)
	b.Post(ev(0))
	<-first.got // event 0 has been delivered
	late := &recorder{}
	b.Add(late)
	b.Post(ev(1))
	b.Post(ev(2))
	b.Stop()
	if !slices.Equal(late.seen, []int{1, 2}) {
		t.Errorf("listener added after event 0 saw %v, want [1 2]", late.seen)
	}
	if got := []int{<-first.got, <-first.got}; !slices.Equal(got, []int{1, 2}) {
		t.Errorf("first listener then saw %v, want [1 2]", got)
	}
}

// TestBusOneEventAtATime checks that listeners are called one at a time: a
// listener that is still inside OnEvent receives nothing else, and no other
// listener is called meanwhile.
func TestBusOneEventAtATime(t *testing.T) {
	b := listener.NewBus(8)
	hold := &blocker{got: make(chan int, 8), release: make(chan struct{})}
	next := &blocker{got: make(chan int, 8)}
	b.Add(hold)
	b.Add(next)
	b.Post(ev(0))
	b.Post(ev(1))
	if got := <-hold.got; got != 0 {
		t.Fatalf("first delivery is event %d", got)
	}
	// hold is inside OnEvent(0). The bus must not call next (nor hold again)
	// until it returns; checking after release that next got 0 first and
	// hold got 1 only after that is the deterministic form of "nothing
	// happened meanwhile".
	select {
	case n := <-next.got:
		t.Fatalf("second listener got event %d while the first was still in OnEvent", n)
	default:
	}
	hold.release <- struct{}{} // lets OnEvent(0) return
	if got := <-next.got; got != 0 {
		t.Fatalf("second listener got event %d first", got)
	}
	if got := <-hold.got; got != 1 {
		t.Fatalf("first listener's second event is %d", got)
	}
	close(hold.release)
	b.Stop()
	if got := <-next.got; got != 1 {
		t.Fatalf("second listener's second event is %d", got)
	}
}

// TestBusStop checks that Stop on an idle bus returns and that Stop may be
// called again.
func TestBusStop(t *testing.T) {
	b := listener.NewBus(1)
	r := &recorder{}
	b.Add(r)
	b.Stop()
	b.Stop()
	if len(r.seen) != 0 || b.Dropped() != 0 {
		t.Fatalf("idle bus: seen %v, dropped %d", r.seen, b.Dropped())
	}
}

// task returns a TaskEnded numbered i (its partition).
func task(i int) listener.Event {
	return listener.TaskEnded{Time: time.UnixMilli(1000), Job: 1, Partition: i, Worker: "local", Records: -1, RecordsRead: -1, ShuffleReadBytes: -1, ShuffleWriteBytes: -1}
}

// TestBusTaskEventsLeaveRoom: with a listener lagging, task events fill only
// TaskQueueShare of the queue; the batch events posted after a flood of
// tasks still find room, and everything dropped is counted (the tasks also
// on their own). Post never blocks.
func TestBusTaskEventsLeaveRoom(t *testing.T) {
	const capacity = 8 // tasks may fill 6
	b := listener.NewBus(capacity)
	got := make(chan listener.Event, 2*capacity)
	release := make(chan struct{})
	b.Add(listener.Func(func(e listener.Event) {
		got <- e
		<-release
	}))
	b.Post(ev(0))
	<-got // the bus is inside OnEvent(0): the queue is empty until release
	for i := range 100 {
		b.Post(task(i))
	}
	if d, dt := b.Dropped(), b.DroppedTasks(); d != 94 || dt != 94 {
		t.Fatalf("after 100 tasks: Dropped %d, DroppedTasks %d; want 94, 94 (6 queued)", d, dt)
	}
	b.Post(ev(1))
	b.Post(ev(2))
	b.Post(task(100)) // the queue is full past the task share
	b.Post(ev(3))     // the queue is full
	if d, dt := b.Dropped(), b.DroppedTasks(); d != 96 || dt != 95 {
		t.Fatalf("Dropped %d, DroppedTasks %d; want 96, 95", d, dt)
	}
	close(release)
	b.Stop()
	close(got)
	var seen []string
	for e := range got {
		switch e := e.(type) {
		case listener.TaskEnded:
			seen = append(seen, fmt.Sprint("task ", e.Partition))
		default:
			seen = append(seen, fmt.Sprint("batch ", num(e)))
		}
	}
	want := []string{"task 0", "task 1", "task 2", "task 3", "task 4", "task 5", "batch 1", "batch 2"}
	if !slices.Equal(seen, want) {
		t.Errorf("delivered %v, want %v", seen, want)
	}
}

// TestBusTaskFlood: goroutines post tasks as fast as they can to a bus whose
// listener is slow, while one posts a batch event now and then: no Post
// blocks, every event is delivered or counted, and the batch events are
// delivered (the tasks never take their room).
func TestBusTaskFlood(t *testing.T) {
	b := listener.NewBus(64)
	var tasks, batches int
	b.Add(listener.Func(func(e listener.Event) {
		if _, ok := e.(listener.TaskEnded); ok {
			tasks++
			time.Sleep(10 * time.Microsecond) // a slow listener
			return
		}
		batches++
	}))
	const posters, perPoster, batchEvents = 4, 5000, 10
	var wg sync.WaitGroup
	for range posters {
		wg.Go(func() {
			for i := range perPoster {
				b.Post(task(i))
			}
		})
	}
	for i := range batchEvents {
		b.Post(ev(i))
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	b.Stop()
	if batches != batchEvents {
		t.Errorf("%d of %d batch events delivered (%d dropped, %d of them tasks)", batches, batchEvents, b.Dropped(), b.DroppedTasks())
	}
	if int64(tasks)+b.DroppedTasks() != posters*perPoster || b.Dropped() != b.DroppedTasks() {
		t.Errorf("tasks: %d delivered + %d dropped != %d posted; Dropped %d", tasks, b.DroppedTasks(), posters*perPoster, b.Dropped())
	}
}

// BenchmarkPostTask is the engine's cost per task event, with the listener
// keeping up or not.
func BenchmarkPostTask(b *testing.B) {
	bus := listener.NewBus(0)
	bus.Add(listener.Func(func(listener.Event) {}))
	e := task(1)
	b.ReportAllocs()
	for b.Loop() {
		bus.Post(e)
	}
	bus.Stop()
}
