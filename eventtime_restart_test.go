package dstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
)

// etRestartInput is a replayable, out-of-order event-time input: a record's
// value is its event time in Unix ms, up to 2.5 s before the interval, and
// every fourth interval one 7 s old, later than the watermark.
func etRestartInput(t time.Time) [][]kv {
	i := int(t.Unix() % 1000)
	ms := int(t.UnixMilli())
	b := [][]kv{
		{p(fmt.Sprint("k", i%3), ms-100), p(fmt.Sprint("k", (i+1)%3), ms-700)},
		{p(fmt.Sprint("k", i%2), ms-2500)},
	}
	if i%4 == 0 {
		b = append(b, []kv{p("k0", ms-7000)})
	}
	return b
}

// etRestartJob counts in 2 s tumbling windows (append and update) and sums
// in 3 s sessions, with a 2 s delay; the state is checkpointed every two
// intervals. It returns the outputs rendered per interval, and the
// operator, whose watermark the test compares.
//
// block, if not nil, runs last each interval and may block interval at
// until the context stops (a master killed while the interval runs).
func etRestartJob(h *dstreamtest.Harness[kv], block func(time.Time) bool) (func(time.Time) string, *dstream.EventWindowStream[kv, string, int64]) {
	s := dstream.GeneratedStream(h.Ctx, "replayable", etRestartInput)
	defer dstream.ForeachRDD(s, func(ctx context.Context, _ *rdd.Dataset[kv], at time.Time) error {
		if block != nil && block(at) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	ev := dstream.WithEventTime(s, func(x kv) time.Time { return time.UnixMilli(int64(x.Value)) }, 2*sec)
	key := func(x kv) string { return x.Key }
	appendCounts := dstream.CountByEventWindow(ev, key, dstream.TumblingWindows(2*sec), dstream.AppendMode, 2)
	appendCounts.Checkpoint(2 * sec)
	updateCounts := dstream.CountByEventWindow(ev, key, dstream.TumblingWindows(2*sec), dstream.UpdateMode, 2)
	sessions := dstream.AggregateByEventWindow(ev, key, dstream.SessionWindows(3*sec), dstream.AppendMode,
		dstream.Aggregator[kv, int]{Zero: func() int { return 0 }, Add: func(a int, _ kv) int { return a + 1 }, Merge: func(a, b int) int { return a + b }}, 2)
	outs := []func(time.Time) string{
		render(dstreamtest.Collect(appendCounts.Stream)),
		render(dstreamtest.Collect(updateCounts.Stream)),
		render(dstreamtest.Collect(sessions.Stream)),
		render(dstreamtest.Collect(appendCounts.Late())),
	}
	return func(t time.Time) string {
		s := ""
		for _, o := range outs {
			s += o(t) + " | "
		}
		return s
	}, appendCounts
}

// A job with event-time windows stopped after interval 7 and started
// again on its checkpoint folder (gracefully, and hard, as if killed)
// resumes with the same watermarks: every interval after the restart has
// the fault-free run's watermark and output.
func TestEventTimeRestartKeepsWatermarks(t *testing.T) {
	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut, refOp := etRestartJob(ref, nil)
	ref.Start()
	var times []time.Time
	var want, wantWM []string
	for range 12 {
		at := ref.Tick()
		times = append(times, at)
		want = append(want, refOut(at))
		wm, ok := refOp.Watermark(at)
		wantWM = append(wantWM, fmt.Sprint(wm.UnixMilli(), ok))
	}
	if want[11] == "[] | [] | [] | [] | " || wantWM[11] == fmt.Sprint(0, false) {
		t.Fatalf("the reference run output nothing at the end (%s) or has no watermark (%s)", want[11], wantWM[11])
	}
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprintf("graceful=%v", graceful), func(t *testing.T) {
			dir := t.TempDir()
			withDir := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = dir }}
			first := dstreamtest.New[kv](t, withDir)
			out1, _ := etRestartJob(first, nil)
			first.Start()
			for i := range 7 {
				if at := first.Tick(); out1(at) != want[i] {
					t.Fatalf("first run, interval %d = %s, want %s", i+1, out1(at), want[i])
				}
			}
			if m, ok := first.Ctx.Manifest(times[6]); !ok || len(m.EventTimes) != 1 {
				t.Fatalf("manifest of interval 7 = %+v: want the event-time stream's progress", m)
			}
			if err := first.Ctx.Stop(graceful); err != nil {
				t.Fatal(err)
			}
			second := dstreamtest.New[kv](t, withDir)
			out2, op2 := etRestartJob(second, nil)
			second.Start()
			defer func() {
				if t.Failed() {
					t.Logf("the resumed run stopped with %v", second.Ctx.Stop(false))
				}
			}()
			for i := 7; i < 12; i++ {
				advanceTo(t, second, times[i])
				if got := out2(times[i]); got != want[i] {
					t.Errorf("resumed, interval %d = %s\n want %s", i+1, got, want[i])
				}
				wm, ok := op2.Watermark(times[i])
				if got := fmt.Sprint(wm.UnixMilli(), ok); got != wantWM[i] {
					t.Errorf("resumed, interval %d: watermark %s, want %s", i+1, got, wantWM[i])
				}
			}
		})
	}
}

// lateCounts collects the late records the master counts per interval
// (listener.LateRecords), as the UI and the metrics see them.
type lateCounts struct {
	mu   sync.Mutex
	late map[int64]int64
	done map[int64]chan struct{}
}

func newLateCounts(h *dstreamtest.Harness[kv]) *lateCounts {
	l := &lateCounts{late: map[int64]int64{}, done: map[int64]chan struct{}{}}
	h.Ctx.AddListener(l)
	return l
}

func (l *lateCounts) ch(ms int64) chan struct{} {
	if l.done[ms] == nil {
		l.done[ms] = make(chan struct{})
	}
	return l.done[ms]
}

func (l *lateCounts) OnEvent(e listener.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := e.(type) {
	case listener.LateRecords:
		l.late[e.Time.UnixMilli()] += e.Records
	case listener.BatchCompleted:
		if e.Batch.Err == nil {
			close(l.ch(e.Batch.Time.UnixMilli()))
		}
	}
}

// at returns interval at's late records, once its completion is delivered.
func (l *lateCounts) at(t *testing.T, at time.Time) int64 {
	t.Helper()
	l.mu.Lock()
	ch := l.ch(at.UnixMilli())
	l.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("interval %d's completion never reached the listeners", at.UnixMilli())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.late[at.UnixMilli()]
}

// A master stopped hard after it cut interval 8 and started running it,
// before its completion is logged, resumes with the fault-free run's
// watermarks, late counts and outputs: killed while interval 8's last output
// runs, and stopped after interval 8 ran but before its "done" record
// (forgetCompletion). Interval 8 runs again with the progress its logged
// manifest recorded; its late records are counted again by the new master.
func TestEventTimeRestartOfIntervalNotCompleted(t *testing.T) {
	const n, crash = 12, 8
	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut, refOp := etRestartJob(ref, nil)
	refLate := newLateCounts(ref)
	ref.Start()
	var times []time.Time
	var want []string
	for range n {
		at := ref.Tick()
		times = append(times, at)
		wm, ok := refOp.Watermark(at)
		want = append(want, fmt.Sprint(refOut(at), " wm=", wm.UnixMilli(), ok, " late=", refLate.at(t, at)))
	}
	if lastLate := refLate.at(t, times[n-1]); lastLate == 0 {
		t.Fatalf("the reference run counted no late record in interval %d: the test needs some", n)
	}
	for _, how := range []string{"killed-while-running", "stopped-before-done"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			withDir := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = dir }}
			first := dstreamtest.New[kv](t, withDir)
			entered := make(chan struct{})
			out1, _ := etRestartJob(first, func(at time.Time) bool {
				if how == "killed-while-running" && at.Equal(times[crash-1]) {
					close(entered)
					return true
				}
				return false
			})
			first.Start()
			for i := range crash - 1 {
				if at := first.Tick(); !strings.HasPrefix(want[i], out1(at)+" wm=") {
					t.Fatalf("first run, interval %d = %s, want %s", i+1, out1(at), want[i])
				}
			}
			if how == "killed-while-running" {
				first.Clock.Advance(sec)
				<-entered // interval 8's manifest is logged and its outputs run
				_ = first.Ctx.Stop(false)
			} else {
				first.Tick()
				if err := first.Ctx.Stop(false); err != nil {
					t.Fatal(err)
				}
				forgetCompletion(t, dir, times[crash-1])
			}
			second := dstreamtest.New[kv](t, withDir)
			out2, op2 := etRestartJob(second, nil)
			late2 := newLateCounts(second)
			second.Start()
			defer func() {
				if t.Failed() {
					t.Logf("the resumed run stopped with %v", second.Ctx.Stop(false))
				}
			}()
			for i := crash - 1; i < n; i++ {
				advanceTo(t, second, times[i])
				wm, ok := op2.Watermark(times[i])
				if got := fmt.Sprint(out2(times[i]), " wm=", wm.UnixMilli(), ok, " late=", late2.at(t, times[i])); got != want[i] {
					t.Errorf("resumed, interval %d = %s\n want %s", i+1, got, want[i])
				}
			}
		})
	}
}
