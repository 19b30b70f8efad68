package manifest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/dstream/dstream/checkpoint"
)

const zero = 1_700_000_000_000

// cp is a checkpoint entry of stream s at dataset time zero+at.
func cp(s int32, at int64, mod func(*Checkpoint)) Checkpoint {
	c := Checkpoint{Stream: s, Dataset: ID{Op: s, Time: zero + at, Seq: 2}, Name: "reduce", Partitions: 2, HashPartitions: 2,
		Locations: []string{"w1", "w2"}, Kept: true}
	if mod != nil {
		mod(&c)
	}
	return c
}

func interval(at int64, cps ...Checkpoint) *Interval {
	return &Interval{Version: Version, Zero: zero, Time: zero + at,
		Inputs:      []Input{{Stream: 1, Blocks: []Block{{Key: "input_1_" + string(rune('a'+at%26)), Records: 3, Bytes: 90, Locations: []string{"w1", "w2"}}}}},
		Checkpoints: cps,
		EventTimes:  []EventTime{{Stream: 1, Max: zero + at - 5, Watermark: zero + at - 50}},
	}
}

// roundTrip is what a worker reads from m's full frame.
func roundTrip(t *testing.T, m *Interval) *Interval {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDelta: a worker that knows the full manifest of base and applies the
// delta frame of m ends with exactly what the full frame of m says, and the
// delta carries only the entries that changed.
func TestDelta(t *testing.T) {
	tests := []struct {
		name          string
		base, m       *Interval
		sent, dropped int // checkpoint entries in the delta
	}{
		{"no state", interval(1000), interval(2000), 0, 0},
		{"unchanged", interval(1000, cp(3, 500, nil), cp(3, 600, nil)), interval(2000, cp(3, 500, nil), cp(3, 600, nil)), 0, 0},
		{"window slides: one in, one out", interval(1000, cp(3, 500, nil), cp(3, 600, nil)), interval(1100, cp(3, 600, nil), cp(3, 1000, nil)), 1, 1},
		{"first entry", interval(1000), interval(1100, cp(3, 1000, nil)), 1, 0},
		{"all gone", interval(1000, cp(3, 500, nil), cp(5, 600, nil)), interval(1100), 0, 2},
		{"lineage cut", interval(1000, cp(3, 500, nil)), interval(1100, cp(3, 500, func(c *Checkpoint) { c.Kept = false })), 1, 0},
		{"made durable", interval(1000, cp(3, 500, nil)), interval(1100, cp(3, 500, func(c *Checkpoint) { c.Kept, c.Durable = false, "state/3/500" })), 1, 0},
		{"holder lost", interval(1000, cp(3, 500, nil), cp(3, 600, nil)), interval(1100, cp(3, 500, func(c *Checkpoint) { c.Locations = []string{"", "w2"} }), cp(3, 600, nil)), 1, 0},
		{"locations learned", interval(1000, cp(3, 500, func(c *Checkpoint) { c.Locations = nil })), interval(1100, cp(3, 500, nil)), 1, 0},
		{"renamed dataset, same time", interval(1000, cp(3, 500, nil)), interval(1100, cp(3, 500, func(c *Checkpoint) { c.Dataset.Seq = 7 })), 1, 0},
		{"two streams, unsorted", interval(1000, cp(5, 600, nil), cp(3, 500, nil), cp(5, 500, nil)), interval(1100, cp(5, 1000, nil), cp(3, 500, nil), cp(5, 600, nil), cp(3, 1000, nil)), 2, 1},
		{"intervals skipped", interval(1000, cp(3, 500, nil), cp(3, 600, nil), cp(3, 700, nil)), interval(5000, cp(3, 700, nil), cp(3, 4000, nil)), 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := roundTrip(t, tt.base)
			want := roundTrip(t, tt.m)
			d, err := Diff(base, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Checkpoints) != tt.sent || len(d.Dropped) != tt.dropped {
				t.Fatalf("delta sends %d entries and drops %d, want %d and %d: %+v", len(d.Checkpoints), len(d.Dropped), tt.sent, tt.dropped, d)
			}
			b, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			full, got, rest, err := Decode(append(b, "next"...))
			if err != nil || full != nil || string(rest) != "next" {
				t.Fatalf("Decode = %v, %v, %q, %v", full, got, rest, err)
			}
			applied, err := got.Apply(base)
			if err != nil {
				t.Fatal(err)
			}
			if _, sum, _ := got.ApplySummed(base, base.Sum()); sum != want.Sum() {
				t.Fatalf("ApplySummed's sum %x, the manifest's %x", sum, want.Sum())
			}
			if _, sum, _ := DiffSummed(base, base.Sum(), tt.m); sum != want.Sum() {
				t.Fatalf("DiffSummed's sum %x, the manifest's %x", sum, want.Sum())
			}
			if !reflect.DeepEqual(applied, want) {
				t.Fatalf("applied delta:\n%+v\nfull manifest:\n%+v", applied, want)
			}
			// And it marshals to the full frame's bytes.
			b1, _ := applied.Marshal()
			b2, _ := tt.m.Marshal()
			if string(b1) != string(b2) {
				t.Fatal("the applied delta marshals differently from the full manifest")
			}
			// A chain of deltas: base -> m -> m (unchanged) ends the same.
			d2, err := Diff(applied, &Interval{Version: Version, Zero: zero, Time: want.Time + 100, Checkpoints: want.Checkpoints})
			if err != nil {
				t.Fatal(err)
			}
			if len(d2.Checkpoints)+len(d2.Dropped) != 0 {
				t.Fatalf("an unchanged manifest's delta carries entries: %+v", d2)
			}
		})
	}
}

func TestDeltaRefusals(t *testing.T) {
	base := roundTrip(t, interval(1000, cp(3, 500, nil), cp(3, 600, nil)))
	m := interval(1100, cp(3, 600, nil), cp(3, 1000, nil))
	d, err := Diff(base, m)
	if err != nil {
		t.Fatal(err)
	}
	other := roundTrip(t, interval(900, cp(3, 500, nil), cp(3, 600, nil)))
	noDropped := roundTrip(t, interval(1000, cp(3, 600, nil)))
	noDropped.Time = base.Time
	otherZero := roundTrip(t, interval(1000, cp(3, 500, nil), cp(3, 600, nil)))
	otherZero.Zero--
	otherEntries := roundTrip(t, interval(1000, cp(3, 500, func(c *Checkpoint) { c.Kept = false }), cp(3, 600, nil)))
	frame, _ := d.Marshal()
	v2 := checkpoint.Frame(DeltaKind, DeltaVersion+1, []byte("{}"))
	dup := interval(1100, cp(3, 600, nil), cp(3, 600, nil))
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"another base", func() error { _, err := d.Apply(other); return err }, "relative to interval"},
		{"a base of other entries", func() error { _, err := d.Apply(otherEntries); return err }, "checksum"},
		{"a base that lacks the dropped entry", func() error { _, err := d.Apply(noDropped); return err }, "checksum"},
		{"drops what the base lacks", func() error {
			bad := *d
			bad.Dropped = []CheckpointRef{{Stream: 3, Time: zero + 400}}
			_, err := bad.Apply(base)
			return err
		}, "does not hold"},
		{"another zero", func() error { _, err := d.Apply(otherZero); return err }, "zero"},
		{"base not earlier", func() error { _, err := Diff(m, base); return err }, "not earlier"},
		{"entry twice", func() error { _, err := Diff(base, dup); return err }, "twice"},
		{"unknown version", func() error { _, _, _, err := Decode(v2); return err }, "version"},
		{"truncated", func() error { _, _, _, err := Decode(frame[:len(frame)-3]); return err }, "corrupt"},
		{"a delta is not a manifest", func() error { _, _, err := Unmarshal(frame); return err }, "not a manifest"},
		{"unsorted entries", func() error {
			bad := *d
			bad.Checkpoints = []Checkpoint{cp(3, 1000, nil), cp(3, 900, nil)}
			_, err := bad.Marshal()
			return err
		}, "not sorted"},
		{"base after time", func() error {
			bad := *d
			bad.Base = bad.Time
			_, err := bad.Marshal()
			return err
		}, "not an earlier interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
	for _, b := range []*Interval{other, noDropped, otherZero, otherEntries} {
		if _, err := d.Apply(b); !errors.Is(err, ErrBase) {
			t.Errorf("Apply to a base it does not fit: %v, want ErrBase", err)
		}
	}
	if _, _, _, err := Decode(frame[:len(frame)-3]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a truncated delta: %v, want ErrCorrupt", err)
	}
}

// TestLogFrames: full frames are made once; deltas chain within an answer
// and start from the base asked for while the log holds it.
func TestLogFrames(t *testing.T) {
	var l Log
	ms := []*Interval{
		interval(1000, cp(3, 500, nil)),
		interval(1100, cp(3, 500, nil), cp(3, 1000, nil)),
		interval(1200, cp(3, 1000, nil), cp(3, 1100, nil)),
		interval(1300, cp(3, 1100, nil), cp(3, 1200, nil)),
	}
	for _, m := range ms {
		l.Add(m)
	}
	f1, err := l.Frame(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := l.Frame(ms[0])
	if &f1[0] != &f2[0] {
		t.Fatal("a manifest was marshaled twice")
	}
	// learn replays what a worker does with an answer, from base.
	learn := func(base *Interval, frames [][]byte) []*Interval {
		t.Helper()
		var out []*Interval
		for _, f := range frames {
			m, d, _, err := Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if d != nil {
				if base == nil {
					t.Fatalf("a delta of %d with no base", d.Time)
				}
				if m, err = d.Apply(base); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, m)
			base = m
		}
		return out
	}
	full := func(i int) *Interval { return roundTrip(t, ms[i]) }
	tests := []struct {
		name        string
		after, upTo int64
		deltas      bool
		base        int64
		baseOf      *Interval // what the worker knows of base
		wantFirst   bool      // the first frame is whole
		want        []int
	}{
		{"full frames", 0, zero + 1300, false, 0, nil, true, []int{0, 1, 2, 3}},
		{"late joiner: first whole", 0, zero + 1300, true, 0, nil, true, []int{0, 1, 2, 3}},
		{"from a known base", zero + 1100, zero + 1300, true, zero + 1100, full(1), false, []int{2, 3}},
		{"known moved past base", zero + 1150, zero + 1300, true, zero + 1100, full(1), false, []int{2, 3}},
		{"base forgotten", zero + 1100, zero + 1300, true, zero + 1050, nil, true, []int{2, 3}},
		{"nothing new", zero + 1300, zero + 1300, true, zero + 1300, full(3), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second answer from the cached frames
				frames, err := l.Frames(tt.after, tt.upTo, tt.deltas, tt.base)
				if err != nil {
					t.Fatal(err)
				}
				if len(frames) != len(tt.want) {
					t.Fatalf("%d frames, want %d", len(frames), len(tt.want))
				}
				for i, f := range frames {
					m, _, _, _ := Decode(f)
					if whole := m != nil; whole != (i == 0 && tt.wantFirst || !tt.deltas) {
						t.Fatalf("frame %d whole: %v", i, whole)
					}
				}
				got := learn(tt.baseOf, frames)
				for i, w := range tt.want {
					if !reflect.DeepEqual(got[i], full(w)) {
						t.Fatalf("frame %d learned as\n%+v\nwant\n%+v", i, got[i], full(w))
					}
				}
			}
		})
	}
	// A manifest replaced in the log is served anew, whole and as deltas.
	changed := interval(1200, cp(3, 1000, func(c *Checkpoint) { c.Kept = false }), cp(3, 1100, nil))
	l.Add(changed)
	frames, err := l.Frames(zero+1100, zero+1300, true, zero+1100)
	if err != nil {
		t.Fatal(err)
	}
	got := learn(full(1), frames)
	if !reflect.DeepEqual(got[0], roundTrip(t, changed)) || !reflect.DeepEqual(got[1], full(3)) {
		t.Fatalf("after a replacement, learned %+v", got)
	}
	if f, _ := l.Frame(changed); string(f) != string(must(changed.Marshal())) {
		t.Fatal("the replaced manifest's frame is stale")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestLogFramesConcurrent: workers asking while the log grows and forgets
// (run with -race).
func TestLogFramesConcurrent(t *testing.T) {
	var l Log
	add := func(i int64) {
		var cps []Checkpoint
		for j := max(1, i-5); j < i; j++ {
			cps = append(cps, cp(3, j*100, nil))
		}
		l.Add(interval(i*100, cps...))
	}
	add(1)
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			var base *Interval
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				after := int64(0)
				if base != nil {
					after = base.Time
				}
				frames, err := l.Frames(after, zero+1<<20, true, after)
				if err != nil {
					errs <- err
					return
				}
				for _, f := range frames {
					m, d, _, err := Decode(f)
					if err == nil && d != nil {
						if base == nil {
							err = fmt.Errorf("a delta of %d with no base", d.Time)
						} else {
							m, err = d.Apply(base)
						}
					}
					if err != nil {
						errs <- err
						return
					}
					base = m
				}
			}
		}()
	}
	for i := int64(2); i < 300; i++ {
		add(i)
		l.Forget(zero + (i-20)*100)
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogFramesLongChain: a worker that learns every interval from the
// delta relative to the one before, over a window that slides, loses
// holders and cuts lineages at random, always ends with the full manifest,
// and every delta's checksum of its base (which the log sums once per
// manifest, from the changes) is the base's own Sum.
func TestLogFramesLongChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var l Log
	var known *Interval
	var knownSum uint64
	live := map[int64]Checkpoint{}
	for i := range 300 {
		at := int64(1000 + 50*i)
		live[at-50] = cp(3, at-50, nil) // the interval before's reductions
		delete(live, at-50*21)          // a 20-interval window
		for k, c := range live {
			switch rng.IntN(10) {
			case 0:
				c.Locations = []string{"", "w2"}
			case 1:
				c.Kept, c.Durable = false, fmt.Sprintf("state/3/%d", k)
			}
			live[k] = c
		}
		var cps []Checkpoint
		for _, c := range live {
			cps = append(cps, c)
		}
		m := interval(at, cps...)
		l.Add(m)
		base := int64(0)
		if known != nil {
			base = known.Time
		}
		frames, err := l.Frames(base, m.Time, true, base)
		if err != nil || len(frames) != 1 {
			t.Fatalf("interval %d: %d frames, %v", i, len(frames), err)
		}
		full, d, _, err := Decode(frames[0])
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			if full, knownSum, err = d.ApplySummed(known, knownSum); err != nil {
				t.Fatalf("interval %d: %v", i, err)
			}
		} else {
			knownSum = full.Sum()
		}
		if want := roundTrip(t, m); !reflect.DeepEqual(full, want) || knownSum != want.Sum() {
			t.Fatalf("interval %d: learned %+v (sum %x)\nwant %+v (sum %x)", i, full, knownSum, want, want.Sum())
		}
		known = full
		l.Forget(m.Time - 50*5)
	}
}
