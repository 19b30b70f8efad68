package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
	"github.com/dstream/dstream/ui"
)

// taskAt is a successful TaskEnded of interval ms that ran from
// ms+start to ms+end (milliseconds), with nothing measured.
func taskAt(ms int64, job, stage, part int, start, end int64) listener.TaskEnded {
	return listener.TaskEnded{Time: time.UnixMilli(ms), Job: job, Stage: stage, Partition: part, Worker: "local",
		Start: time.UnixMilli(ms + start), End: time.UnixMilli(ms + end), Records: -1, RecordsRead: -1, ShuffleReadBytes: -1, ShuffleWriteBytes: -1,
		ShuffleRemoteReads: -1, ShufflePushes: -1}
}

// TestTasksEndpoint: the job and task events of a batch (posted here as the
// engine will) come back grouped into jobs and stages, with their sums, and
// a job known only from its tasks is "unknown".
func TestTasksEndpoint(t *testing.T) {
	// An output that runs no job: the engine posts no job or task event
	// of its own for the batch, only those posted here.
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		dstream.ForeachRDD(in, func(context.Context, *rdd.Dataset[string], time.Time) error { return nil })
	})
	f.h.Input.Push("a", "b", "c")
	f.tick(t)
	f.expect(t, fmt.Sprint("/api/v1/batches/", t1, "/tasks"), 200, `{"batchId": 1700000001000, "numTasks": 0, "numDroppedTasks": 0, "numDroppedJobs": 0, "jobs": []}`)

	p := f.srv.Progress()
	at := func(d int64) time.Time { return time.UnixMilli(t1 + d) }
	mapTask := func(part int, worker string, start, end, records, write, pushes int64) listener.TaskEnded {
		e := taskAt(t1, 7, 1, part, start, end)
		e.Map, e.Worker, e.RecordsRead, e.Records, e.ShuffleWriteBytes = true, worker, records, records, write
		e.ShuffleRemoteReads, e.ShufflePushes = 0, pushes
		return e
	}
	p.OnEvent(listener.JobStarted{Time: time.UnixMilli(t1), OutputOp: 0, Job: 7, Name: "count", Start: at(0)})
	p.OnEvent(mapTask(1, "w2", 1, 31, 20, 2000, 0))
	p.OnEvent(mapTask(0, "w1", 1, 11, 10, 1000, 1))
	failed := taskAt(t1, 7, 0, 0, 40, 45)
	failed.Err, failed.Worker = errors.New("fetch failed"), "w2"
	p.OnEvent(failed)
	retry := taskAt(t1, 7, 0, 0, 46, 50)
	retry.Attempt, retry.Speculative, retry.RecordsRead, retry.Records, retry.ShuffleReadBytes = 1, true, 30, 30, 3000
	retry.ShuffleRemoteReads, retry.ShufflePushes = 1, 0
	p.OnEvent(retry)
	p.OnEvent(listener.JobEnded{Time: time.UnixMilli(t1), OutputOp: 0, Job: 7, Name: "count", Start: at(0), End: at(52)})
	p.OnEvent(taskAt(t1, 9, 0, 0, 60, 61)) // a job whose events were dropped
	p.OnEvent(listener.JobStarted{Time: time.UnixMilli(t1), OutputOp: 1, Job: 8, Name: "foreachRDD", Start: at(55)})

	f.expect(t, fmt.Sprint("/api/v1/batches/", t1, "/tasks"), 200, `{
	  "batchId": 1700000001000, "numTasks": 5, "numDroppedTasks": 0, "numDroppedJobs": 0,
	  "jobs": [
	    {"jobId": 7, "name": "count", "outputOpId": 0, "status": "succeeded",
	     "submissionTime": "2023-11-14T22:13:21.000Z", "completionTime": "2023-11-14T22:13:21.052Z", "duration": 52,
	     "failureReason": null, "numTasks": 4, "numFailedTasks": 1,
	     "stages": [
	       {"stageId": 0, "kind": "result", "numTasks": 2, "numFailedTasks": 1, "numSpeculativeTasks": 1,
	        "firstLaunchTime": "2023-11-14T22:13:21.040Z", "lastFinishTime": "2023-11-14T22:13:21.050Z", "duration": 10,
	        "taskDurationMin": 4, "taskDurationMedian": 5, "taskDurationMax": 5,
	        "recordsRead": 30, "records": 30, "shuffleReadBytes": 3000, "shuffleWriteBytes": null,
	        "shuffleRemoteReads": 1, "shufflePushes": 0, "workers": ["local", "w2"],
	        "tasks": [
	          {"partition": 0, "attempt": 0, "worker": "w2", "speculative": false, "status": "failed",
	           "launchTime": "2023-11-14T22:13:21.040Z", "finishTime": "2023-11-14T22:13:21.045Z", "duration": 5,
	           "recordsRead": null, "records": null, "shuffleReadBytes": null, "shuffleWriteBytes": null,
	           "shuffleRemoteReads": null, "shufflePushes": null, "failureReason": "fetch failed"},
	          {"partition": 0, "attempt": 1, "worker": "local", "speculative": true, "status": "succeeded",
	           "launchTime": "2023-11-14T22:13:21.046Z", "finishTime": "2023-11-14T22:13:21.050Z", "duration": 4,
	           "recordsRead": 30, "records": 30, "shuffleReadBytes": 3000, "shuffleWriteBytes": null,
	           "shuffleRemoteReads": 1, "shufflePushes": 0, "failureReason": null}
	        ]},
	       {"stageId": 1, "kind": "map", "numTasks": 2, "numFailedTasks": 0, "numSpeculativeTasks": 0,
	        "firstLaunchTime": "2023-11-14T22:13:21.001Z", "lastFinishTime": "2023-11-14T22:13:21.031Z", "duration": 30,
	        "taskDurationMin": 10, "taskDurationMedian": 30, "taskDurationMax": 30,
	        "recordsRead": 30, "records": 30, "shuffleReadBytes": null, "shuffleWriteBytes": 3000,
	        "shuffleRemoteReads": 0, "shufflePushes": 1, "workers": ["w1", "w2"],
	        "tasks": [
	          {"partition": 0, "attempt": 0, "worker": "w1", "speculative": false, "status": "succeeded",
	           "launchTime": "2023-11-14T22:13:21.001Z", "finishTime": "2023-11-14T22:13:21.011Z", "duration": 10,
	           "recordsRead": 10, "records": 10, "shuffleReadBytes": null, "shuffleWriteBytes": 1000,
	           "shuffleRemoteReads": 0, "shufflePushes": 1, "failureReason": null},
	          {"partition": 1, "attempt": 0, "worker": "w2", "speculative": false, "status": "succeeded",
	           "launchTime": "2023-11-14T22:13:21.001Z", "finishTime": "2023-11-14T22:13:21.031Z", "duration": 30,
	           "recordsRead": 20, "records": 20, "shuffleReadBytes": null, "shuffleWriteBytes": 2000,
	           "shuffleRemoteReads": 0, "shufflePushes": 0, "failureReason": null}
	        ]}
	     ]},
	    {"jobId": 8, "name": "foreachRDD", "outputOpId": 1, "status": "running",
	     "submissionTime": "2023-11-14T22:13:21.055Z", "completionTime": null, "duration": null,
	     "failureReason": null, "numTasks": 0, "numFailedTasks": 0, "stages": []},
	    {"jobId": 9, "name": null, "outputOpId": null, "status": "unknown",
	     "submissionTime": null, "completionTime": null, "duration": null,
	     "failureReason": null, "numTasks": 1, "numFailedTasks": 0,
	     "stages": [
	       {"stageId": 0, "kind": "result", "numTasks": 1, "numFailedTasks": 0, "numSpeculativeTasks": 0,
	        "firstLaunchTime": "2023-11-14T22:13:21.060Z", "lastFinishTime": "2023-11-14T22:13:21.061Z", "duration": 1,
	        "taskDurationMin": 1, "taskDurationMedian": 1, "taskDurationMax": 1,
	        "recordsRead": null, "records": null, "shuffleReadBytes": null, "shuffleWriteBytes": null,
	        "shuffleRemoteReads": null, "shufflePushes": null, "workers": ["local"],
	        "tasks": [
	          {"partition": 0, "attempt": 0, "worker": "local", "speculative": false, "status": "succeeded",
	           "launchTime": "2023-11-14T22:13:21.060Z", "finishTime": "2023-11-14T22:13:21.061Z", "duration": 1,
	           "recordsRead": null, "records": null, "shuffleReadBytes": null, "shuffleWriteBytes": null,
	           "shuffleRemoteReads": null, "shufflePushes": null, "failureReason": null}
	        ]}
	     ]}
	  ]}`)

	// A failed job; a batch that is not retained; a malformed time.
	p.OnEvent(listener.JobEnded{Time: time.UnixMilli(t1), OutputOp: 1, Job: 8, Name: "foreachRDD", Start: at(55), End: at(58), Err: errors.New("boom")})
	bt, ok := p.Tasks(t1)
	if !ok || len(bt.Jobs) != 3 || bt.Jobs[1].Status != "failed" || *bt.Jobs[1].FailureReason != "boom" || *bt.Jobs[1].Duration != 3 {
		t.Errorf("after JobEnded with an error: %+v", bt.Jobs[1])
	}
	f.expect(t, fmt.Sprint("/api/v1/batches/", t2, "/tasks"), 404, fmt.Sprintf(`{"error": "no batch at %d"}`, t2))
	f.expect(t, "/api/v1/batches/x/tasks", 400, `{"error": "malformed batch time \"x\": want the interval time in Unix milliseconds (a batchId)"}`)
	if code, _, hdr := request(t, http.MethodPost, f.url+fmt.Sprint("/api/v1/batches/", t1, "/tasks")); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST tasks: %d", code)
	}
}

// TestTasksEndpointFigures: the figures the tasks of a real job measured (a
// shuffle of 1000 records from 4 map partitions into 3 reduce partitions,
// run by a local scheduler, its task events posted for batch 1 as the
// engine posts them) come back for every task, and summed per stage.
func TestTasksEndpointFigures(t *testing.T) {
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		dstream.ForeachRDD(in, func(context.Context, *rdd.Dataset[string], time.Time) error { return nil })
	})
	f.h.Input.Push("a")
	f.tick(t)

	var mu sync.Mutex
	var events []sched.TaskEvent
	bs := block.New(block.Options{})
	rc, err := rdd.NewContext(rdd.Config{Blocks: bs, Shuffles: shuffle.New(bs), Runner: sched.NewLocal(sched.LocalConfig{Slots: 2,
		OnTask: func(e sched.TaskEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]int, 1000)
	for i := range keys {
		keys[i] = i
	}
	pairs := rdd.Map(rdd.Parallelize(rc, keys, 4), func(i int) rdd.Pair[int, int] { return rdd.KV(i, i) })
	if n, err := rdd.PartitionBy(pairs, rdd.Partitioner[int](rdd.NewHashPartitioner[int](3))).Count(t.Context()); err != nil || n != 1000 {
		t.Fatalf("count = %d, %v", n, err)
	}
	p := f.srv.Progress()
	mu.Lock()
	for _, e := range events {
		p.OnEvent(listener.TaskEnded{Time: time.UnixMilli(t1), Job: 100 + e.Task.Job, Stage: e.Task.Stage, Partition: e.Task.Partition(),
			Attempt: e.Task.Attempt(), Map: e.Task.IsMap(), Worker: e.Worker, Start: e.Start, End: e.End,
			Records: e.Figures.RecordsWritten, RecordsRead: e.Figures.RecordsRead,
			ShuffleReadBytes: e.Figures.ShuffleReadBytes, ShuffleWriteBytes: e.Figures.ShuffleWriteBytes, Err: e.Err})
	}
	mu.Unlock()

	code, body, _ := request(t, http.MethodGet, f.url+fmt.Sprint("/api/v1/batches/", t1, "/tasks"))
	var bt ui.BatchTasks
	if err := json.Unmarshal([]byte(body), &bt); code != 200 || err != nil {
		t.Fatalf("GET tasks: %d, %v\n%s", code, err, body)
	}
	if len(bt.Jobs) != 1 || len(bt.Jobs[0].Stages) != 2 {
		t.Fatalf("want one job of two stages:\n%s", body)
	}
	value := func(v *int64) string {
		if v == nil {
			return "null"
		}
		if *v > 1000 {
			return ">1000"
		}
		return fmt.Sprint(*v)
	}
	for _, st := range bt.Jobs[0].Stages {
		got := fmt.Sprintf("%s: %d tasks, read %s, wrote %s, shuffle read %s, written %s", st.Kind, st.NumTasks,
			value(st.RecordsRead), value(st.Records), value(st.ShuffleReadBytes), value(st.ShuffleWriteBytes))
		want := map[string]string{
			"map":    "map: 4 tasks, read 1000, wrote 1000, shuffle read 0, written >1000",
			"result": "result: 3 tasks, read 1000, wrote 1000, shuffle read >1000, written 0",
		}[st.Kind]
		if got != want {
			t.Errorf("stage %d: %s, want %s", st.StageID, got, want)
		}
		for _, tk := range st.Tasks {
			if tk.RecordsRead == nil || tk.Records == nil || tk.ShuffleReadBytes == nil || tk.ShuffleWriteBytes == nil || *tk.Records == 0 {
				t.Errorf("stage %d task %d: figures not measured:\n%s", st.StageID, tk.Partition, body)
			}
		}
	}
	if st := bt.Jobs[0].Stages; st[0].ShuffleReadBytes != nil && st[1].ShuffleWriteBytes != nil && *st[0].ShuffleReadBytes != *st[1].ShuffleWriteBytes {
		t.Errorf("shuffle bytes read %d, written %d: local[N] reads every bucket it wrote, once", *st[0].ShuffleReadBytes, *st[1].ShuffleWriteBytes)
	}
}

// TestTaskBounds: past the per-batch bound task attempts are counted, not
// kept; past the bound over all batches the oldest batch's tasks go, whole;
// tasks of no retained batch are ignored; the batch a retention drop takes
// gives its tasks back.
func TestTaskBounds(t *testing.T) {
	p := ui.NewProgress(2)
	p.LimitTasks(3, 5)
	submit := func(ms int64) {
		p.OnEvent(listener.BatchSubmitted{Batch: listener.BatchInfo{Time: time.UnixMilli(ms), SubmissionTime: time.UnixMilli(ms)}})
	}
	counts := func(ms int64) string {
		bt, ok := p.Tasks(ms)
		if !ok {
			return "gone"
		}
		return fmt.Sprintf("%d kept, %d dropped", bt.NumTasks, bt.NumDroppedTasks)
	}
	submit(t1)
	submit(t2)
	for i := range 4 {
		p.OnEvent(taskAt(t1, 1, 0, i, 0, 1))
	}
	if got := counts(t1); got != "3 kept, 1 dropped" {
		t.Errorf("batch 1 after 4 tasks, 3 per batch: %s", got)
	}
	for i := range 3 {
		p.OnEvent(taskAt(t2, 1, 0, i, 0, 1))
	}
	// The 6th task over both batches found 5 kept: batch 1's went.
	if got1, got2 := counts(t1), counts(t2); got1 != "0 kept, 4 dropped" || got2 != "3 kept, 0 dropped" {
		t.Errorf("after 7 tasks, 5 in all: batch 1 %s, batch 2 %s", got1, got2)
	}
	p.OnEvent(taskAt(t1, 1, 0, 9, 0, 1)) // batch 1 keeps no more
	if got := counts(t1); got != "0 kept, 5 dropped" {
		t.Errorf("batch 1, a task after its tasks went: %s", got)
	}
	p.OnEvent(taskAt(t3+5000, 1, 0, 0, 0, 1)) // no such batch
	p.OnEvent(listener.TaskEnded{Job: 1})     // not an interval's job
	submit(t3)                                // drops batch 1
	for i := range 3 {
		p.OnEvent(taskAt(t3, 1, 0, i, 0, 1))
	}
	// 3 + 3 > 5: batch 2's tasks went for batch 3's third.
	if got1, got2, got3 := counts(t1), counts(t2), counts(t3); got1 != "gone" || got2 != "0 kept, 3 dropped" || got3 != "3 kept, 0 dropped" {
		t.Errorf("after batch 3's tasks: batch 1 %s, batch 2 %s, batch 3 %s", got1, got2, got3)
	}
	submit(t3 + 1000) // drops batch 2; 3 tasks kept in all
	for i := range 2 {
		p.OnEvent(taskAt(t3+1000, 1, 0, i, 0, 1))
	}
	if got3, got4 := counts(t3), counts(t3+1000); got3 != "3 kept, 0 dropped" || got4 != "2 kept, 0 dropped" {
		t.Errorf("after batch 4's tasks: batch 3 %s, batch 4 %s", got3, got4)
	}

	// Jobs are bounded per batch too.
	for i := range ui.MaxJobsPerBatch + 2 {
		p.OnEvent(listener.JobStarted{Time: time.UnixMilli(t3), Job: i, OutputOp: -1, Name: "count"})
	}
	bt, _ := p.Tasks(t3)
	if bt.NumDroppedJobs != 2 || len(bt.Jobs) != ui.MaxJobsPerBatch || bt.Jobs[0].OutputOpID != nil {
		t.Errorf("jobs past the bound: %d kept, %d dropped, outputOpId %v", len(bt.Jobs), bt.NumDroppedJobs, bt.Jobs[0].OutputOpID)
	}
	// A long error is cut.
	long := taskAt(t3+1000, 2, 0, 0, 0, 1)
	long.Err = errors.New(strings.Repeat("x", 2*ui.MaxFailureReason))
	p.OnEvent(long)
	bt, _ = p.Tasks(t3 + 1000)
	if r := bt.Jobs[1].Stages[0].Tasks[0].FailureReason; r == nil || len(*r) != ui.MaxFailureReason {
		t.Errorf("a long task error is not cut to %d bytes", ui.MaxFailureReason)
	}
}

// TestTasksWhileRunning reads the tasks of the batches while a goroutine
// posts task events (run with -race): every answer decodes.
func TestTasksWhileRunning(t *testing.T) {
	p := ui.NewProgress(4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range int64(20) {
			ms := t1 + b*1000
			p.OnEvent(listener.BatchSubmitted{Batch: listener.BatchInfo{Time: time.UnixMilli(ms), SubmissionTime: time.UnixMilli(ms)}})
			p.OnEvent(listener.JobStarted{Time: time.UnixMilli(ms), Job: int(b), Name: "count"})
			for i := range 200 {
				p.OnEvent(taskAt(ms, int(b), i%3, i, 0, int64(i)))
			}
			p.OnEvent(listener.JobEnded{Time: time.UnixMilli(ms), Job: int(b), Name: "count", End: time.UnixMilli(ms + 300)})
		}
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		for b := range int64(20) {
			if bt, ok := p.Tasks(t1 + b*1000); ok {
				if _, err := json.Marshal(bt); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	bt, ok := p.Tasks(t1 + 19000)
	if !ok || bt.NumTasks != 200 || len(bt.Jobs) != 1 || len(bt.Jobs[0].Stages) != 3 || bt.Jobs[0].Status != "succeeded" {
		t.Errorf("last batch: %v %+v", ok, bt)
	}
}

// BenchmarkProgressTask is the UI's cost per task event on the bus's
// goroutine: it must stay small, tasks are many.
func BenchmarkProgressTask(b *testing.B) {
	p := ui.NewProgress(0)
	for i := range int64(1000) {
		ms := t1 + i*1000
		p.OnEvent(listener.BatchSubmitted{Batch: listener.BatchInfo{Time: time.UnixMilli(ms), SubmissionTime: time.UnixMilli(ms)}})
	}
	// Round the batches: kept, then past the bound over all batches
	// (evictions), as a long run goes.
	events := make([]listener.Event, 1000)
	for i := range events {
		events[i] = taskAt(t1+int64(i)*1000, 1, 0, i, 0, 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.OnEvent(events[i%len(events)])
		i++
	}
}

// TestGraphEndpoint: the context's own graph until SetGraph, then the one
// set.
func TestGraphEndpoint(t *testing.T) {
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		w := dstream.Window(in, 3*time.Second, 2*time.Second)
		w.Print(1)
	})
	f.expect(t, "/api/v1/graph", 200, `[
	  {"id": 1, "kind": "stream", "name": "queue", "type": "string", "slide": 1000, "parents": [], "state": false},
	  {"id": 2, "kind": "stream", "name": "window", "type": "string", "slide": 2000, "parents": [1], "state": false},
	  {"id": 3, "kind": "output", "name": "print", "type": "string", "slide": null, "parents": [2], "state": false}
	]`)
	f.srv.SetGraph([]ui.GraphNode{{ID: 1, Kind: "stream", Name: "socket", Type: "string", Slide: ptr(int64(500))}, {ID: 2, Kind: "output", Name: "print", Type: "string", Parents: []int32{1}}})
	f.expect(t, "/api/v1/graph", 200, `[
	  {"id": 1, "kind": "stream", "name": "socket", "type": "string", "slide": 500, "parents": [], "state": false},
	  {"id": 2, "kind": "output", "name": "print", "type": "string", "slide": null, "parents": [1], "state": false}
	]`)
}

func ptr[T any](v T) *T { return &v }

// TestWebFiles: the page, its script and style sheet, with their types, a
// policy that lets the page load nothing from elsewhere, and revalidation.
func TestWebFiles(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstreamtest.Collect(h.In)
	srv := ui.NewServer(h.Ctx, ui.Options{})
	type result struct {
		code int
		hdr  http.Header
		body string
	}
	serve := func(method, path string, hdr http.Header) result {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		srv.ServeHTTP(rec, req)
		return result{rec.Code, rec.Header(), rec.Body.String()}
	}
	for path, want := range map[string]struct{ ctype, contains string }{
		"/":                 {"text/html; charset=utf-8", `<script src="static/app.js" defer></script>`},
		"/static/app.js":    {"text/javascript; charset=utf-8", "api/v1/batches"},
		"/static/style.css": {"text/css; charset=utf-8", ".timeline"},
	} {
		r := serve(http.MethodGet, path, nil)
		if r.code != 200 || r.hdr.Get("Content-Type") != want.ctype || !strings.Contains(r.body, want.contains) {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q containing %q", path, r.code, r.hdr.Get("Content-Type"), len(r.body), want.ctype, want.contains)
		}
		if csp := r.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		etag := r.hdr.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", path)
			continue
		}
		if r := serve(http.MethodGet, path, http.Header{"If-None-Match": {etag}}); r.code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, r.code)
		}
		if r := serve(http.MethodHead, path, nil); r.code != 200 || r.body != "" {
			t.Errorf("HEAD %s: %d %d bytes", path, r.code, len(r.body))
		}
		if r := serve(http.MethodPost, path, nil); r.code != 405 {
			t.Errorf("POST %s: %d, want 405", path, r.code)
		}
	}
	for _, path := range []string{"/static/", "/static/nope.js", "/index.html", "/static/../ui.go"} {
		// The mux redirects a path it cleans; nothing else is served.
		if r := serve(http.MethodGet, path, nil); r.code != 404 && r.code != 301 && r.code != 307 {
			t.Errorf("GET %s: %d, want 404 (or a redirect to the clean path)", path, r.code)
		}
	}
}
