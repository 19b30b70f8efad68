package bench

import (
	"testing"
	"time"
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
