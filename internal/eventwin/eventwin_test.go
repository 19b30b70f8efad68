package eventwin

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// count folds records (their event times) into counts.
var count = &Fold[int64, int64]{
	First: func(int64) int64 { return 1 },
	Add:   func(a int64, _ int64) int64 { return a + 1 },
	Merge: func(a, b int64) int64 { return a + b },
}

// show writes windows as "[start,end)=acc", "*" after a changed one.
func show(wins []Win[int64]) string {
	var b strings.Builder
	for i, w := range wins {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "[%d,%d)=%d", w.Start, w.End, w.Acc)
		if w.Changed {
			b.WriteByte('*')
		}
	}
	return b.String()
}

var (
	tumbling = Windows{Size: 10, Slide: 10}
	sliding  = Windows{Size: 10, Slide: 5}
	sessions = Windows{Gap: 5}
	noWM     = Watermark{}
)

func wm(at int64) Watermark { return Watermark{At: at, Known: true} }

func TestLate(t *testing.T) {
	for _, tc := range []struct {
		w    Windows
		wm   Watermark
		ts   int64
		late bool
	}{
		{tumbling, noWM, -100, false},
		{tumbling, wm(10), 9, true},   // [0,10) ends at the watermark
		{tumbling, wm(10), 10, false}, // [10,20)
		{tumbling, wm(9), 9, false},
		{tumbling, wm(0), -1, true}, // [-10,0): negative times floor
		{sliding, wm(10), 9, false}, // [5,15) is open
		{sliding, wm(15), 9, true},
		{sliding, wm(15), 10, false},
		{sessions, wm(10), 5, true}, // [5,10)
		{sessions, wm(10), 6, false},
	} {
		if got := tc.w.Late(tc.ts, tc.wm); got != tc.late {
			t.Errorf("%+v under %+v: Late(%d) = %v, want %v", tc.w, tc.wm, tc.ts, got, tc.late)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		w  Windows
		ok bool
	}{
		{tumbling, true}, {sliding, true}, {sessions, true},
		{Windows{Size: 5, Slide: 10}, false},
		{Windows{Size: 0, Slide: 0}, false},
		{Windows{Gap: -1}, false},
	} {
		if err := tc.w.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v: Check() = %v", tc.w, err)
		}
	}
}

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    Windows
		wm   Watermark
		ts   []int64
		want string // windows, then "late=N"
	}{
		{"tumbling", tumbling, noWM, []int64{3, 12, 1, 19, -4}, "[-10,0)=1* [0,10)=2* [10,20)=2* late=0"},
		{"tumbling, closed windows late", tumbling, wm(10), []int64{3, 12, 9, 10}, "[10,20)=2* late=2"},
		{"sliding: a record in every window covering it", sliding, noWM, []int64{7, 12}, "[0,10)=1* [5,15)=2* [10,20)=1* late=0"},
		{"sliding: only the open ones", sliding, wm(10), []int64{7}, "[5,15)=1* late=0"},
		{"sessions merge when they touch", sessions, noWM, []int64{10, 15, 30, 20}, "[10,25)=3* [30,35)=1* late=0"},
		{"a record joins two sessions", sessions, noWM, []int64{10, 20, 15}, "[10,25)=3* late=0"},
		{"sessions: late", sessions, wm(20), []int64{15, 14, 16}, "[16,21)=1* late=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State[int64, int64]
			for _, ts := range tc.ts {
				s.Add(tc.w, tc.wm, ts, ts, count)
			}
			if got := fmt.Sprintf("%s late=%d", show(s.Wins), len(s.Late)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	win := func(s, e, acc int64) Win[int64] { return Win[int64]{Start: s, End: e, Acc: acc} }
	cat := func(a, b string) string { return a + b }
	for _, tc := range []struct {
		name string
		w    Windows
		into []Win[int64]
		from []Win[int64]
		want string
	}{
		{"tumbling", tumbling, []Win[int64]{win(0, 10, 2)}, []Win[int64]{win(-10, 0, 1), win(0, 10, 3), win(20, 30, 1)},
			"[-10,0)=1* [0,10)=5* [20,30)=1*"},
		{"sessions joined by a partial one", sessions, []Win[int64]{win(0, 5, 1), win(10, 15, 1), win(30, 35, 1)}, []Win[int64]{win(4, 11, 2)},
			"[0,15)=4* [30,35)=1"},
		{"a partial session apart", sessions, []Win[int64]{win(0, 5, 1)}, []Win[int64]{win(6, 11, 1)}, "[0,5)=1 [6,11)=1*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := State[int64, int64]{Wins: slices.Clone(tc.into)}
			s.Merge(tc.w, &State[int64, int64]{Wins: tc.from, Late: []int64{7}}, count.Merge)
			if got := show(s.Wins); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if len(s.Late) != 1 {
				t.Errorf("late %v, want the partial's one", s.Late)
			}
		})
	}
	// Sessions' accumulators join in order of start, the earlier first.
	type S = State[int64, string]
	into := S{Wins: []Win[string]{{Start: 0, End: 5, Acc: "a"}, {Start: 10, End: 15, Acc: "c"}}}
	into.Merge(sessions, &S{Wins: []Win[string]{{Start: 5, End: 10, Acc: "b"}}}, cat)
	if len(into.Wins) != 1 || into.Wins[0].Acc != "abc" || into.Wins[0].Start != 0 || into.Wins[0].End != 15 {
		t.Errorf("merged sessions: %+v, want [0,15)=abc", into.Wins)
	}
}

func TestClose(t *testing.T) {
	in := []Win[int64]{{Start: 0, End: 10, Acc: 1}, {Start: 10, End: 20, Acc: 2, Changed: true}, {Start: 20, End: 30, Acc: 3, Changed: true}}
	for _, tc := range []struct {
		name      string
		mode      Mode
		wm        Watermark
		out, kept string
		keep      bool
	}{
		{"append: the closed ones", Append, wm(20), "[0,10)=1 [10,20)=2*", "[20,30)=3", true},
		{"update: the changed ones", Update, wm(20), "[10,20)=2* [20,30)=3*", "[20,30)=3", true},
		{"no watermark: nothing closes", Append, noWM, "", "[0,10)=1 [10,20)=2 [20,30)=3", true},
		{"append: everything closed", Append, wm(30), "[0,10)=1 [10,20)=2* [20,30)=3*", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := State[int64, int64]{Wins: slices.Clone(in)}
			if keep := s.Close(tc.wm, tc.mode); keep != tc.keep {
				t.Errorf("Close = %v", keep)
			}
			if got := show(s.Out); got != tc.out {
				t.Errorf("out %s, want %s", got, tc.out)
			}
			if got := show(s.Wins); got != tc.kept {
				t.Errorf("kept %s, want %s", got, tc.kept)
			}
		})
	}
	var empty State[int64, int64]
	if empty.Close(wm(10), Update) {
		t.Error("an empty state is kept")
	}
}

func TestResumeCopies(t *testing.T) {
	prev := &State[int64, int64]{Wins: []Win[int64]{{Start: 0, End: 10, Acc: 1}}, Out: []Win[int64]{{}}, Late: []int64{1}}
	s := Resume(prev)
	s.Add(tumbling, noWM, 3, 3, count)
	if prev.Wins[0].Acc != 1 || len(s.Out)+len(s.Late) != 0 || s.Wins[0].Acc != 2 {
		t.Errorf("prev %+v, resumed %+v", prev, s)
	}
	if s := Resume[int64, int64](nil); len(s.Wins) != 0 {
		t.Errorf("Resume(nil) = %+v", s)
	}
}

func TestCombiner(t *testing.T) {
	cb := NewCombiner[string](tumbling, wm(10), count, 0)
	for _, r := range []struct {
		k  string
		ts int64
	}{{"b", 12}, {"a", 3}, {"b", 15}, {"a", 25}, {"b", 31}} {
		cb.Add(r.k, r.ts, r.ts)
	}
	var got []string
	for k, s := range cb.All() {
		got = append(got, fmt.Sprintf("%s:%s late=%d", k, show(s.Wins), len(s.Late)))
	}
	want := []string{"b:[10,20)=2* [30,40)=1* late=0", "a:[20,30)=1* late=1"}
	if !slices.Equal(got, want) || cb.Len() != 2 {
		t.Errorf("got %q, want %q", got, want)
	}
}
