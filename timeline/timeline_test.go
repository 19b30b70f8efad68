package timeline

import (
	"testing"
	"time"
)

var t0 = time.UnixMilli(1_700_000_000_000) // a multiple of every batch below

func ms(d int64) time.Time { return t0.Add(time.Duration(d) * time.Millisecond) }

func TestStartResumeAt(t *testing.T) {
	sec := time.Second
	for _, tc := range []struct {
		name        string
		tl          Timeline
		zero, first time.Time
	}{
		{"start on a boundary", New(sec).Start(ms(0)), ms(0), ms(1000)},
		{"start inside an interval", New(sec).Start(ms(1500)), ms(1000), ms(2000)},
		{"start with 50ms intervals", New(50 * time.Millisecond).Start(ms(1234)), ms(1200), ms(1250)},
		{"resume after interval 5", New(sec).Resume(ms(0), ms(5000)), ms(0), ms(6000)},
		{"resume before any completed", New(sec).Resume(ms(0), time.Time{}), ms(0), ms(1000)},
		{"restart before any interval ran", New(sec).Restart(ms(0), ms(7300)), ms(0), ms(8000)},
		{"at a manifest's zero", New(sec).At(ms(3000)), ms(3000), ms(4000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.tl.Started() || !tc.tl.Zero().Equal(tc.zero) || !tc.tl.First().Equal(tc.first) {
				t.Fatalf("zero %v first %v; want %v %v", tc.tl.Zero(), tc.tl.First(), tc.zero, tc.first)
			}
		})
	}
	if New(sec).Started() {
		t.Fatal("a new timeline is started")
	}
}

func TestContaining(t *testing.T) {
	tl := New(time.Second).Start(ms(0))
	for _, tc := range []struct{ at, want int64 }{
		{-500, 1000}, // before zero: the first interval
		{0, 1000},    // zero itself belongs to the first interval
		{1, 1000},
		{999, 1000},
		{1000, 1000}, // an interval's end belongs to it
		{1001, 2000},
		{7300, 8000},
	} {
		if got := tl.Containing(ms(tc.at)); !got.Equal(ms(tc.want)) {
			t.Errorf("Containing(%d) = %v, want %d", tc.at, got.Sub(t0).Milliseconds(), tc.want)
		}
	}
}

func TestSlides(t *testing.T) {
	tl := New(time.Second).Start(ms(0))
	for _, tc := range []struct {
		at    int64
		slide time.Duration
		is    bool
		next  int64
	}{
		{0, time.Second, false, 1000},
		{1000, time.Second, true, 1000},
		{1000, 2 * time.Second, false, 2000},
		{2000, 2 * time.Second, true, 2000},
		{2500, 2 * time.Second, false, 4000},
		{-3000, 3 * time.Second, false, 3000},
	} {
		if got := tl.IsSlide(ms(tc.at), tc.slide); got != tc.is {
			t.Errorf("IsSlide(%d, %v) = %v", tc.at, tc.slide, got)
		}
		if got := tl.FirstSlideAtOrAfter(ms(tc.at), tc.slide); !got.Equal(ms(tc.next)) {
			t.Errorf("FirstSlideAtOrAfter(%d, %v) = %d, want %d", tc.at, tc.slide, got.Sub(t0).Milliseconds(), tc.next)
		}
	}
	if got := tl.Index(ms(5000)); got != 5 {
		t.Errorf("Index(5000) = %d", got)
	}
	if !tl.Next(ms(1000)).Equal(ms(2000)) || !tl.Prev(ms(1000)).Equal(ms(0)) {
		t.Error("Next/Prev")
	}
}

func TestSince(t *testing.T) {
	tl := New(time.Second).Resume(ms(0), ms(5000))
	for _, tc := range []struct {
		back int64
		want []int64
	}{
		{0, nil},
		{2, []int64{4000, 5000}},
		{5, []int64{1000, 2000, 3000, 4000, 5000}},
		{9, []int64{1000, 2000, 3000, 4000, 5000}}, // never at or before zero
	} {
		got := tl.Since(tl.First(), tc.back)
		if len(got) != len(tc.want) {
			t.Fatalf("Since(back %d) = %v, want %v", tc.back, got, tc.want)
		}
		for i := range got {
			if !got[i].Equal(ms(tc.want[i])) {
				t.Fatalf("Since(back %d)[%d] = %v", tc.back, i, got[i])
			}
		}
	}
}

func TestCheckpointCadence(t *testing.T) {
	sec := time.Second
	for _, tc := range []struct {
		name                        string
		slide, explicit, configured time.Duration
		want                        time.Duration
	}{
		{"default: 10 s", sec, 0, 0, 10 * sec},
		{"default: five slides when longer", 4 * sec, 0, 0, 20 * sec},
		{"configured", sec, 0, 3 * sec, 3 * sec},
		{"explicit wins", sec, 2 * sec, 3 * sec, 2 * sec},
		{"rounded up to the slide", 3 * sec, 0, 10 * sec, 12 * sec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckpointEvery(tc.slide, tc.explicit, tc.configured); got != tc.want {
				t.Fatalf("CheckpointEvery = %v, want %v", got, tc.want)
			}
		})
	}
	tl := New(sec).Start(ms(0))
	for _, tc := range []struct {
		at  int64
		due bool
	}{{10000, true}, {20000, true}, {15000, false}, {1000, false}} {
		if got := tl.CheckpointDue(ms(tc.at), 10*sec); got != tc.due {
			t.Errorf("CheckpointDue(%d) = %v", tc.at, got)
		}
	}
	if got := tl.Retention(5*sec, 10*sec); got != 22*sec {
		t.Errorf("Retention = %v, want 22s", got)
	}
	if got := tl.Retention(30*sec, 10*sec); got != 32*sec {
		t.Errorf("Retention = %v, want 32s", got)
	}
}
