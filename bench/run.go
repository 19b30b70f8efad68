package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/program"
	"github.com/dstream/dstream/source"
)

// Config is one benchmark run.
type Config struct {
	Workload string
	Batch    time.Duration
	Master   string        // local[N]; default local[2]
	Duration time.Duration // bounds the whole run, search included; default 60 s
	Source   string        // "memory" (the engine alone) or "socket" (through the client and a socket receiver)
	Window   time.Duration // default 30 s
	Memory   int64         // the engine's memory budget (dstream.Config.MemoryBytes); default 1 GiB
	Progress io.Writer     // progress lines; nil for none
	// WorkerArgs, for a local-cluster master, returns the arguments that
	// make this program build, as a worker, the graph of a run at n
	// records an interval from source (see Serve), or, when rates is not
	// "", at the records per interval the schedule file rates names (the
	// capacity search's one cluster, whose rate changes from probe to
	// probe; Config.Rates).
	WorkerArgs func(n int, source, rates string) []string
	// Rates is, for a worker (Serve), the schedule file of the capacity
	// search it serves: the records of each interval, which the master
	// writes before the interval is cut; "" for a fixed n.
	Rates string
	// Checkpoint, if set, is a folder under which every context of the run
	// (each step of the search, the latency run) checkpoints in a new
	// folder of its own, with LeaseTTL (dstream.Config.LeaseTTL: a master
	// with a checkpoint location holds its lease unless it is negative):
	// what checkpointing, or the lease, costs. Only local[N].
	Checkpoint string
	LeaseTTL   time.Duration
	// Rate, if positive, is a fixed input rate (records per second): no
	// baseline and no search, one real-time run at Rate for --duration,
	// for latency at a given rate (the Result's latency, Sustained and
	// RecordsPerSec are of that run).
	Rate float64
}

// Result is what a run measured. JSON names are part of the CLI's contract.
type Result struct {
	Workload             string  `json:"workload"`
	Master               string  `json:"master"`
	Source               string  `json:"source"`
	BatchMs              int64   `json:"batch_ms"`
	WindowMs             int64   `json:"window_ms"`
	Cores                int     `json:"cores"`
	CPU                  string  `json:"cpu"`
	RecordsPerSec        float64 `json:"records_per_sec"`
	RecordsPerSecPerCore float64 `json:"records_per_sec_per_core"`
	BaselineRecordsPer   float64 `json:"baseline_records_per_sec"`       // the faster of the two below
	BaselineStart        float64 `json:"baseline_start_records_per_sec"` // measured before the engine
	BaselineEnd          float64 `json:"baseline_end_records_per_sec"`   // and again after it
	Ratio                float64 `json:"ratio"`
	P50LatencyMs         float64 `json:"p50_latency_ms"`
	P99LatencyMs         float64 `json:"p99_latency_ms"`
	MaxSchedDelayMs      float64 `json:"max_scheduling_delay_ms"`
	HalfRateP50Ms        float64 `json:"half_rate_p50_latency_ms,omitempty"`
	HalfRateP99Ms        float64 `json:"half_rate_p99_latency_ms,omitempty"`
	CapacityRecordsPer   float64 `json:"capacity_records_per_sec"`
	ValidatedIntervals   int     `json:"validated_intervals"`
	Sustained            bool    `json:"sustained"`
	WindowFilled         bool    `json:"window_filled"`
	Probes               int     `json:"probes"`
}

func (c *Config) defaults() error {
	if _, ok := Workloads[c.Workload]; !ok {
		return fmt.Errorf("unknown workload %q (workloads: %v)", c.Workload, Names())
	}
	if c.Batch <= 0 {
		c.Batch = time.Second
	}
	if c.Master == "" {
		c.Master = "local[2]"
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.Source == "" {
		c.Source = "memory"
	}
	if c.Source != "memory" && c.Source != "socket" {
		return fmt.Errorf("--source %q: want memory or socket", c.Source)
	}
	if c.Window <= 0 {
		c.Window = Window
	}
	if c.Window%c.Batch != 0 {
		return fmt.Errorf("window %v is not a multiple of the batch %v", c.Window, c.Batch)
	}
	return nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Run measures one workload: the baseline, the engine's capacity (a search
// on a manual clock, intervals back to back), then a real-time run at that
// rate for latency and steady scheduling delay, backing off if it falls behind.
func Run(cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	w := Workloads[cfg.Workload]
	deadline := time.Now().Add(cfg.Duration)
	probeCtx, err := dstream.NewContext(dstream.Config{Master: cfg.Master})
	if err != nil {
		return Result{}, err
	}
	defer probeCtx.Stop(false)
	cores := probeCtx.Datasets().Parallelism()
	res := Result{Workload: w.Name, Master: cfg.Master, Source: cfg.Source, BatchMs: cfg.Batch.Milliseconds(), WindowMs: cfg.Window.Milliseconds(),
		Cores: cores, CPU: cpuModel()}
	pool := NewPool(1 << 20)
	windowIntervals := int(cfg.Window / cfg.Batch)
	if cfg.Rate > 0 {
		return fixedRate(w, cfg, pool, res)
	}

	// 1. The baseline on the same records, at 100k records per second.
	// It is measured again at the end and the faster figure kept, so a
	// slow phase of the machine during one of them does not flatter the
	// engine.
	res.BaselineStart = baseline(w, cfg, pool, int(100_000*cfg.Batch.Seconds()), windowIntervals)
	res.BaselineRecordsPer = res.BaselineStart

	// 2. Capacity: the records per interval the engine processes within
	// 90% of the interval, intervals fed back to back on a manual clock.
	// Each probe fills the window's state for up to 3 intervals (the state
	// of 100-byte word records saturates within a few intervals) and
	// measures 3. The search starts where every core would run at the
	// baseline's speed and aims each next probe by the last one's rate
	// (searchCapacity).
	fill := min(windowIntervals, 3)
	if w.Name == "grep" {
		fill = 1
	}
	searchEnd := time.Now().Add(cfg.Duration * 40 / 100)
	var lastN int
	var lastTook time.Duration     // the last probe's whole run, for the budget
	var lastInterval time.Duration // and its median interval
	// affordable reports whether a probe of n records per interval is
	// expected to end within the search's share of the budget.
	affordable := func(n int) bool {
		if lastN == 0 {
			return time.Now().Before(searchEnd)
		}
		return time.Now().Add(lastTook * time.Duration(n) / time.Duration(lastN)).Before(searchEnd)
	}
	var searchErr error
	// One context serves every probe (startSearch): only the input rate
	// changes between probes, and each probe measures after its own
	// warm-up, so a deployment's start-up (a cluster's processes) is paid
	// once rather than by every probe.
	guess := int(res.BaselineRecordsPer * float64(cores) * cfg.Batch.Seconds())
	search, err := startSearch(w, cfg, pool, max(guess, 1000))
	if err != nil {
		return res, err
	}
	sustains := func(n int) time.Duration {
		res.Probes++
		began := time.Now()
		took, err := search.probe(n, fill, 3)
		lastN, lastTook, lastInterval = n, time.Since(began), took
		if err != nil {
			searchErr = err
			return 0
		}
		cfg.logf("  probe %-9s %9.0f records/s: median interval %v of %v -> %v", w.Name, rate(n, cfg.Batch), took.Round(time.Millisecond), cfg.Batch, map[bool]string{true: "keeps up", false: "falls behind"}[took <= cfg.Batch*9/10])
		return took
	}
	lo, hi := searchCapacity(guess, cfg.Batch*9/10, affordable, sustains)
	search.stop()
	if err := searchErr; err != nil {
		return res, err
	}
	if lo == 0 && lastInterval > 0 {
		// Nothing kept up before the budget ran out: start the real-time
		// run a little under the last probe's rate, which it then checks.
		lo = int(float64(lastN) * float64(cfg.Batch*9/10) / float64(lastInterval) * 0.9)
	}
	if lo == 0 {
		lo = max(100, hi/8)
	}
	res.CapacityRecordsPer = rate(lo, cfg.Batch)

	// 3. Real time at the capacity, backing off by 10% while it falls
	// behind; once a rate is sustained, halfway back up towards the lowest
	// rate that fell behind while the budget allows (nextAttempt).
	n, found, failedAt := lo, 0, hi
	// What the half-rate run and the closing baseline need.
	reserve := 22*cfg.Batch + 4*time.Second
	for attempt := 0; ; attempt++ {
		left := time.Until(deadline)
		// Enough to fill the window past the warm-up (judge).
		want := windowIntervals + 8
		if w.Name == "grep" {
			want = 12
		}
		// Leave room for a second, slower attempt and the half-rate run
		// (the first attempt may take more: it might be the only one).
		share := time.Duration(45)
		if attempt == 0 {
			share = 60
		}
		intervals := min(want, int(left*share/100/cfg.Batch)-2)
		if found > 0 {
			// A refinement runs as long as a full attempt, so its
			// figures compare, and only if the rest still fits.
			if time.Duration(want+2)*cfg.Batch+reserve > left {
				break
			}
			intervals = want
		}
		if intervals < 3 {
			if attempt == 0 {
				return res, fmt.Errorf("--duration %v leaves no time to run at the found rate; give more", cfg.Duration)
			}
			break
		}
		v, err := realtime(w, cfg, pool, n, intervals)
		if err != nil {
			return res, err
		}
		kept := v.keptUp && (cfg.Source == "memory" || v.received >= int64(n)*int64(intervals)*9/10)
		cfg.logf("  real time %9.0f records/s for %d intervals: p50 %.0f ms, p99 %.0f ms, max scheduling delay %.0f ms -> %s",
			rate(n, cfg.Batch), intervals, v.p50, v.p99, v.maxSched, map[bool]string{true: "sustained", false: "behind"}[kept])
		if kept || found == 0 {
			// The figures of the fastest sustained run, or of the
			// last attempt while none is.
			res.RecordsPerSec = rate(n, cfg.Batch)
			res.P50LatencyMs, res.P99LatencyMs = v.p50, v.p99
			res.MaxSchedDelayMs = v.maxSched
			res.ValidatedIntervals = v.measured
			res.WindowFilled = intervals > windowIntervals || w.Name == "grep"
		}
		cameIn := 0 // through a socket, what the client and receiver carried an interval
		if cfg.Source == "socket" && v.completed > 0 {
			// Per completed interval: a run cut short completed fewer
			// than it was given.
			cameIn = int(v.received / int64(v.completed))
		}
		if kept {
			res.Sustained, found = true, n
		} else {
			// What fell behind: n, or through a socket at most what
			// came in, the most the path carried.
			bad := n
			if cameIn > 0 {
				bad = min(bad, cameIn)
			}
			if failedAt == 0 || bad < failedAt {
				failedAt = bad
			}
		}
		if n = nextAttempt(n, found, failedAt, cameIn); n == 0 {
			break
		}
	}
	if found > 0 {
		n = found
	}
	// 4. Latency at half the sustained rate, if the budget allows.
	if left := time.Until(deadline); res.Sustained && left > 4*cfg.Batch {
		intervals := min(20, int(left/cfg.Batch)-2)
		if v, err := realtime(w, cfg, pool, n/2, intervals); err == nil {
			res.HalfRateP50Ms, res.HalfRateP99Ms = v.p50, v.p99
			cfg.logf("  real time %9.0f records/s (half) for %d intervals: p50 %.0f ms, p99 %.0f ms", rate(n/2, cfg.Batch), intervals, v.p50, v.p99)
		}
	}
	res.RecordsPerSecPerCore = res.RecordsPerSec / float64(cores)
	res.BaselineEnd = baseline(w, cfg, pool, int(100_000*cfg.Batch.Seconds()), windowIntervals)
	res.BaselineRecordsPer = max(res.BaselineStart, res.BaselineEnd)
	if res.BaselineRecordsPer > 0 {
		res.Ratio = res.RecordsPerSec / res.BaselineRecordsPer
	}
	return res, nil
}

// fixedRate is Run at cfg.Rate: one real-time run for the whole duration
// (less a second for the start), its figures in res.
func fixedRate(w Workload, cfg Config, pool *Pool, res Result) (Result, error) {
	n := max(1, int(math.Round(cfg.Rate*cfg.Batch.Seconds())))
	intervals := int((cfg.Duration - time.Second) / cfg.Batch)
	if intervals < 3 {
		return res, fmt.Errorf("--duration %v holds fewer than 3 intervals of %v after the start; give more", cfg.Duration, cfg.Batch)
	}
	v, err := realtime(w, cfg, pool, n, intervals)
	if err != nil {
		return res, err
	}
	res.RecordsPerSec = rate(n, cfg.Batch)
	res.RecordsPerSecPerCore = res.RecordsPerSec / float64(res.Cores)
	res.P50LatencyMs, res.P99LatencyMs, res.MaxSchedDelayMs = v.p50, v.p99, v.maxSched
	res.ValidatedIntervals = v.measured
	res.Sustained = v.keptUp && (cfg.Source == "memory" || v.received >= int64(n)*int64(intervals)*9/10)
	res.WindowFilled = intervals > int(cfg.Window/cfg.Batch) || w.Name == "grep"
	cfg.logf("  real time %9.0f records/s for %d intervals: p50 %.0f ms, p99 %.0f ms, max scheduling delay %.0f ms -> %s",
		res.RecordsPerSec, intervals, v.p50, v.p99, v.maxSched, map[bool]string{true: "sustained", false: "behind"}[res.Sustained])
	return res, nil
}

// nextAttempt returns the rate of the real-time run after one at n, or 0 to
// stop. Until a rate is sustained (found is 0) it backs off by 10%, or
// through a socket that carried less than 90% of n (cameIn records an
// interval) to a little under what came in. Once found is sustained it tries
// halfway up to failedAt, the lowest rate known to fall behind (0: none),
// while that is more than 2% above found.
func nextAttempt(n, found, failedAt, cameIn int) int {
	if found > 0 {
		if failedAt == 0 {
			return 0
		}
		mid := found + (failedAt-found)/2
		if mid <= found*102/100 {
			return 0
		}
		return mid
	}
	if cameIn > 0 && cameIn < n*9/10 {
		return max(100, min(n*8/10, cameIn*95/100))
	}
	return max(100, n*9/10)
}

// searchCapacity finds the largest n whose probe takes at most target. It
// starts at guess. Processing time grows about linearly with n, so until a
// probe has kept up and one has fallen behind it aims where the last probe's
// rate would just meet the target; then it interpolates between the two ends
// of the bracket [lo, hi) (what is known to keep up and to fall behind),
// nudged 1% past the estimate so the next probe can close the bracket, and
// bisects when the last probe did not halve the bracket. It stops when the
// bracket is within 3%, after 8 probes, when the next probe is not
// affordable, or when probe fails (returns 0). hi is 0 if no probe fell
// behind.
func searchCapacity(guess int, target time.Duration, affordable func(n int) bool, probe func(n int) time.Duration) (lo, hi int) {
	var tLo, tHi time.Duration
	n := max(guess, 1000)
	halved := true
	for range 8 {
		if !affordable(n) {
			break
		}
		took := probe(n)
		if took <= 0 {
			return lo, hi
		}
		bracketed, width := lo > 0 && hi > 0, hi-lo
		if took <= target {
			lo, tLo = max(lo, n), took
		} else if hi == 0 || n < hi {
			hi, tHi = n, took
		}
		if hi > 0 && hi-lo <= max(lo*3/100, 100) {
			break
		}
		if bracketed {
			halved = hi-lo <= width/2
		}
		// The estimate: where time would meet the target.
		var est float64
		if lo > 0 && hi > 0 && tHi > tLo {
			est = float64(lo) + float64(hi-lo)*float64(target-tLo)/float64(tHi-tLo)
		} else {
			est = float64(n) * float64(target) / float64(took)
		}
		if took <= target {
			est *= 1.01
		} else {
			est *= 0.99
		}
		switch {
		case hi == 0: // nothing fell behind yet: grow by at least 10%
			n = max(int(est), lo*11/10)
		case lo == 0: // nothing kept up yet
			n = min(int(est), hi*99/100)
		case !halved || int(est) <= lo || int(est) >= hi:
			n = lo + (hi-lo)/2
			halved = true // give the estimate another chance next
		default:
			n = int(est)
		}
		n = max(n, 100)
	}
	return lo, hi
}

func rate(perInterval int, batch time.Duration) float64 {
	return float64(perInterval) / batch.Seconds()
}

// searchRun is the capacity search's one context: a workload on a manual
// clock whose records per interval follow a schedule the search sets before
// each probe.
type searchRun struct {
	*manualRun
	rates *rates
	dir   string // the schedule file's folder; "" in local[N]
}

// startSearch starts the search's context at n records an interval. A
// local-cluster master writes the schedule to a file in a new temporary
// folder its workers read (Config.Rates), removed by stop.
func startSearch(w Workload, cfg Config, pool *Pool, n int) (*searchRun, error) {
	s := &searchRun{}
	if cfg.WorkerArgs != nil {
		dir, err := os.MkdirTemp("", "dstream-bench-rates-")
		if err != nil {
			return nil, err
		}
		s.dir = dir
	}
	r, err := newRates(s.dir, n)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.rates = r
	var path string
	if s.dir != "" {
		path = r.path
	}
	s.manualRun, err = startManualWith(w, cfg, pool, r.at, cfg.workerArgs(n, "memory", path))
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// probe runs fill+measure intervals of n records back to back on the
// search's context and returns the median measured interval's processing
// time (a search step, so one hiccup of the machine should not steer it;
// the real-time run that follows holds every interval to the interval). The
// fill intervals are the warm-up at the new rate: the window's state, the
// combiners and the heap grow to it. An interval, warm-up or measured, over
// 3 times the target (90% of the interval) ends the probe at once with its
// time: the rate falls plainly behind, and the search's budget is better
// spent on the next probe, aimed by that time.
func (s *searchRun) probe(n, fill, measure int) (time.Duration, error) {
	if err := s.rates.set(int64(s.i)+1, n); err != nil {
		return 0, err
	}
	plainlyBehind := 3 * s.cfg.Batch * 9 / 10
	var took []time.Duration
	for k := range fill + measure {
		start := time.Now()
		if err := s.next(); err != nil {
			return 0, err
		}
		t := time.Since(start)
		if t > plainlyBehind {
			return t, nil
		}
		if k >= fill {
			took = append(took, t)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}

// stop stops the context and removes the schedule's folder.
func (s *searchRun) stop() {
	if s.manualRun != nil {
		_ = s.ctx.Stop(false)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// manualRun is a workload started on a manual clock with n records an
// interval, run one interval at a time by next.
type manualRun struct {
	ctx *dstream.Context
	clk *clock.Manual
	cfg Config
	i   int // intervals run
}

func startManual(w Workload, cfg Config, pool *Pool, n int) (*manualRun, error) {
	return startManualWith(w, cfg, pool, func(int64) int { return n }, cfg.workerArgs(n, "memory", ""))
}

// startManualWith starts a workload on a manual clock whose interval k takes
// count(k) records, its workers (local-cluster) started with workerArgs.
func startManualWith(w Workload, cfg Config, pool *Pool, count func(k int64) int, workerArgs []string) (*manualRun, error) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	dc, err := cfg.checkpointed(dstream.Config{Master: cfg.Master, BatchInterval: cfg.Batch, MemoryBytes: cfg.Memory, Clock: clk, Logger: quiet, WorkerArgs: workerArgs})
	if err != nil {
		return nil, err
	}
	ctx, err := dstream.NewContext(dc)
	if err != nil {
		return nil, err
	}
	in, _ := input(ctx, Config{Batch: cfg.Batch, Source: "memory"}, pool, count)
	w.Build(in, cfg.Window, func(time.Time, int64) {})
	if err := ctx.Start(); err != nil {
		_ = ctx.Stop(false)
		return nil, err
	}
	return &manualRun{ctx: ctx, clk: clk, cfg: cfg}, nil
}

// next advances the clock by one interval and waits for it to be processed.
func (m *manualRun) next() error {
	m.i++
	m.clk.Advance(m.cfg.Batch)
	return m.ctx.AwaitBatch(context.Background(), m.ctx.StartTime().Add(time.Duration(m.i)*m.cfg.Batch))
}

// baseline times the hand-written loop over the same interval sizes, after
// filling its window, and returns records per second of its median interval.
func baseline(w Workload, cfg Config, pool *Pool, n, windowIntervals int) float64 {
	n = max(n, 10_000)
	fn := w.Baseline(cfg.Window, cfg.Batch)
	fill := windowIntervals
	if w.Name == "grep" {
		fill = 0
	}
	var sink int64
	for k := range fill {
		sink += fn(pool.Interval(int64(k), n, 1))
	}
	// At least 5 intervals and a second of work; the median interval's
	// rate, so a hiccup of the machine does not decide the ratio.
	var rates []float64
	var busy time.Duration
	for k := 0; k < 200 && (k < 5 || busy < time.Second); k++ {
		recs := pool.Interval(int64(fill+k), n, 1)
		start := time.Now()
		sink += fn(recs)
		took := time.Since(start)
		busy += took
		rates = append(rates, float64(n)/took.Seconds())
	}
	_ = sink
	slices.Sort(rates)
	return rates[len(rates)/2]
}

type realtimeResult struct {
	p50, p99, maxSched float64
	keptUp             bool
	received           int64 // records in every completed interval
	completed          int   // intervals completed
	measured           int   // intervals measured (warm-up and the last left out)
}

// realtime runs intervals of n records on the wall clock and measures latency
// from arrival (spread evenly over each interval) to the interval's output.
func realtime(w Workload, cfg Config, pool *Pool, n, intervals int) (realtimeResult, error) {
	var r realtimeResult
	dc, err := cfg.checkpointed(dstream.Config{Master: cfg.Master, BatchInterval: cfg.Batch, MemoryBytes: cfg.Memory, Logger: quiet, WorkerArgs: cfg.workerArgs(n, cfg.Source, "")})
	if err != nil {
		return r, err
	}
	ctx, err := dstream.NewContext(dc)
	if err != nil {
		return r, err
	}
	in, sock := input(ctx, cfg, pool, func(int64) int { return n })
	var mu sync.Mutex
	var batches []listener.BatchInfo
	// A run that is plainly behind (a backlog of several intervals after
	// the warm-up) is cut short: its verdict is known, and the budget is
	// better spent on the next, slower attempt.
	behind := make(chan struct{})
	var once sync.Once
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			mu.Lock()
			batches = append(batches, c.Batch)
			if len(batches) > 5 && c.Batch.SchedulingDelay > 3*cfg.Batch {
				once.Do(func() { close(behind) })
			}
			mu.Unlock()
		}
	}))
	w.Build(in, cfg.Window, func(time.Time, int64) {})
	if err := ctx.Start(); err != nil {
		return r, err
	}
	runFor := time.Duration(intervals) * cfg.Batch
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	var sendErr error
	var wg sync.WaitGroup
	if sock != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, sendErr = client.Send(sendCtx, client.Options{To: sock.Addr().String(), Generate: "records100", Seed: 1,
				Rate: int(rate(n, cfg.Batch)), Duration: runFor, Logger: quiet})
		}()
	}
	timer := time.NewTimer(runFor)
	defer timer.Stop()
	cut := false
	select {
	case <-timer.C:
		// Still several intervals from done at the end: behind too.
		mu.Lock()
		cut = len(batches) < intervals-3
		mu.Unlock()
	case <-behind:
		cut = true
	}
	if cut {
		cancelSend()
	}
	wg.Wait()
	// A cut run stops at once rather than drain its backlog.
	if err := ctx.Stop(!cut); err != nil {
		return r, err
	}
	if sendErr != nil && !cut {
		return r, sendErr
	}
	mu.Lock()
	defer mu.Unlock()
	r = judge(batches, cfg.Batch)
	switch {
	case cut:
		// Behind, whatever completed (perhaps nothing): back off.
		r.keptUp = false
	case r.measured == 0:
		return r, fmt.Errorf("no interval completed in %v", runFor)
	}
	return r, nil
}

// judge measures a real-time run from its intervals' figures. The first
// intervals warm up (caches, the heap and the combiners grow; at most 5, a
// fifth of the run) and the last one (cut by the stop) is not steady state:
// neither counts for latency or for keeping up. The run kept up if every
// measured interval was processed within the interval and the scheduling
// delay at the end is under one interval: processing within the interval
// means the delay never grows, and a backlog left by the warm-up has drained.
// Latency runs from arrival, spread evenly over the interval (a steady
// source), to the end of the interval's jobs.
func judge(batches []listener.BatchInfo, batch time.Duration) realtimeResult {
	var r realtimeResult
	for _, b := range batches {
		r.received += b.Records
		r.completed++
	}
	warm := min(5, len(batches)/5)
	measured := batches[min(warm, len(batches)):max(warm, len(batches)-1)]
	r.measured = len(measured)
	if r.measured == 0 {
		return r
	}
	var lat []float64
	r.keptUp = measured[len(measured)-1].SchedulingDelay < batch
	for _, b := range measured {
		r.maxSched = max(r.maxSched, float64(b.SchedulingDelay.Microseconds())/1000)
		if b.ProcessingTime > batch {
			r.keptUp = false
		}
		const samples = 100
		for s := range samples {
			arrival := b.Time.Add(-batch + time.Duration(float64(batch)*(float64(s)+0.5)/samples))
			lat = append(lat, float64(b.EndTime.Sub(arrival).Microseconds())/1000)
		}
	}
	slices.Sort(lat)
	r.p50 = percentile(lat, 0.50)
	r.p99 = percentile(lat, 0.99)
	return r
}

func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// cpuModel names the processor, for the record.
func cpuModel() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuName())
}

// checkpointed is dc with a new checkpoint folder under c.Checkpoint and
// c.LeaseTTL, or dc when c.Checkpoint is "".
func (c Config) checkpointed(dc dstream.Config) (dstream.Config, error) {
	if c.Checkpoint == "" {
		return dc, nil
	}
	if err := os.MkdirAll(c.Checkpoint, 0o755); err != nil {
		return dc, err
	}
	dir, err := os.MkdirTemp(c.Checkpoint, "run-")
	if err != nil {
		return dc, err
	}
	dc.CheckpointDir, dc.LeaseTTL = dir, c.LeaseTTL
	return dc, nil
}

func (c Config) workerArgs(n int, source, rates string) []string {
	if c.WorkerArgs == nil {
		return nil
	}
	return c.WorkerArgs(n, source, rates)
}

// input is a run's input stream: count(k) generated records at interval k
// (which takes the pool's k-th slice, k counted from the context's start,
// so every process of a cluster generates the same records), or a socket
// receiver fed by the client.
func input(ctx *dstream.Context, cfg Config, pool *Pool, count func(k int64) int) (*dstream.Stream[string], *source.Socket) {
	if cfg.Source == "socket" {
		sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet})
		return dstream.ReceiverStream(ctx, sock), sock
	}
	parts := ctx.Datasets().Parallelism()
	return dstream.GeneratedStream(ctx, "generator", func(t time.Time) [][]string {
		k := int64(t.Sub(ctx.StartTime()) / cfg.Batch)
		return pool.Interval(k, count(k), parts)
	}), nil
}

// Serve runs this process as a worker of a local-cluster benchmark run (the
// master started it with WorkerArgs(n, source, rates)): it builds that run's
// graph, at n records an interval or at cfg.Rates's schedule, and
// serves the master's tasks until the master releases it or ctx is done
// (program.Run). In a process that is not a worker it is an error.
func Serve(ctx context.Context, cfg Config, n int) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	sctx, err := dstream.NewContext(dstream.Config{Master: cfg.Master, BatchInterval: cfg.Batch, MemoryBytes: cfg.Memory, Logger: quiet})
	if err != nil {
		return err
	}
	if !sctx.IsWorker() {
		_ = sctx.Stop(false)
		return errors.New("bench: Serve runs only in a worker process a local-cluster master started")
	}
	count := func(int64) int { return n }
	if cfg.Rates != "" {
		f, err := newRatesFile(cfg.Rates)
		if err != nil {
			_ = sctx.Stop(false)
			return err
		}
		count = f.at
	}
	in, _ := input(sctx, cfg, NewPool(1<<20), count)
	Workloads[cfg.Workload].Build(in, cfg.Window, func(time.Time, int64) {})
	return program.Run(ctx, sctx, program.Master{})
}
