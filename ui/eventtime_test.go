package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/ui"
)

// A batch of a job with an event-time window shows the watermark the
// operator ran it with and the records it dropped as late: none in batch 1
// (no record before it), 22:13:19.500 and one late record in batch 2 (a
// record 10 s old), 22:13:20.800 in batch 3. Each batch is asked for while
// the master remembers its manifest (the latest one is always).
func TestEventTimeWatermarkAndLateRecords(t *testing.T) {
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		parsed := dstream.Map(in, func(line string) dstream.Pair[string, int64] {
			k, ms, _ := strings.Cut(line, " ")
			n, _ := strconv.ParseInt(ms, 10, 64)
			return dstream.KV(k, n)
		})
		ev := dstream.WithEventTime(parsed, func(x dstream.Pair[string, int64]) time.Time { return time.UnixMilli(x.Value) }, time.Second)
		counts := dstream.CountByEventWindow(ev, func(x dstream.Pair[string, int64]) string { return x.Key }, dstream.TumblingWindows(time.Second), dstream.AppendMode, 2)
		dstreamtest.Collect(counts.Stream)
	})
	// The window operator's stream, as the graph numbers it.
	var opID int32
	for _, n := range f.h.Ctx.Graph() {
		if n.Name == "countByEventWindow" {
			opID = n.ID
		}
	}
	if opID == 0 {
		t.Fatal("no countByEventWindow stream in the graph")
	}
	// The batch page (when a browser is at hand) shows the same.
	page := func() {
		browser := findBrowser()
		if browser == "" {
			if inCI() {
				t.Fatal("no Chromium in PATH: CI must not skip the batch page's check")
			}
			return
		}
		bctx := headless(t, browser, 30*time.Second)
		if err := chromedp.Do(bctx, chromedp.Navigate(fmt.Sprintf("%s/#/batch/%d", f.url, t2))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelectorAll('#event-time tbody tr').length === 1`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("the batch page lists no event-time operator: %v", err)
		}
		cells, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#event-time tbody td')).map(function (td) { return td.textContent; })`))
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) != 4 || cells[0] != fmt.Sprint(opID) || cells[1] != "countByEventWindow" || !strings.HasSuffix(cells[2], ":19.500") || cells[3] != "1" {
			t.Errorf("the batch page's event-time row %q: want stream %d, countByEventWindow, the watermark at :19.500, 1 late record", cells, opID)
		}
	}
	for _, c := range []struct {
		in   []string
		ms   int64
		want string
	}{
		{[]string{"a 1700000000500"}, t1, "countByEventWindow#%d watermark=<nil> late=0"},
		{[]string{"a 1700000001800", "b 1699999990000"}, t2, "countByEventWindow#%d watermark=2023-11-14T22:13:19.500Z late=1"},
		{nil, t3, "countByEventWindow#%d watermark=2023-11-14T22:13:20.800Z late=0"},
	} {
		f.h.Input.Push(c.in...)
		f.tick(t)
		code, body, _ := request(t, http.MethodGet, fmt.Sprintf("%s/api/v1/batches/%d", f.url, c.ms))
		var b ui.Batch
		if err := json.Unmarshal([]byte(body), &b); code != 200 || err != nil {
			t.Fatalf("GET batch %d: %d %v\n%s", c.ms, code, err, body)
		}
		var got []string
		for _, op := range b.EventTimeOperators {
			wm := "<nil>"
			if op.Watermark != nil {
				wm = *op.Watermark
			}
			late := "<nil>"
			if op.LateRecords != nil {
				late = fmt.Sprint(*op.LateRecords)
			}
			got = append(got, fmt.Sprintf("%s#%d watermark=%s late=%s", op.Name, op.Stream, wm, late))
		}
		if want := fmt.Sprintf(c.want, opID); strings.Join(got, "; ") != want {
			t.Errorf("batch %d's event-time operators: %v, want %s\n%s", c.ms, got, want, body)
		}
		if c.ms == t2 {
			page()
		}
	}

}
