package dstream

import (
	"slices"
	"testing"
	"time"
)

// at is ms milliseconds past a fixed instant: the tests' interval times.
func at(ms int) time.Time {
	return time.UnixMilli(1_700_000_000_000).Add(time.Duration(ms) * time.Millisecond)
}

func TestTrackerAllocatesByCutTimeAndNeverLosesLateBlocks(t *testing.T) {
	tr := newTracker()
	tr.add(blockInfo{stream: 1, key: "b0", time: at(200), records: 2})
	tr.add(blockInfo{stream: 1, key: "b1", time: at(1000), records: 3})
	tr.add(blockInfo{stream: 1, key: "b2", time: at(1200), records: 5})
	if n := tr.allocate(at(1000)); n != 5 {
		t.Fatalf("interval 1000 got %d records, want 5 (blocks cut at or before its end)", n)
	}
	if n := tr.allocate(at(1000)); n != 0 {
		t.Fatalf("allocating an interval twice gave %d more records", n)
	}
	// A block cut inside interval 1000 but stored after it was allocated
	// goes to the next interval.
	tr.add(blockInfo{stream: 1, key: "late", time: at(800), records: 7})
	if n := tr.allocate(at(2000)); n != 12 {
		t.Fatalf("interval 2000 got %d records, want 12 (b2 and the late block)", n)
	}
	if got := tr.blocks(1, at(2000)); len(got) != 2 || got[0].key != "b2" || got[1].key != "late" {
		t.Errorf("interval 2000 blocks = %+v", got)
	}
	if tr.pending() {
		t.Error("blocks still pending")
	}
	keys := tr.forget(1, at(1000))
	if len(keys) != 2 || tr.records(at(1000)) != 0 || tr.records(at(2000)) != 12 {
		t.Errorf("forget(1, 1000) dropped %v; records left %d/%d", keys, tr.records(at(1000)), tr.records(at(2000)))
	}
}

// Each stream's blocks are forgotten on its own schedule: one that a window
// still needs keeps them while another's go.
func TestTrackerForgetsPerStream(t *testing.T) {
	tr := newTracker()
	tr.add(blockInfo{stream: 1, key: "a", time: at(500), records: 1})
	tr.add(blockInfo{stream: 2, key: "b", time: at(500), records: 2})
	tr.allocate(at(1000))
	if keys := tr.forget(1, at(1000)); !slices.Equal(keys, []string{"a"}) {
		t.Fatalf("forget(1) = %v, want [a]", keys)
	}
	if got := tr.blocks(2, at(1000)); len(got) != 1 || tr.records(at(1000)) != 2 {
		t.Fatalf("stream 2 lost its block: %+v", got)
	}
	if keys := tr.forget(2, at(1000)); !slices.Equal(keys, []string{"b"}) || tr.records(at(1000)) != 0 {
		t.Fatalf("forget(2) = %v", keys)
	}
}
