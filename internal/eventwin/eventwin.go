// Package eventwin is the window state of the event-time window operators
// (the root package's AggregateByEventWindow and its count and reduce
// forms): which windows a record at an event time falls in, a key's open
// windows with their accumulators, sessions merged, windows closed by the
// watermark, and the per-partition combiner that folds a map partition's
// records per key and window before the shuffle.
//
// Times are Unix milliseconds; windows are half open, [Start, End). The
// root package keeps the typed API (records, keys, Windowed outputs) and
// the datasets; this package never sees a dataset.
package eventwin

import (
	"fmt"
	"slices"
)

// Windows says how records are grouped: tumbling or sliding windows of
// Size starting every Slide since the Unix epoch, or (Gap > 0) sessions:
// a record at e opens [e, e+Gap), and a key's sessions that overlap or
// touch merge.
type Windows struct {
	Size, Slide, Gap int64 // ms
}

// Session reports whether w are session windows.
func (w Windows) Session() bool { return w.Gap != 0 }

// Check returns an error for windows no record can be assigned to.
func (w Windows) Check() error {
	switch {
	case w.Session():
		if w.Gap < 1 {
			return fmt.Errorf("session gap %d ms must be positive", w.Gap)
		}
	case w.Size < 1 || w.Slide < 1:
		return fmt.Errorf("window size %d ms and slide %d ms must be positive", w.Size, w.Slide)
	case w.Slide > w.Size:
		return fmt.Errorf("window slide %d ms is longer than its size %d ms", w.Slide, w.Size)
	}
	return nil
}

// Late reports whether a record at ts has no open window under wm: every
// window it falls in ends at or before the watermark.
func (w Windows) Late(ts int64, wm Watermark) bool {
	if w.Session() {
		return wm.Closed(ts + w.Gap)
	}
	// The latest window holding ts ends last.
	return wm.Closed(floorDiv(ts, w.Slide)*w.Slide + w.Size)
}

// Watermark is the watermark an interval runs with; none (Known false)
// until the operator's inputs have carried records.
type Watermark struct {
	At    int64 // ms
	Known bool
}

// Closed reports whether a window ending at end is closed: its end is at
// or before the watermark.
func (m Watermark) Closed(end int64) bool { return m.Known && end <= m.At }

// Mode says which windows an interval outputs.
type Mode int

const (
	// Append outputs each window once, when the watermark closes it.
	Append Mode = iota
	// Update outputs the windows the interval's records changed.
	Update
)

// Win is one open window of a key with its accumulator.
type Win[A any] struct {
	Start, End int64 // ms
	Acc        A
	// Changed: the interval's records changed it (reset when the
	// interval's state is closed, so a kept window is never changed).
	Changed bool
}

// Fold says how records of type E fold into accumulators of type A: First
// is a window's accumulator of its first record, Add folds in one more,
// and Merge joins two windows' accumulators (the earlier window's first):
// sessions that become one, and a key's partial windows from several map
// partitions. Merge may be nil when neither happens.
type Fold[E, A any] struct {
	First func(E) A
	Add   func(A, E) A
	Merge func(A, A) A
}

// State is a key's window state after an interval: its open windows by
// start, the windows the interval outputs, and the records it dropped as
// late. The same type is the partial state a map partition folds its
// records of the key into (Out empty) before the shuffle.
type State[E, A any] struct {
	Wins []Win[A]
	Out  []Win[A]
	Late []E
}

// Resume returns the state a key starts an interval with: a copy of
// prev's open windows (prev itself belongs to the previous interval's
// dataset and is never written), nothing output, nothing late.
func Resume[E, A any](prev *State[E, A]) State[E, A] {
	if prev == nil {
		return State[E, A]{}
	}
	return State[E, A]{Wins: slices.Clone(prev.Wins)}
}

// Add folds the record x at event time ts into s's windows under wm,
// opening windows as needed; a record with no open window goes to s.Late.
func (s *State[E, A]) Add(w Windows, wm Watermark, ts int64, x E, f *Fold[E, A]) {
	if w.Session() {
		end := ts + w.Gap
		if wm.Closed(end) {
			s.Late = append(s.Late, x)
			return
		}
		s.Wins = addSession(s.Wins, Win[A]{Start: ts, End: end}, x, f)
		return
	}
	last := floorDiv(ts, w.Slide) * w.Slide
	if wm.Closed(last + w.Size) {
		s.Late = append(s.Late, x)
		return
	}
	for start := last - (w.Size-1)/w.Slide*w.Slide; start <= last; start += w.Slide {
		if start+w.Size <= ts || wm.Closed(start+w.Size) {
			continue
		}
		s.Wins = addAt(s.Wins, start, start+w.Size, x, f)
	}
}

// addAt folds x into the window starting at start, opening it if wins has
// none.
func addAt[E, A any](wins []Win[A], start, end int64, x E, f *Fold[E, A]) []Win[A] {
	n := len(wins)
	i := n
	if n > 0 && wins[n-1].Start != start { // not the newest window: search
		i = search(wins, start)
	} else if n > 0 {
		i = n - 1
	}
	if i < n && wins[i].Start == start {
		wins[i].Acc, wins[i].Changed = f.Add(wins[i].Acc, x), true
		return wins
	}
	return slices.Insert(wins, i, Win[A]{Start: start, End: end, Acc: f.First(x), Changed: true})
}

// search returns the index of the first window starting at or after start.
func search[A any](wins []Win[A], start int64) int {
	lo, hi := 0, len(wins)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if wins[m].Start < start {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// addSession adds a record x opening the session nw to a key's sessions
// (sorted by start), merging every session it overlaps or touches.
func addSession[E, A any](wins []Win[A], nw Win[A], x E, f *Fold[E, A]) []Win[A] {
	lo := overlapping(wins, nw)
	if lo < 0 {
		nw.Acc, nw.Changed = f.First(x), true
		return slices.Insert(wins, search(wins, nw.Start), nw)
	}
	hi := lo
	for hi+1 < len(wins) && wins[hi+1].Start <= nw.End {
		hi++
	}
	m := wins[lo]
	for _, o := range wins[lo+1 : hi+1] {
		m.Acc = f.Merge(m.Acc, o.Acc)
		m.End = max(m.End, o.End)
	}
	m.Acc = f.Add(m.Acc, x)
	m.Start, m.End, m.Changed = min(m.Start, nw.Start), max(m.End, nw.End), true
	return slices.Replace(wins, lo, hi+1, m)
}

// overlapping returns the index of the first of wins that overlaps or
// touches nw, or -1.
func overlapping[A any](wins []Win[A], nw Win[A]) int {
	for i, o := range wins {
		if o.Start > nw.End {
			break
		}
		if o.End >= nw.Start {
			return i
		}
	}
	return -1
}

// Merge folds the partial state o (a map partition's, read only) into s:
// o's windows into s's with merge (s's accumulator first; sessions that
// overlap or touch become one, accumulators in order of start), o's late
// records after s's.
func (s *State[E, A]) Merge(w Windows, o *State[E, A], merge func(A, A) A) {
	for _, x := range o.Wins {
		if w.Session() {
			s.Wins = mergeSession(s.Wins, x, merge)
			continue
		}
		i := search(s.Wins, x.Start)
		if i < len(s.Wins) && s.Wins[i].Start == x.Start {
			s.Wins[i].Acc, s.Wins[i].Changed = merge(s.Wins[i].Acc, x.Acc), true
			continue
		}
		x.Changed = true
		s.Wins = slices.Insert(s.Wins, i, x)
	}
	s.Late = append(s.Late, o.Late...)
}

// mergeSession merges the session nw into wins: with every session it
// overlaps or touches, accumulators joined in order of start (of equal
// starts, wins' first).
func mergeSession[A any](wins []Win[A], nw Win[A], merge func(A, A) A) []Win[A] {
	nw.Changed = true
	lo := overlapping(wins, nw)
	if lo < 0 {
		return slices.Insert(wins, search(wins, nw.Start), nw)
	}
	hi := lo
	for hi+1 < len(wins) && wins[hi+1].Start <= nw.End {
		hi++
	}
	var m Win[A]
	placed := false
	for i, o := range wins[lo : hi+1] {
		if !placed && nw.Start < o.Start {
			m, placed = joinSession(m, nw, i == 0, merge), true
		}
		m = joinSession(m, o, i == 0 && !placed, merge)
	}
	if !placed {
		m = joinSession(m, nw, false, merge)
	}
	m.Changed = true
	return slices.Replace(wins, lo, hi+1, m)
}

// joinSession returns m with o joined after it (o is m itself when first).
func joinSession[A any](m, o Win[A], first bool, merge func(A, A) A) Win[A] {
	if first {
		return o
	}
	m.Acc = merge(m.Acc, o.Acc)
	m.Start, m.End = min(m.Start, o.Start), max(m.End, o.End)
	return m
}

// Close ends s's interval under wm: the windows mode says go to s.Out
// (Append: those wm closed; Update: those the interval changed), the
// closed ones leave s.Wins, and the kept ones are marked unchanged. It
// reports whether s holds anything (an empty state is dropped).
func (s *State[E, A]) Close(wm Watermark, mode Mode) bool {
	kept := s.Wins[:0]
	for _, x := range s.Wins {
		closed := wm.Closed(x.End)
		if mode == Update && x.Changed || mode == Append && closed {
			s.Out = append(s.Out, x)
		}
		if !closed {
			x.Changed = false
			kept = append(kept, x)
		}
	}
	clear(s.Wins[len(kept):]) // drop the closed windows' accumulators
	s.Wins = kept
	return len(s.Wins)+len(s.Out)+len(s.Late) > 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
