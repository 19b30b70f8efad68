package rdd_test

import (
	"context"
	"testing"

	"github.com/dstream/dstream/rdd"
)

// Every change to how a dataset's partitions are read grows its node's
// StorageVersion, which the master's manifest entries are cached on; a
// call that changes nothing leaves it.
func TestStorageVersionGrowsWithEveryChange(t *testing.T) {
	c, _ := newCtx(t, 1, 0)
	d := rdd.Parallelize(c, []int{1, 2, 3}, 2)
	n := d.Node()
	last := n.StorageVersion()
	step := func(name string, changes bool, f func()) {
		t.Helper()
		f()
		v := n.StorageVersion()
		if grew := v > last; grew != changes {
			t.Fatalf("%s: version %d after %d; want a change %v", name, v, last, changes)
		}
		last = v
	}
	step("SetLocations", true, func() { d.SetLocations(func(int) []string { return []string{"a"} }) })
	step("LoseLocation of a holder", true, func() { d.LoseLocation("a") })
	step("LoseLocation of no holder", false, func() { d.LoseLocation("z") })
	step("MarkKept", true, func() { d.MarkKept([]string{"b", "c"}) })
	step("Truncate", true, func() { d.Truncate(func(context.Context, int) ([]byte, error) { return nil, nil }) })

	kept := rdd.Map(rdd.Parallelize(c, []int{1, 2, 3}, 2), func(x int) int { return x })
	n, last = kept.Node(), kept.Node().StorageVersion()
	step("Keep", true, func() {
		if err := kept.Keep(bg); err != nil {
			t.Fatal(err)
		}
	})
	step("Keep again", false, func() {
		if err := kept.Keep(bg); err != nil {
			t.Fatal(err)
		}
	})
	cut := rdd.Map(rdd.Parallelize(c, []int{1, 2, 3}, 2), func(x int) int { return x })
	n, last = cut.Node(), cut.Node().StorageVersion()
	step("Checkpoint", true, func() {
		if err := cut.Checkpoint(bg); err != nil {
			t.Fatal(err)
		}
	})
}
