package rdd

import (
	"fmt"
	"slices"
	"testing"
)

func TestCombinerPool(t *testing.T) {
	stream := ID{Op: 3, Time: 1_000, Seq: 1}
	later := ID{Op: 3, Time: 2_000, Seq: 1} // the same operator, next interval
	static := ID{Op: 0, Seq: 1}
	fill := func(m *combiner[string, int], n int) {
		for i := range n {
			s, _ := m.slot(fmt.Sprint(i))
			*s = i
		}
	}
	steps := []struct {
		name     string
		put      ID
		keys     int
		ownPairs bool
		get      ID
		side     int8
		reused   bool // get returns the combiner put
		wantCap  int  // the pairs' capacity get returns, at least
	}{
		{"the next interval reuses a combiner, pairs and all", stream, 100, true, later, 0, true, 100},
		{"pairs that went on with a bucket are not reused", stream, 100, false, later, 0, true, 100},
		{"each side has its own", stream, 100, true, later, 1, false, 64},
		{"static datasets are not pooled", static, 100, true, static, 0, false, 64},
		{"a combiner past the bound is left to the collector", stream, maxPooledKeys + 1, true, later, 0, false, maxPooledKeys + 1},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c := &Context{}
			m := getCombiner[string, int](c, s.put, 0, 64)
			fill(m, s.keys)
			pairs := m.pairs
			putCombiner(c, s.put, 0, m, s.ownPairs)
			got := getCombiner[string, int](c, s.get, s.side, 64)
			if (got == m) != s.reused {
				t.Fatalf("reused = %v, want %v", got == m, s.reused)
			}
			if len(got.idx) != 0 || len(got.pairs) != 0 {
				t.Fatalf("not empty: %d keys, %d pairs", len(got.idx), len(got.pairs))
			}
			if cap(got.pairs) < s.wantCap {
				t.Fatalf("pairs' capacity %d, want at least %d", cap(got.pairs), s.wantCap)
			}
			if s.reused && !s.ownPairs && cap(pairs) > 0 && cap(got.pairs) > 0 && &got.pairs[:1][0] == &pairs[0] {
				t.Fatal("the pairs a bucket holds were handed to the next task")
			}
			if s.reused && s.ownPairs && slices.ContainsFunc(pairs[:s.keys], func(p Pair[string, int]) bool { return p.Key != "" }) {
				t.Fatal("a pooled combiner holds the ended task's records")
			}
			// It works as a new one would.
			fill(got, 3)
			if v, ok := got.slot("2"); !ok || *v != 2 || len(got.pairs) != 3 {
				t.Fatalf("reused combiner: slot(2) = %d, %v; %d pairs", *v, ok, len(got.pairs))
			}
		})
	}
}

func TestCombinerPoolIsBounded(t *testing.T) {
	c := &Context{}
	id := ID{Op: 1, Seq: 1}
	var ms []*combiner[int, int]
	for range maxIdleCombiners + 3 {
		ms = append(ms, getCombiner[int, int](c, id, 0, 8))
	}
	for _, m := range ms {
		putCombiner(c, id, 0, m, true)
	}
	v, _ := c.combiners.m.Load(hintKey{1, 1, 0})
	if n := len(v.(*idleCombiners).free); n != maxIdleCombiners {
		t.Fatalf("%d idle combiners kept, want the bound %d", n, maxIdleCombiners)
	}
	for i := range maxHints + 10 {
		putCombiner(c, ID{Op: 2, Seq: int32(i)}, 0, getCombiner[int, int](c, ID{Op: 2, Seq: int32(i)}, 0, 8), true)
	}
	n := 0
	c.combiners.m.Range(func(any, any) bool { n++; return true })
	if n != maxHints {
		t.Fatalf("%d operators pooled, want the bound %d", n, maxHints)
	}
	// A combiner of another type under the same key (never in a graph,
	// whose operators keep their types) is not handed out as this one.
	putCombiner(c, ID{Op: 5, Seq: 1}, 0, getCombiner[int, string](c, ID{Op: 5, Seq: 1}, 0, 8), true)
	if m := getCombiner[int, int](c, ID{Op: 5, Seq: 1}, 0, 8); m == nil || len(m.idx) != 0 {
		t.Fatal("no usable combiner")
	}
}
