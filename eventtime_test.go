package dstream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// The conformance table: Spark Structured Streaming's own documented
// event-time cases (EventTimeWatermarkSuite, StreamingSessionWindowSuite,
// the programming guide's word counts), one Spark micro-batch per interval
// and an empty interval where Spark runs a no-data batch. An input record
// is kv{Key, Value}: Key a word (or "1"/"2", which input it belongs to, for
// several inputs) and Value its event time in seconds (minutes where the
// row says so).

type etCase struct {
	name    string
	unit    time.Duration // the unit of a record's Value
	windows dstream.EventWindows
	mode    dstream.OutputMode
	delay   time.Duration
	two     bool          // records keyed "1" and "2" are two event-time inputs, delay and delay2, unioned
	delay2  time.Duration // the second input's
	in      [][]kv
	want    []string // per interval: the windows output, sorted, then "late=N"
}

func noon(min int) int { return 12*60 + min } // 12:MM in minutes

var etCases = []etCase{
	{
		// EventTimeWatermarkSuite "append mode".
		name: "spark-append", unit: time.Second, windows: dstream.TumblingWindows(5 * sec), mode: dstream.AppendMode, delay: 10 * sec,
		in:   [][]kv{{p("", 10), p("", 11), p("", 12), p("", 13), p("", 14), p("", 15)}, {p("", 25)}, {}, {p("", 10)}, {}},
		want: []string{"[] late=0", "[] late=0", "[[10,15)=5] late=0", "[] late=1", "[] late=0"},
	},
	{
		// EventTimeWatermarkSuite "update mode".
		name: "spark-update", unit: time.Second, windows: dstream.TumblingWindows(5 * sec), mode: dstream.UpdateMode, delay: 10 * sec,
		in:   [][]kv{{p("", 10), p("", 11), p("", 12), p("", 13), p("", 14), p("", 15)}, {p("", 25)}, {}, {p("", 10), p("", 25)}, {p("", 10)}},
		want: []string{"[[10,15)=5 [15,20)=1] late=0", "[[25,30)=1] late=0", "[] late=0", "[[25,30)=2] late=1", "[] late=1"},
	},
	{
		// The programming guide's windowed word count with a watermark
		// (10 minute windows sliding by 5, 10 minutes' delay), update mode.
		name: "guide-wordcount-update", unit: time.Minute, windows: dstream.SlidingWindows(10*time.Minute, 5*time.Minute), mode: dstream.UpdateMode, delay: 10 * time.Minute,
		in: [][]kv{
			{p("dog", noon(7)), p("owl", noon(8))},
			{p("dog", noon(14)), p("cat", noon(9))},
			{p("cat", noon(15)), p("dog", noon(8)), p("owl", noon(13)), p("owl", noon(21))},
			{p("donkey", noon(4)), p("owl", noon(17))},
		},
		want: []string{
			"[dog[12:00,12:10)=1 dog[12:05,12:15)=1 owl[12:00,12:10)=1 owl[12:05,12:15)=1] late=0",
			"[cat[12:00,12:10)=1 cat[12:05,12:15)=1 dog[12:05,12:15)=2 dog[12:10,12:20)=1] late=0",
			"[cat[12:10,12:20)=1 cat[12:15,12:25)=1 dog[12:00,12:10)=2 dog[12:05,12:15)=3 owl[12:05,12:15)=2 owl[12:10,12:20)=1 owl[12:15,12:25)=1 owl[12:20,12:30)=1] late=0",
			"[owl[12:10,12:20)=2 owl[12:15,12:25)=2] late=1",
		},
	},
	{
		// The same in append mode: the windows the watermark (12:11 at the
		// fourth interval) passed, once, final.
		name: "guide-wordcount-append", unit: time.Minute, windows: dstream.SlidingWindows(10*time.Minute, 5*time.Minute), mode: dstream.AppendMode, delay: 10 * time.Minute,
		in: [][]kv{
			{p("dog", noon(7)), p("owl", noon(8))},
			{p("dog", noon(14)), p("cat", noon(9))},
			{p("cat", noon(15)), p("dog", noon(8)), p("owl", noon(13)), p("owl", noon(21))},
			{p("donkey", noon(4)), p("owl", noon(17))},
			{p("owl", noon(30))},
			{},
		},
		want: []string{
			"[] late=0", "[] late=0", "[] late=0",
			"[cat[12:00,12:10)=1 dog[12:00,12:10)=2 owl[12:00,12:10)=1] late=1",
			"[] late=0",
			// Watermark 12:20: the windows ending by then.
			"[cat[12:05,12:15)=1 cat[12:10,12:20)=1 dog[12:05,12:15)=3 dog[12:10,12:20)=1 owl[12:05,12:15)=2 owl[12:10,12:20)=2] late=0",
		},
	},
	{
		// Two inputs (EventTimeWatermarkSuite's multiple watermarks, "min"
		// policy): no watermark until both carried a record, then the
		// smaller; input 2 holds the watermark back.
		name: "two-inputs-min", unit: time.Second, windows: dstream.TumblingWindows(10 * sec), mode: dstream.AppendMode, delay: 10 * sec, two: true, delay2: 15 * sec,
		in: [][]kv{{p("1", 20)}, {p("2", 30)}, {}, {p("1", 40)}, {}, {p("2", 50)}, {}, {p("1", 25), p("2", 31)}},
		// Watermarks: none, none, 10, 10, 15, 15, 30, 30.
		want: []string{"[] late=0", "[] late=0", "[] late=0", "[] late=0", "[] late=0", "[] late=0", "[[20,30)=1] late=0", "[] late=1"},
	},
	{
		// Session windows (StreamingSessionWindowSuite): a 10 s gap, 15 s
		// delay; sessions that overlap or touch merge.
		name: "session-append", unit: time.Second, windows: dstream.SessionWindows(10 * sec), mode: dstream.AppendMode, delay: 15 * sec,
		in: [][]kv{
			{p("a", 10), p("a", 12), p("b", 40)},
			{p("a", 20), p("a", 35)}, // watermark 25: a [10,30) and [35,45)
			{},
			{p("b", 60), p("a", 30)}, // a's 30 touches [10,30) and overlaps [35,45): one session
			{},                       // watermark 45: b [40,50) is still open
			{p("a", 28), p("b", 41)}, // 28+10 <= 45: late; b 41 extends [40,51)
			{},
			{},
		},
		// Watermark 45 from the fifth interval on: a's session [10,45) ends
		// by then; b's [40,51) stays open until the watermark passes 51.
		want: []string{"[] late=0", "[] late=0", "[] late=0", "[] late=0", "[a[10,45)=5] late=0", "[] late=1", "[] late=0", "[] late=0"},
	},
	{
		name: "session-update", unit: time.Second, windows: dstream.SessionWindows(10 * sec), mode: dstream.UpdateMode, delay: 15 * sec,
		in: [][]kv{
			{p("a", 10), p("a", 12), p("b", 40)},
			{p("a", 20), p("a", 35)},
			{p("a", 30)},
			{},
		},
		want: []string{"[a[10,22)=2 b[40,50)=1] late=0", "[a[10,30)=3 a[35,45)=1] late=0", "[a[10,45)=5] late=0", "[] late=0"},
	},
}

func (c etCase) render(unit time.Duration, w dstream.Windowed[string, int64]) string {
	f := func(t time.Time) string {
		if c.unit == time.Minute {
			m := t.Unix() / 60
			return fmt.Sprintf("%d:%02d", m/60, m%60)
		}
		return fmt.Sprint(t.Unix())
	}
	return fmt.Sprintf("%s[%s,%s)=%d", w.Key, f(w.Start), f(w.End), w.Value)
}

// etGraph builds the row's graph on in; it returns the windows and the
// late records, rendered per interval.
func etGraph(c etCase, in *dstream.Stream[kv]) (*dstream.Stream[string], *dstream.Stream[kv]) {
	stamp := func(x kv) time.Time { return time.Unix(0, 0).Add(time.Duration(x.Value) * c.unit) }
	var ev *dstream.Stream[dstream.Event[kv]]
	if c.two {
		one := dstream.WithEventTime(dstream.Filter(in, func(x kv) bool { return x.Key == "1" }), stamp, c.delay)
		two := dstream.WithEventTime(dstream.Filter(in, func(x kv) bool { return x.Key == "2" }), stamp, c.delay2)
		ev = dstream.Union(one, two)
	} else {
		ev = dstream.WithEventTime(in, stamp, c.delay)
	}
	key := func(x kv) string { return x.Key }
	if c.two {
		key = func(kv) string { return "" }
	}
	w := dstream.CountByEventWindow(ev, key, c.windows, c.mode, 3)
	out := dstream.Map(w.Stream, func(x dstream.Windowed[string, int64]) string { return c.render(c.unit, x) })
	late := dstream.Map(w.Late(), func(e dstream.Event[kv]) kv { return e.Value })
	return out, late
}

func runETCase(t *testing.T, c etCase, o dstreamtest.Options) []string {
	h := dstreamtest.New[kv](t, o)
	out, late := etGraph(c, h.In)
	col, lcol := dstreamtest.Collect(out), dstreamtest.Collect(late)
	for _, b := range c.in {
		h.Input.Push(b...)
	}
	h.Start()
	var got []string
	for range c.in {
		at := h.Tick()
		if err := col.Err(at); err != nil {
			t.Fatalf("interval %d: %v", at.UnixMilli(), err)
		}
		got = append(got, fmt.Sprintf("%v late=%d", dstreamtest.Sorted(col.At(at)), len(lcol.At(at))))
	}
	return got
}

func TestEventTimeConformance(t *testing.T) {
	for _, c := range etCases {
		t.Run(c.name, func(t *testing.T) {
			got := runETCase(t, c, dstreamtest.Options{})
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("interval by interval:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(c.want, "\n      "))
			}
		})
	}
}

// eventTimeRow is the event-time job of the deployment and restart tables:
// record values are event times in seconds, out of order (the fourth
// interval's -1 is late), counted in 2 s tumbling windows with a 1 s delay
// in both output modes, summed in sliding and session windows by the
// general aggregate, and the late records.
func eventTimeRow(in *dstream.Stream[kv]) []func(time.Time) string {
	ev := dstream.WithEventTime(in, func(x kv) time.Time { return time.Unix(int64(x.Value), 0) }, time.Second)
	key := func(x kv) string { return x.Key }
	appendCounts := dstream.CountByEventWindow(ev, key, dstream.TumblingWindows(2*sec), dstream.AppendMode, 2)
	updateCounts := dstream.CountByEventWindow(ev, key, dstream.TumblingWindows(2*sec), dstream.UpdateMode, 3)
	sum := dstream.Aggregator[kv, int]{Zero: func() int { return 0 }, Add: func(a int, x kv) int { return a + x.Value }, Merge: func(a, b int) int { return a + b }}
	sliding := dstream.AggregateByEventWindow(ev, key, dstream.SlidingWindows(3*sec, sec), dstream.UpdateMode, sum, 2)
	sessions := dstream.AggregateByEventWindow(ev, key, dstream.SessionWindows(2*sec), dstream.AppendMode, sum, 2)
	return []func(time.Time) string{
		render(dstreamtest.Collect(appendCounts.Stream)),
		render(dstreamtest.Collect(updateCounts.Stream)),
		render(dstreamtest.Collect(sliding.Stream)),
		render(dstreamtest.Collect(sessions.Stream)),
		render(dstreamtest.Collect(appendCounts.Late())),
	}
}
