package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/ui"
)

// scrape GETs /metrics from url, checks it is Prometheus text, and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, hdr := request(t, http.MethodGet, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("GET /metrics: not the text format: %v\n%s", err, body)
	}
	return fams
}

// render writes the named families of fams as "# TYPE" lines and one line
// per sample (name{labels} value; a histogram as its _bucket, _sum and
// _count samples), numbers in plain decimal, so tests compare exact values
// without the HELP text. A family missing from fams renders as "missing".
func render(fams map[string]*dto.MetricFamily, names ...string) string {
	var b strings.Builder
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, name := range names {
		mf, ok := fams[name]
		if !ok {
			fmt.Fprintf(&b, "%s missing\n", name)
			continue
		}
		fmt.Fprintf(&b, "# TYPE %s %s\n", name, strings.ToLower(mf.GetType().String()))
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			ls := ""
			if len(labels) > 0 {
				ls = "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				fmt.Fprintf(&b, "%s%s %s\n", name, ls, num(m.GetCounter().GetValue()))
			case dto.MetricType_GAUGE:
				fmt.Fprintf(&b, "%s%s %s\n", name, ls, num(m.GetGauge().GetValue()))
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, bk := range h.GetBucket() {
					fmt.Fprintf(&b, "%s_bucket{le=%q} %d\n", name, num(bk.GetUpperBound()), bk.GetCumulativeCount())
				}
				fmt.Fprintf(&b, "%s_sum %s\n", name, num(h.GetSampleSum()))
				fmt.Fprintf(&b, "%s_count %d\n", name, h.GetSampleCount())
			default:
				fmt.Fprintf(&b, "%s%s unexpected type\n", name, ls)
			}
		}
	}
	return b.String()
}

// histogram renders, as render does, a histogram over ui.DelayBuckets (and
// +Inf) of the observations obs (seconds).
func histogram(name string, obs ...float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE %s histogram\n", name)
	var sum float64
	for _, v := range obs {
		sum += v
	}
	for _, le := range ui.DelayBuckets {
		n := 0
		for _, v := range obs {
			if v <= le {
				n++
			}
		}
		fmt.Fprintf(&b, "%s_bucket{le=%q} %d\n", name, strconv.FormatFloat(le, 'f', -1, 64), n)
	}
	fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} %d\n", name, len(obs))
	fmt.Fprintf(&b, "%s_sum %s\n%s_count %d\n", name, strconv.FormatFloat(sum, 'f', -1, 64), name, len(obs))
	return b.String()
}

// expectMetrics compares the named families of a scrape of url with want.
func expectMetrics(t *testing.T, url, want string, names ...string) {
	t.Helper()
	if got := render(scrape(t, url), names...); got != want {
		t.Errorf("GET %s/metrics:\n%s\nwant\n%s", url, got, want)
	}
}

// The families the listener half updates, in render's order.
var batchFamilies = []string{
	"dstream_batch_processing_seconds",
	"dstream_batch_records_total",
	"dstream_batch_scheduling_delay_seconds",
	"dstream_batch_total_delay_seconds",
	"dstream_batches_active",
	"dstream_batches_total",
}

// The families the context collector reads at scrape time from the store,
// the receivers and the workers.
// taskFamilies count the scheduler's task attempts (TestMetricsTasks) and
// failed state checkpoints.
var taskFamilies = []string{"dstream_late_records_total", "dstream_speculative_task_attempts_total", "dstream_state_checkpoint_failures_total", "dstream_task_attempts_total"}

var contextFamilies = []string{
	"dstream_block_store_blocks",
	"dstream_block_store_bytes",
	"dstream_block_store_capacity_bytes",
	"dstream_block_store_evictions_total",
	"dstream_block_store_input_limit_bytes",
	"dstream_block_store_peak_bytes",
	"dstream_listener_events_dropped_total",
	"dstream_master_lease_epoch",
	"dstream_receiver_records_dropped_total",
	"dstream_receiver_records_total",
	"dstream_receiver_waits_total",
	"dstream_worker_excluded",
	"dstream_worker_free_slots",
	"dstream_worker_slots",
}

// contextWant renders what the context collector must report for ctx now,
// from ctx's own accessors, with every worker slot free.
func contextWant(ctx *dstream.Context) string {
	st := ctx.BlockStats()
	return fmt.Sprintf(`# TYPE dstream_block_store_blocks gauge
dstream_block_store_blocks %d
# TYPE dstream_block_store_bytes gauge
dstream_block_store_bytes{class="cache"} %d
dstream_block_store_bytes{class="input"} %d
dstream_block_store_bytes{class="shuffle"} %d
dstream_block_store_bytes{class="state"} %d
# TYPE dstream_block_store_capacity_bytes gauge
dstream_block_store_capacity_bytes %d
# TYPE dstream_block_store_evictions_total counter
dstream_block_store_evictions_total %d
# TYPE dstream_block_store_input_limit_bytes gauge
dstream_block_store_input_limit_bytes %d
# TYPE dstream_block_store_peak_bytes gauge
dstream_block_store_peak_bytes %d
# TYPE dstream_listener_events_dropped_total counter
dstream_listener_events_dropped_total %d
# TYPE dstream_master_lease_epoch gauge
dstream_master_lease_epoch %d
# TYPE dstream_receiver_records_dropped_total counter
dstream_receiver_records_dropped_total %d
# TYPE dstream_receiver_records_total counter
dstream_receiver_records_total %d
# TYPE dstream_receiver_waits_total counter
dstream_receiver_waits_total %d
# TYPE dstream_worker_excluded gauge
dstream_worker_excluded{worker="local"} 0
# TYPE dstream_worker_free_slots gauge
dstream_worker_free_slots{worker="local"} 2
# TYPE dstream_worker_slots gauge
dstream_worker_slots{worker="local"} 2
`, st.Blocks, st.CacheBytes, st.InputBytes, st.ShuffleBytes, st.StateBytes, st.MaxBytes, st.Evictions,
		st.MaxInputBytes, st.PeakBytes, ctx.DroppedEvents(), ctx.LeaseEpoch(), ctx.DroppedRecords(), ctx.ReceivedRecords(), ctx.ReceiverWaits())
}

// newServer serves srv on an httptest server and returns its URL.
func newServer(t *testing.T, srv *ui.Server) string {
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestMetrics: three intervals on the manual clock, the second failing
// (OnBatchError lets the job carry on); /metrics then has exact counters,
// histograms of zero delays, and the store's occupancy as BlockStats says.
func TestMetrics(t *testing.T) {
	f := newFixture(t, 0, func(c *dstream.Config) {
		c.MemoryBytes = 64 << 20
		c.OnBatchError = func(*dstream.BatchError) error { return nil }
	}, func(in *dstream.Stream[string]) {
		dstream.ForeachRDD(in, failOn(t2))
		// Running counts per word: the store holds state between intervals.
		pairs := dstream.Map(in, func(w string) dstream.Pair[string, int] { return dstream.Pair[string, int]{Key: w, Value: 1} })
		dstreamtest.Collect(dstream.UpdateStateByKey(pairs, func(vs []int, st dstream.Opt[int]) dstream.Opt[int] {
			return dstream.Some(st.Value + len(vs))
		}, 2))
	})
	f.h.Input.Push("a")
	f.h.Input.Push("b", "c")
	f.h.Input.Push("d", "e", "f")
	f.tick(t)
	f.tick(t)
	f.tick(t)

	zeros := []float64{0, 0, 0}
	expectMetrics(t, f.url, histogram("dstream_batch_processing_seconds", zeros...)+`# TYPE dstream_batch_records_total counter
dstream_batch_records_total 6
`+histogram("dstream_batch_scheduling_delay_seconds", zeros...)+histogram("dstream_batch_total_delay_seconds", zeros...)+`# TYPE dstream_batches_active gauge
dstream_batches_active{status="processing"} 0
dstream_batches_active{status="queued"} 0
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 2
dstream_batches_total{status="failed"} 1
`, batchFamilies...)
	if st := f.h.Ctx.BlockStats(); st.MaxBytes <= 0 || st.MaxInputBytes <= 0 || st.PeakBytes <= 0 || st.StateBytes <= 0 {
		t.Errorf("BlockStats %+v: want a capacity, an input limit, a peak and state, so the gauges are checked against something", st)
	}
	expectMetrics(t, f.url, contextWant(f.h.Ctx), contextFamilies...)

	// The Go runtime and process collectors are there too.
	fams := scrape(t, f.url)
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("GET /metrics: no %s", name)
		}
	}
	// Every engine metric is prefixed and passes the linter.
	var ours []string
	for name := range fams {
		switch {
		case strings.HasPrefix(name, "dstream_"):
			ours = append(ours, name)
		case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "promhttp_"):
		default:
			t.Errorf("GET /metrics: %s is neither dstream_ nor the runtime's", name)
		}
	}
	slices.Sort(ours)
	if want := slices.Sorted(slices.Values(slices.Concat(batchFamilies, taskFamilies, contextFamilies))); !slices.Equal(ours, want) {
		t.Errorf("dstream_ families %v\nwant %v", ours, want)
	}
	problems, err := testutil.GatherAndLint(f.srv.Registry(), ours...)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// TestMetricsDelays holds interval 1's output while the clock moves, as
// TestQueuedProcessingAndDelays does: while it is held, /metrics shows one
// batch processing and one queued; then the histograms hold the delays the
// clock's moves make.
func TestMetricsDelays(t *testing.T) {
	f, unblock := heldFixture(t)
	f.h.Clock.Advance(time.Second) // cuts interval 2, queued behind 1
	f.seen.wait(t, "submitted", t2)
	expectMetrics(t, f.url, histogram("dstream_batch_processing_seconds")+`# TYPE dstream_batch_records_total counter
dstream_batch_records_total 3
`+histogram("dstream_batch_scheduling_delay_seconds")+histogram("dstream_batch_total_delay_seconds")+`# TYPE dstream_batches_active gauge
dstream_batches_active{status="processing"} 1
dstream_batches_active{status="queued"} 1
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 0
dstream_batches_total{status="failed"} 0
`, batchFamilies...)

	// Interval 1 ends 1250 ms after it started; interval 2 waited 250 ms
	// and took no time.
	f.h.Clock.Advance(250 * time.Millisecond)
	unblock()
	if err := f.h.Ctx.AwaitBatch(context.Background(), time.UnixMilli(t2)); err != nil {
		t.Fatal(err)
	}
	f.seen.wait(t, "completed", t2)
	expectMetrics(t, f.url, histogram("dstream_batch_processing_seconds", 1.25, 0)+`# TYPE dstream_batch_records_total counter
dstream_batch_records_total 3
`+histogram("dstream_batch_scheduling_delay_seconds", 0, 0.25)+histogram("dstream_batch_total_delay_seconds", 1.25, 0.25)+`# TYPE dstream_batches_active gauge
dstream_batches_active{status="processing"} 0
dstream_batches_active{status="queued"} 0
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 2
dstream_batches_total{status="failed"} 0
`, batchFamilies...)
	// The histogram helper itself, on these values: 0.25 is in the 0.25
	// bucket (le is inclusive), 1.25 only from 2.5 up.
	if h := histogram("x", 1.25, 0.25); !strings.Contains(h, `x_bucket{le="0.1"} 0`) || !strings.Contains(h, `x_bucket{le="0.25"} 1`) ||
		!strings.Contains(h, `x_bucket{le="1"} 1`) || !strings.Contains(h, `x_bucket{le="2.5"} 2`) || !strings.Contains(h, "x_sum 1.5\nx_count 2") {
		t.Errorf("histogram helper:\n%s", h)
	}
}

// TestMetricsTwoServers: each Server has its own registry, so two contexts
// in one process (and a second Server on one context) neither panic on
// registration nor see each other's batches.
func TestMetricsTwoServers(t *testing.T) {
	build := func(in *dstream.Stream[string]) { dstreamtest.Collect(in) }
	a := newFixture(t, 0, nil, build)
	b := newFixture(t, 0, nil, build)
	a.h.Input.Push("a", "b")
	a.h.Input.Push("c")
	b.h.Input.Push("x")
	a.tick(t)
	a.tick(t)
	b.tick(t)
	names := []string{"dstream_batch_records_total", "dstream_batches_total"}
	expectMetrics(t, a.url, `# TYPE dstream_batch_records_total counter
dstream_batch_records_total 3
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 2
dstream_batches_total{status="failed"} 0
`, names...)
	expectMetrics(t, b.url, `# TYPE dstream_batch_records_total counter
dstream_batch_records_total 1
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 1
dstream_batches_total{status="failed"} 0
`, names...)

	// A second Server on a running context counts from its registration on.
	second := ui.NewServer(a.h.Ctx, ui.Options{})
	if second.Registry() == a.srv.Registry() {
		t.Fatal("two Servers share a registry")
	}
	w := newWaiter()
	a.h.Ctx.AddListener(w)
	a.h.Input.Push("d")
	w.wait(t, "completed", a.h.Tick().UnixMilli())
	got, err := testutil.GatherAndCount(second.Registry(), names...)
	if err != nil || got != 3 {
		t.Errorf("second server: %d series, %v; want 3", got, err)
	}
	if err := testutil.GatherAndCompare(second.Registry(), strings.NewReader(`# HELP dstream_batch_records_total Records in the batches cut so far (the inputSize of every batch submitted).
# TYPE dstream_batch_records_total counter
dstream_batch_records_total 1
`), "dstream_batch_records_total"); err != nil {
		t.Errorf("second server: %v", err)
	}
	expectMetrics(t, a.url, `# TYPE dstream_batch_records_total counter
dstream_batch_records_total 4
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 3
dstream_batches_total{status="failed"} 0
`, names...)
}

// TestMetricsBeforeStart: /metrics serves before the context starts, with
// every counter at zero, and answers other methods than GET and HEAD with
// the API's 405.
func TestMetricsBeforeStart(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstreamtest.Collect(h.In)
	srv := ui.NewServer(h.Ctx, ui.Options{})
	if err := testutil.GatherAndCompare(srv.Registry(), strings.NewReader(`# HELP dstream_batches_total Batches (intervals) whose output operations have all ended, by status: completed, or failed (an output operation or the state checkpoint failed).
# TYPE dstream_batches_total counter
dstream_batches_total{status="completed"} 0
dstream_batches_total{status="failed"} 0
# HELP dstream_batch_scheduling_delay_seconds Per finished batch: processing start - submission time.
# TYPE dstream_batch_scheduling_delay_seconds histogram
dstream_batch_scheduling_delay_seconds_bucket{le="0.005"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="0.01"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="0.025"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="0.05"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="0.1"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="0.25"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="0.5"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="1"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="2.5"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="5"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="10"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="30"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="60"} 0
dstream_batch_scheduling_delay_seconds_bucket{le="+Inf"} 0
dstream_batch_scheduling_delay_seconds_sum 0
dstream_batch_scheduling_delay_seconds_count 0
`), "dstream_batches_total", "dstream_batch_scheduling_delay_seconds"); err != nil {
		t.Error(err)
	}
	hs := newServer(t, srv)
	expectMetrics(t, hs, contextWant(h.Ctx), contextFamilies...)

	code, body, hdr := request(t, http.MethodPost, hs+"/metrics")
	if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" ||
		compact(t, body) != `{"error":"method POST not allowed on /metrics: use GET"}` {
		t.Errorf("POST /metrics: %d %q %s", code, hdr.Get("Allow"), body)
	}
	if code, _, _ := request(t, http.MethodHead, hs+"/metrics"); code != http.StatusOK {
		t.Errorf("HEAD /metrics: %d", code)
	}
}

// TestMetricsTasks: the task attempt counters match the TaskEnded events a
// listener saw, by outcome.
func TestMetricsTasks(t *testing.T) {
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) { dstream.Count(in).Print(1) })
	var mu sync.Mutex
	seen := map[string]int{}
	f.h.Ctx.AddListener(listener.Func(func(e listener.Event) {
		if te, ok := e.(listener.TaskEnded); ok {
			mu.Lock()
			if te.Err == nil {
				seen["succeeded"]++
			} else {
				seen["failed"]++
			}
			mu.Unlock()
		}
	}))
	f.h.Input.Push("a", "b", "c")
	f.tick(t)
	f.seen.wait(t, "completed", t1)
	// The bus delivers to listeners in order: once a later event reached
	// the fixture's listener, the counters have every task of interval 1.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := seen["succeeded"]
		mu.Unlock()
		fams := scrape(t, f.url)
		got := render(fams, "dstream_task_attempts_total")
		want := fmt.Sprintf("# TYPE dstream_task_attempts_total counter\ndstream_task_attempts_total{outcome=\"failed\"} 0\ndstream_task_attempts_total{outcome=\"killed\"} 0\ndstream_task_attempts_total{outcome=\"succeeded\"} %d\n", n)
		if n > 0 && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task counters:\n%s\nwant\n%s", got, want)
		}
		time.Sleep(10 * time.Millisecond) // the bus delivers on its own goroutine
	}
}
