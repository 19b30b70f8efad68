package dstreamtest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// A Collector tells an interval that ran and produced nothing from one with
// no output: not run yet, failed, or between a window's slides.
func TestCollectorTellsEmptyFromNoOutput(t *testing.T) {
	h := dstreamtest.New[int](t, dstreamtest.Options{Config: func(c *dstream.Config) {
		c.OnBatchError = func(*dstream.BatchError) error { return nil } // carry on after interval 3
	}})
	even := dstreamtest.Collect(dstream.Filter(h.In, func(x int) bool { return x%2 == 0 }))
	window := dstreamtest.Collect(dstream.Window(h.In, 2*time.Second, 2*time.Second))
	failing := dstreamtest.Collect(dstream.Map(h.In, func(x int) int {
		if x == 13 {
			panic("unlucky record")
		}
		return x
	}))
	h.Input.Push(1, 2)
	h.Input.Push(3)
	h.Input.Push(13)
	h.Start()
	t1, t2, t3 := h.Tick(), h.Tick(), h.Tick()
	t4 := t3.Add(time.Second) // not run
	cases := []struct {
		name    string
		col     *dstreamtest.Collector[int]
		t       time.Time
		ran     bool
		at      []int // nil: no output
		failed  bool
		comment string
	}{
		{"even", even, t1, true, []int{2}, false, "records"},
		{"even", even, t2, true, []int{}, false, "ran, produced nothing"},
		{"even", even, t4, false, nil, false, "not run yet"},
		{"window", window, t1, false, nil, false, "between slides"},
		{"window", window, t2, true, []int{1, 2, 3}, false, "a slide"},
		{"window", window, t3, false, nil, false, "between slides"},
		{"failing", failing, t2, true, []int{3}, false, "records"},
		{"failing", failing, t3, true, nil, true, "failed"},
	}
	for _, c := range cases {
		got := c.col.At(c.t)
		if ran := c.col.Ran(c.t); ran != c.ran {
			t.Errorf("%s at %d (%s): Ran = %v, want %v", c.name, c.t.UnixMilli(), c.comment, ran, c.ran)
		}
		if (got == nil) != (c.at == nil) || fmt.Sprint(dstreamtest.Sorted(got)) != fmt.Sprint(c.at) {
			t.Errorf("%s at %d (%s): At = %#v, want %#v", c.name, c.t.UnixMilli(), c.comment, got, c.at)
		}
		if err := c.col.Err(c.t); (err != nil) != c.failed {
			t.Errorf("%s at %d (%s): Err = %v, want failed %v", c.name, c.t.UnixMilli(), c.comment, err, c.failed)
		}
	}
}

// Run's results do not depend on the difference: an interval with no
// records is an empty slice either way.
func TestRunReportsEmptyIntervalsAsEmpty(t *testing.T) {
	got := dstreamtest.Run(t, dstreamtest.Options{}, [][]int{{1}, {}, {2}}, func(in *dstream.Stream[int]) *dstream.Stream[int] {
		return dstream.Filter(in, func(x int) bool { return x > 1 })
	}, 4)
	if fmt.Sprint(got) != "[[] [] [2] []]" {
		t.Errorf("Run = %v, want [[] [] [2] []]", got)
	}
	for i, xs := range got {
		if xs == nil {
			t.Errorf("interval %d: nil, want an empty slice", i+1)
		}
	}
}
