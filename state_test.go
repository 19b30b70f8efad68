package dstream_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
)

func TestUpdateStateByKey(t *testing.T) {
	in := [][]kv{
		{p("a", 1)},
		{p("a", 1), p("b", 1)},
		{p("b", 1), p("b", 1)},
		{},
		{p("a", -2)},
		{},
	}
	got := run(t, in, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
		return dstream.UpdateStateByKey(s, runningSum, 2)
	}, 6)
	check(t, got, [][]kv{
		{p("a", 1)},
		{p("a", 2), p("b", 1)},
		{p("a", 2), p("b", 3)},
		{p("a", 2), p("b", 3)},
		{p("b", 3)},
		{p("b", 3)},
	})
}

func TestUpdateStateByKeyLongRunIsCheckpointed(t *testing.T) {
	// Many intervals: the state's lineage must not grow (each interval's
	// state is checkpointed) and old intervals must be forgotten.
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	counts := dstream.UpdateStateByKey(h.In, func(vs []int, st dstream.Opt[int]) dstream.Opt[int] {
		return dstream.Some(st.Value + len(vs))
	}, 2)
	col := dstreamtest.Collect(counts)
	// The lineage each interval's state has when the interval outputs it:
	// its history must be checkpointed, so it is as deep at the last
	// interval as at the first (no history at all).
	var mu sync.Mutex
	var depths []int
	dstream.ForeachRDD(counts, func(_ context.Context, ds *rdd.Dataset[kv], _ time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		depths = append(depths, ds.LineageDepth())
		return nil
	})
	const n = 60
	for range n {
		h.Input.Push(p("x", 1), p("y", 1))
	}
	h.Start()
	var last time.Time
	for range n {
		last = h.Tick()
	}
	if got := fmt.Sprint(dstreamtest.Sorted(col.At(last))); got != fmt.Sprintf("[(x,%d) (y,%d)]", n, n) {
		t.Fatalf("after %d intervals state = %s", n, got)
	}
	mu.Lock()
	got := slices.Clone(depths)
	mu.Unlock()
	if len(got) != n {
		t.Fatalf("the state was output %d times in %d intervals", len(got), n)
	}
	if slices.Max(got) > got[0] || got[0] > 3 {
		t.Errorf("lineage depth of the state, interval by interval = %v: want every interval as deep as the first, at most 3 (cogroup, flatMapSameKey over the input)", got)
	}
	if ds, err := counts.At(last); err != nil || ds == nil || ds.LineageDepth() > got[0] {
		t.Errorf("state at the last interval: %v (%v), want lineage at most %d deep", ds, err, got[0])
	}
	if st := h.Ctx.BlockStats(); st.Blocks > 40 {
		t.Errorf("block store holds %d blocks after %d intervals: old intervals are not forgotten", st.Blocks, n)
	}
}

func TestMapWithStateWithTimeout(t *testing.T) {
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	spec := dstream.StateSpec[string, int, int, string]{
		Func: func(_ time.Time, key string, v dstream.Opt[int], st *dstream.State[int]) dstream.Opt[string] {
			if st.IsTimingOut() {
				return dstream.Some(fmt.Sprintf("%s timed out at %d", key, st.Get()))
			}
			sum := st.Get() + v.Value
			if sum < 0 {
				_ = st.Remove()
				return dstream.Some(key + " removed")
			}
			_ = st.Update(sum)
			return dstream.Some(fmt.Sprintf("%s=%d", key, sum))
		},
		Timeout:       2 * sec,
		NumPartitions: 2,
	}
	m := dstream.MapWithState(h.In, spec)
	mapped := dstreamtest.Collect(m.Stream)
	snaps := dstreamtest.Collect(m.StateSnapshots())
	h.Input.Push(p("a", 1), p("a", 2), p("b", 5)) // 1
	h.Input.Push(p("b", 1))                       // 2
	h.Input.Push(p("b", -10))                     // 3: a idle 2 s -> times out; b removed
	h.Input.Push()                                // 4
	h.Start()
	var ts []time.Time
	for range 4 {
		ts = append(ts, h.Tick())
	}
	wantMapped := []string{
		"[a=1 a=3 b=5]",
		"[b=6]",
		"[a timed out at 3 b removed]",
		"[]",
	}
	wantSnaps := []string{
		"[(a,3) (b,5)]",
		"[(a,3) (b,6)]",
		"[]",
		"[]",
	}
	for i, at := range ts {
		if got := fmt.Sprint(dstreamtest.Sorted(mapped.At(at))); got != wantMapped[i] {
			t.Errorf("interval %d mapped = %s, want %s", i+1, got, wantMapped[i])
		}
		if got := fmt.Sprint(dstreamtest.Sorted(snaps.At(at))); got != wantSnaps[i] {
			t.Errorf("interval %d snapshots = %s, want %s", i+1, got, wantSnaps[i])
		}
	}
}

func TestMapWithStateUpdateWhileTimingOutFails(t *testing.T) {
	st := dstream.State[int]{}
	if err := st.Update(1); err != nil {
		t.Fatalf("Update on a live state: %v", err)
	}
	if !st.Exists() || st.Get() != 1 {
		t.Fatalf("state after Update = %v/%v", st.Exists(), st.Get())
	}
}

// runningSum keeps each key's running sum; a key whose sum drops to zero or
// below is removed.
func runningSum(vs []int, st dstream.Opt[int]) dstream.Opt[int] {
	sum := st.Value
	for _, v := range vs {
		sum += v
	}
	if sum <= 0 {
		return dstream.None[int]()
	}
	return dstream.Some(sum)
}
