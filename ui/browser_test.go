package ui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
	"github.com/dstream/dstream/ui"
)

// browsers are the names a Chromium is found by in PATH.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// findBrowser returns the path of a Chromium in PATH, or "".
func findBrowser() string {
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// inCI reports whether the test runs in CI (CI=true, as .ci/run is run).
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// screenshotPath is where TestBrowser saves its screenshot of the streaming
// page: with DSTREAM_SCREENSHOT=1, testdata/screenshot.png; with
// DSTREAM_SCREENSHOT=PATH, that path (relative to this package's folder,
// e.g. ../docs/ui.png); else a file in the test's temporary folder, so a
// test run leaves the tree clean. The batch page's and the graph page's go
// beside it, their names ending in -batch.png and -graph.png.
func screenshotPath(t *testing.T) string {
	switch v := os.Getenv("DSTREAM_SCREENSHOT"); v {
	case "":
		return filepath.Join(t.TempDir(), "screenshot.png")
	case "1", "true":
		return filepath.Join("testdata", "screenshot.png")
	default:
		return v
	}
}

// TestBrowser loads the UI of a running job in headless Chromium: the
// streaming page's timelines fill with batches, the batch tables list them
// (a failed one with its error), a batch's page shows its output
// operations, jobs, stages and tasks, the receivers, workers and graph pages
// draw, and the page logs no error and throws no exception. The engine does
// not post job and task events yet: a listener here posts them for every
// batch as it starts, as the engine will.
func TestBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		msg := "no Chromium in PATH (looked for " + strings.Join(browsers, ", ") + "); install Debian's chromium (.ci/run does) to run the browser test"
		if inCI() {
			t.Fatal(msg + ": CI must not skip it")
		}
		t.Skip(msg)
	}

	// A job on the wall clock: 200 ms intervals over a queue input and a
	// socket receiver, with a word count, a window, and an output that fails
	// once.
	const interval = 200 * time.Millisecond
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sctx, err := dstream.NewContext(dstream.Config{
		Master: "local[2]", BatchInterval: interval, Out: io.Discard, Logger: quiet,
		OnBatchError: func(*dstream.BatchError) error { return nil }, // carry on
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sctx.Stop(false) }) // last: after the browser and the server
	q := dstream.NewQueue[string]()
	lines := dstream.QueueStream(sctx, q)
	words := dstream.FlatMap(lines, strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int] { return dstream.KV(w, 1) })
	counts := dstream.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2)
	var outputs atomic.Int64
	dstream.ForeachRDD(counts, func(ctx context.Context, ds *rdd.Dataset[dstream.Pair[string, int]], t time.Time) error {
		if _, err := ds.Count(ctx); err != nil {
			return err
		}
		n := outputs.Add(1)
		time.Sleep(time.Duration(5+(n*37)%40) * time.Millisecond) // processing times that vary
		if n == 3 {
			return errors.New("boom: the sink refused the batch")
		}
		return nil
	})
	dstream.CountByWindow(words, 4*interval, 2*interval).Print(1)
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet})
	dstream.ReceiverStream(sctx, sock).Print(1)

	srv := ui.NewServer(sctx, ui.Options{Logger: quiet})
	var jobs atomic.Int64
	sctx.AddListener(listener.Func(func(e listener.Event) {
		// After the UI's listener: it has seen the batch start.
		if s, ok := e.(listener.BatchStarted); ok {
			for _, ev := range fakeJob(s.Batch, 1_000_000+int(jobs.Add(1))) { // beside the engine's own jobs
				srv.Progress().OnEvent(ev)
			}
		}
	}))
	if err := sctx.Start(); err != nil {
		t.Fatal(err)
	}
	ep, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	feed, stopFeed := context.WithCancel(context.Background())
	t.Cleanup(stopFeed)
	go func() {
		for x := uint32(1); feed.Err() == nil; {
			x = x*1103515245 + 12345 // sizes that vary, the same every run
			q.Push(strings.Fields(strings.Repeat("the quick brown fox jumps ", 1+int(x>>16)%12))...)
			select {
			case <-feed.Done():
			case <-time.After(interval):
			}
		}
	}()

	// The browser: headless (the new mode), without the sandbox that
	// containers do not allow, and GPU.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser) // first: the browser goes before the server
	ctx, cancel := context.WithTimeout(bctx, 50*time.Second)
	defer cancel()

	// Every error the page logs, exception it throws, and error entry of
	// the browser's log (a failed request, a blocked resource).
	var mu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				consoleErrors = append(consoleErrors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	count := func(selector string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
		if err != nil {
			t.Fatalf("counting %s: %v", selector, err)
		}
		return n
	}
	text := func(selector string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", selector)))
		if err != nil {
			t.Fatalf("text of %s: %v", selector, err)
		}
		return s
	}
	waitFor := func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("waiting until %s: %v\npage: %s", what, err, text("main"))
		}
	}

	// The streaming page: the four timelines show at least three batches,
	// and a failed batch has come.
	run("loading the page", chromedp.Navigate(ep.URL()+"/"))
	// A probe, to know that the console is watched: it must be seen, and
	// nothing else.
	const probe = "dstream-console-probe"
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("console.error(%q)", probe))); err != nil {
		t.Fatal(err)
	}
	waitFor("the timelines show 3 batches", `['input-rate', 'scheduling-delay', 'processing-time', 'total-delay'].every(function (k) {
		var tl = document.getElementById('timeline-' + k), h = document.getElementById('histogram-' + k);
		return tl && h && Number(tl.dataset.points) >= 3 && tl.querySelectorAll('circle.dot').length >= 3;
	})`)
	waitFor("a failed batch is listed", `document.querySelectorAll('#failed-batches tbody tr').length >= 1`)
	waitFor("3 completed batches are listed", `document.querySelectorAll('#completed-batches tbody tr').length >= 3`)
	if got := text("#failed-batches tbody tr"); !strings.Contains(got, "boom: the sink refused the batch") {
		t.Errorf("the failed batch's row does not show its error: %q", got)
	}
	if got := text("#stats"); !strings.Contains(got, "Completed batches") || !strings.Contains(got, "200 ms") {
		t.Errorf("stats header: %q", got)
	}
	rows := count("#completed-batches tbody tr[data-batch]")
	links := count("#completed-batches tbody tr a[href^='#/batch/']")
	if rows < 3 || links != rows {
		t.Errorf("completed batches table: %d rows, %d links to a batch", rows, links)
	}
	if !strings.Contains(text("#status"), "updated") {
		t.Errorf("status: %q", text("#status"))
	}

	// A completed batch's page, reached by its link: output operations,
	// jobs, stages and tasks, and which worker ran them.
	batchID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelectorAll('#completed-batches tbody tr')[1].dataset.batch`))
	if err != nil {
		t.Fatal(err)
	}
	run("opening a batch", chromedp.Click(`#completed-batches tbody tr:nth-child(2) a`, chromedp.NodeVisible))
	waitFor("the batch's page shows its tasks", fmt.Sprintf(`(function () {
		var b = document.getElementById('batch');
		return b && b.dataset.batch === %q && document.querySelectorAll('#output-ops tbody tr').length >= 2 &&
			document.querySelectorAll('tr.task').length >= 7;
	})()`, batchID))
	ops := text("#output-ops")
	for _, want := range []string{"foreachRDD", "print", "succeeded"} {
		if !strings.Contains(ops, want) {
			t.Errorf("output operations %q: no %q", ops, want)
		}
	}
	jobsText := text("#jobs")
	for _, want := range []string{"count", "(output 0)", "map", "result", "local", "fetch failed", "12 ms"} {
		if !strings.Contains(jobsText, want) {
			t.Errorf("jobs section %q: no %q", jobsText, want)
		}
	}
	if n := count("#jobs svg.taskchart rect.span"); n < 7 {
		t.Errorf("task charts draw %d tasks, want the 7 posted here and the engine's own", n)
	}
	batchShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}

	// The other pages.
	run("the workers page", chromedp.Navigate(ep.URL()+"/#/workers"))
	waitFor("the workers table", `document.querySelectorAll('#workers tbody tr').length === 1`)
	if got := text("#workers"); !strings.Contains(got, "local") || !strings.Contains(got, "alive") {
		t.Errorf("workers: %q", got)
	}
	run("the receivers page", chromedp.Navigate(ep.URL()+"/#/receivers"))
	waitFor("the receivers table", `document.querySelectorAll('#receivers tbody tr').length === 1`)
	if got := text("#receivers"); !strings.Contains(got, "socket") || !strings.Contains(got, "active") {
		t.Errorf("receivers: %q", got)
	}
	run("the graph page", chromedp.Navigate(ep.URL()+"/#/graph"))
	nodes := len(sctx.Graph())
	waitFor("the graph", fmt.Sprintf(`(function () { var g = document.getElementById('graph');
		return g && Number(g.dataset.nodes) === %d && g.querySelectorAll('g.node').length === %d && g.querySelectorAll('path.edge').length >= %d; })()`, nodes, nodes, nodes-2))
	graphShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}

	// Back to the streaming page, for the screenshot.
	run("the streaming page again", chromedp.Navigate(ep.URL()+"/#/"))
	waitFor("the timelines again", `(function () { var tl = document.getElementById('timeline-total-delay'); return tl && Number(tl.dataset.points) >= 5; })()`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := screenshotPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	for suffix, shot := range map[string][]byte{"-batch.png": batchShot, "-graph.png": graphShot} {
		if err := os.WriteFile(strings.TrimSuffix(path, ".png")+suffix, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots: %s (streaming; batch %s's page and the graph's beside it)", path, batchID)

	// A last round trip, so the console events of the page so far have
	// arrived.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int]("1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	probed := false
	for _, e := range consoleErrors {
		if strings.Contains(e, probe) {
			probed = true
			continue
		}
		t.Errorf("browser console: %s", e)
	}
	if !probed {
		t.Errorf("the console probe (console.error) was not seen: console errors would go unnoticed")
	}
}

// fakeJob is what the engine posts for a batch's count, with a failed and a
// retried attempt the engine's own jobs do not have: a job of two
// stages, the map stage's four tasks (one of them failed once and retried)
// and the result stage's two, on the worker "local", 12 ms long.
func fakeJob(b listener.BatchInfo, job int) []listener.Event {
	at := func(ms int) time.Time { return b.StartTime.Add(time.Duration(ms) * time.Millisecond) }
	task := func(stage, part, attempt, from, to int, err error) listener.Event {
		e := listener.TaskEnded{Time: b.Time, Job: job, Stage: stage, Partition: part, Attempt: attempt, Map: stage == 1, Worker: "local",
			Start: at(from), End: at(to), Records: int64(10 * (part + 1)), RecordsRead: int64(10 * (part + 1)), ShuffleReadBytes: -1, ShuffleWriteBytes: -1, Err: err}
		if e.Map {
			e.ShuffleWriteBytes = int64(1000 * (part + 1))
		} else {
			e.ShuffleReadBytes = int64(1500 * (part + 1))
		}
		if err != nil {
			e.Records, e.ShuffleWriteBytes = -1, -1
		}
		return e
	}
	return []listener.Event{
		listener.JobStarted{Time: b.Time, OutputOp: 0, Job: job, Name: "count", Start: at(0)},
		task(1, 0, 0, 0, 3, nil),
		task(1, 1, 0, 0, 4, nil),
		task(1, 2, 0, 1, 2, errors.New("fetch failed: block input-2-7 is gone")),
		task(1, 2, 1, 3, 6, nil),
		task(1, 3, 0, 4, 7, nil),
		task(0, 0, 0, 7, 11, nil),
		task(0, 1, 0, 8, 12, nil),
		listener.JobEnded{Time: b.Time, OutputOp: 0, Job: job, Name: "count", Start: at(0), End: at(12)},
	}
}

// headless starts browser headless for the test and returns a context of
// its first tab, bounded by timeout; the browser goes at the test's end.
func headless(t *testing.T, browser string, timeout time.Duration) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancel)
	return ctx
}
