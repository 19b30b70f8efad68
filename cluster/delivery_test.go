package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dstream/dstream/clock"
)

// TestMasterDeliversInOrder drives a Master's registry from many goroutines
// at once (registrations, Drops, timeout checks) and checks the shell's
// delivery contract: events reach OnEvent one at a time in the order of the
// changes (each worker's added and lost alternate, incarnations are added in
// increasing order), a registration returns only once its added event has
// been delivered, and OnEvent may call Workers.
func TestMasterDeliversInOrder(t *testing.T) {
	clk := clock.NewManual(t0)
	var (
		mu        sync.Mutex
		events    []Event
		inOnEvent atomic.Int32
		m         *Master
	)
	m, err := NewMaster(MasterConfig{
		Insecure: true, Graph: testGraph(), Clock: clk, Logger: discardLogger(), MaxWorkers: 6,
		OnEvent: func(ev Event) {
			if inOnEvent.Add(1) != 1 {
				t.Error("OnEvent called while another call runs")
			}
			defer inOnEvent.Add(-1)
			_ = m.Workers() // allowed: deliveries run with the registry unlocked
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	delivered := func(inc uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.Kind == WorkerAdded && ev.Worker.Incarnation == inc {
				return true
			}
		}
		return false
	}
	const goroutines, rounds = 8, 150
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				id := fmt.Sprintf("w%d", (g+i)%5)
				switch i % 4 {
				case 0, 1:
					req := registerRequest(id, testGraph())
					req.Address, req.Pid = id+":7000", int64(g%2)
					resp, err := m.Register(context.Background(), req)
					if err == nil && !delivered(resp.GetIncarnation()) {
						t.Errorf("Register returned %s#%d before delivering it", id, resp.GetIncarnation())
					}
					if c := status.Code(err); err != nil && c != codes.AlreadyExists && c != codes.ResourceExhausted {
						t.Errorf("Register: %v", err)
					}
				case 2:
					m.Drop(id+":7000", "test")
				case 3:
					clk.Advance(100 * time.Millisecond)
					m.expire()
				}
			}
		})
	}
	wg.Wait()

	alive := map[string]uint64{} // id -> its alive incarnation, replaying the events
	var last uint64
	for i, ev := range events {
		w := ev.Worker
		switch ev.Kind {
		case WorkerAdded:
			if inc, ok := alive[w.ID]; ok {
				t.Fatalf("event %d: %s#%d added while #%d is alive", i, w.ID, w.Incarnation, inc)
			}
			if w.Incarnation <= last {
				t.Fatalf("event %d: %s#%d added after #%d", i, w.ID, w.Incarnation, last)
			}
			alive[w.ID], last = w.Incarnation, w.Incarnation
		case WorkerLost:
			if alive[w.ID] != w.Incarnation {
				t.Fatalf("event %d: %s#%d lost, but the alive one is #%d", i, w.ID, w.Incarnation, alive[w.ID])
			}
			delete(alive, w.ID)
		}
	}
	for _, w := range m.Workers() {
		if inc, ok := alive[w.ID]; ok != (w.State == Alive) || (ok && inc != w.Incarnation) {
			t.Errorf("registry has %s#%d %v; the events say alive=%v (#%d)", w.ID, w.Incarnation, w.State, ok, inc)
		}
		delete(alive, w.ID)
	}
	if len(alive) > 0 {
		t.Errorf("the events leave alive %v, which the registry does not hold", alive)
	}
	if last == 0 {
		t.Fatal("no worker was ever added")
	}
}
