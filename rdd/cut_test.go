package rdd_test

import (
	"context"
	"runtime"
	"testing"
	"weak"

	"github.com/dstream/dstream/rdd"
)

// A cut lineage holds nothing before the cut: a state stream's dataset of
// every interval derives from the one before, and a process that keeps
// running must be able to collect the intervals before its last cut.
// Before, the cut dropped the dependencies but kept the function that
// computes the dataset from its parents, and with it every earlier
// interval's datasets (issue #23: a master's and a worker's live heap grew
// with every interval).
func TestCutLineageKeepsNothingBeforeTheCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(*rdd.Dataset[rdd.Pair[int, int]]) error
	}{
		{"Checkpoint", func(d *rdd.Dataset[rdd.Pair[int, int]]) error { return d.Checkpoint(bg) }},
		{"Keep then Truncate", func(d *rdd.Dataset[rdd.Pair[int, int]]) error {
			if err := d.Keep(bg); err != nil {
				return err
			}
			d.Truncate(nil)
			return nil
		}},
		{"Truncate with a durable copy", func(d *rdd.Dataset[rdd.Pair[int, int]]) error {
			if err := d.Keep(bg); err != nil {
				return err
			}
			d.Truncate(func(context.Context, int) ([]byte, error) { return nil, nil })
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCtx(t, 2, 0)
			// A running total per key, as UpdateStateByKey computes it: each
			// interval's state is the cogroup of the one before with the
			// interval's input, cut every fifth interval.
			const intervals, every = 20, 5
			state := rdd.Parallelize(c, []rdd.Pair[int, int]{rdd.KV(0, 0), rdd.KV(1, 0)}, 2)
			var before []weak.Pointer[rdd.Dataset[rdd.Pair[int, int]]] // states before the last cut
			for i := range intervals {
				in := rdd.Parallelize(c, []rdd.Pair[int, int]{rdd.KV(0, 1), rdd.KV(1, 2)}, 2)
				cg := rdd.Cogroup(state, in, 2)
				if i < intervals-1 {
					before = append(before, weak.Make(state))
				}
				state = rdd.FlatMapSameKey(cg, func(kg rdd.Pair[int, rdd.Grouped[int, int]]) []rdd.Pair[int, int] {
					sum := 0
					for _, v := range kg.Value.Left {
						sum += v
					}
					for _, v := range kg.Value.Right {
						sum += v
					}
					return []rdd.Pair[int, int]{rdd.KV(kg.Key, sum)}
				})
				if i%every == every-1 {
					if err := tc.cut(state); err != nil {
						t.Fatal(err)
					}
				}
			}
			runtime.GC()
			alive := 0
			for _, w := range before {
				if w.Value() != nil {
					alive++
				}
			}
			if alive > 0 {
				t.Errorf("%d of the %d states before the last cut are still reachable from it", alive, len(before))
			}
			if got := collectSorted(t, state); got != "(0,20) (1,40)" {
				t.Errorf("state after %d intervals = %s", intervals, got)
			}
		})
	}
}
