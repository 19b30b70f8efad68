package dstream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// queryGraph is a keyed count with every built-in query on it.
func queryGraph(h *dstreamtest.Harness[kv]) (*dstream.Stream[kv], *dstreamtest.Collector[kv]) {
	counts := dstream.ReduceByKey(h.In, add, 3)
	dstream.TopQuery(counts, "top", func(a, b kv) bool { return a.Value > b.Value || a.Value == b.Value && a.Key < b.Key })
	dstream.CountQuery(counts, "count")
	dstream.GetQuery(counts, "get")
	dstream.ScanQuery(counts, "scan")
	return counts, dstreamtest.Collect(counts)
}

func queryInput() [][]kv {
	var in [][]kv
	for i := range 4 {
		var b []kv
		for j := range 50 {
			b = append(b, p(fmt.Sprintf("k%02d", j%(10+i*5)), j+i))
		}
		in = append(in, b)
	}
	return in
}

// answers runs every query on the latest interval and renders the answers.
func answers(t *testing.T, ctx *dstream.Context) string {
	t.Helper()
	var out string
	for _, q := range []struct {
		name string
		args map[string]string
	}{
		{"top", map[string]string{"k": "3"}},
		{"count", nil},
		{"get", map[string]string{"key": "k07"}},
		{"scan", map[string]string{"prefix": "k1", "limit": "4"}},
	} {
		r, err := ctx.RunQuery(context.Background(), q.name, "latest", q.args)
		if err != nil {
			t.Fatalf("query %s: %v", q.name, err)
		}
		out += fmt.Sprintf("%s@%d=%v ", q.name, r.Interval.UnixMilli(), r.Result)
	}
	return out
}

func TestQueriesAnswerFromOneInterval(t *testing.T) {
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	counts, col := queryGraph(h)
	counts.Remember(3 * sec)
	for _, b := range queryInput() {
		h.Input.Push(b...)
	}
	h.Start()
	if _, err := h.Ctx.RunQuery(context.Background(), "top", "latest", nil); !errors.Is(err, dstream.ErrIntervalGone) {
		t.Fatalf("a query before the first interval: %v, want ErrIntervalGone", err)
	}
	t1 := h.Tick()
	t2 := h.Tick()
	// The latest interval's answers equal what the stream output at t2.
	want := dstreamtest.Sorted(col.At(t2))
	r, err := h.Ctx.RunQuery(context.Background(), "count", "", nil)
	if err != nil || r.Result != int64(len(want)) || !r.Interval.Equal(t2) {
		t.Fatalf("count = %+v, %v; want %d at %d", r, err, len(want), t2.UnixMilli())
	}
	r, err = h.Ctx.RunQuery(context.Background(), "get", "latest", map[string]string{"key": "k07"})
	var v int
	for _, x := range want {
		if x.Key == "k07" {
			v = x.Value
		}
	}
	if err != nil || fmt.Sprint(r.Result) != fmt.Sprintf("[%d]", v) {
		t.Fatalf("get k07 = %v, %v; want [%d]", r.Result, err, v)
	}
	// An interval still remembered, by its time.
	r, err = h.Ctx.RunQuery(context.Background(), "count", strconv.FormatInt(t1.UnixMilli(), 10), nil)
	if err != nil || r.Result != int64(len(col.At(t1))) {
		t.Fatalf("count at interval 1 = %v, %v; want %d", r.Result, err, len(col.At(t1)))
	}
	top, _ := h.Ctx.RunQuery(context.Background(), "top", "", map[string]string{"k": "2"})
	scan, _ := h.Ctx.RunQuery(context.Background(), "scan", "", map[string]string{"prefix": "k1", "limit": "3"})
	page := scan.Result.(dstream.ScanPage[int])
	if fmt.Sprint(page.Pairs) != "[(k10,"+fmt.Sprint(val(want, "k10"))+") (k11,"+fmt.Sprint(val(want, "k11"))+") (k12,"+fmt.Sprint(val(want, "k12"))+")]" || page.Next != "k12" {
		t.Errorf("scan k1 = %+v", page)
	}
	next, _ := h.Ctx.RunQuery(context.Background(), "scan", "", map[string]string{"prefix": "k1", "limit": "3", "after": page.Next})
	if p := next.Result.(dstream.ScanPage[int]); len(p.Pairs) == 0 || p.Pairs[0].Key != "k13" {
		t.Errorf("scan's next page = %+v", p)
	}
	if got := top.Result.([]kv); len(got) != 2 || got[0].Value < got[1].Value {
		t.Errorf("top 2 = %v", got)
	}

	// Errors say what is wrong, and the stream goes on.
	for _, c := range []struct {
		name, interval string
		args           map[string]string
		want           error
	}{
		{"nope", "", nil, dstream.ErrUnknownQuery},
		{"get", "", nil, &dstream.QueryArgError{}},
		{"top", "", map[string]string{"k": "0"}, &dstream.QueryArgError{}},
		{"top", "", map[string]string{"bogus": "1"}, &dstream.QueryArgError{}},
		{"top", "yesterday", nil, &dstream.QueryArgError{}},
		{"count", "12345", nil, dstream.ErrIntervalGone},
	} {
		_, err := h.Ctx.RunQuery(context.Background(), c.name, c.interval, c.args)
		var ae *dstream.QueryArgError
		if _, isArg := c.want.(*dstream.QueryArgError); isArg && !errors.As(err, &ae) || !isArg && !errors.Is(err, c.want) {
			t.Errorf("query %s %q %v: %v, want %v", c.name, c.interval, c.args, err, c.want)
		}
	}
	t3 := h.Tick()
	for range 3 {
		h.Tick()
	}
	if _, err := h.Ctx.RunQuery(context.Background(), "count", strconv.FormatInt(t1.UnixMilli(), 10), nil); !errors.Is(err, dstream.ErrIntervalGone) {
		t.Errorf("interval 1 after it was forgotten: %v, want ErrIntervalGone", err)
	}
	if len(col.At(t3)) == 0 {
		t.Error("the stream stopped producing")
	}
}

func val(xs []kv, k string) int {
	for _, x := range xs {
		if x.Key == k {
			return x.Value
		}
	}
	return -1
}

// Many queries at once, while intervals run, change no interval's output;
// the answers in local-cluster[3] equal those in local[2].
func TestQueriesBesideTheStreamAndAcrossDeployments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	run := func(t *testing.T, master string, concurrent bool) (string, []string) {
		h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master})
		_, col := queryGraph(h)
		for _, b := range queryInput() {
			h.Input.Push(b...)
		}
		h.Start()
		var outs []string
		for i := range 4 {
			var wg sync.WaitGroup
			if concurrent && i > 0 {
				for range 50 {
					wg.Go(func() {
						_, err := h.Ctx.RunQuery(context.Background(), "top", "latest", map[string]string{"k": "5"})
						if err != nil && !errors.Is(err, dstream.ErrTooManyQueries) {
							t.Errorf("a concurrent query: %v", err)
						}
					})
				}
			}
			at := h.Tick()
			wg.Wait()
			outs = append(outs, fmt.Sprint(dstreamtest.Sorted(col.At(at))))
		}
		return answers(t, h.Ctx), outs
	}
	var quiet, busy, clustered string
	var quietOut, busyOut []string
	t.Run("local", func(t *testing.T) { quiet, quietOut = run(t, "local[2]", false) })
	t.Run("local-busy", func(t *testing.T) { busy, busyOut = run(t, "local[2]", true) })
	t.Run("cluster", func(t *testing.T) { clustered, _ = run(t, "local-cluster[3]", false) })
	if dstreamtest.InWorker() || t.Failed() {
		return
	}
	if fmt.Sprint(quietOut) != fmt.Sprint(busyOut) {
		t.Errorf("concurrent queries changed the stream's output\nquiet %v\nbusy  %v", quietOut, busyOut)
	}
	if quiet != busy || quiet != clustered {
		t.Errorf("answers differ\nlocal[2]         %s\nwith queries     %s\nlocal-cluster[3] %s", quiet, busy, clustered)
	}
	_ = time.Second
}
