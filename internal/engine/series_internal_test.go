package engine

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
)

// LastCheckpoints reuses an entry it built for an earlier interval only
// while nothing the entry says has changed: each change to a kept dataset
// (where its partitions are, a durable copy, a lineage cut) or to which
// dataset the interval holds shows in the next listing, and an interval
// that left the listing leaves no entry behind.
func TestLastCheckpointsNeverListsAStaleEntry(t *testing.T) {
	e := newTestEngine(t, Config{BatchInterval: time.Second})
	s := NewSeries(e, "state", time.Second, func(time.Time) (*rdd.Dataset[int], error) { return nil, nil }, nil)
	s.MarkState(2, "")
	t1 := time.UnixMilli(1_700_000_001_000)
	t2 := t1.Add(time.Second)
	newDataset := func() *rdd.Dataset[int] { return rdd.Parallelize(e.rctx, []int{1, 2, 3, 4}, 2) }
	ds := newDataset()
	s.mu.Lock()
	s.datasets[t1.UnixMilli()] = ds
	s.mu.Unlock()

	list := func(step string) manifest.Checkpoint {
		t.Helper()
		cps := s.LastCheckpoints(t2)
		if len(cps) != 1 {
			t.Fatalf("%s: %d entries, want 1: %+v", step, len(cps), cps)
		}
		return cps[0]
	}
	check := func(step string, cp manifest.Checkpoint, kept bool, durable string, locs ...string) {
		t.Helper()
		if cp.Kept != kept || cp.Durable != durable || !slices.Equal(cp.Locations, locs) {
			t.Fatalf("%s: entry %+v; want kept %v, durable %q, locations %q", step, cp, kept, durable, locs)
		}
	}

	if cps := s.LastCheckpoints(t2); len(cps) != 0 {
		t.Fatalf("listed a dataset that is not kept: %+v", cps)
	}
	ds.MarkKept([]string{"a", "b"})
	first := list("kept")
	check("kept", first, true, "", "a", "b")
	again := list("unchanged")
	check("unchanged", again, true, "", "a", "b")
	if &first.Locations[0] != &again.Locations[0] {
		t.Error("an unchanged entry was built again, not reused")
	}
	ds.LoseLocation("a")
	check("a holder lost", list("a holder lost"), true, "", "", "b")
	s.mu.Lock()
	s.durable[t1.UnixMilli()] = "state/1"
	s.mu.Unlock()
	check("durable", list("durable"), true, "state/1", "", "b")
	ds.Truncate(func(context.Context, int) ([]byte, error) { return nil, nil })
	check("cut", list("cut"), false, "state/1", "", "b")

	// Another dataset for the same interval (adopted from a manifest).
	other := newDataset()
	other.MarkKept([]string{"c", "d"})
	s.mu.Lock()
	s.datasets[t1.UnixMilli()] = other
	delete(s.durable, t1.UnixMilli())
	s.mu.Unlock()
	check("replaced", list("replaced"), true, "", "c", "d")

	s.mu.Lock()
	delete(s.datasets, t1.UnixMilli())
	s.mu.Unlock()
	if cps := s.LastCheckpoints(t2); len(cps) != 0 {
		t.Fatalf("listed a forgotten interval: %+v", cps)
	}
	if len(s.entries) != 0 {
		t.Fatalf("entries of forgotten intervals stay: %v", len(s.entries))
	}
}
