package clock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dstream/dstream/clock"
)

var (
	_ clock.Clock = clock.Real{}
	_ clock.Clock = (*clock.Manual)(nil)
)

var start = time.UnixMilli(1_700_000_000_000)

// TestManualMoves checks Now after Advance and Set: Advance moves forward by
// d, Set moves to t, and the clock never moves backwards.
func TestManualMoves(t *testing.T) {
	type step struct {
		advance time.Duration // used when set is zero
		set     time.Time
		want    time.Duration // Now() - start after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no move", nil},
		{"advance", []step{{advance: time.Second, want: time.Second}, {advance: 250 * time.Millisecond, want: 1250 * time.Millisecond}}},
		{"advance zero", []step{{advance: 0, want: 0}}},
		{"advance negative is ignored", []step{{advance: time.Second, want: time.Second}, {advance: -time.Millisecond, want: time.Second}, {advance: -time.Hour, want: time.Second}}},
		{"set forward", []step{{set: start.Add(time.Minute), want: time.Minute}}},
		{"set same time", []step{{set: start.Add(time.Minute), want: time.Minute}, {set: start.Add(time.Minute), want: time.Minute}}},
		{"set backwards is ignored", []step{{advance: time.Minute, want: time.Minute}, {set: start.Add(time.Second), want: time.Minute}, {set: start.Add(-time.Hour), want: time.Minute}}},
		{"set then advance", []step{{set: start.Add(time.Second), want: time.Second}, {advance: time.Second, want: 2 * time.Second}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := clock.NewManual(start)
			if got := m.Now(); !got.Equal(start) {
				t.Fatalf("NewManual(%v).Now() = %v", start, got)
			}
			for i, s := range tc.steps {
				if s.set.IsZero() {
					m.Advance(s.advance)
				} else {
					m.Set(s.set)
				}
				if got := m.Now().Sub(start); got != s.want {
					t.Fatalf("after step %d: Now() = start+%v, want start+%v", i, got, s.want)
				}
			}
		})
	}
}

// TestManualWaitUntilReached checks that WaitUntil returns nil at once for a
// time the clock already reads.
func TestManualWaitUntilReached(t *testing.T) {
	m := clock.NewManual(start)
	m.Advance(time.Second)
	for _, target := range []time.Time{start, start.Add(time.Second), start.Add(-time.Hour)} {
		if err := m.WaitUntil(context.Background(), target); err != nil {
			t.Errorf("WaitUntil(%v) at %v = %v, want nil", target, m.Now(), err)
		}
	}
}

// TestManualWakesDueWaiters runs waiters for several times and moves the
// clock step by step: after each step exactly the waiters whose time has come
// have returned (nil), and the others are still waiting, however often the
// clock moved short of their time.
func TestManualWakesDueWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := clock.NewManual(start)
		offsets := []time.Duration{time.Second, 2 * time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, time.Hour}
		done := make([]chan error, len(offsets))
		for i, off := range offsets {
			done[i] = make(chan error, 1)
			go func() { done[i] <- m.WaitUntil(context.Background(), start.Add(off)) }()
		}
		returned := make([]bool, len(offsets))
		check := func(step string) {
			t.Helper()
			synctest.Wait()
			now := m.Now()
			for i, off := range offsets {
				if !returned[i] {
					select {
					case err := <-done[i]:
						if err != nil {
							t.Fatalf("%s: waiter for start+%v returned %v", step, off, err)
						}
						returned[i] = true
					default:
					}
				}
				due := !start.Add(off).After(now)
				if returned[i] != due {
					t.Fatalf("%s (now start+%v): waiter for start+%v returned = %v, want %v", step, now.Sub(start), off, returned[i], due)
				}
			}
		}
		check("before any move")
		m.Advance(999 * time.Millisecond)
		check("Advance(999ms)")
		m.Advance(time.Millisecond)
		check("Advance(1ms)")
		m.Advance(500 * time.Millisecond)
		check("Advance(500ms)")
		m.Set(start.Add(2 * time.Second))
		check("Set(start+2s)")
		m.Set(start.Add(time.Second))
		check("Set(start+1s), backwards")
		m.Advance(-time.Hour)
		check("Advance(-1h)")
		m.Advance(0)
		check("Advance(0)")
		m.Advance(8 * time.Second)
		check("Advance(8s)")
		m.Set(start.Add(2 * time.Hour))
		check("Set(start+2h)")
	})
}

// TestManualWaitUntilContext checks that a waiter whose context ends before
// its time returns ctx.Err() without the clock moving.
func TestManualWaitUntilContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc) // ends the context while the waiter waits
		want error
	}{
		{
			name: "canceled before the call",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			end:  func(context.CancelFunc) {},
			want: context.Canceled,
		},
		{
			name: "canceled while waiting",
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			end:  func(cancel context.CancelFunc) { cancel() },
			want: context.Canceled,
		},
		{
			// The deadline is on the (bubble's) wall clock, not the manual clock.
			name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Minute)
			},
			end:  func(context.CancelFunc) {},
			want: context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := clock.NewManual(start)
				ctx, cancel := tc.ctx()
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- m.WaitUntil(ctx, start.Add(time.Second)) }()
				m.Advance(500 * time.Millisecond) // a move short of the time
				synctest.Wait()
				tc.end(cancel)
				// In the deadline case, the bubble's time runs to the deadline
				// here, since every goroutine is blocked.
				err := <-done
				if !errors.Is(err, tc.want) {
					t.Fatalf("WaitUntil = %v, want %v", err, tc.want)
				}
				if got := m.Now(); !got.Equal(start.Add(500 * time.Millisecond)) {
					t.Fatalf("the manual clock moved by itself: Now() = %v", got)
				}
			})
		})
	}
}

// TestManualConcurrent moves the clock from many goroutines while others wait
// and read it: no move is lost and every waiter wakes (run with -race).
func TestManualConcurrent(t *testing.T) {
	const (
		movers = 8
		moves  = 100
	)
	m := clock.NewManual(start)
	end := start.Add(movers * moves * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, movers)
	for i := range movers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range moves {
				m.Advance(time.Millisecond)
				m.Set(m.Now()) // never a move, never backwards
			}
		}()
		go func() {
			defer wg.Done()
			errs <- m.WaitUntil(context.Background(), start.Add(time.Duration((i+1)*moves)*time.Millisecond))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("WaitUntil = %v", err)
		}
	}
	if got := m.Now(); !got.Equal(end) {
		t.Fatalf("Now() = start+%v after %d moves of 1ms", got.Sub(start), movers*moves)
	}
}

// TestRealNow checks that Real reads the wall clock.
func TestRealNow(t *testing.T) {
	before := time.Now()
	got := clock.Real{}.Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("Real.Now() = %v, not within [%v, %v]", got, before, after)
	}
}

// TestRealWaitUntil checks Real.WaitUntil on the bubble's fake wall clock: it
// returns once the time has come (at once for a past time) or when the
// context ends first, with ctx.Err().
func TestRealWaitUntil(t *testing.T) {
	tests := []struct {
		name    string
		target  time.Duration // from now
		timeout time.Duration // of the context; 0: none
		cancel  bool          // cancel the context before the call
		want    error
		waited  time.Duration // how long the call takes
	}{
		{name: "future", target: time.Hour, waited: time.Hour},
		{name: "now", target: 0},
		{name: "past", target: -time.Hour},
		{name: "deadline first", target: time.Hour, timeout: time.Minute, want: context.DeadlineExceeded, waited: time.Minute},
		{name: "time first", target: time.Minute, timeout: time.Hour, waited: time.Minute},
		{name: "canceled", target: time.Hour, cancel: true, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tc.timeout > 0 {
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				if tc.cancel {
					cancel()
				}
				begin := time.Now()
				err := clock.Real{}.WaitUntil(ctx, begin.Add(tc.target))
				if !errors.Is(err, tc.want) {
					t.Fatalf("WaitUntil = %v, want %v", err, tc.want)
				}
				if got := time.Since(begin); got != tc.waited {
					t.Fatalf("WaitUntil took %v, want %v", got, tc.waited)
				}
			})
		})
	}
}
