package eventwin

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// The property tests run random intervals of out-of-order records (one
// key) through the operator's two paths, interval by interval: records
// sorted by event time and added to the state (AggregateByEventWindow),
// and records split over random map partitions, combined there and merged
// into the state (the count and reduce forms). Both must agree with each
// other every interval, and with a naive reference that recomputes every
// window from all the records seen so far.

// propInterval is one interval: its watermark and its records' event times.
type propInterval struct {
	wm  Watermark
	ts  []int64
	end int64 // the interval's end, in event time
}

// propRun draws a run: intervals of 10 ms, records up to 8 ms behind the
// interval's end and one in ten up to 60 ms behind, the watermark maxDelay
// behind the largest event time of the intervals before.
func propRun(r *rand.Rand, intervals int, maxDelay int64) []propInterval {
	out := make([]propInterval, intervals)
	maxSeen, seen := int64(0), false
	for i := range out {
		end := int64(i+1) * 10
		if seen {
			out[i].wm = Watermark{At: maxSeen - maxDelay, Known: true}
		}
		out[i].end = end
		for range r.IntN(8) {
			behind := r.Int64N(9)
			if r.IntN(10) == 0 {
				behind = r.Int64N(61)
			}
			out[i].ts = append(out[i].ts, end-behind)
		}
		for _, ts := range out[i].ts {
			maxSeen, seen = max(maxSeen, ts), true
		}
	}
	return out
}

// ordered runs the state as AggregateByEventWindow does: each interval's
// records sorted and added.
func ordered(w Windows, mode Mode, run []propInterval) []State[int64, int64] {
	var prev *State[int64, int64]
	out := make([]State[int64, int64], len(run))
	for i, iv := range run {
		s := Resume(prev)
		for _, ts := range slices.Sorted(slices.Values(iv.ts)) {
			s.Add(w, iv.wm, ts, ts, count)
		}
		s.Close(iv.wm, mode)
		out[i], prev = s, &out[i]
	}
	return out
}

// combined runs it as the count form does: each interval's records dealt to
// parts map partitions at random, combined there, the partial states merged.
func combined(r *rand.Rand, w Windows, mode Mode, run []propInterval, parts int) []State[int64, int64] {
	var prev *State[int64, int64]
	out := make([]State[int64, int64], len(run))
	for i, iv := range run {
		cbs := make([]*Combiner[string, int64, int64], parts)
		for p := range cbs {
			cbs[p] = NewCombiner[string](w, iv.wm, count, 0)
		}
		for _, ts := range iv.ts {
			cbs[r.IntN(parts)].Add("k", ts, ts)
		}
		s := Resume(prev)
		for _, cb := range cbs {
			for _, part := range cb.All() {
				s.Merge(w, &part, count.Merge)
			}
		}
		s.Close(iv.wm, mode)
		out[i], prev = s, &out[i]
	}
	return out
}

// naive computes each interval's output from scratch for tumbling and
// sliding windows: a record counts in a window holding it if the window
// was open under the watermark of the interval the record came in; a
// window exists from its first counting record until the first interval
// whose watermark closes it, where Append outputs it; Update outputs the
// windows an interval's records counted in, with every count so far.
func naive(w Windows, mode Mode, run []propInterval) (outs, open []string, late []int) {
	counts := map[int64]int64{} // by start: counting records so far
	closedAt := map[int64]bool{}
	for _, iv := range run {
		changed := map[int64]bool{}
		nLate := 0
		for _, ts := range iv.ts {
			counted := false
			for start := ts - w.Size + 1; start <= ts; start++ {
				if floorDiv(start, w.Slide)*w.Slide != start || iv.wm.Closed(start+w.Size) {
					continue
				}
				counts[start]++
				changed[start], counted = true, true
			}
			if !counted {
				nLate++
			}
		}
		var out []Win[int64]
		var kept []Win[int64]
		for _, start := range slices.Sorted(maps.Keys(counts)) {
			x := Win[int64]{Start: start, End: start + w.Size, Acc: counts[start], Changed: changed[start]}
			closed := iv.wm.Closed(x.End)
			if mode == Update && changed[start] || mode == Append && closed && !closedAt[start] {
				out = append(out, x)
			}
			if closed {
				closedAt[start] = true
				delete(counts, start)
			} else {
				x.Changed = false
				kept = append(kept, x)
			}
		}
		outs, open, late = append(outs, show(out)), append(open, show(kept)), append(late, nLate)
	}
	return outs, open, late
}

func TestAgainstNaive(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		w := []Windows{{Size: 10, Slide: 10}, {Size: 12, Slide: 4}, {Size: 7, Slide: 7}}[seed%3]
		mode := Mode(seed / 3 % 2)
		run := propRun(r, 12, int64(r.IntN(15)))
		wantOut, wantOpen, wantLate := naive(w, mode, run)
		for name, got := range map[string][]State[int64, int64]{"ordered": ordered(w, mode, run), "combined": combined(r, w, mode, run, 1+r.IntN(3))} {
			for i, s := range got {
				if show(s.Out) != wantOut[i] || show(s.Wins) != wantOpen[i] || len(s.Late) != wantLate[i] {
					t.Fatalf("seed %d, %+v mode %d, %s, interval %d (%+v):\n got out %s open %s late %d\nwant out %s open %s late %d",
						seed, w, mode, name, i, run[i], show(s.Out), show(s.Wins), len(s.Late), wantOut[i], wantOpen[i], wantLate[i])
				}
			}
		}
	}
}

// TestSessionsCombinedAsOrdered: for sessions, combining per map partition
// and merging gives what adding the sorted records does, every interval.
func TestSessionsCombinedAsOrdered(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 11))
		w := Windows{Gap: 1 + r.Int64N(12)}
		mode := Mode(seed % 2)
		run := propRun(r, 12, int64(r.IntN(15)))
		want, got := ordered(w, mode, run), combined(r, w, mode, run, 1+r.IntN(4))
		for i := range want {
			if fmt.Sprint(show(got[i].Out), show(got[i].Wins), len(got[i].Late)) != fmt.Sprint(show(want[i].Out), show(want[i].Wins), len(want[i].Late)) {
				t.Fatalf("seed %d, gap %d, mode %d, interval %d (%+v):\n got out %s open %s late %d\nwant out %s open %s late %d",
					seed, w.Gap, mode, i, run[i], show(got[i].Out), show(got[i].Wins), len(got[i].Late), show(want[i].Out), show(want[i].Wins), len(want[i].Late))
			}
		}
	}
}

// TestSessionsWithoutWatermark: with no watermark nothing closes, and the
// open sessions are the connected ranges [ts, ts+gap) of every record.
func TestSessionsWithoutWatermark(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 13))
		w := Windows{Gap: 1 + r.Int64N(10)}
		var s State[int64, int64]
		var all []int64
		for range r.IntN(30) {
			ts := r.Int64N(100)
			all = append(all, ts)
			s.Add(w, noWM, ts, ts, count)
		}
		slices.Sort(all)
		var want []Win[int64]
		for _, ts := range all {
			if n := len(want); n > 0 && want[n-1].End >= ts {
				want[n-1].End, want[n-1].Acc = max(want[n-1].End, ts+w.Gap), want[n-1].Acc+1
				continue
			}
			want = append(want, Win[int64]{Start: ts, End: ts + w.Gap, Acc: 1, Changed: true})
		}
		for i := range want {
			want[i].Changed = true
		}
		if show(s.Wins) != show(want) {
			t.Fatalf("seed %d, gap %d, records %v:\n got %s\nwant %s", seed, w.Gap, all, show(s.Wins), show(want))
		}
	}
}
