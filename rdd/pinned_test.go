package rdd_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
)

// pinCtx is a local context whose runner counts the tasks it ran and whose
// store holds mem bytes (0: unbounded).
func pinCtx(t *testing.T, mem int64) (*rdd.Context, *block.Store, *atomic.Int64) {
	t.Helper()
	var tasks atomic.Int64
	bs := block.New(block.Options{MaxBytes: mem})
	c, err := rdd.NewContext(rdd.Config{
		Runner: sched.NewLocal(sched.LocalConfig{Slots: 2, OnTask: func(e sched.TaskEvent) {
			if e.Err == nil {
				tasks.Add(1)
			}
		}}),
		Blocks:      bs,
		Shuffles:    shuffle.New(bs),
		Parallelism: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, bs, &tasks
}

// A dataset pinned where it is computed (PinOnCompute) is kept without a
// task for each partition a job computed, and with one for each it did not;
// its records are the same either way, read from the pinned blocks.
func TestKeepRunsNoTaskForPinnedPartitions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		computed []int // the partitions a job computed before Keep
		keeps    int64 // the keep tasks expected
	}{
		{"every partition computed", []int{0, 1, 2}, 0},
		{"one computed", []int{1}, 2},
		{"none computed", nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, bs, tasks := pinCtx(t, 0)
			var calls atomic.Int64
			d := rdd.Map(rdd.Parallelize(c, []int{1, 2, 3, 4, 5, 6}, 3), func(x int) int {
				calls.Add(1)
				return 10 * x
			}).PinOnCompute()
			if len(tc.computed) > 0 {
				if _, err := c.RunJob(bg, &rdd.Job{Name: "count", Final: d.Node(), Partitions: tc.computed, Kind: rdd.KindCount}); err != nil {
					t.Fatal(err)
				}
			}
			if st := bs.Stats(); st.StateBytes == 0 && len(tc.computed) > 0 {
				t.Fatalf("computed partitions are not pinned: %+v", st)
			}
			before, computedCalls := tasks.Load(), calls.Load()
			if err := d.Keep(bg); err != nil {
				t.Fatal(err)
			}
			if got := tasks.Load() - before; got != tc.keeps {
				t.Errorf("Keep ran %d tasks; want %d", got, tc.keeps)
			}
			if !d.Kept() {
				t.Fatal("not kept")
			}
			if got := collectSorted(t, d); got != "10 20 30 40 50 60" {
				t.Errorf("kept records = %s", got)
			}
			// Each record was computed once: by the job, or by Keep for the
			// partitions the job did not compute; reading the kept dataset
			// computes nothing.
			if got := calls.Load(); got != 6 {
				t.Errorf("map ran %d times (%d before Keep); want 6", got, computedCalls)
			}
		})
	}
}

// A partition the store cannot pin is not reported as pinned: Keep computes
// it again and fails saying why, as it does for a dataset not pinned on
// compute, while the job that computed it succeeds.
func TestKeepFailsForAPartitionThatCouldNotBePinned(t *testing.T) {
	c, _, tasks := pinCtx(t, 1<<10)
	big := strings.Repeat("x", 4<<10)
	d := rdd.Map(rdd.Parallelize(c, []int{1, 2}, 2), func(int) string { return big }).PinOnCompute()
	if n, err := d.Count(bg); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2 records", n, err)
	}
	before := tasks.Load()
	err := d.Keep(bg)
	if err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("Keep = %v; want the store's refusal", err)
	}
	if tasks.Load() != before {
		t.Errorf("a keep task succeeded with nothing pinnable")
	}
	if d.Kept() {
		t.Error("kept although no partition could be pinned")
	}
}
