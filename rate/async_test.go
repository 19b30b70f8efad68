package rate

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// slowLimiter is a Limiter whose SetRate waits for a token from gate, then
// records the rate.
type slowLimiter struct {
	gate chan struct{}
	mu   sync.Mutex
	got  []int
}

func (s *slowLimiter) SetRate(n int) {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, n)
}

func (s *slowLimiter) rates() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func TestAsyncCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &slowLimiter{gate: make(chan struct{})}
		a := NewAsync(slow)
		a.SetRate(100) // taken by the goroutine, which waits in the slow SetRate
		synctest.Wait()
		for _, n := range []int{200, 300, 400} {
			a.SetRate(n) // never waits
		}
		slow.gate <- struct{}{} // 100 delivered
		slow.gate <- struct{}{} // then only the latest: 400
		synctest.Wait()
		if got := slow.rates(); !slices.Equal(got, []int{100, 400}) {
			t.Errorf("delivered %v, want [100 400]", got)
		}
		a.SetRate(500)
		synctest.Wait()
		closed := make(chan struct{})
		go func() { a.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a delivery was under way")
		default:
		}
		slow.gate <- struct{}{} // 500 delivered; then the goroutine ends
		<-closed
		a.SetRate(600) // after Close: dropped
		a.Close()      // idempotent
		synctest.Wait()
		if got := slow.rates(); !slices.Equal(got, []int{100, 400, 500}) {
			t.Errorf("delivered %v, want [100 400 500]", got)
		}
	})
}

func TestAsyncCloseDropsUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		a := NewAsync(r)
		a.SetRate(7)
		synctest.Wait()
		a.Close()
		if got := r.got(); !slices.Equal(got, []int{7}) {
			t.Errorf("delivered %v, want [7]", got)
		}
	})
}
