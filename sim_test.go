package dstream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/simnet"
)

// The deterministic simulation of a cluster. A local-cluster[3] runs in one
// process inside a testing/synctest bubble: the master is a Context as in
// production, and its three workers are Contexts in the worker role, each
// on its own host of an in-memory network (package simnet), speaking the
// real gRPC protocol to each other. Time is the bubble's: it advances only
// when every goroutine waits, so a run of many seconds costs only its
// computation, and latencies, heartbeats, timeouts and checkpoints follow
// virtual time exactly.

// simBatch is the simulated job's interval.
const simBatch = 500 * time.Millisecond

// simGraph builds the simulated job in any process of it: a queue input
// (stored and replicated as blocks) and a generated one (rebuilt anywhere
// from the interval time), a shuffle, an incremental window, per-key state
// (checkpointed) and a plain window. Every interval of each is recorded in
// out (on the master: a worker runs no driver-side output).
func simGraph(c *Context, q *Queue[string], out *simOutputs) {
	add := func(a, b int64) int64 { return a + b }
	sub := func(a, b int64) int64 { return a - b }
	show := func(s *Stream[Pair[string, int64]]) *Stream[string] {
		return Map(s, func(p Pair[string, int64]) string { return fmt.Sprint(p.Key, "=", p.Value) })
	}
	gen := GeneratedStream(c, "gen", func(t time.Time) [][]string {
		k := t.UnixMilli() / simBatch.Milliseconds()
		parts := make([][]string, 3)
		for i := range parts {
			for j := range 4 + int(k%3) {
				parts[i] = append(parts[i], fmt.Sprintf("g%d", (k*7+int64(i*5+j))%11))
			}
		}
		return parts
	})
	words := Union(FlatMap(QueueStream(c, q), strings.Fields), gen)
	pairs := Map(words, func(w string) Pair[string, int64] { return KV(w, int64(1)) })
	outs := map[string]*Stream[string]{
		"reduceByKey": show(ReduceByKey(pairs, add, 3)),
		"window-inv":  show(ReduceByKeyAndWindowInv(pairs, add, sub, 3*simBatch, simBatch, 3, func(p Pair[string, int64]) bool { return p.Value > 0 })),
		"state": show(UpdateStateByKey(pairs, func(vs []int64, st Opt[int64]) Opt[int64] {
			return Some(st.Value + int64(len(vs)))
		}, 3)),
		"window": show(CountByValue(Window(words, 2*simBatch, simBatch), 2)),
	}
	outs["eventtime"] = simEventTime(c)
	for _, name := range slices.Sorted(maps.Keys(outs)) {
		ForeachRDD(outs[name], func(ctx context.Context, ds *rdd.Dataset[string], tm time.Time) error {
			recs, err := ds.Collect(ctx)
			if err != nil {
				return err
			}
			out.record(int(tm.Sub(c.StartTime())/simBatch), name, recs)
			return nil
		})
	}
}

// simEventTime is the simulated job's event-time part: a generated input
// (replayable, so a new master rebuilds it too) whose records carry event
// times out of order, most up to 360 ms behind their interval's end and
// one in ten 1.5-2.4 s behind, later than the watermark (300 ms behind the
// largest event time seen); counted per key in tumbling 1 s windows,
// appended as the watermark closes them. Its output is the windows and the
// late records, in ms after the zero.
func simEventTime(c *Context) *Stream[string] {
	const maxDelay = 300 * time.Millisecond
	type rec struct {
		Key string
		At  int64 // Unix ms
	}
	in := GeneratedStream(c, "events", func(t time.Time) [][]rec {
		k := t.UnixMilli() / simBatch.Milliseconds()
		parts := make([][]rec, 2)
		for i := range parts {
			for j := range 3 + int(k%2) {
				d := (k*31 + int64(i*7+j*13)) % 10
				behind := d * 40
				if d == 0 {
					behind = 1500 + (k*53+int64(j))%10*100
				}
				parts[i] = append(parts[i], rec{Key: fmt.Sprintf("e%d", (k+int64(i+j))%3), At: t.UnixMilli() - behind})
			}
		}
		return parts
	})
	ev := WithEventTime(in, func(r rec) time.Time { return time.UnixMilli(r.At) }, maxDelay)
	w := CountByEventWindow(ev, func(r rec) string { return r.Key }, TumblingWindows(2*simBatch), AppendMode, 2)
	zero := func() int64 { return c.StartTime().UnixMilli() }
	wins := Map(w.Stream, func(x Windowed[string, int64]) string {
		return fmt.Sprintf("%s[%d,%d)=%d", x.Key, x.Start.UnixMilli()-zero(), x.End.UnixMilli()-zero(), x.Value)
	})
	late := Map(w.Late(), func(e Event[rec]) string { return fmt.Sprintf("late:%s@%d", e.Value.Key, e.Value.At-zero()) })
	return Union(wins, late)
}

func newSimOutputs() *simOutputs {
	return &simOutputs{at: map[int]map[string]string{}, times: map[int]int{}}
}

// simInput is what the queue holds: one batch per interval.
func simInput(intervals int) [][]string {
	out := make([][]string, intervals)
	for i := range out {
		for j := range 6 + i%4 {
			out[i] = append(out[i], fmt.Sprintf("w%d w%d x%d", (i+j)%7, j%3, i%5))
		}
	}
	return out
}

// simOutputs are a run's outputs: per interval (numbered from 1), per
// stream, the sorted records; and how many times each interval was output.
type simOutputs struct {
	mu    sync.Mutex
	at    map[int]map[string]string
	times map[int]int
}

func (o *simOutputs) record(k int, name string, recs []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.at[k] == nil {
		o.at[k] = map[string]string{}
	}
	if _, ok := o.at[k][name]; ok {
		o.times[k]++ // output twice: a violation
	}
	slices.Sort(recs)
	o.at[k][name] = strings.Join(recs, " ")
}

// simRun is one simulated run's setup.
type simRun struct {
	master    string // "local[2]" for the reference, "local-cluster[3]" simulated
	intervals int
	faults    *simFaults // nil: no faults
	log       *ringLog
	dir       string // the simulated cluster's checkpoint folder (simDir); "" for none
	noQueue   bool   // leave the queue empty: the generated input alone
}

// simStandaloneWorkers is how many workers join a simulated standalone
// master (Master "cluster").
const simStandaloneWorkers = 3

// run runs the job for r.intervals intervals and returns its outputs. It
// must run inside a synctest bubble.
func (r simRun) run(t *testing.T) *simOutputs {
	t.Helper()
	out := newSimOutputs()
	logger := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{Master: r.master, BatchInterval: simBatch, CheckpointInterval: 3 * simBatch, Logger: logger, Out: io.Discard}
	net := simnet.New(simnet.Config{Latency: r.faults.latencyFunc()})
	var cl *simCluster
	if r.master != "local[2]" {
		// One checkpoint folder for every process, as a shared file system.
		cfg.CheckpointDir = r.dir
		cl = &simCluster{net: net, faults: r.faults, cfg: cfg, log: logger, workers: map[string]*simWorker{}}
		cfg.sim = &engine.Sim{Net: cl.host("master"), Spawn: cl.spawn, OpenStore: r.faults.openStore()}
		if r.master == "cluster" {
			cfg.ClusterListen, cfg.Insecure = "master:7077", true
		}
	}
	c, err := NewContext(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue[string]()
	for _, b := range simInput(r.intervals) {
		if !r.noQueue {
			q.Push(b...)
		}
	}
	simGraph(c, q, out)
	if err := c.Start(); err != nil {
		c.Stop(false)
		t.Fatal(err)
	}
	if r.master == "cluster" {
		// Workers join a standalone master by hand, from hosts of their own.
		cl.mu.Lock()
		cl.spawned = cluster.SpawnConfig{Master: "master:7077", Slots: 2}
		cl.mu.Unlock()
		for i := range simStandaloneWorkers {
			if err := cl.start(fmt.Sprintf("w%d", i+1)); err != nil {
				c.Stop(false)
				t.Fatal(err)
			}
		}
	}
	stop := make(chan struct{})
	if cl != nil && r.faults != nil {
		cl.inject(c.StartTime(), stop)
	}
	last := c.StartTime().Add(time.Duration(r.intervals) * simBatch)
	// Virtual time: a minute is far beyond any recovery.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(r.intervals)*simBatch)
	defer cancel()
	if err := c.AwaitBatch(ctx, last); err != nil {
		t.Errorf("interval %d never completed: %v", r.intervals, err)
	}
	close(stop)
	if err := c.Stop(false); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stop: %v", err)
	}
	if cl != nil {
		cl.stopAll()
	}
	return out
}

// simDir returns a new folder for a simulated cluster's checkpoints, one
// for all its processes, as a shared file system. The simulation loses no
// machine's page cache, so the checkpoint store's fsyncs guard nothing
// there, yet on a busy disk they are most of a seed's real time: the folder
// is on the RAM-backed /dev/shm when there is one. t must be the test
// outside the run's synctest bubble: it removes the folder once every
// goroutine of the bubble has ended, whereas the bubble's own cleanups run
// while a stopped worker may still finish a checkpoint write.
func simDir(t *testing.T) string {
	if dir, err := os.MkdirTemp("/dev/shm", "dstream-sim-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return t.TempDir()
}

// simCluster is a simulated cluster's workers: contexts in the worker
// role, one per host of the network.
type simCluster struct {
	net    *simnet.Network
	faults *simFaults
	cfg    Config
	log    *slog.Logger

	// graph builds the job in a worker's context (nil: simGraph's).
	graph func(c *Context)
	// calls, if set, counts every call between hosts.
	calls *simCalls

	mu      sync.Mutex
	spawned cluster.SpawnConfig
	workers map[string]*simWorker // by host
	wg      sync.WaitGroup
}

type simWorker struct {
	host string
	c    *Context
}

// host returns name's view of the network, with the simulation's message
// faults on its calls.
func (cl *simCluster) host(name string) cluster.Network {
	return simHost{Host: cl.net.Host(name), faults: cl.faults, calls: cl.calls}
}

// spawn is the master's way to start its local workers: contexts on hosts
// w1..wN.
func (cl *simCluster) spawn(sc cluster.SpawnConfig) (engine.WorkerProcs, error) {
	cl.mu.Lock()
	cl.spawned = sc
	cl.mu.Unlock()
	for i := range sc.N {
		if err := cl.start(fmt.Sprintf("w%d", i+1)); err != nil {
			cl.stopAll()
			return nil, err
		}
	}
	return simProcs{cl}, nil
}

// start starts a worker process on host.
func (cl *simCluster) start(host string) error {
	cl.mu.Lock()
	sc := cl.spawned
	cl.mu.Unlock()
	env := &cluster.WorkerEnv{Master: sc.Master, ID: "local-" + host, Slots: max(1, sc.Slots), Parallelism: sc.Parallelism,
		Secret: sc.Secret, Checkpoint: sc.Checkpoint}
	cfg := cl.cfg
	cfg.Logger = cl.log.With("process", host)
	cfg.sim = &engine.Sim{Net: cl.host(host), Worker: env, OpenStore: cl.faults.openStore()}
	var c *Context
	var err error
	// The worker's goroutines carry its host's name: a CPU profile of the
	// simulation tells the master's work from the workers' (sim_scale_test.go).
	pprof.Do(context.Background(), pprof.Labels("process", host), func(context.Context) {
		if c, err = NewContext(cfg); err != nil {
			return
		}
		if cl.graph != nil {
			cl.graph(c)
		} else {
			simGraph(c, NewQueue[string](), newSimOutputs())
		}
		if err = c.Start(); err != nil {
			c.Stop(false)
		}
	})
	if err != nil {
		return err
	}
	cl.mu.Lock()
	cl.workers[host] = &simWorker{host: host, c: c}
	cl.mu.Unlock()
	return nil
}

// crash kills host's worker: the network forgets it at once, and its
// context stops as a killed process would.
func (cl *simCluster) crash(host string) {
	cl.net.Crash(host)
	cl.mu.Lock()
	w := cl.workers[host]
	delete(cl.workers, host)
	cl.mu.Unlock()
	if w != nil {
		cl.wg.Add(1)
		go func() {
			defer cl.wg.Done()
			w.c.Stop(false)
		}()
	}
}

// restart starts a new worker process on a crashed host.
func (cl *simCluster) restart(host string) {
	cl.net.Restart(host)
	if err := cl.start(host); err != nil {
		cl.log.Warn("sim: worker did not restart", "host", host, "err", err)
	}
}

// stopAll stops every worker and waits for them.
func (cl *simCluster) stopAll() {
	cl.mu.Lock()
	ws := slices.Collect(maps.Values(cl.workers))
	cl.workers = map[string]*simWorker{}
	cl.mu.Unlock()
	for _, w := range ws {
		w.c.Stop(false)
	}
	cl.wg.Wait()
}

// simProcs are the master's handle on its simulated workers.
type simProcs struct{ cl *simCluster }

func (p simProcs) PIDs() []int { return nil }
func (p simProcs) Exited() (<-chan struct{}, func() error) {
	return nil, func() error { return nil }
}
func (p simProcs) Stop() { p.cl.stopAll() }

// ringLog keeps the last lines written to it: a failing seed's log.
type ringLog struct {
	mu    sync.Mutex
	lines []string
	next  int
}

func newRingLog(n int) *ringLog { return &ringLog{lines: make([]string, 0, n)} }

func (l *ringLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := string(b)
	if len(l.lines) < cap(l.lines) {
		l.lines = append(l.lines, s)
	} else {
		l.lines[l.next] = s
		l.next = (l.next + 1) % len(l.lines)
	}
	return len(b), nil
}

func (l *ringLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(append(slices.Clone(l.lines[l.next:]), l.lines[:l.next]...), "")
}

func TestSimulatedClusterWithoutFaults(t *testing.T) {
	const intervals = 10
	var want, got *simOutputs
	log := newRingLog(2000)
	synctest.Test(t, func(t *testing.T) {
		want = simRun{master: "local[2]", intervals: intervals, log: newRingLog(10)}.run(t)
	})
	dir := simDir(t)
	synctest.Test(t, func(t *testing.T) {
		got = simRun{master: "local-cluster[3]", intervals: intervals, log: log, dir: dir}.run(t)
	})
	if t.Failed() {
		t.Log(log)
		return
	}
	compareSim(t, want, got, intervals)
	if testing.Verbose() {
		t.Log(log)
	}
}

// TestSimulatedStandaloneWithoutCheckpointFolder runs the simulated job
// under a standalone master (Master "cluster") that three workers join from
// hosts of their own, with no checkpoint folder: nothing shared but the
// network, the default of `dstream demo --master cluster`.
func TestSimulatedStandaloneWithoutCheckpointFolder(t *testing.T) {
	const intervals = 10
	var want, got *simOutputs
	log := newRingLog(2000)
	synctest.Test(t, func(t *testing.T) {
		want = simRun{master: "local[2]", intervals: intervals, log: newRingLog(10)}.run(t)
	})
	synctest.Test(t, func(t *testing.T) {
		got = simRun{master: "cluster", intervals: intervals, log: log}.run(t)
	})
	if t.Failed() {
		t.Log(log)
		return
	}
	compareSim(t, want, got, intervals)
	if testing.Verbose() {
		t.Log(log)
	}
}

// simHangAfter is how long, in real time, a seed may run before
// watchBubble reports it hung: seeds take seconds.
const simHangAfter = 4 * time.Minute

// watchBubble reports a simulation that hangs, before the test binary's
// timeout buries the cause under every goroutine's stack: a bubble whose
// virtual time cannot advance because a goroutine in it waits without being
// durably blocked (a sync.Mutex held by one durably blocked), or a goroutine
// that spins. It prints the goroutines of every bubble that are not durably
// blocked, then exits the test binary.
func watchBubble(name string) *time.Timer {
	return time.AfterFunc(simHangAfter, func() {
		buf := make([]byte, 64<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var b strings.Builder
		fmt.Fprintf(&b, "\n%s still running after %v of real time: a hang. Goroutines of bubbles not durably blocked:\n\n", name, simHangAfter)
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if strings.Contains(head, "synctest bubble") && !strings.Contains(head, "durable") {
				b.WriteString(g + "\n\n")
			}
		}
		fmt.Fprint(os.Stderr, b.String())
		os.Exit(3)
	})
}

// compareSim reports every interval whose output differs from want's, is
// missing or was output more than once.
func compareSim(t *testing.T, want, got *simOutputs, intervals int) {
	t.Helper()
	for k := 1; k <= intervals; k++ {
		if got.times[k] > 0 {
			t.Errorf("interval %d was output %d more times", k, got.times[k])
		}
		for _, name := range slices.Sorted(maps.Keys(want.at[k])) {
			if g, w := got.at[k][name], want.at[k][name]; g != w {
				t.Errorf("interval %d %s:\n got %s\nwant %s", k, name, g, w)
			}
		}
		if len(want.at[k]) == 0 {
			t.Errorf("the reference has no output for interval %d", k)
		}
	}
}

var (
	simSeeds = flag.Int("sim.seeds", 0, "seeds the cluster simulation runs (0: 20; with DSTREAM_LONG=1, 200, or 14 with -race)")
	simSeed  = flag.Uint64("sim.seed", 0, "run the cluster simulation with this seed only (a failure's)")
	simFirst = flag.Uint64("sim.first", 1, "the first of the seeds the cluster simulation runs")
)

// TestSimulatedClusterFaults runs the simulated cluster under many seeds'
// faults: workers crash and restart, links partition and heal,
// connections reset, calls lose their request or their response or arrive
// twice, one host's links are slow. Every interval's output must equal the
// fault-free run's, exactly once. A failing seed prints its schedule and the
// end of its log; -sim.seed=N runs it alone.
func TestSimulatedClusterFaults(t *testing.T) {
	const intervals = 14
	var want, wantGen *simOutputs
	synctest.Test(t, func(t *testing.T) {
		want = simRun{master: "local[2]", intervals: intervals, log: newRingLog(10)}.run(t)
	})
	synctest.Test(t, func(t *testing.T) {
		wantGen = simRun{master: "local[2]", intervals: intervals, log: newRingLog(10), noQueue: true}.run(t)
	})
	seeds := []uint64{*simSeed}
	if *simSeed == 0 {
		n := *simSeeds
		if n == 0 {
			switch {
			case !longTests():
				n = 20
			case raceDetector:
				n = 14 // CI runs 60 more without -race (.ci/run)
			default:
				n = 200
			}
		}
		seeds = seeds[:0]
		for s := range uint64(n) {
			seeds = append(seeds, *simFirst+s)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel() // each seed is a cluster of its own, in a bubble of its own
			faults := newSimFaults(seed, intervals*simBatch)
			log := newRingLog(3000)
			dir := simDir(t)
			defer watchBubble(fmt.Sprint("seed=", seed)).Stop()
			var got *simOutputs
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("faults: %s\nthe log's end:\n%s", faults, log)
					}
				}()
				if simFailsOver(seed) {
					first, second, completed := simFailover(t, intervals, faults.masterCrash, 0, faults, log, dir)
					if !t.Failed() {
						compareFailover(t, wantGen, first, second, completed, intervals)
					}
					return
				}
				got = simRunFor(seed, intervals, faults, log, dir).run(t)
				if !t.Failed() {
					compareSim(t, want, got, intervals)
				}
			})
		})
	}
}

// simRunFor is seed's run: one seed in four runs a standalone master with
// no checkpoint folder (its checkpoints go to the master, through the
// network's faults), the others local-cluster[3] with a folder the
// processes share.
// simFailsOver reports whether seed's run is a standalone master with a
// standby whose host crashes (sim_failover_test.go): one seed in eight.
func simFailsOver(seed uint64) bool { return seed%8 == 2 }

func simRunFor(seed uint64, intervals int, faults *simFaults, log *ringLog, dir string) simRun {
	if seed%4 == 0 {
		return simRun{master: "cluster", intervals: intervals, faults: faults, log: log}
	}
	return simRun{master: "local-cluster[3]", intervals: intervals, faults: faults, log: log, dir: dir}
}

// TestSimulatedClusterScenarios runs fixed schedules, each a fault the
// seeds found or one the design names.
func TestSimulatedClusterScenarios(t *testing.T) {
	const intervals = 14
	var want *simOutputs
	synctest.Test(t, func(t *testing.T) {
		want = simRun{master: "local[2]", intervals: intervals, log: newRingLog(10)}.run(t)
	})
	for _, sc := range []struct {
		name   string
		events []simEvent
	}{
		// Every input block has two copies; the second loss comes after the
		// master declared the first (by the heartbeat timeout at the
		// latest) and kept a copy of what that worker held.
		{"two workers lost one after the other", []simEvent{
			{at: 1100 * time.Millisecond, kind: "crash", a: "w1", for_: 6 * time.Second},
			{at: 3400 * time.Millisecond, kind: "crash", a: "w2", for_: 3 * time.Second},
		}},
		// Cut off longer than the heartbeat timeout: lost, then back under
		// the same address, as a new registration.
		{"a worker cut off from the master for 3 s", []simEvent{
			{at: 1 * time.Second, kind: "partition", a: "master", b: "w2", for_: 3 * time.Second},
		}},
		// Fetches between the workers stall, then resume.
		{"two workers cut off from each other", []simEvent{
			{at: 800 * time.Millisecond, kind: "partition", a: "w1", b: "w3", for_: 2 * time.Second},
		}},
		{"connections reset everywhere", []simEvent{
			{at: 900 * time.Millisecond, kind: "reset", a: "master", b: "w1"},
			{at: 900 * time.Millisecond, kind: "reset", a: "w2", b: "w1"},
			{at: 1700 * time.Millisecond, kind: "reset", a: "master", b: "w3"},
			{at: 2300 * time.Millisecond, kind: "reset", a: "w2", b: "w3"},
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			faults := &simFaults{events: sc.events, sent: map[string]int{}}
			log := newRingLog(3000)
			dir := simDir(t)
			defer watchBubble(sc.name).Stop()
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("faults: %s\nthe log's end:\n%s", faults, log)
					}
				}()
				got := simRun{master: "local-cluster[3]", intervals: intervals, faults: faults, log: log, dir: dir}.run(t)
				if !t.Failed() {
					compareSim(t, want, got, intervals)
				}
			})
		})
	}
}
