package bench

import (
	"slices"
	"strings"
	"time"
)

// The baselines are what a Go programmer would write by hand: one thread,
// plain maps, no engine. Each is fed one interval's records at a time and
// returns the interval's figure.

func grepBaseline(_, _ time.Duration) func([][]string) int64 {
	return func(chunks [][]string) int64 {
		var n int64
		for _, recs := range chunks {
			for _, r := range recs {
				if strings.Contains(r, Pattern) {
					n++
				}
			}
		}
		return n
	}
}

// windowCounter keeps word counts over a sliding window of intervals: the
// counts of each interval, and the window's total, updated by adding the new
// interval and subtracting the one that leaves.
type windowCounter struct {
	intervals []map[string]int64 // ring, one per interval in the window
	next      int
	total     map[string]int64
}

func newWindowCounter(window, slide time.Duration) *windowCounter {
	n := max(1, int(window/slide))
	return &windowCounter{intervals: make([]map[string]int64, n), total: make(map[string]int64)}
}

func (w *windowCounter) add(chunks [][]string) {
	cur := make(map[string]int64)
	for _, recs := range chunks {
		for _, r := range recs {
			for word := range strings.FieldsSeq(r) {
				cur[word]++
			}
		}
	}
	if old := w.intervals[w.next]; old != nil {
		for word, c := range old {
			if w.total[word] -= c; w.total[word] <= 0 {
				delete(w.total, word)
			}
		}
	}
	for word, c := range cur {
		w.total[word] += c
	}
	w.intervals[w.next] = cur
	w.next = (w.next + 1) % len(w.intervals)
}

func wordCountBaseline(window, slide time.Duration) func([][]string) int64 {
	w := newWindowCounter(window, slide)
	return func(recs [][]string) int64 {
		w.add(recs)
		return int64(len(w.total))
	}
}

func topKBaseline(window, slide time.Duration) func([][]string) int64 {
	w := newWindowCounter(window, slide)
	return func(recs [][]string) int64 {
		w.add(recs)
		// Keep the 10 largest counts in a small sorted slice.
		top := make([]int64, 0, 11)
		for _, c := range w.total {
			if len(top) < 10 || c > top[len(top)-1] {
				i, _ := slices.BinarySearchFunc(top, c, func(a, b int64) int { return int(b - a) })
				top = slices.Insert(top, i, c)
				if len(top) > 10 {
					top = top[:10]
				}
			}
		}
		if len(top) == 0 {
			return 0
		}
		return top[0]
	}
}
