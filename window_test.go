package dstream_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dstream/dstream"
)

const sec = time.Second

func TestWindow(t *testing.T) {
	in := [][]int{{1}, {2}, {3}, {}, {4}, {5, 6}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] { return dstream.Window(s, 3*sec, sec) }, 7)
	check(t, got, [][]int{{1}, {1, 2}, {1, 2, 3}, {2, 3}, {3, 4}, {4, 5, 6}, {4, 5, 6}})
}

func TestWindowWithLargerSlide(t *testing.T) {
	// A 4 s window sliding by 2 s produces a dataset every other interval.
	in := [][]int{{1}, {2}, {3}, {4}, {5}, {6}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] { return dstream.Window(s, 4*sec, 2*sec) }, 6)
	check(t, got, [][]int{{}, {1, 2}, {}, {1, 2, 3, 4}, {}, {3, 4, 5, 6}})
}

func TestCountByWindow(t *testing.T) {
	in := [][]int{{1}, {1}, {1, 2}, {3}, {}, {}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int64] { return dstream.CountByWindow(s, 2*sec, sec) }, 6)
	check(t, got, [][]int64{{1}, {2}, {3}, {3}, {1}, {0}})
}

func TestReduceByWindow(t *testing.T) {
	in := [][]int{{1}, {2, 3}, {}, {4}, {}}
	got := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] { return dstream.ReduceByWindow(s, add, 2*sec, sec) }, 6)
	check(t, got, [][]int{{1}, {6}, {5}, {4}, {4}, {}})
	inv := run(t, in, func(s *dstream.Stream[int]) *dstream.Stream[int] {
		return dstream.ReduceByWindowInv(s, add, sub, 2*sec, sec)
	}, 6)
	// The incremental form keeps the window's value once it has one.
	check(t, inv, [][]int{{1}, {6}, {5}, {4}, {4}, {0}})
}

var keyedInput = [][]kv{
	{p("a", 1)},
	{p("a", 2), p("b", 1)},
	{p("a", 3), p("b", 1)},
	{p("b", 1)},
	{},
	{},
}

func TestReduceByKeyAndWindow(t *testing.T) {
	want := [][]kv{
		{p("a", 1)},
		{p("a", 3), p("b", 1)},
		{p("a", 5), p("b", 2)},
		{p("a", 3), p("b", 2)},
		{p("b", 1)},
		{},
	}
	plain := run(t, keyedInput, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
		return dstream.ReduceByKeyAndWindow(s, add, 2*sec, sec, 2)
	}, 6)
	check(t, plain, want)
	inv := run(t, keyedInput, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
		return dstream.ReduceByKeyAndWindowInv(s, add, sub, 2*sec, sec, 2, func(x kv) bool { return x.Value != 0 })
	}, 6)
	check(t, inv, want)
	// Without the filter, keys whose value fell to zero stay.
	keepZeros := run(t, keyedInput, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
		return dstream.ReduceByKeyAndWindowInv(s, add, sub, 2*sec, sec, 2, nil)
	}, 6)
	check(t, keepZeros, [][]kv{
		{p("a", 1)},
		{p("a", 3), p("b", 1)},
		{p("a", 5), p("b", 2)},
		{p("a", 3), p("b", 2)},
		{p("a", 0), p("b", 1)},
		{p("a", 0), p("b", 0)},
	})
}

func TestReduceByKeyAndWindowLargerSlide(t *testing.T) {
	want := [][]kv{
		{},
		{p("a", 3), p("b", 1)},
		{},
		{p("a", 6), p("b", 3)},
		{},
		{p("a", 3), p("b", 2)},
	}
	for _, name := range []string{"plain", "inverse"} {
		t.Run(name, func(t *testing.T) {
			got := run(t, keyedInput, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
				if name == "plain" {
					return dstream.ReduceByKeyAndWindow(s, add, 4*sec, 2*sec, 2)
				}
				return dstream.ReduceByKeyAndWindowInv(s, add, sub, 4*sec, 2*sec, 2, func(x kv) bool { return x.Value != 0 })
			}, 6)
			check(t, got, want)
		})
	}
}

func TestGroupByKeyAndWindow(t *testing.T) {
	got := run(t, keyedInput, func(s *dstream.Stream[kv]) *dstream.Stream[dstream.Pair[string, []int]] {
		return dstream.GroupByKeyAndWindow(s, 2*sec, sec, 2)
	}, 6)
	check(t, got, [][]dstream.Pair[string, []int]{
		{dstream.KV("a", []int{1})},
		{dstream.KV("a", []int{1, 2}), dstream.KV("b", []int{1})},
		{dstream.KV("a", []int{2, 3}), dstream.KV("b", []int{1, 1})},
		{dstream.KV("a", []int{3}), dstream.KV("b", []int{1, 1})},
		{dstream.KV("b", []int{1})},
		{},
	})
}

func TestCountByValueAndWindow(t *testing.T) {
	in := [][]string{{"a"}, {"b", "b"}, {"a", "b"}, {}, {}}
	got := run(t, in, func(s *dstream.Stream[string]) *dstream.Stream[dstream.Pair[string, int64]] {
		return dstream.CountByValueAndWindow(s, 2*sec, sec, 2)
	}, 5)
	c := func(k string, v int64) dstream.Pair[string, int64] { return dstream.KV(k, v) }
	check(t, got, [][]dstream.Pair[string, int64]{
		{c("a", 1)},
		{c("a", 1), c("b", 2)},
		{c("a", 1), c("b", 3)},
		{c("a", 1), c("b", 1)},
		{},
	})
}

// TestIncrementalWindowEqualsRecomputed is the property test: on random
// input, the incremental window (with its inverse) equals the window
// recomputed from scratch, and both equal a naive reference, for several
// window and slide lengths and partition counts.
func TestIncrementalWindowEqualsRecomputed(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		const intervals = 14
		in := make([][]kv, intervals)
		for i := range in {
			for range rng.IntN(12) {
				in[i] = append(in[i], p(string(rune('a'+rng.IntN(6))), rng.IntN(10)-3))
			}
		}
		window := time.Duration(1+rng.IntN(4)) * sec
		slide := time.Duration(1+rng.IntN(2)) * sec
		if window%slide != 0 {
			window = slide * (window/slide + 1)
		}
		parts := 1 + rng.IntN(4)
		t.Run(fmt.Sprintf("seed%d/w%v/s%v/p%d", seed, window, slide, parts), func(t *testing.T) {
			nonZero := func(x kv) bool { return x.Value != 0 }
			inc := run(t, in, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
				return dstream.ReduceByKeyAndWindowInv(s, add, sub, window, slide, parts, nonZero)
			}, intervals)
			plain := run(t, in, func(s *dstream.Stream[kv]) *dstream.Stream[kv] {
				return dstream.Filter(dstream.ReduceByKeyAndWindow(s, add, window, slide, parts), nonZero)
			}, intervals)
			check(t, inc, plain)
			check(t, inc, naiveWindow(in, intervals, int(window/sec), int(slide/sec)))
		})
	}
}

// naiveWindow sums each key's values over the window by brute force.
func naiveWindow(in [][]kv, intervals, window, slide int) [][]kv {
	out := make([][]kv, intervals)
	for i := 1; i <= intervals; i++ {
		out[i-1] = []kv{}
		if i%slide != 0 {
			continue
		}
		sums := map[string]int{}
		for j := max(1, i-window+1); j <= i; j++ {
			if j-1 < len(in) {
				for _, x := range in[j-1] {
					sums[x.Key] += x.Value
				}
			}
		}
		for k, v := range sums {
			if v != 0 {
				out[i-1] = append(out[i-1], p(k, v))
			}
		}
	}
	return out
}
