package rate

import (
	"math"
	"slices"
	"testing"
	"time"
)

// The closed loop, simulated: receivers offered far more than the job can
// process, capped by the controller's rates; a job whose processing time is
// its records over its capacity C; batches queued and run one at a time; the
// controller fed each batch's completion at its processing end. Time is a
// variable: no clock, no goroutines.

// simReceiver is a receiver's rate limit over simulated time: the rates it
// was set to, and when.
type simReceiver struct {
	now     *time.Time // the simulation's time, when SetRate is called
	changes []simChange
}

type simChange struct {
	at   time.Time
	rate int // 0: unlimited
}

func (r *simReceiver) SetRate(n int) { r.changes = append(r.changes, simChange{*r.now, n}) }

// current returns the rate the receiver is at; 0 is unlimited.
func (r *simReceiver) current() int {
	if len(r.changes) == 0 {
		return 0
	}
	return r.changes[len(r.changes)-1].rate
}

// received returns the records the receiver takes in during [from, to),
// offered offered records per second: the offered rate, capped by its rate
// limit at each moment.
func (r *simReceiver) received(from, to time.Time, offered float64) float64 {
	total := 0.0
	rate := 0 // unlimited before any SetRate
	seg := from
	take := func(until time.Time) {
		if until.After(seg) {
			eff := offered
			if rate > 0 {
				eff = min(offered, float64(rate))
			}
			total += eff * until.Sub(seg).Seconds()
			seg = until
		}
	}
	for _, c := range r.changes {
		if !c.at.After(from) {
			rate = c.rate // in force at from
			continue
		}
		if !c.at.Before(to) {
			break
		}
		take(c.at)
		rate = c.rate
	}
	take(to)
	return total
}

// simConfig is one simulated run.
type simConfig struct {
	batch        time.Duration
	capacity     func(i int) float64 // records per second the job processes, at batch i
	load         float64             // records per second offered, over all receivers
	receivers    int
	initial, max int // the controller's InitialRate and MaxRate
	batches      int
}

// simBatch is what happened to one batch.
type simBatch struct {
	records     int64
	sched, proc time.Duration
	published   int     // the receivers' rates summed, at the batch's interval end
	estimate    float64 // the controller's estimate then (0: none yet)
}

func simulate(t *testing.T, cfg simConfig) []simBatch {
	t.Helper()
	pid, err := NewDefaultPID(cfg.batch)
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := NewController(ControllerConfig{Estimator: pid, InitialRate: cfg.initial, MaxRate: cfg.max, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	now := epoch
	recvs := make([]*simReceiver, cfg.receivers)
	for i := range recvs {
		recvs[i] = &simReceiver{now: &now}
		ctrl.Register(recvs[i])
	}
	type completion struct {
		end         time.Time
		records     int64
		proc, sched time.Duration
	}
	var queue []completion // completed batches not yet reported: in end order
	busyUntil := epoch
	out := make([]simBatch, 0, cfg.batches)
	for i := range cfg.batches {
		from, to := epoch.Add(time.Duration(i)*cfg.batch), epoch.Add(time.Duration(i+1)*cfg.batch)
		// Completions before the interval's end change the rates within it.
		for len(queue) > 0 && queue[0].end.Before(to) {
			c := queue[0]
			queue = queue[1:]
			now = c.end
			ctrl.OnBatchCompleted(c.end, c.records, c.proc, c.sched)
		}
		var recs float64
		for _, r := range recvs {
			recs += r.received(from, to, cfg.load/float64(cfg.receivers))
		}
		n := int64(math.Round(recs))
		start := to // submitted at the interval's end, run when the job is free
		if busyUntil.After(start) {
			start = busyUntil
		}
		proc := time.Duration(float64(n) / cfg.capacity(i) * float64(time.Second))
		busyUntil = start.Add(proc)
		queue = append(queue, completion{busyUntil, n, proc, start.Sub(to)})
		b := simBatch{records: n, sched: start.Sub(to), proc: proc}
		for _, r := range recvs {
			b.published += r.current()
		}
		b.estimate, _ = ctrl.Rate()
		out = append(out, b)
	}
	return out
}

// window is a stretch of batches [from, to) in which the rate must be
// within ±20% of c, and the scheduling delay bounded.
type window struct {
	from, to int
	c        float64
}

// checkSettled checks, in each window, that the rate published to the
// receivers (summed) and the estimate are within ±20% of the capacity, and
// that the scheduling delay stays under half a batch interval and does not
// grow: its maximum over the window's second half is no more than over its
// first half (give or take a twentieth of a batch interval).
func checkSettled(t *testing.T, run []simBatch, batch time.Duration, windows []window) {
	t.Helper()
	for _, w := range windows {
		var firstMax, secondMax time.Duration
		for i := w.from; i < w.to; i++ {
			b := run[i]
			if math.Abs(float64(b.published)-w.c) > 0.2*w.c || math.Abs(b.estimate-w.c) > 0.2*w.c {
				t.Errorf("batch %d: published %d records/s, estimate %.1f; want within 20%% of %v", i, b.published, b.estimate, w.c)
			}
			if b.sched > batch/2 {
				t.Errorf("batch %d: scheduling delay %v, want at most %v", i, b.sched, batch/2)
			}
			if i < (w.from+w.to)/2 {
				firstMax = max(firstMax, b.sched)
			} else {
				secondMax = max(secondMax, b.sched)
			}
		}
		if secondMax > firstMax+batch/20 {
			t.Errorf("batches %d-%d: the scheduling delay grows, from at most %v to %v", w.from, w.to, firstMax, secondMax)
		}
	}
}

func logRun(t *testing.T, run []simBatch) {
	t.Helper()
	if !testing.Verbose() {
		return
	}
	for i, b := range run {
		t.Logf("batch %3d: %8d records, sched %-14v proc %-14v published %8d estimate %10.1f", i, b.records, b.sched, b.proc, b.published, b.estimate)
	}
}

// TestClosedLoopSettles runs the loop with receivers offered 10x what the
// job can process, for 100 batches: the rate settles within 20% of the
// capacity, and the scheduling delay drains and stays bounded. Spark's PID
// (default gains) gets its first estimate at the second completed batch;
// until then the receivers run at their initial rate, which must be sane
// (see TestClosedLoopSlowStart).
func TestClosedLoopSettles(t *testing.T) {
	constant := func(c float64) func(int) float64 { return func(int) float64 { return c } }
	tests := []struct {
		name    string
		cfg     simConfig
		windows []window
	}{
		{
			// The initial overload builds a 14 s delay before the first
			// estimate; the minimum rate drains it.
			name:    "1000/s, one receiver, starting at 3x",
			cfg:     simConfig{batch: time.Second, capacity: constant(1000), load: 10_000, receivers: 1, initial: 3000},
			windows: []window{{30, 100, 1000}},
		},
		{
			name:    "20000/s, two receivers, starting at a fifth",
			cfg:     simConfig{batch: time.Second, capacity: constant(20_000), load: 200_000, receivers: 2, initial: 4000},
			windows: []window{{5, 100, 20_000}},
		},
		{
			// No initial rate: the receivers start at their maximum, 2.4x
			// the capacity together.
			name:    "250000/s, 500 ms batches, three receivers, starting at their maximum",
			cfg:     simConfig{batch: 500 * time.Millisecond, capacity: constant(250_000), load: 2_500_000, receivers: 3, max: 200_000},
			windows: []window{{30, 100, 250_000}},
		},
		{
			name:    "5000/s, 2 s batches, starting at 2x",
			cfg:     simConfig{batch: 2 * time.Second, capacity: constant(5000), load: 50_000, receivers: 1, initial: 10_000},
			windows: []window{{20, 100, 5000}},
		},
		{
			// The job's capacity varies by ±10% from batch to batch: the
			// rate follows it.
			name:    "10000/s, varying",
			cfg:     simConfig{batch: time.Second, capacity: func(i int) float64 { return 10_000 * (1 + 0.1*math.Sin(float64(i)*1.7)) }, load: 100_000, receivers: 1, initial: 15_000},
			windows: []window{{20, 100, 10_000}},
		},
		{
			// The job slows down to 4000/s at batch 50 (say, a heavier
			// input): the rate comes down and the delay it built drains.
			name: "10000/s, then 4000/s",
			cfg: simConfig{batch: time.Second, capacity: func(i int) float64 {
				if i < 50 {
					return 10_000
				}
				return 4000
			}, load: 100_000, receivers: 2, initial: 10_000},
			windows: []window{{5, 50, 10_000}, {70, 100, 4000}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.batches = 100
			run := simulate(t, tc.cfg)
			logRun(t, run)
			checkSettled(t, run, tc.cfg.batch, tc.windows)
		})
	}
}

// TestClosedLoopSlowStart documents Spark's slow start: the first estimate
// comes with the second completed batch, and until then the receivers take
// in at their initial rate. Starting at 10x the capacity, the batches
// received while the first two are processed (each taking 10 batch
// intervals) build a delay of minutes, which the PID then drains at its
// minimum rate, without letting it grow, before settling. Hence an initial
// rate (ControllerConfig.InitialRate, Spark's
// spark.streaming.backpressure.initialRate) or a maximum rate near the
// capacity.
func TestClosedLoopSlowStart(t *testing.T) {
	cfg := simConfig{batch: time.Second, capacity: func(int) float64 { return 5000 }, load: 50_000, receivers: 1, initial: 50_000, batches: 400}
	run := simulate(t, cfg)
	logRun(t, run)
	first := slices.IndexFunc(run, func(b simBatch) bool { return b.estimate > 0 })
	if first < 0 {
		t.Fatal("no estimate")
	}
	peak := run[first].sched
	if peak < time.Minute {
		t.Errorf("delay %v at the first estimate; the slow start should have built minutes", peak)
	}
	for i := first + 1; i < len(run); i++ {
		if run[i].sched > run[i-1].sched {
			t.Fatalf("batch %d: the scheduling delay grew from %v to %v after the first estimate", i, run[i-1].sched, run[i].sched)
		}
	}
	checkSettled(t, run, cfg.batch, []window{{300, 400, 5000}})
}
