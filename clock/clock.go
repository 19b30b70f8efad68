// Package clock provides the time source that drives intervals, block cutting
// and timeouts. Production code uses Real; tests use Manual and advance it by
// hand, as Spark's ManualClock does, so time-driven logic runs without sleeps.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock is a source of time that can be waited on.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// WaitUntil blocks until the clock reads t or later, or ctx is done, in
	// which case it returns ctx.Err().
	WaitUntil(ctx context.Context, t time.Time) error
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// WaitUntil sleeps until t or until ctx is done.
func (Real) WaitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Manual is a clock that moves only when told to. It is safe for concurrent use.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	changed chan struct{} // closed and replaced on every move
}

// NewManual returns a manual clock reading start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start, changed: make(chan struct{})}
}

// Now returns the clock's reading.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d and wakes every waiter whose time has
// come; like Set, it never moves the clock backwards: a negative d is ignored.
func (m *Manual) Advance(d time.Duration) {
	if d < 0 {
		return
	}
	m.mu.Lock()
	m.now = m.now.Add(d)
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Set moves the clock to t; a clock never moves backwards, so an earlier t is ignored.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.now) {
		m.now = t
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

// WaitUntil blocks until the clock has been advanced to t or later.
func (m *Manual) WaitUntil(ctx context.Context, t time.Time) error {
	for {
		m.mu.Lock()
		now, ch := m.now, m.changed
		m.mu.Unlock()
		if !now.Before(t) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
