package dstream

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/plot"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/simnet"
	"github.com/google/pprof/profile"
)

// What the master costs as the cluster grows. A standalone master and N
// workers of 8 slots run in the simulation (sim_test.go: one process, the
// real engine and protocol over simnet, virtual time) a job of trivial
// tasks at 1 s intervals: a
// generated input of 8N partitions (one map task per slot), a Map, a
// ReduceByKey into 8 partitions, collected on the master. Every goroutine
// carries the pprof label of the process that started it (simCluster.start,
// scaleRun), so a CPU profile of the run tells the master's CPU from the
// workers'. Virtual time stands still while goroutines compute, so the
// master's CPU per virtual second is the share of a core the master needs
// to keep up, whatever the machine running the simulation is doing.
//
// Nothing here asserts a speed: TestSimulatedMasterScale checks the outputs
// and prints the figures; -sim.scale=10,25,50,100,250 sweeps the sizes
// (BENCHMARKS.md, "The master as the cluster grows").

var simScaleProfile = flag.String("sim.scale.cpuprofile", "", "write the CPU profile of the last -sim.scale size's measured intervals to this `file` (go tool pprof -tagfocus process=master)")

var simScalePlot = flag.String("sim.scale.plot", "", "write TestSimulatedMasterScale's figures as an SVG chart to this `file`")

var simScale = flag.String("sim.scale", "", "worker counts for TestSimulatedMasterScale, comma-separated (default: a 3-worker smoke run)")

// scaleBatch is the scale job's interval.
const scaleBatch = time.Second

// scaleSlots is each worker's task slots.
const scaleSlots = 8

// scaleReduce is the scale job's reduce partitions.
const scaleReduce = 8

// scaleJob is a job of trivial tasks: parts map partitions of two records
// each, counted by key into reduce partitions. Each record costs cost of
// virtual time in the map (a sleep, which the bubble's clock skips).
type scaleJob struct {
	parts, reduce int
	cost          time.Duration
}

// records is what every interval's totals must add up to.
func (j scaleJob) records() int64 { return 2 * int64(j.parts) }

// scaleGraph builds job in any process. On the master, each interval's
// total goes to out.
func scaleGraph(c *Context, job scaleJob, out *scaleOutputs) {
	gen := GeneratedStream(c, "gen", func(t time.Time) [][]int64 {
		k := t.UnixMilli() / scaleBatch.Milliseconds()
		ps := make([][]int64, job.parts)
		for i := range ps {
			ps[i] = []int64{k + int64(i), k + 2*int64(i)}
		}
		return ps
	})
	pairs := Map(gen, func(x int64) Pair[int64, int64] {
		if job.cost > 0 {
			time.Sleep(job.cost)
		}
		return KV(x%64, int64(1))
	})
	counts := ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, job.reduce)
	ForeachRDD(counts, func(ctx context.Context, ds *rdd.Dataset[Pair[int64, int64]], tm time.Time) error {
		recs, err := ds.Collect(ctx)
		if err != nil {
			return err
		}
		var n int64
		for _, r := range recs {
			n += r.Value
		}
		if out != nil {
			out.add(int(tm.Sub(c.StartTime())/scaleBatch), n)
		}
		return nil
	})
}

// scaleOutputs are the totals the master collected, by interval.
type scaleOutputs struct {
	mu  sync.Mutex
	sum map[int]int64
	n   map[int]int
}

func (o *scaleOutputs) add(k int, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sum[k] = n
	o.n[k]++
}

// scaleResult is what one size measured over its measured intervals.
type scaleResult struct {
	workers, tasks, intervals int
	// CPU, from the profile's samples, by whose goroutines spent it: the
	// master's, all workers', and neither's (the runtime's: GC workers,
	// timers).
	master, workersCPU, other time.Duration
	// calls the master made and was sent; bytes it sent and received.
	callsMade, callsReceived int64
	bytesSent, bytesReceived int64
	// heap in use after a GC at the end (the whole simulated cluster).
	heapMiB float64
	// processing is the intervals' mean processing time (virtual).
	processing time.Duration
}

func (r scaleResult) perInterval(d time.Duration) time.Duration {
	return d / time.Duration(r.intervals)
}

func (r scaleResult) perTask(d time.Duration) time.Duration {
	return d / time.Duration(r.tasks*r.intervals)
}

// coreShare is the master's CPU per second of virtual time, in percent of
// a core.
func (r scaleResult) coreShare() float64 {
	return 100 * r.master.Seconds() / (time.Duration(r.intervals) * scaleBatch).Seconds()
}

// scaleCluster is a running simulated cluster of the scale job.
type scaleCluster struct {
	c   *Context
	cl  *simCluster
	net *simnet.Network
	log *ringLog
	out *scaleOutputs

	mu      sync.Mutex
	batches []listener.BatchInfo // completed, in order
}

// startScale starts a standalone master and workers of slots slots running
// job (local-cluster stops at 64 processes: one machine's). Every write
// takes 100 µs (a LAN), so that an interval's virtual processing time
// counts its rounds of messages. It must run inside a synctest bubble;
// stop ends it.
func startScale(t *testing.T, workers, slots int, job scaleJob) *scaleCluster {
	t.Helper()
	sc := &scaleCluster{out: &scaleOutputs{sum: map[int]int64{}, n: map[int]int{}}, log: newRingLog(200)}
	log := sc.log
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// 100 µs a write: a LAN, so that an interval's virtual processing time
	// counts its rounds of messages.
	lan := func(from, to string, k, n int) time.Duration { return 100 * time.Microsecond }
	net := simnet.New(simnet.Config{Latency: lan})
	sc.net = net
	cfg := Config{Master: "cluster", ClusterListen: "master:7077", Insecure: true, BatchInterval: scaleBatch,
		Logger: logger, Out: io.Discard}
	cl := &simCluster{net: net, cfg: cfg, log: logger, workers: map[string]*simWorker{}, calls: newSimCalls(),
		graph: func(c *Context) { scaleGraph(c, job, nil) }}
	sc.cl = cl
	cfg.sim = &engine.Sim{Net: cl.host("master")}
	cl.spawned = cluster.SpawnConfig{Master: "master:7077", Slots: slots}
	var c *Context
	var err error
	pprof.Do(context.Background(), pprof.Labels("process", "master"), func(context.Context) {
		if c, err = NewContext(cfg); err != nil {
			return
		}
		scaleGraph(c, job, sc.out)
		c.AddListener(listener.Func(func(e listener.Event) {
			if b, ok := e.(listener.BatchCompleted); ok {
				sc.mu.Lock()
				sc.batches = append(sc.batches, b.Batch)
				sc.mu.Unlock()
			}
		}))
		if err = c.Start(); err != nil {
			return
		}
		for i := range workers {
			if err = cl.start(fmt.Sprintf("w%d", i+1)); err != nil {
				return
			}
		}
	})
	if err != nil {
		if c != nil {
			c.Stop(false)
		}
		cl.stopAll()
		t.Fatal(err)
	}
	sc.c = c
	return sc
}

// stop stops the master and its workers.
func (sc *scaleCluster) stop() {
	sc.c.Stop(false)
	sc.cl.stopAll()
}

// await waits for interval k (from 1) to complete.
func (sc *scaleCluster) await(t *testing.T, ctx context.Context, k int) {
	t.Helper()
	if err := sc.c.AwaitBatch(ctx, sc.c.StartTime().Add(time.Duration(k)*scaleBatch)); err != nil {
		t.Fatalf("interval %d: %v\n%s", k, err, sc.log)
	}
}

// check reports every interval up to k whose total is wrong or that was
// output more than once.
func (sc *scaleCluster) check(t *testing.T, job scaleJob, k int) {
	t.Helper()
	sc.out.mu.Lock()
	defer sc.out.mu.Unlock()
	for i := 1; i <= k; i++ {
		if sc.out.sum[i] != job.records() || sc.out.n[i] != 1 {
			t.Errorf("interval %d: total %d output %d times, want %d once", i, sc.out.sum[i], sc.out.n[i], job.records())
		}
	}
}

// scaleRun runs the scale job on workers of scaleSlots slots for warm
// intervals, then measures intervals more. It must run inside a synctest
// bubble, and no other test may profile the CPU meanwhile.
func scaleRun(t *testing.T, prof *cpuProfiler, workers, warm, intervals int) scaleResult {
	t.Helper()
	job := scaleJob{parts: workers * scaleSlots, reduce: scaleReduce}
	sc := startScale(t, workers, scaleSlots, job)
	defer sc.stop()
	net, cl := sc.net, sc.cl
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(warm+intervals)*scaleBatch)
	defer cancel()
	sc.await(t, ctx, warm)
	sent0, recv0 := net.Traffic("master"), cl.calls
	made0, got0 := recv0.of("master")
	if err := prof.start(); err != nil {
		t.Fatal(err)
	}
	err := sc.c.AwaitBatch(ctx, sc.c.StartTime().Add(time.Duration(warm+intervals)*scaleBatch))
	cpu := prof.stop()
	if *simScaleProfile != "" {
		if err := os.WriteFile(*simScaleProfile, cpu.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
	if err != nil {
		t.Fatalf("interval %d: %v\n%s", warm+intervals, err, sc.log)
	}
	tr := net.Traffic("master")
	made, got := cl.calls.of("master")
	r := scaleResult{workers: workers, tasks: job.parts + job.reduce, intervals: intervals,
		callsMade: made - made0, callsReceived: got - got0,
		bytesSent: tr.BytesSent - sent0.BytesSent, bytesReceived: tr.BytesReceived - sent0.BytesReceived}
	r.master, r.workersCPU, r.other = cpuByProcess(t, cpu)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMiB = float64(ms.HeapInuse) / (1 << 20)
	synctest.Wait() // the listener has heard of every interval done
	sc.mu.Lock()
	for _, b := range sc.batches[warm:min(len(sc.batches), warm+intervals)] {
		r.processing += b.ProcessingTime / time.Duration(intervals)
	}
	sc.mu.Unlock()
	sc.check(t, job, warm+intervals)
	return r
}

// cpuByProcess sums a CPU profile's samples by the "process" label: the
// master's, the workers' (any other value), and the rest: unlabelled (the
// runtime's GC workers, timers) and GC assists wherever they struck. The
// simulated processes share one heap, so a GC cycle the workers' garbage
// started makes the master's goroutines assist too, as they would not in a
// master process of its own: assists are the GC's, not the master's.
func cpuByProcess(t *testing.T, prof *bytes.Buffer) (master, workers, other time.Duration) {
	t.Helper()
	p, err := profile.Parse(prof)
	if err != nil {
		t.Fatalf("parsing the CPU profile: %v", err)
	}
	cpu := slices.IndexFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == "cpu" })
	if cpu < 0 {
		t.Fatalf("no cpu samples in the profile: %v", p.SampleType)
	}
	assist := func(s *profile.Sample) bool {
		for _, l := range s.Location {
			for _, ln := range l.Line {
				if ln.Function != nil && ln.Function.Name == "runtime.gcAssistAlloc" {
					return true
				}
			}
		}
		return false
	}
	for _, s := range p.Sample {
		d := time.Duration(s.Value[cpu])
		switch proc := s.Label["process"]; {
		case len(proc) == 0 || assist(s):
			other += d
		case proc[0] == "master":
			master += d
		default:
			workers += d
		}
	}
	return master, workers, other
}

// TestSimulatedMasterScale measures the master (see above) at each size of
// -sim.scale; by default, a small smoke run that checks the outputs and
// that the measurement sees the master.
func TestSimulatedMasterScale(t *testing.T) {
	sizes, warm, intervals := []int{3}, 2, 2
	if *simScale != "" {
		sizes, warm, intervals = nil, 3, 10
		for f := range strings.SplitSeq(*simScale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				t.Fatalf("-sim.scale: bad worker count %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	prof := newCPUProfiler(t)
	var rs []scaleResult
	for _, n := range sizes {
		synctest.Test(t, func(t *testing.T) {
			// Enough intervals for a few hundred of the profile's 10 ms
			// samples of the master at every size.
			k := intervals
			if *simScale != "" {
				k = max(intervals, 1000/n)
			}
			rs = append(rs, scaleRun(t, prof, n, warm, k))
		})
		if t.Failed() {
			return
		}
	}
	t.Log("\n" + scaleTable(rs))
	if *simScalePlot != "" {
		perTask := plot.Series{Name: "master CPU per task (µs)"}
		share := plot.Series{Name: "master CPU, % of a core (1 s intervals)", Right: true}
		for _, r := range rs {
			perTask.X, perTask.Y = append(perTask.X, float64(r.workers)), append(perTask.Y, float64(r.perTask(r.master).Nanoseconds())/1000)
			share.X, share.Y = append(share.X, float64(r.workers)), append(share.Y, r.coreShare())
		}
		writeChart(t, *simScalePlot, plot.Chart{
			Title:  fmt.Sprintf("The master as the cluster grows (simulation): N workers × %d slots, 8N map + %d reduce tasks per 1 s interval", scaleSlots, scaleReduce),
			XLabel: "workers (N)", YLabel: "µs per task", Y2Label: "% of a core", Series: []plot.Series{perTask, share}})
	}
	for _, r := range rs {
		// A smoke run (no -sim.scale) is too short for the profile's 10 ms
		// samples to catch any process reliably: it checks the counted
		// calls only (a run of the suite once saw no sample at all).
		if r.callsMade <= 0 || r.callsReceived <= 0 || *simScale != "" && r.workersCPU+r.master+r.other <= 0 {
			t.Errorf("%d workers: the measurement missed the master: %+v", r.workers, r)
		}
	}
}

// scaleTable is the figures as a Markdown table.
func scaleTable(rs []scaleResult) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| workers × slots | tasks per interval | master CPU per interval | per task | share of a core | workers' CPU per task | GC's per interval | master calls made / sent per interval | master MiB sent / received per interval | heap in use (MiB, all processes) | processing time (virtual) |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		iv := float64(r.intervals)
		fmt.Fprintf(&b, "| %d × %d | %d | %v | %v | %.1f%% | %v | %v | %.0f / %.0f | %.2f / %.2f | %.0f | %v |\n",
			r.workers, scaleSlots, r.tasks, r.perInterval(r.master).Round(10*time.Microsecond), r.perTask(r.master).Round(100*time.Nanosecond),
			r.coreShare(), r.perTask(r.workersCPU).Round(100*time.Nanosecond), r.perInterval(r.other).Round(10*time.Microsecond),
			float64(r.callsMade)/iv, float64(r.callsReceived)/iv,
			float64(r.bytesSent)/iv/(1<<20), float64(r.bytesReceived)/iv/(1<<20), r.heapMiB, r.processing.Round(100*time.Microsecond))
	}
	return b.String()
}

// cpuProfiler profiles the CPU on a goroutine outside any synctest bubble:
// pprof's writer goroutine waits in the runtime, which a bubble would take
// for a goroutine at work, and its virtual time would never advance.
type cpuProfiler struct {
	req  chan bool // true: start, false: stop
	done chan error
	buf  bytes.Buffer
}

func newCPUProfiler(t *testing.T) *cpuProfiler {
	p := &cpuProfiler{req: make(chan bool), done: make(chan error)}
	go func() {
		for start := range p.req {
			if start {
				p.buf.Reset()
				p.done <- pprof.StartCPUProfile(&p.buf)
			} else {
				pprof.StopCPUProfile()
				p.done <- nil
			}
		}
	}()
	t.Cleanup(func() { close(p.req) })
	return p
}

func (p *cpuProfiler) start() error {
	p.req <- true
	return <-p.done
}

// stop stops the profile and returns it.
func (p *cpuProfiler) stop() *bytes.Buffer {
	p.req <- false
	<-p.done
	return &p.buf
}

// Recovery from the loss of one of N workers: each worker's share of the
// work is fixed (recoveryTasks map tasks an interval, recoveryCost of
// virtual time each, on one slot: about 40% of each worker's time), and
// worker w1's host crashes recoveryAfter into interval recoveryInterval's
// map stage. What it computed of that interval is lost, what it was to
// compute is left, and the survivors take both over: the more workers,
// the less each takes (the paper's parallel recovery). The cost is the
// interval's processing time beyond the mean of the intervals before it.

var simRecoveryPlot = flag.String("sim.recovery.plot", "", "write TestSimulatedRecovery's figures as an SVG chart to this `file`")

var simRecovery = flag.String("sim.recovery", "", "worker counts for TestSimulatedRecovery, comma-separated (default: a 3-worker smoke run)")

const (
	recoveryTasks    = 40
	recoveryCost     = 10 * time.Millisecond
	recoveryReduce   = 8
	recoveryInterval = 4
	recoveryAfter    = 200 * time.Millisecond
)

// recoveryResult is one size's recovery.
type recoveryResult struct {
	workers int
	// normal is the mean processing time of the intervals before the loss;
	// hit is the processing time of the interval that lost the worker.
	normal, hit time.Duration
	// after is the processing time of the next interval (N-1 workers do
	// the work of N from then on).
	after time.Duration
}

// extra is what the loss cost its interval.
func (r recoveryResult) extra() time.Duration { return r.hit - r.normal }

func recoveryRun(t *testing.T, workers int) recoveryResult {
	t.Helper()
	job := scaleJob{parts: workers * recoveryTasks, reduce: recoveryReduce, cost: recoveryCost / 2} // two records a partition
	sc := startScale(t, workers, 1, job)
	defer sc.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc.await(t, ctx, recoveryInterval-1)
	time.Sleep(time.Until(sc.c.StartTime().Add(recoveryInterval*scaleBatch + recoveryAfter)))
	sc.cl.crash("w1")
	sc.await(t, ctx, recoveryInterval+1)
	sc.check(t, job, recoveryInterval+1)
	synctest.Wait() // the listener has heard of every interval done
	sc.mu.Lock()
	defer sc.mu.Unlock()
	r := recoveryResult{workers: workers}
	// The first interval runs while the workers join.
	before := sc.batches[1 : recoveryInterval-1]
	for _, b := range before {
		r.normal += b.ProcessingTime / time.Duration(len(before))
	}
	r.hit = sc.batches[recoveryInterval-1].ProcessingTime
	r.after = sc.batches[recoveryInterval].ProcessingTime
	return r
}

// TestSimulatedRecovery measures the recovery above at each size of
// -sim.recovery; by default, a small smoke run that checks the outputs.
func TestSimulatedRecovery(t *testing.T) {
	sizes := []int{3}
	if *simRecovery != "" {
		sizes = nil
		for f := range strings.SplitSeq(*simRecovery, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				t.Fatalf("-sim.recovery: bad worker count %q (at least 2)", f)
			}
			sizes = append(sizes, n)
		}
	}
	var rs []recoveryResult
	for _, n := range sizes {
		synctest.Test(t, func(t *testing.T) {
			rs = append(rs, recoveryRun(t, n))
		})
		if t.Failed() {
			return
		}
	}
	t.Log("\n" + recoveryTable(rs))
	if *simRecoveryPlot != "" {
		extra := plot.Series{Name: "cost of the loss: the interval's processing time beyond the normal (ms)"}
		normal := plot.Series{Name: "processing time of an interval before the loss (ms)"}
		for _, r := range rs {
			extra.X, extra.Y = append(extra.X, float64(r.workers)), append(extra.Y, float64(r.extra().Microseconds())/1000)
			normal.X, normal.Y = append(normal.X, float64(r.workers)), append(normal.Y, float64(r.normal.Microseconds())/1000)
		}
		writeChart(t, *simRecoveryPlot, plot.Chart{
			Title:  fmt.Sprintf("One of N workers lost mid-interval (simulation, virtual time): %d map tasks of %v per worker per interval, 1 s intervals", recoveryTasks, recoveryCost),
			XLabel: "workers (N)", YLabel: "ms", Series: []plot.Series{extra, normal}})
	}
}

// writeChart writes chart as SVG to file.
func writeChart(t *testing.T, file string, chart plot.Chart) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := chart.SVG(f); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

// recoveryTable is the figures as a Markdown table.
func recoveryTable(rs []recoveryResult) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| workers | map tasks per interval | processing time before (virtual) | the interval that lost w1 | cost of the loss | the next interval (N-1 workers) |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %d | %v | %v | %v | %v |\n", r.workers, r.workers*recoveryTasks, r.normal.Round(time.Millisecond),
			r.hit.Round(time.Millisecond), r.extra().Round(time.Millisecond), r.after.Round(time.Millisecond))
	}
	return b.String()
}
