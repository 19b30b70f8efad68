package bench

import (
	"testing"
	"time"

	"github.com/dstream/dstream/listener"
)

func TestSearchCapacity(t *testing.T) {
	const target = 900 * time.Millisecond
	tests := []struct {
		name  string
		guess int
		cost  func(n int) time.Duration // processing time of n records
		// capacity is the true answer: the largest n with cost(n) <= target.
		capacity int
		probes   int     // at most
		within   float64 // lo is at least this share of capacity
	}{
		{"linear, guess high", 4_000_000, func(n int) time.Duration { return time.Duration(n) * 750 * time.Nanosecond }, 1_200_000, 5, 0.97},
		{"linear, guess low", 100_000, func(n int) time.Duration { return time.Duration(n) * 750 * time.Nanosecond }, 1_200_000, 8, 0.97},
		{"fixed cost plus linear", 2_000_000, func(n int) time.Duration { return 200*time.Millisecond + time.Duration(n)*time.Microsecond }, 700_000, 6, 0.97},
		{"superlinear", 3_000_000, func(n int) time.Duration {
			return time.Duration(float64(n)*float64(n)/1e12*float64(time.Second)) + time.Duration(n)*100*time.Nanosecond
		}, 903_000, 8, 0.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probes := 0
			lo, hi := searchCapacity(tt.guess, target, func(int) bool { return true }, func(n int) time.Duration {
				probes++
				return tt.cost(n)
			})
			if tt.cost(lo) > target {
				t.Fatalf("lo %d does not keep up: %v", lo, tt.cost(lo))
			}
			if hi != 0 && tt.cost(hi) <= target {
				t.Fatalf("hi %d keeps up: %v", hi, tt.cost(hi))
			}
			if float64(lo) < tt.within*float64(tt.capacity) {
				t.Errorf("lo %d is under %.0f%% of the capacity %d (hi %d)", lo, 100*tt.within, tt.capacity, hi)
			}
			if probes > tt.probes {
				t.Errorf("%d probes, want at most %d", probes, tt.probes)
			}
		})
	}
}

func TestSearchCapacityStopsWhenNotAffordable(t *testing.T) {
	probes := 0
	lo, hi := searchCapacity(1_000_000, time.Second, func(n int) bool { return probes < 1 }, func(n int) time.Duration {
		probes++
		return time.Duration(n) * 2 * time.Microsecond
	})
	if probes != 1 || lo != 0 || hi != 1_000_000 {
		t.Fatalf("probes %d, bracket [%d, %d): want 1 probe, nothing kept up", probes, lo, hi)
	}
}

func TestSearchCapacityProbeError(t *testing.T) {
	probes := 0
	searchCapacity(1_000_000, time.Second, func(int) bool { return true }, func(int) time.Duration {
		probes++
		return 0
	})
	if probes != 1 {
		t.Fatalf("%d probes after a failed one, want 1", probes)
	}
}

func TestJudge(t *testing.T) {
	const batch = time.Second
	t0 := time.UnixMilli(1_700_000_000_000)
	// run makes intervals with the given processing and scheduling delays
	// (ms); each ends at its time plus both.
	run := func(proc, sched []int) []listener.BatchInfo {
		var bs []listener.BatchInfo
		for i := range proc {
			tm := t0.Add(time.Duration(i+1) * batch)
			p, d := time.Duration(proc[i])*time.Millisecond, time.Duration(sched[i])*time.Millisecond
			bs = append(bs, listener.BatchInfo{Time: tm, Records: 10, ProcessingTime: p, SchedulingDelay: d, EndTime: tm.Add(d + p)})
		}
		return bs
	}
	steady := func(n, proc int) ([]int, []int) {
		p, d := make([]int, n), make([]int, n)
		for i := range p {
			p[i] = proc
		}
		return p, d
	}
	tests := []struct {
		name     string
		proc     []int
		sched    []int
		keptUp   bool
		measured int
	}{
		{"steady", func() []int { p, _ := steady(20, 500); return p }(), make([]int, 20), true, 15},
		{"slow warm-up that drains", []int{1500, 1200, 900, 900, 800, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500},
			[]int{0, 500, 700, 600, 500, 300, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true, 15},
		{"one slow interval after the warm-up", func() []int { p, _ := steady(20, 500); p[10] = 1100; return p }(), make([]int, 20), false, 15},
		{"backlog left at the end", func() []int { p, _ := steady(20, 990); return p }(),
			[]int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1200, 1200}, false, 15},
		{"the stop's last interval does not count", func() []int { p, _ := steady(20, 500); p[19] = 3000; return p }(), make([]int, 20), true, 15},
		{"short run", []int{500, 500, 500}, []int{0, 0, 0}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := judge(run(tt.proc, tt.sched), batch)
			if r.keptUp != tt.keptUp || r.measured != tt.measured {
				t.Fatalf("keptUp %v over %d intervals, want %v over %d", r.keptUp, r.measured, tt.keptUp, tt.measured)
			}
			if r.received != int64(10*len(tt.proc)) || r.completed != len(tt.proc) {
				t.Fatalf("received %d in %d intervals, want every interval's records (%d in %d)", r.received, r.completed, 10*len(tt.proc), len(tt.proc))
			}
			if tt.name == "steady" && (r.p50 < 990 || r.p50 > 1010 || r.p99 < 1480 || r.p99 > 1500) {
				// Arrivals spread over [t-1s, t), output at t+500ms:
				// latencies from 500 to 1500 ms, evenly.
				t.Fatalf("p50 %v p99 %v, want about 1000 and 1490", r.p50, r.p99)
			}
		})
	}
	if r := judge(nil, batch); r.measured != 0 {
		t.Fatalf("no intervals: measured %d", r.measured)
	}
}

func TestNextAttempt(t *testing.T) {
	tests := []struct {
		name                       string
		n, found, failedAt, cameIn int
		want                       int
	}{
		{"behind: back off 10%", 1_000_000, 0, 1_000_000, 0, 900_000},
		{"behind through a socket that carried less: under what came in", 1_000_000, 0, 1_000_000, 500_000, 475_000},
		{"behind through a socket that carried nearly all: 10%", 1_000_000, 0, 1_000_000, 950_000, 900_000},
		{"never under 100 records", 100, 0, 100, 0, 100},
		{"sustained with nothing known to fall behind: stop", 1_000_000, 1_000_000, 0, 0, 0},
		{"sustained: halfway up to what fell behind", 900_000, 900_000, 1_000_000, 0, 950_000},
		{"a refinement fell behind: halfway between", 950_000, 900_000, 950_000, 0, 925_000},
		{"within 2%: stop", 925_000, 925_000, 940_000, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextAttempt(tt.n, tt.found, tt.failedAt, tt.cameIn); got != tt.want {
				t.Errorf("nextAttempt(%d, %d, %d, %d) = %d, want %d", tt.n, tt.found, tt.failedAt, tt.cameIn, got, tt.want)
			}
		})
	}
}
