package received

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
	tr := NewTracker()
	tr.Add(Block{Stream: 1, Key: "b0", Time: at(200), Records: 2})
	tr.Add(Block{Stream: 1, Key: "b1", Time: at(1000), Records: 3})
	tr.Add(Block{Stream: 1, Key: "b2", Time: at(1200), Records: 5})
	if n := tr.Allocate(at(1000)); n != 5 {
		t.Fatalf("interval 1000 got %d records, want 5 (blocks cut at or before its end)", n)
	}
	if n := tr.Allocate(at(1000)); n != 0 {
		t.Fatalf("allocating an interval twice gave %d more records", n)
	}
	// A block cut inside interval 1000 but stored after it was allocated
	// goes to the next interval.
	tr.Add(Block{Stream: 1, Key: "late", Time: at(800), Records: 7})
	if n := tr.Allocate(at(2000)); n != 12 {
		t.Fatalf("interval 2000 got %d records, want 12 (b2 and the late block)", n)
	}
	if got := tr.Blocks(1, at(2000)); len(got) != 2 || got[0].Key != "b2" || got[1].Key != "late" {
		t.Errorf("interval 2000 blocks = %+v", got)
	}
	if tr.Pending() {
		t.Error("blocks still pending")
	}
	keys := tr.Forget(1, at(1000))
	if len(keys) != 2 || tr.Records(at(1000)) != 0 || tr.Records(at(2000)) != 12 {
		t.Errorf("forget(1, 1000) dropped %v; records left %d/%d", keys, tr.Records(at(1000)), tr.Records(at(2000)))
	}
}

// Each stream's blocks are forgotten on its own schedule: one that a window
// still needs keeps them while another's go.
func TestTrackerForgetsPerStream(t *testing.T) {
	tr := NewTracker()
	tr.Add(Block{Stream: 1, Key: "a", Time: at(500), Records: 1})
	tr.Add(Block{Stream: 2, Key: "b", Time: at(500), Records: 2})
	tr.Allocate(at(1000))
	if keys := tr.Forget(1, at(1000)); !slices.Equal(keys, []string{"a"}) {
		t.Fatalf("forget(1) = %v, want [a]", keys)
	}
	if got := tr.Blocks(2, at(1000)); len(got) != 1 || tr.Records(at(1000)) != 2 {
		t.Fatalf("stream 2 lost its block: %+v", got)
	}
	if keys := tr.Forget(2, at(1000)); !slices.Equal(keys, []string{"b"}) || tr.Records(at(1000)) != 0 {
		t.Fatalf("forget(2) = %v", keys)
	}
}

// A block reported twice (its acknowledgement lost, the report resent) is
// taken once, before and after its allocation.
func TestTrackerTakesABlockOnce(t *testing.T) {
	tr := NewTracker()
	if !tr.Add(Block{Stream: 1, Key: "b0", Time: at(200), Records: 2}) {
		t.Fatal("the first report was not taken")
	}
	if tr.Add(Block{Stream: 1, Key: "b0", Time: at(300), Records: 2}) {
		t.Error("a resent report was taken again before allocation")
	}
	if n := tr.Allocate(at(1000)); n != 2 {
		t.Fatalf("allocated %d records, want 2", n)
	}
	if tr.Add(Block{Stream: 1, Key: "b0", Time: at(1100), Records: 2}) || tr.Pending() {
		t.Error("a resent report was taken again after allocation")
	}
}

// An interval marked allocated (a restarted master's interval that runs
// again as logged) takes no block at its cut: they go to the next interval.
// Forgetting it drops the mark.
func TestTrackerMarkAllocated(t *testing.T) {
	tr := NewTracker()
	tr.MarkAllocated(at(1000))
	tr.Add(Block{Stream: 1, Key: "a", Time: at(500), Records: 2})
	if n := tr.Allocate(at(1000)); n != 0 {
		t.Fatalf("a marked interval took %d records at its cut", n)
	}
	if n := tr.Allocate(at(2000)); n != 2 {
		t.Fatalf("the next interval took %d records, want 2", n)
	}
	tr.AddAllocated(at(3000), 1, []Block{{Stream: 1, Key: "b", Time: at(3000), Records: 1}})
	tr.MarkAllocated(at(3000)) // keeps what it holds
	if got := tr.Records(at(3000)); got != 1 {
		t.Errorf("marking an allocated interval changed it: %d records", got)
	}
	tr.Forget(1, at(3000))
	if n := tr.Allocate(at(1000)); n != 0 {
		t.Errorf("re-allocating a forgotten interval took %d records", n)
	}
}

func TestHeldBy(t *testing.T) {
	tr := NewTracker()
	at := time.UnixMilli(1000)
	tr.Add(Block{Stream: 1, Key: "a", Time: at, Locations: []string{"w1", "w2"}})
	tr.Add(Block{Stream: 1, Key: "b", Time: at, Locations: []string{"w2", "w3"}})
	tr.Allocate(at)
	tr.Add(Block{Stream: 1, Key: "c", Time: at.Add(time.Second), Locations: []string{"w3", "w1"}})
	var keys []string
	for _, b := range tr.HeldBy("w1") {
		keys = append(keys, b.Key)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a", "c"}) {
		t.Fatalf("HeldBy(w1) = %v, want [a c] (allocated and unallocated)", keys)
	}
	if got := tr.HeldBy("w9"); len(got) != 0 {
		t.Fatalf("HeldBy(w9) = %v", got)
	}
}
