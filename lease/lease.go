// Package lease provides a lease with an epoch, held in one object of a
// store with conditional writes ([checkpoint.Conditional]: a folder, or
// S3): the ground of a fenced standby master. One contender at a time is
// active, with an epoch that grows with every change of holder; a holder
// that cannot renew in time, or finds the object changed under it, stops
// acting at once and never acts again with that epoch.
//
// The logic is [Core], pure (no I/O, no clock, no goroutines), in the
// manner of etcd's raft; [Lease] runs it with a store and a [clock.Clock].
// Core's documentation states the rules and the clock assumption (the
// contenders' clocks run at rates that differ by less than Margin/TTL).
//
// No dependency: a lease over a compare-and-swap is a page of code, and
// the store is already ours; an etcd or ZooKeeper client would add a
// service to run beside a job that needs only its checkpoint store.
package lease

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
)

// Lease is a contender for the lease in one object of a store: Core's
// shell. Run it (Run), or drive it step by step (Step). Its methods are
// safe for concurrent use, but Run and Step must not overlap.
type Lease struct {
	store    checkpoint.Conditional
	name     string
	clk      clock.Clock
	onChange func(Change)
	onError  func(error)

	mu   sync.Mutex
	core *Core
}

// Options are a Lease's callbacks, both optional. They are called from
// the goroutine of Run or Step, in order, and must return quickly: the
// lease is not renewed meanwhile.
type Options struct {
	// OnChange is told of every change of role: becoming active with an
	// epoch, and stopping acting with it.
	OnChange func(Change)
	// OnError is told of every failed operation on the store, which the
	// lease retries.
	OnError func(error)
}

// New returns a standby contender for the lease in the object name of
// store, timed by clk.
func New(store checkpoint.Conditional, name string, clk clock.Clock, cfg Config, opts Options) (*Lease, error) {
	if err := checkpoint.ValidName(name); err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	core, err := NewCore(cfg)
	if err != nil {
		return nil, err
	}
	return &Lease{store: store, name: name, clk: clk, onChange: opts.OnChange, onError: opts.OnError, core: core}, nil
}

// Active reports whether the contender holds the lease now, by its clock,
// with which epoch, and until when unless it renews. It is exact even
// between the shell's steps: past the deadline it reports false, before
// Run notices. Check it before every action taken as the holder, and take
// none that may not end before until.
func (l *Lease) Active() (epoch uint64, until time.Time, ok bool) {
	l.mu.Lock()
	role, epoch, deadline := l.core.Role()
	l.mu.Unlock()
	if role != Active || !l.clk.Now().Before(deadline) {
		return 0, time.Time{}, false
	}
	return epoch, deadline, true
}

// feed runs one of the core's handlers under the lock and reports what it
// says.
func (l *Lease) feed(f func(c *Core, now time.Time) Output) Output {
	l.mu.Lock()
	out := f(l.core, l.clk.Now())
	l.mu.Unlock()
	if out.Change != nil && l.onChange != nil {
		l.onChange(*out.Change)
	}
	if out.Err != nil && l.onError != nil {
		l.onError(out.Err)
	}
	return out
}

func tick(c *Core, now time.Time) Output { return c.Tick(now) }

// do performs the operation out asks for, if any, and returns the event
// that feeds its result to the core.
func (l *Lease) do(ctx context.Context, out Output) func(c *Core, now time.Time) Output {
	switch {
	case out.Read:
		data, version, err := l.store.GetVersion(ctx, l.name)
		return func(c *Core, now time.Time) Output { return c.ReadDone(now, data, version, err) }
	case out.Write != nil:
		version, err := l.store.PutIf(ctx, l.name, out.Write.Data, out.Write.Version)
		return func(c *Core, now time.Time) Output { return c.WriteDone(now, version, err) }
	}
	return nil
}

// Release gives the lease up, once Run has returned (or between Steps),
// for a successor to take at once: see Core.Release. It returns the
// store's error if the released record could not be written (the lease
// then lapses as after a crash). Call it only once the work done as the
// holder has ended.
func (l *Lease) Release(ctx context.Context) error {
	out := l.feed(func(c *Core, now time.Time) Output { return c.Release(now) })
	if ev := l.do(ctx, out); ev != nil {
		out = l.feed(ev)
	}
	return out.Err
}

// Seen returns the lease record a standby read last: who holds the lease.
func (l *Lease) Seen() (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.Seen()
}

// maxOps bounds the operations of one Step.
const maxOps = 8

// Step is one synchronous round: it tells the core the clock's time and
// performs the operations it asks for, one after the other, until it asks
// for none (at most a few). It returns when to step next. Step is for
// tests, and for shells of their own; Run is the production loop.
func (l *Lease) Step(ctx context.Context) (wake time.Time) {
	out := l.feed(tick)
	for range maxOps {
		ev := l.do(ctx, out)
		if ev == nil {
			break
		}
		out = l.feed(ev)
	}
	return out.Wake
}

// Run contends for the lease until ctx is done: it reads, acquires and
// renews as the core says, each operation in a goroutine of its own so
// that the clock still stops a holder whose operation hangs, at its
// deadline. When ctx is done, an active contender stops acting (OnChange)
// and Run returns ctx's error; the lease object is left to lapse.
func (l *Lease) Run(ctx context.Context) error {
	results := make(chan func(*Core, time.Time) Output, 1)
	out := l.feed(tick)
	for {
		if out.Read || out.Write != nil {
			go func(out Output) { results <- l.do(ctx, out) }(out)
		}
		waitCtx, cancel := context.WithCancel(ctx)
		woke := make(chan struct{})
		if !out.Wake.IsZero() {
			go func(at time.Time) {
				if l.clk.WaitUntil(waitCtx, at) == nil {
					close(woke)
				}
			}(out.Wake)
		}
		select {
		case ev := <-results:
			out = l.feed(ev)
		case <-woke:
			out = l.feed(tick)
		case <-ctx.Done():
			cancel()
			l.feed(func(c *Core, now time.Time) Output { return c.Abandon(now) })
			return ctx.Err()
		}
		cancel()
	}
}
