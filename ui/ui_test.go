package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/ui"
)

// Interval times under dstreamtest's manual clock (1 s intervals from
// dstreamtest.Start = 2023-11-14T22:13:20Z).
const (
	t1 = 1_700_000_001_000
	t2 = 1_700_000_002_000
	t3 = 1_700_000_003_000
)

// fixture is a harness whose context has a UI, served by an httptest server.
type fixture struct {
	h    *dstreamtest.Harness[string]
	srv  *ui.Server
	url  string
	seen *waiter
}

// newFixture builds the graph with build, registers the UI (retaining
// retained batches) and a waiter after it, starts the context and serves
// the UI.
func newFixture(t *testing.T, retained int, configure func(*dstream.Config), build func(in *dstream.Stream[string])) *fixture {
	t.Helper()
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: configure})
	build(h.In)
	srv := ui.NewServer(h.Ctx, ui.Options{RetainedBatches: retained})
	// Listeners are called in registration order: when the waiter has seen
	// an event, the UI has recorded it.
	w := newWaiter()
	h.Ctx.AddListener(w)
	h.Start()
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &fixture{h: h, srv: srv, url: hs.URL, seen: w}
}

// tick advances one interval and waits until the UI has seen it complete.
func (f *fixture) tick(t *testing.T) {
	t.Helper()
	at := f.h.Tick()
	f.seen.wait(t, "completed", at.UnixMilli())
}

// waiter records which batch events the bus has delivered.
type waiter struct {
	mu      sync.Mutex
	seen    map[string]bool // "submitted 1700000001000"
	changed chan struct{}   // closed and replaced on every event
}

func newWaiter() *waiter { return &waiter{seen: map[string]bool{}, changed: make(chan struct{})} }

func (w *waiter) OnEvent(e listener.Event) {
	var key string
	switch e := e.(type) {
	case listener.BatchSubmitted:
		key = fmt.Sprint("submitted ", e.Batch.Time.UnixMilli())
	case listener.BatchStarted:
		key = fmt.Sprint("started ", e.Batch.Time.UnixMilli())
	case listener.BatchCompleted:
		key = fmt.Sprint("completed ", e.Batch.Time.UnixMilli())
	default:
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[key] = true
	close(w.changed)
	w.changed = make(chan struct{})
}

// wait blocks until the event kind ("submitted", "started", "completed")
// of interval ms has been delivered.
func (w *waiter) wait(t *testing.T, kind string, ms int64) {
	t.Helper()
	key := fmt.Sprint(kind, " ", ms)
	timeout := time.After(60 * time.Second) // a hang guard, not timing
	for {
		w.mu.Lock()
		ok, changed := w.seen[key], w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no %s event within 60s", key)
		}
	}
}

// request sends method to url and returns the status, the body and the
// response's headers.
func request(t testing.TB, method, url string) (int, string, http.Header) {
	t.Helper()
	code, body, hdr, err := try(method, url)
	if err != nil {
		t.Fatal(err)
	}
	return code, body, hdr
}

// try is request for goroutines other than the test's.
func try(method, url string) (int, string, http.Header, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// expect GETs path and checks the status and that the body is exactly the
// JSON want (compared compacted: every field, its order and its value).
func (f *fixture) expect(t *testing.T, path string, status int, want string) {
	t.Helper()
	expectAt(t, f.url+path, status, want)
}

func expectAt(t *testing.T, url string, status int, want string) {
	t.Helper()
	code, body, hdr := request(t, http.MethodGet, url)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	if code != status || compact(t, body) != compact(t, want) {
		t.Errorf("GET %s: %d\n%s\nwant %d\n%s", url, code, compact(t, body), status, compact(t, want))
	}
}

func compact(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return b.String()
}

// failOn returns an output that collects nothing and fails at interval ms.
func failOn(ms int64) func(context.Context, *rdd.Dataset[string], time.Time) error {
	return func(ctx context.Context, ds *rdd.Dataset[string], t time.Time) error {
		if _, err := ds.Count(ctx); err != nil {
			return err
		}
		if t.UnixMilli() == ms {
			return errors.New("boom")
		}
		return nil
	}
}

// TestEndpoints: two intervals on the manual clock, then every endpoint
// with its exact document.
func TestEndpoints(t *testing.T) {
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		dstreamtest.Collect(in)
		in.Print(10)
	})
	f.h.Input.Push("a b", "c", "d")
	f.h.Input.Push()
	f.tick(t)
	f.tick(t)

	batch1 := `{
	  "batchId": 1700000001000,
	  "batchTime": "2023-11-14T22:13:21.000Z",
	  "status": "completed",
	  "batchDuration": 1000,
	  "inputSize": 3,
	  "submissionTime": "2023-11-14T22:13:21.000Z",
	  "processingStartTime": "2023-11-14T22:13:21.000Z",
	  "processingEndTime": "2023-11-14T22:13:21.000Z",
	  "schedulingDelay": 0,
	  "processingTime": 0,
	  "totalDelay": 0,
	  "numCompletedOutputOps": 2,
	  "numFailedOutputOps": 0,
	  "firstFailureReason": null
	}`
	batch2 := `{
	  "batchId": 1700000002000,
	  "batchTime": "2023-11-14T22:13:22.000Z",
	  "status": "completed",
	  "batchDuration": 1000,
	  "inputSize": 0,
	  "submissionTime": "2023-11-14T22:13:22.000Z",
	  "processingStartTime": "2023-11-14T22:13:22.000Z",
	  "processingEndTime": "2023-11-14T22:13:22.000Z",
	  "schedulingDelay": 0,
	  "processingTime": 0,
	  "totalDelay": 0,
	  "numCompletedOutputOps": 2,
	  "numFailedOutputOps": 0,
	  "firstFailureReason": null
	}`
	f.expect(t, "/api/v1/batches", 200, "["+batch2+","+batch1+"]")
	f.expect(t, "/api/v1/batches?status=completed", 200, "["+batch2+","+batch1+"]")
	f.expect(t, "/api/v1/batches?status=COMPLETED&limit=1", 200, "["+batch2+"]")
	f.expect(t, "/api/v1/batches?status=failed", 200, "[]")
	f.expect(t, "/api/v1/batches?status=queued,processing", 200, "[]")
	f.expect(t, fmt.Sprint("/api/v1/batches/", t1), 200, batch1)
	f.expect(t, fmt.Sprint("/api/v1/batches/", t2), 200, batch2)
	f.expect(t, fmt.Sprint("/api/v1/batches/", t1, "/operations"), 200, `[
	  {"outputOpId": 0, "name": "foreachRDD", "status": "succeeded", "duration": 0, "failureReason": null},
	  {"outputOpId": 1, "name": "print", "status": "succeeded", "duration": 0, "failureReason": null}
	]`)
	f.expect(t, "/api/v1/statistics", 200, `{
	  "startTime": "2023-11-14T22:13:20.000Z",
	  "batchDuration": 1000,
	  "numTotalCompletedBatches": 2,
	  "numTotalFailedBatches": 0,
	  "numActiveBatches": 0,
	  "numRetainedBatches": 2,
	  "numRetainedCompletedBatches": 2,
	  "maxRetainedBatches": 1000,
	  "numDroppedBatches": 0,
	  "numProcessedRecords": 3,
	  "numReceivedRecords": 3,
	  "avgInputRate": 1.5,
	  "avgSchedulingDelay": 0,
	  "avgProcessingTime": 0,
	  "avgTotalDelay": 0
	}`)
}

// TestQueuedProcessingAndDelays holds interval 1's output while the clock
// moves: interval 1 is seen processing and interval 2 queued, then both
// heldFixture is a fixture whose interval 1 (input "a", "b") blocks in its
// output until unblock is called, with interval 2's input ("c") queued; it
// returns once interval 1 has started.
func heldFixture(t *testing.T) (f *fixture, unblock func()) {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock = func() { releaseOnce.Do(func() { close(release) }) }
	f = newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		dstream.ForeachRDD(in, func(ctx context.Context, ds *rdd.Dataset[string], t time.Time) error {
			if t.UnixMilli() == t1 {
				close(entered)
				<-release
			}
			return nil
		})
	})
	t.Cleanup(unblock) // runs before the harness stops the context: cleanups run last first
	f.h.Input.Push("a", "b")
	f.h.Input.Push("c")
	f.h.Clock.Advance(time.Second) // cuts interval 1, which starts and blocks
	<-entered
	f.seen.wait(t, "started", t1)
	return f, unblock
}

// complete with the delays the clock's moves make.
func TestQueuedProcessingAndDelays(t *testing.T) {
	f, unblock := heldFixture(t)
	processing1 := `{
	  "batchId": 1700000001000,
	  "batchTime": "2023-11-14T22:13:21.000Z",
	  "status": "processing",
	  "batchDuration": 1000,
	  "inputSize": 2,
	  "submissionTime": "2023-11-14T22:13:21.000Z",
	  "processingStartTime": "2023-11-14T22:13:21.000Z",
	  "processingEndTime": null,
	  "schedulingDelay": 0,
	  "processingTime": null,
	  "totalDelay": null,
	  "numCompletedOutputOps": 0,
	  "numFailedOutputOps": 0,
	  "firstFailureReason": null
	}`
	f.expect(t, fmt.Sprint("/api/v1/batches/", t1), 200, processing1)
	f.expect(t, fmt.Sprint("/api/v1/batches/", t1, "/operations"), 200, `[]`)

	f.h.Clock.Advance(time.Second) // cuts interval 2, queued behind 1
	f.seen.wait(t, "submitted", t2)
	queued2 := `{
	  "batchId": 1700000002000,
	  "batchTime": "2023-11-14T22:13:22.000Z",
	  "status": "queued",
	  "batchDuration": 1000,
	  "inputSize": 1,
	  "submissionTime": "2023-11-14T22:13:22.000Z",
	  "processingStartTime": null,
	  "processingEndTime": null,
	  "schedulingDelay": null,
	  "processingTime": null,
	  "totalDelay": null,
	  "numCompletedOutputOps": 0,
	  "numFailedOutputOps": 0,
	  "firstFailureReason": null
	}`
	f.expect(t, "/api/v1/batches", 200, "["+queued2+","+processing1+"]")
	f.expect(t, "/api/v1/batches?status=queued", 200, "["+queued2+"]")
	f.expect(t, "/api/v1/batches?status=processing", 200, "["+processing1+"]")
	f.expect(t, "/api/v1/statistics", 200, `{
	  "startTime": "2023-11-14T22:13:20.000Z",
	  "batchDuration": 1000,
	  "numTotalCompletedBatches": 0,
	  "numTotalFailedBatches": 0,
	  "numActiveBatches": 2,
	  "numRetainedBatches": 2,
	  "numRetainedCompletedBatches": 0,
	  "maxRetainedBatches": 1000,
	  "numDroppedBatches": 0,
	  "numProcessedRecords": 0,
	  "numReceivedRecords": 3,
	  "avgInputRate": null,
	  "avgSchedulingDelay": null,
	  "avgProcessingTime": null,
	  "avgTotalDelay": null
	}`)

	// Interval 1 ends 1250 ms after it started; interval 2 waited 250 ms.
	f.h.Clock.Advance(250 * time.Millisecond)
	unblock()
	if err := f.h.Ctx.AwaitBatch(context.Background(), time.UnixMilli(t2)); err != nil {
		t.Fatal(err)
	}
	f.seen.wait(t, "completed", t2)
	f.expect(t, "/api/v1/batches", 200, `[{
	  "batchId": 1700000002000,
	  "batchTime": "2023-11-14T22:13:22.000Z",
	  "status": "completed",
	  "batchDuration": 1000,
	  "inputSize": 1,
	  "submissionTime": "2023-11-14T22:13:22.000Z",
	  "processingStartTime": "2023-11-14T22:13:22.250Z",
	  "processingEndTime": "2023-11-14T22:13:22.250Z",
	  "schedulingDelay": 250,
	  "processingTime": 0,
	  "totalDelay": 250,
	  "numCompletedOutputOps": 1,
	  "numFailedOutputOps": 0,
	  "firstFailureReason": null
	}, {
	  "batchId": 1700000001000,
	  "batchTime": "2023-11-14T22:13:21.000Z",
	  "status": "completed",
	  "batchDuration": 1000,
	  "inputSize": 2,
	  "submissionTime": "2023-11-14T22:13:21.000Z",
	  "processingStartTime": "2023-11-14T22:13:21.000Z",
	  "processingEndTime": "2023-11-14T22:13:22.250Z",
	  "schedulingDelay": 0,
	  "processingTime": 1250,
	  "totalDelay": 1250,
	  "numCompletedOutputOps": 1,
	  "numFailedOutputOps": 0,
	  "firstFailureReason": null
	}]`)
	f.expect(t, fmt.Sprint("/api/v1/batches/", t1, "/operations"), 200, `[
	  {"outputOpId": 0, "name": "foreachRDD", "status": "succeeded", "duration": 1250, "failureReason": null}
	]`)
	f.expect(t, "/api/v1/statistics", 200, `{
	  "startTime": "2023-11-14T22:13:20.000Z",
	  "batchDuration": 1000,
	  "numTotalCompletedBatches": 2,
	  "numTotalFailedBatches": 0,
	  "numActiveBatches": 0,
	  "numRetainedBatches": 2,
	  "numRetainedCompletedBatches": 2,
	  "maxRetainedBatches": 1000,
	  "numDroppedBatches": 0,
	  "numProcessedRecords": 3,
	  "numReceivedRecords": 3,
	  "avgInputRate": 1.5,
	  "avgSchedulingDelay": 125,
	  "avgProcessingTime": 625,
	  "avgTotalDelay": 750
	}`)
}

// TestFailedBatch: an interval whose output fails is failed, with its
// error, and the job carries on (OnBatchError returns nil).
func TestFailedBatch(t *testing.T) {
	f := newFixture(t, 0, func(c *dstream.Config) {
		c.OnBatchError = func(*dstream.BatchError) error { return nil }
	}, func(in *dstream.Stream[string]) {
		dstream.ForeachRDD(in, failOn(t2))
		in.Print(1)
	})
	f.h.Input.Push("a")
	f.h.Input.Push("b", "c")
	f.h.Input.Push("d", "e", "f")
	f.tick(t)
	f.tick(t)
	f.tick(t)

	f.expect(t, "/api/v1/batches?status=failed", 200, `[{
	  "batchId": 1700000002000,
	  "batchTime": "2023-11-14T22:13:22.000Z",
	  "status": "failed",
	  "batchDuration": 1000,
	  "inputSize": 2,
	  "submissionTime": "2023-11-14T22:13:22.000Z",
	  "processingStartTime": "2023-11-14T22:13:22.000Z",
	  "processingEndTime": "2023-11-14T22:13:22.000Z",
	  "schedulingDelay": 0,
	  "processingTime": 0,
	  "totalDelay": 0,
	  "numCompletedOutputOps": 1,
	  "numFailedOutputOps": 1,
	  "firstFailureReason": "interval 1700000002000 (22:13:22.000) failed in output 0 (foreachRDD): foreachRDD: boom"
	}]`)
	f.expect(t, fmt.Sprint("/api/v1/batches/", t2, "/operations"), 200, `[
	  {"outputOpId": 0, "name": "foreachRDD", "status": "failed", "duration": 0, "failureReason": "foreachRDD: boom"},
	  {"outputOpId": 1, "name": "print", "status": "succeeded", "duration": 0, "failureReason": null}
	]`)
	code, body, _ := request(t, http.MethodGet, f.url+"/api/v1/batches?status=completed")
	var got []ui.Batch
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got) != 2 || got[0].BatchID != t3 || got[1].BatchID != t1 {
		t.Errorf("completed batches: %d %v\n%s\nwant intervals 3 and 1", code, err, body)
	}
	f.expect(t, "/api/v1/statistics", 200, `{
	  "startTime": "2023-11-14T22:13:20.000Z",
	  "batchDuration": 1000,
	  "numTotalCompletedBatches": 2,
	  "numTotalFailedBatches": 1,
	  "numActiveBatches": 0,
	  "numRetainedBatches": 3,
	  "numRetainedCompletedBatches": 2,
	  "maxRetainedBatches": 1000,
	  "numDroppedBatches": 0,
	  "numProcessedRecords": 4,
	  "numReceivedRecords": 6,
	  "avgInputRate": 2,
	  "avgSchedulingDelay": 0,
	  "avgProcessingTime": 0,
	  "avgTotalDelay": 0
	}`)
}

// completed is the document of a completed interval ms of records records
// with one output operation, under the manual clock.
func completed(ms, records int64) string {
	at := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	return fmt.Sprintf(`{"batchId": %d, "batchTime": %q, "status": "completed", "batchDuration": 1000, "inputSize": %d,
	  "submissionTime": %[2]q, "processingStartTime": %[2]q, "processingEndTime": %[2]q,
	  "schedulingDelay": 0, "processingTime": 0, "totalDelay": 0,
	  "numCompletedOutputOps": 1, "numFailedOutputOps": 0, "firstFailureReason": null}`, ms, at, records)
}

// TestRetention: past the bound the oldest batches are dropped and counted,
// and asking for one is a 404 that says so.
func TestRetention(t *testing.T) {
	f := newFixture(t, 3, nil, func(in *dstream.Stream[string]) { dstreamtest.Collect(in) })
	for i := range 5 {
		f.h.Input.Push(strings.Fields(strings.Repeat("x ", i+1))...) // interval i+1 has i+1 records
		f.tick(t)
	}
	t4, t5 := int64(t3+1000), int64(t3+2000)
	f.expect(t, "/api/v1/batches", 200, "["+completed(t5, 5)+","+completed(t4, 4)+","+completed(t3, 3)+"]")
	f.expect(t, "/api/v1/batches?limit=2", 200, "["+completed(t5, 5)+","+completed(t4, 4)+"]")
	f.expect(t, fmt.Sprint("/api/v1/batches/", t3), 200, completed(t3, 3))
	for _, p := range []string{fmt.Sprint("/api/v1/batches/", t1), fmt.Sprint("/api/v1/batches/", t2, "/operations")} {
		f.expect(t, p, 404, fmt.Sprintf(`{"error": "no batch at %s: it is older than the batches retained (the last 3; 2 dropped)"}`, strings.Split(p, "/")[4]))
	}
	f.expect(t, "/api/v1/statistics", 200, `{
	  "startTime": "2023-11-14T22:13:20.000Z",
	  "batchDuration": 1000,
	  "numTotalCompletedBatches": 5,
	  "numTotalFailedBatches": 0,
	  "numActiveBatches": 0,
	  "numRetainedBatches": 3,
	  "numRetainedCompletedBatches": 3,
	  "maxRetainedBatches": 3,
	  "numDroppedBatches": 2,
	  "numProcessedRecords": 15,
	  "numReceivedRecords": 15,
	  "avgInputRate": 4,
	  "avgSchedulingDelay": 0,
	  "avgProcessingTime": 0,
	  "avgTotalDelay": 0
	}`)
}

// TestErrors: unknown paths and batches are 404, malformed parameters 400,
// other methods 405, every one with a JSON body.
func TestErrors(t *testing.T) {
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) { dstreamtest.Collect(in) })
	f.tick(t)
	api := "(the web UI: /; the API: /api/v1/batches, /api/v1/batches/{batchTime}, /api/v1/batches/{batchTime}/operations, /api/v1/batches/{batchTime}/tasks, /api/v1/statistics, /api/v1/receivers, /api/v1/workers, /api/v1/graph, /api/v1/queries, /api/v1/queries/{name}; metrics: /metrics; probes: /healthz, /readyz)"
	for _, c := range []struct {
		path   string
		status int
		err    string
	}{
		{"/index.html", 404, "no such endpoint: /index.html " + api},
		{"/api/v1", 404, "no such endpoint: /api/v1 " + api},
		{"/api/v1/batches/", 404, "no such endpoint: /api/v1/batches/ " + api},
		{"/api/v1/applications", 404, "no such endpoint: /api/v1/applications " + api},
		{fmt.Sprint("/api/v1/batches/", t1, "/jobs"), 404, fmt.Sprint("no such endpoint: /api/v1/batches/", t1, "/jobs ", api)},
		{"/api/v1/batches/1700000000500", 404, "no batch at 1700000000500"},
		{fmt.Sprint("/api/v1/batches/", t2), 404, fmt.Sprint("no batch at ", t2)},
		{fmt.Sprint("/api/v1/batches/", t2, "/operations"), 404, fmt.Sprint("no batch at ", t2)},
		{"/api/v1/batches/abc", 400, `malformed batch time "abc": want the interval time in Unix milliseconds (a batchId)`},
		{"/api/v1/batches/1.5/operations", 400, `malformed batch time "1.5": want the interval time in Unix milliseconds (a batchId)`},
		{"/api/v1/batches?status=done", 400, `unknown status "done": want queued, processing, completed or failed`},
		{"/api/v1/batches?status=completed,", 400, `unknown status "": want queued, processing, completed or failed`},
		{"/api/v1/batches?limit=0", 400, `limit "0": want a positive integer`},
		{"/api/v1/batches?limit=ten", 400, `limit "ten": want a positive integer`},
	} {
		want, _ := json.Marshal(map[string]string{"error": c.err})
		f.expect(t, c.path, c.status, string(want))
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/batches"},
		{http.MethodDelete, fmt.Sprint("/api/v1/batches/", t1)},
		{http.MethodPut, fmt.Sprint("/api/v1/batches/", t1, "/operations")},
		{http.MethodPatch, "/api/v1/statistics"},
	} {
		code, body, hdr := request(t, c.method, f.url+c.path)
		want, _ := json.Marshal(map[string]string{"error": fmt.Sprintf("method %s not allowed on %s: use GET", c.method, c.path)})
		if code != 405 || compact(t, body) != string(want) || hdr.Get("Allow") != "GET, HEAD" || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s (Allow %q); want 405 %s (Allow \"GET, HEAD\")", c.method, c.path, code, body, hdr.Get("Allow"), want)
		}
	}
	if code, body, hdr := request(t, http.MethodHead, f.url+"/api/v1/statistics"); code != 200 || body != "" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD /api/v1/statistics: %d %q %v; want 200, no body", code, body, hdr)
	}
}

// TestBeforeStart: the handler answers, called directly, before the context
// starts: no startTime, no batches.
func TestBeforeStart(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{BatchInterval: 500 * time.Millisecond})
	dstreamtest.Collect(h.In)
	srv := ui.NewServer(h.Ctx, ui.Options{})
	for path, want := range map[string]string{
		"/api/v1/batches": `[]`,
		"/api/v1/statistics": `{"startTime": null, "batchDuration": 500, "numTotalCompletedBatches": 0, "numTotalFailedBatches": 0,
		  "numActiveBatches": 0, "numRetainedBatches": 0, "numRetainedCompletedBatches": 0, "maxRetainedBatches": 1000,
		  "numDroppedBatches": 0, "numProcessedRecords": 0, "numReceivedRecords": 0,
		  "avgInputRate": null, "avgSchedulingDelay": null, "avgProcessingTime": null, "avgTotalDelay": null}`,
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || compact(t, rec.Body.String()) != compact(t, want) {
			t.Errorf("GET %s: %d %s\nwant 200 %s", path, rec.Code, rec.Body.String(), compact(t, want))
		}
	}
}

// TestProbes: /healthz and /readyz answer text, 503 with the reason before
// the context starts and 200 "ok" once it runs.
func TestProbes(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{BatchInterval: 500 * time.Millisecond})
	dstreamtest.Collect(h.In)
	srv := ui.NewServer(h.Ctx, ui.Options{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	probe := func(path string, status int, body string) {
		t.Helper()
		code, got, hdr := request(t, http.MethodGet, ts.URL+path)
		if code != status || got != body || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Errorf("GET %s: %d %q (%s); want %d %q, text/plain", path, code, got, hdr.Get("Content-Type"), status, body)
		}
	}
	probe("/healthz", 200, "ok\n")
	probe("/readyz", 503, "not started yet\n")
	h.Start()
	probe("/healthz", 200, "ok\n")
	probe("/readyz", 200, "ok\n")
	if err := h.Ctx.Stop(false); err != nil {
		t.Fatal(err)
	}
	probe("/healthz", 503, "stopped\n")
	probe("/readyz", 503, "stopping\n")
	if code, _, hdr := request(t, http.MethodPost, ts.URL+"/readyz"); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /readyz: %d (Allow %q), want 405 (Allow \"GET, HEAD\")", code, hdr.Get("Allow"))
	}
}

// TestConcurrentGets reads every endpoint from several goroutines while
// intervals run (run with -race), and checks every answer decodes.
func TestConcurrentGets(t *testing.T) {
	f := newFixture(t, 4, nil, func(in *dstream.Stream[string]) {
		dstreamtest.Collect(in)
		in.Print(1)
	})
	stopCh := make(chan struct{})
	stop := sync.OnceFunc(func() { close(stopCh) })
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	answered := make(chan struct{}, 64) // a token per answer, so readers and intervals interleave
	for g := range 4 {
		wg.Go(func() {
			paths := []string{"/api/v1/batches", "/api/v1/batches?status=completed&limit=2", "/api/v1/statistics",
				fmt.Sprint("/api/v1/batches/", t1+int64(g)*1000), fmt.Sprint("/api/v1/batches/", t1+int64(g)*1000, "/operations")}
			for i := 0; ; i++ {
				select {
				case <-stopCh:
					return
				default:
				}
				p := paths[i%len(paths)]
				code, body, _, err := try(http.MethodGet, f.url+p)
				var v any
				if err != nil || (code != 200 && code != 404) || json.Unmarshal([]byte(body), &v) != nil {
					errs <- fmt.Errorf("GET %s: %d %s %v", p, code, body, err)
					return
				}
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		})
	}
	for i := range 12 {
		for range 4 { // some answers before each interval
			select {
			case <-answered:
			case err := <-errs:
				t.Fatal(err)
			}
		}
		f.h.Input.Push(strings.Repeat("w", i+1))
		f.tick(t)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := f.srv.Progress().Statistics(time.Second)
	if st.NumTotalCompletedBatches != 12 || st.NumRetainedBatches != 4 || st.NumDroppedBatches != 8 || st.NumProcessedRecords != 12 {
		t.Errorf("statistics after 12 intervals: %+v", st)
	}
}

// TestListen serves on a free port, refuses a port in use, and shuts down
// when its context is done.
func TestListen(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstreamtest.Collect(h.In)
	srv := ui.NewServer(h.Ctx, ui.Options{})
	h.Start()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ep, err := srv.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(ep.Addr(), ":0") || ep.URL() != "http://"+ep.Addr() {
		t.Fatalf("Addr %q, URL %q: want the chosen port", ep.Addr(), ep.URL())
	}
	code, body, _ := request(t, http.MethodGet, ep.URL()+"/api/v1/statistics")
	if code != 200 || !strings.Contains(body, `"startTime": "2023-11-14T22:13:20.000Z"`) {
		t.Errorf("GET statistics: %d %s", code, body)
	}

	if _, err := srv.Listen(ctx, ep.Addr()); err == nil || !strings.Contains(err.Error(), "cannot listen on "+ep.Addr()) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on %s, in use: %v; want an error naming the address", ep.Addr(), err)
	}
	if _, err := srv.Listen(ctx, "no-port"); err == nil || !strings.Contains(err.Error(), "no-port") {
		t.Errorf("Listen on a malformed address: %v", err)
	}

	cancel()
	<-ep.Done()
	if err := ep.Close(); err != nil {
		t.Errorf("Close after shutdown: %v", err)
	}
	if _, err := http.Get(ep.URL() + "/api/v1/statistics"); err == nil {
		t.Errorf("GET after shutdown succeeded")
	}

	// Close shuts down by itself too, and the address is free again.
	ep2, err := srv.Listen(context.Background(), ep.Addr())
	if err != nil {
		t.Fatalf("Listen again on %s after shutdown: %v", ep.Addr(), err)
	}
	if err := ep2.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := ep2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestProgressLostEvents: a batch whose first events the bus dropped is
// recorded from the first event that arrives; one already dropped by the
// retention bound does not come back.
func TestProgressLostEvents(t *testing.T) {
	p := ui.NewProgress(1)
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	info := listener.BatchInfo{Time: at(t1), Records: 7, SubmissionTime: at(t1), StartTime: at(t1 + 10), EndTime: at(t1 + 30),
		SchedulingDelay: 10 * time.Millisecond, ProcessingTime: 20 * time.Millisecond, TotalDelay: 30 * time.Millisecond}
	p.OnEvent(listener.BatchCompleted{Batch: info})
	b, ok := p.Batch(t1, time.Second)
	if !ok || b.Status != ui.StatusCompleted || b.InputSize != 7 || *b.ProcessingTime != 20 || *b.TotalDelay != 30 || *b.SchedulingDelay != 10 {
		t.Fatalf("batch from BatchCompleted alone: %+v %v", b, ok)
	}
	p.OnEvent(listener.BatchSubmitted{Batch: listener.BatchInfo{Time: at(t2), Records: 1, SubmissionTime: at(t2)}})
	late := info
	late.Err = errors.New("late")
	p.OnEvent(listener.BatchCompleted{Batch: late}) // interval 1 was dropped: ignored
	if _, ok := p.Batch(t1, time.Second); ok {
		t.Errorf("a dropped batch came back")
	}
	st := p.Statistics(time.Second)
	if st.NumRetainedBatches != 1 || st.NumDroppedBatches != 1 || st.NumTotalFailedBatches != 0 || st.NumReceivedRecords != 8 || st.NumActiveBatches != 1 {
		t.Errorf("statistics: %+v", st)
	}
	// A very long failure is cut.
	p.OnEvent(listener.BatchCompleted{Batch: listener.BatchInfo{Time: at(t2), Err: errors.New(strings.Repeat("é", ui.MaxFailureReason))}})
	b, _ = p.Batch(t2, time.Second)
	if b.FirstFailureReason == nil || len(*b.FirstFailureReason) > ui.MaxFailureReason || !strings.HasSuffix(*b.FirstFailureReason, "é...") {
		t.Errorf("long failure reason not cut at a rune: %d bytes", len(*b.FirstFailureReason))
	}
}

// In local[N] the one worker is this process: its slots, its store's
// occupancy and its budget.
func TestWorkers(t *testing.T) {
	f := newFixture(t, 0, func(c *dstream.Config) { c.MemoryBytes = 64 << 20 }, func(in *dstream.Stream[string]) {
		dstreamtest.Collect(in)
	})
	f.h.Input.Push("a", "b")
	f.tick(t)
	bs := f.h.Ctx.BlockStats()
	f.expect(t, "/api/v1/workers", 200, fmt.Sprintf(`[{"id":"local","address":null,"pid":%d,"slots":2,"freeSlots":2,
		"memoryUsed":%d,"memoryLimit":%d,"blocks":%d,"state":"alive","lastHeartbeat":null,"excludedUntil":null}]`, os.Getpid(), bs.Bytes, 64<<20, bs.Blocks))
}

// ListenNear moves to the next free port when the one asked for is taken;
// Listen does not.
func TestListenNear(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	srv := ui.NewServer(dstreamtest.New[string](t, dstreamtest.Options{}).Ctx, ui.Options{})
	if _, err := srv.Listen(context.Background(), addr); err == nil {
		t.Fatal("Listen on a busy port succeeded")
	}
	e, err := srv.ListenNear(context.Background(), addr, 8)
	if err != nil {
		t.Skipf("the 8 ports after %d are all busy: %v", port, err)
	}
	defer e.Close()
	_, gotText, _ := net.SplitHostPort(e.Addr())
	if got, _ := strconv.Atoi(gotText); got <= port || got > port+8 {
		t.Fatalf("ListenNear(%s, 8) bound %s", addr, e.Addr())
	}
}
