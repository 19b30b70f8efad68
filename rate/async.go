package rate

import "sync"

// Async is a Limiter for a slow one (an RPC to the worker running a
// receiver): its SetRate only records the rate and returns at once; a
// goroutine of its own hands the latest rate to the slow limiter. Rates set
// while one is being delivered are coalesced: only the latest is delivered
// next, so a slow limiter never falls behind by more than one rate.
type Async struct {
	l Limiter

	mu      sync.Mutex
	latest  int
	dirty   bool // latest not yet delivered
	closed  bool
	wake    chan struct{} // capacity 1
	stopped chan struct{} // closed by Close
	done    chan struct{} // closed when the goroutine ends
}

// NewAsync starts a goroutine delivering rates to l; Close ends it.
func NewAsync(l Limiter) *Async {
	a := &Async{l: l, wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a
}

// SetRate records n as the rate to deliver; it never waits. After Close it
// does nothing.
func (a *Async) SetRate(n int) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.latest, a.dirty = n, true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (a *Async) loop() {
	defer close(a.done)
	for {
		select {
		case <-a.stopped:
			return
		case <-a.wake:
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			return
		}
		n, dirty := a.latest, a.dirty
		a.dirty = false
		a.mu.Unlock()
		if dirty {
			a.l.SetRate(n)
		}
	}
}

// Close stops delivering: a rate not yet delivered is dropped. It waits for
// a delivery under way to return. It is idempotent.
func (a *Async) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stopped)
	}
	a.mu.Unlock()
	<-a.done
}
