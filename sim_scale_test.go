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
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/simnet"
	"github.com/google/pprof/profile"
)

// What the master costs as the cluster grows. A standalone master and N
// workers of 8 slots run in
// the simulation (sim_test.go: one process, the real engine and protocol
// over simnet, virtual time) a job of trivial tasks at 1 s intervals: a
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

var simScale = flag.String("sim.scale", "", "worker counts for TestSimulatedMasterScale, comma-separated (default: a 3-worker smoke run)")

// scaleBatch is the scale job's interval.
const scaleBatch = time.Second

// scaleSlots is each worker's task slots.
const scaleSlots = 8

// scaleReduce is the scale job's reduce partitions.
const scaleReduce = 8

// scaleGraph builds the scale job in any process: parts map partitions of
// two records each, counted by key into scaleReduce partitions. On the
// master, each interval's total goes to out.
func scaleGraph(c *Context, parts int, out *scaleOutputs) {
	gen := GeneratedStream(c, "gen", func(t time.Time) [][]int64 {
		k := t.UnixMilli() / scaleBatch.Milliseconds()
		ps := make([][]int64, parts)
		for i := range ps {
			ps[i] = []int64{k + int64(i), k + 2*int64(i)}
		}
		return ps
	})
	pairs := Map(gen, func(x int64) Pair[int64, int64] { return KV(x%64, int64(1)) })
	counts := ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, scaleReduce)
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

func (r scaleResult) perInterval(d time.Duration) time.Duration { return d / time.Duration(r.intervals) }

func (r scaleResult) perTask(d time.Duration) time.Duration {
	return d / time.Duration(r.tasks*r.intervals)
}

// coreShare is the master's CPU per second of virtual time, in percent of
// a core.
func (r scaleResult) coreShare() float64 {
	return 100 * r.master.Seconds() / (time.Duration(r.intervals) * scaleBatch).Seconds()
}

// scaleRun runs the scale job on a local-cluster[workers,8] for warm
// intervals, then measures intervals more. It must run inside a synctest
// bubble, and no other test may profile the CPU meanwhile.
func scaleRun(t *testing.T, prof *cpuProfiler, workers, warm, intervals int) scaleResult {
	t.Helper()
	parts := workers * scaleSlots
	out := &scaleOutputs{sum: map[int]int64{}, n: map[int]int{}}
	log := newRingLog(200)
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// 100 µs a write: a LAN, so that an interval's virtual processing time
	// counts its rounds of messages.
	lan := func(from, to string, k, n int) time.Duration { return 100 * time.Microsecond }
	net := simnet.New(simnet.Config{Latency: lan})
	// A standalone master that the workers join (local-cluster stops at
	// 64 processes: one machine's).
	cfg := Config{Master: "cluster", ClusterListen: "master:7077", Insecure: true, BatchInterval: scaleBatch,
		Logger: logger, Out: io.Discard}
	cl := &simCluster{net: net, cfg: cfg, log: logger, workers: map[string]*simWorker{}, calls: newSimCalls(),
		graph: func(c *Context) { scaleGraph(c, parts, nil) }}
	cfg.sim = &engine.Sim{Net: cl.host("master")}
	cl.spawned = cluster.SpawnConfig{Master: "master:7077", Slots: scaleSlots}
	var c *Context
	var err error
	var procMu sync.Mutex
	var processing []time.Duration
	pprof.Do(context.Background(), pprof.Labels("process", "master"), func(context.Context) {
		if c, err = NewContext(cfg); err != nil {
			return
		}
		scaleGraph(c, parts, out)
		c.AddListener(listener.Func(func(e listener.Event) {
			if b, ok := e.(listener.BatchCompleted); ok {
				procMu.Lock()
				processing = append(processing, b.Batch.ProcessingTime)
				procMu.Unlock()
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
		t.Fatal(err)
	}
	defer cl.stopAll()
	defer c.Stop(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(warm+intervals)*scaleBatch)
	defer cancel()
	if err := c.AwaitBatch(ctx, c.StartTime().Add(time.Duration(warm)*scaleBatch)); err != nil {
		t.Fatalf("interval %d: %v\n%s", warm, err, log)
	}
	sent0, recv0 := net.Traffic("master"), cl.calls
	made0, got0 := recv0.of("master")
	if err := prof.start(); err != nil {
		t.Fatal(err)
	}
	err = c.AwaitBatch(ctx, c.StartTime().Add(time.Duration(warm+intervals)*scaleBatch))
	cpu := prof.stop()
	if *simScaleProfile != "" {
		if err := os.WriteFile(*simScaleProfile, cpu.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
	if err != nil {
		t.Fatalf("interval %d: %v\n%s", warm+intervals, err, log)
	}
	tr := net.Traffic("master")
	made, got := cl.calls.of("master")
	r := scaleResult{workers: workers, tasks: parts + scaleReduce, intervals: intervals,
		callsMade: made - made0, callsReceived: got - got0,
		bytesSent: tr.BytesSent - sent0.BytesSent, bytesReceived: tr.BytesReceived - sent0.BytesReceived}
	r.master, r.workersCPU, r.other = cpuByProcess(t, cpu)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMiB = float64(ms.HeapInuse) / (1 << 20)
	procMu.Lock()
	for _, p := range processing[warm:min(len(processing), warm+intervals)] {
		r.processing += p / time.Duration(intervals)
	}
	procMu.Unlock()
	// Every interval's total is exact, output once.
	out.mu.Lock()
	defer out.mu.Unlock()
	for k := 1; k <= warm+intervals; k++ {
		if out.sum[k] != int64(2*parts) || out.n[k] != 1 {
			t.Errorf("interval %d: total %d output %d times, want %d once", k, out.sum[k], out.n[k], 2*parts)
		}
	}
	return r
}

// cpuByProcess sums a CPU profile's samples by the "process" label: the
// master's, the workers' (any other value), and unlabelled.
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
	for _, s := range p.Sample {
		d := time.Duration(s.Value[cpu])
		switch proc := s.Label["process"]; {
		case len(proc) == 0:
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
			rs = append(rs, scaleRun(t, prof, n, warm, intervals))
		})
		if t.Failed() {
			return
		}
	}
	t.Log("\n" + scaleTable(rs))
	for _, r := range rs {
		// (A smoke run is too short for the profile's 10 ms samples to
		// catch the master reliably.)
		if r.callsMade <= 0 || r.callsReceived <= 0 || r.workersCPU+r.master+r.other <= 0 {
			t.Errorf("%d workers: the measurement missed the master: %+v", r.workers, r)
		}
	}
}

// scaleTable is the figures as a Markdown table.
func scaleTable(rs []scaleResult) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| workers × slots | tasks per interval | master CPU per interval | per task | share of a core | workers' CPU per task | runtime's (GC) per interval | master calls made / sent per interval | master MiB sent / received per interval | heap in use (MiB, all processes) | processing time (virtual) |")
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
