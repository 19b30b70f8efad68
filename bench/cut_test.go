package bench

import (
	"testing"
	"time"
)

// A real-time run far over capacity is cut short and judged behind, not
// failed, even when no interval completes (the back-off goes on).
func TestRealtimeCutsARunThatFallsBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the engine on the wall clock")
	}
	cfg := Config{Workload: "wordcount", Batch: 50 * time.Millisecond, Master: "local[2]", Source: "memory", Window: time.Second}
	// 40 intervals of 2 s of planned run; a million records an interval
	// takes far longer than 50 ms on any machine.
	r, err := realtime(Workloads["wordcount"], cfg, NewPool(1<<16), 1_000_000, 40)
	if err != nil {
		t.Fatal(err)
	}
	if r.keptUp {
		t.Fatalf("kept up at a million records every 50 ms: %+v", r)
	}
	t.Logf("judged behind: %+v", r)
}
