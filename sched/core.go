package sched

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dstream/dstream/rdd"
)

// Core is the scheduler's pure core, one for a deployment: it knows the
// workers and their free slots, the jobs running (each a JobScheduler, which
// decides stages and retries), the tasks queued and running, and where every
// shuffle's map outputs live. It is fed events (a worker added or lost, a job
// submitted, a task ended, which says when a map output was found lost; a
// tick of the clock; shuffles forgotten) and returns decisions (run this task
// on that worker, kill that one, this job is done). It does no I/O
// and reads no clock or mutable store, so transcripts test it
// deterministically; Shell is its goroutine shell: local[N] is one with one
// worker, a cluster master's another.
//
// Time. The core reads no clock: every event carries now, the shell's
// clock reading when it fed the event, and the core keeps the latest one
// (a reading earlier than one it has seen is taken as the latest: its clock
// never runs backwards). A Run is stamped with it (Run.Start): the time the
// shell starts the task, since it carries out the decision at once. A task's
// runtime is the latest now less its start, and a success's duration its
// end event's now less its start. Stamping each event rather than keeping
// the last Tick's time makes durations exact, not rounded to the tick
// period, and keeps replays deterministic: the same events and times give
// the same decisions. A shell with speculation off may pass the zero time.
//
// Placement: a task goes to the first free worker among its preferred ones
// (the process that holds its input, as Prefer says), else to the free
// worker with the most free slots (ties: the earliest added); tasks wait in
// submission order when no slot is free.
//
// Background jobs (rdd.Job.Background: a state checkpoint's writes) do not
// use those slots: every worker has BackgroundSlots more, for their tasks
// only, so they run beside the tasks of the intervals that follow rather
// than ahead of them. A background task goes to a preferred worker with a
// background slot free, else to the next one with one (round robin); it
// waits for one without holding back the tasks queued after it, and it is
// never speculated (it mostly waits on a store).
//
// Speculation (when Speculation.Enabled), as Spark's: on Tick, in each
// running stage run (task set) where at least Quantile of the tasks have
// succeeded, a task running longer than max(Multiplier × the median duration
// of those successes, MinRuntime) gets one speculative copy: a new attempt
// of its partition, on another worker with a free slot (preferred ones
// first; never the reserved one), if one is free now; a task pinned to a
// worker is never copied. The first success of either attempt is the
// partition's; the core kills the other (Kill) and ignores its end, which
// only frees its slot. A copy's failure while the other attempt runs is not
// counted against maxAttempts; losing the worker of one leaves the other
// running. A partition gets at most one copy until it is launched afresh.
//
// Stragglers' workers (with speculation on and Speculation.ExcludeFor not
// negative): a worker whose attempt was beaten by a copy started later
// elsewhere is excluded from placement for ExcludeFor (default 5 s), twice
// as long each time it is beaten again within 10 ExcludeFor of its last
// beating (at most 16 times as long), since a worker slow once is likely
// slow again: without it, every later stage that placed a task there would
// wait for a copy (at least MinRuntime), so a slow machine would cost every
// short interval that much. An excluded worker runs only the tasks pinned
// to it; the others prefer a worker not excluded even when their input is
// there (they read it from there), and wait for a slot elsewhere rather
// than take one of its. At most half of the workers (not counting the
// reserved one) are excluded at once: a beating beyond that is not acted
// on, and a lost worker that leaves more than half excluded ends every
// exclusion. The exclusion ends by itself at the first event at or after its end
// (the core has no timers), and an Exclude decision reports each one.
type Core struct {
	maxAttempts int
	// Prefer returns the workers that hold a task's input (nil: any). Set
	// by the shell; the manifest's block locations will feed it.
	Prefer func(t Task) []string
	// Pin returns the only worker that may run a task ("": any). Set by a
	// cluster's shell for tasks only the submitting process can run (a
	// job whose function is a closure, datasets a worker cannot rebuild).
	// A pinned task is never speculated.
	Pin func(t Task) string
	// Reserved names a worker that runs only the tasks pinned to it (a
	// cluster's master), or "".
	Reserved string
	// Speculation configures speculative copies of stragglers; off unless
	// Enabled.
	Speculation Speculation
	// Speculate, if set, reports whether t may be speculated at all (nil:
	// every task not pinned may).
	Speculate func(t Task) bool

	now     time.Time // the latest time an event carried
	workers map[string]*worker
	order   []string // workers in the order they were added
	free    freest   // the same workers, freest first
	bgNext  int      // where the next background task's search starts in order
	jobs    map[int]*coreJob
	queue   []Task // launchable, waiting for a slot, in order
	running map[taskKey]taskRun
	outputs map[rdd.ID]*mapOuts // shuffle -> where its map outputs live
}

// Speculation configures speculative execution, as Spark's
// spark.speculation settings; zero fields take Spark's defaults.
type Speculation struct {
	Enabled bool
	// Quantile is the share of a stage run's tasks that must have
	// succeeded before its stragglers are copied (default 0.75).
	Quantile float64
	// Multiplier: a task straggles once it has run Multiplier times the
	// median duration of its stage run's successes (default 1.5) ...
	Multiplier float64
	// MinRuntime ... and at least MinRuntime (default 100 ms).
	MinRuntime time.Duration
	// Interval is how often a shell ticks its core while tasks run
	// (default 100 ms); the core itself does not use it.
	Interval time.Duration
	// ExcludeFor is how long a worker whose attempt a copy beat is
	// excluded from placement at first (see Core; default 5 s); negative:
	// never.
	ExcludeFor time.Duration
}

// DefaultSpeculation is speculation on, with Spark's defaults.
func DefaultSpeculation() Speculation {
	return Speculation{Enabled: true}.WithDefaults()
}

// WithDefaults returns s with its zero (or negative) fields set to Spark's
// defaults: quantile 0.75, multiplier 1.5, minimum runtime and interval
// 100 ms.
func (s Speculation) WithDefaults() Speculation {
	if s.Quantile <= 0 {
		s.Quantile = 0.75
	}
	if s.Multiplier <= 0 {
		s.Multiplier = 1.5
	}
	if s.MinRuntime <= 0 {
		s.MinRuntime = 100 * time.Millisecond
	}
	if s.Interval <= 0 {
		s.Interval = 100 * time.Millisecond
	}
	if s.ExcludeFor == 0 {
		s.ExcludeFor = DefaultExcludeFor
	}
	return s
}

// DefaultExcludeFor is Speculation.ExcludeFor's default: long enough for
// many short intervals to run without a slow worker, short enough that one
// slowed only for a moment (a pause of its collector, a noisy neighbour) is
// soon back.
const DefaultExcludeFor = 5 * time.Second

// maxExcludeDoublings bounds an exclusion at 16 ExcludeFor.
const maxExcludeDoublings = 4

// BackgroundSlots is how many tasks of background jobs a worker runs at
// once, beside its task slots.
const BackgroundSlots = 1

type worker struct {
	id          string
	slots, free int
	bgFree      int    // background slots free (of BackgroundSlots)
	seq         uint64 // when it was added (freest)
	pos         int    // its place in freest's heap

	// A straggler's exclusion (see Core): excluded until this time (zero:
	// never excluded); beatings in a row and the last one's time.
	excludedUntil time.Time
	beatings      int
	lastBeaten    time.Time
}

// excluded reports whether w takes no task but those pinned to it at now.
func (w *worker) excluded(now time.Time) bool { return now.Before(w.excludedUntil) }

// use takes n slots of w (n < 0 gives them back).
func (c *Core) use(w *worker, n int) {
	w.free -= n
	c.free.fix(w)
}

// release gives back the slot attempt r took on w.
func (c *Core) release(w *worker, r taskRun) {
	if r.bg {
		w.bgFree++
		return
	}
	c.use(w, -1)
}

// background reports whether t is a task of a background job.
func (c *Core) background(t Task) bool {
	j := c.jobs[t.Job]
	return j != nil && j.background
}

// pickBackground chooses a worker with a background slot free for t, or
// nil: the one it is pinned to, else a preferred one, else the next in
// order (round robin); never the reserved worker unless pinned there, nor
// an excluded one.
func (c *Core) pickBackground(t Task) *worker {
	if c.Pin != nil {
		if id := c.Pin(t); id != "" {
			if w := c.workers[id]; w != nil && w.bgFree > 0 {
				return w
			}
			return nil
		}
	}
	ok := func(w *worker) bool { return w != nil && w.bgFree > 0 && w.id != c.Reserved && !w.excluded(c.now) }
	if c.Prefer != nil {
		for _, id := range c.Prefer(t) {
			if w := c.workers[id]; ok(w) {
				return w
			}
		}
	}
	for i := range c.order {
		at := (c.bgNext + i) % len(c.order)
		if w := c.workers[c.order[at]]; ok(w) {
			c.bgNext = at + 1
			return w
		}
	}
	return nil
}

type coreJob struct {
	js         *JobScheduler
	durs       map[int]*runTimes // stage -> durations of its current run's successes
	background bool              // rdd.Job.Background: its tasks take background slots
}

// runTimes are the durations of a stage run's accepted successes, sorted
// when a median is asked for (at a Tick), not at every success: an insert
// in order cost O(tasks) per task.
type runTimes struct {
	run    int
	durs   []time.Duration
	sorted bool
}

// taskRun is a running task attempt.
type taskRun struct {
	worker string
	start  time.Time
	killed bool // another attempt won: its end only frees the slot
	bg     bool // in a background slot
}

type taskKey struct{ job, stage, part, attempt int }

func keyOf(t Task) taskKey { return taskKey{t.Job, t.Stage, t.Partition(), t.Attempt()} }

// mapOuts records the worker holding each map partition's output.
type mapOuts struct{ at map[int]string }

// Decision is what the core asks its shell to do: Run, Kill or JobDone.
type Decision interface{ isDecision() }

// Run asks the shell to run a task on a worker, from Start (the now of the
// event that decided it). Speculative marks a copy of a task still running
// elsewhere.
type Run struct {
	Task        Task
	Worker      string
	Start       time.Time
	Speculative bool
}

// Kill asks the shell to stop a running task attempt whose partition another
// attempt has computed. Its end, whenever it comes, is ignored (Core.TaskEnded
// must still be fed it, which frees its slot).
type Kill struct {
	Task   Task
	Worker string
}

// JobDone reports a job's end: its results in the order of its partitions,
// or its error.
type JobDone struct {
	Job     int
	Results []any
	Err     error
}

// Exclude reports that Worker is excluded from placement until Until: an
// attempt of its was beaten by a speculative copy (see Core). The shell
// need do nothing but say so.
type Exclude struct {
	Worker string
	Until  time.Time
}

func (Run) isDecision()     {}
func (Kill) isDecision()    {}
func (JobDone) isDecision() {}
func (Exclude) isDecision() {}

// ErrWorkerLost is the error of a task whose worker was lost; such a task is
// run again without counting against its attempts.
var ErrWorkerLost = errors.New("worker lost")

// NewCore returns a core with no workers. maxAttempts bounds each task's
// attempts and each stage's resubmissions (Spark uses 4).
func NewCore(maxAttempts int) *Core {
	return &Core{maxAttempts: maxAttempts, workers: map[string]*worker{}, jobs: map[int]*coreJob{},
		running: map[taskKey]taskRun{}, outputs: map[rdd.ID]*mapOuts{}}
}

// advance moves the core's time to now, unless it has seen a later time.
func (c *Core) advance(now time.Time) {
	if now.After(c.now) {
		c.now = now
	}
}

// Missing implements MapOutputs from the core's own table.
func (c *Core) Missing(shuffle rdd.ID, numMaps int) []int {
	outs := c.outputs[shuffle]
	var missing []int
	for m := range numMaps {
		if outs == nil {
			missing = append(missing, m)
			continue
		}
		if _, ok := outs.at[m]; !ok {
			missing = append(missing, m)
		}
	}
	return missing
}

// AddWorker adds a worker with slots task slots (or sets the slots of a
// known one) and places queued tasks on it.
func (c *Core) AddWorker(now time.Time, id string, slots int) []Decision {
	c.advance(now)
	if w, ok := c.workers[id]; ok {
		c.use(w, w.slots-slots)
		w.slots = slots
	} else {
		w := &worker{id: id, slots: slots, free: slots, bgFree: BackgroundSlots}
		c.workers[id] = w
		c.order = append(c.order, id)
		c.free.add(w)
	}
	return c.place(nil)
}

// LoseWorker removes a worker: the map outputs it held are gone (the stages
// that need them recompute them from lineage), and its running tasks run
// again elsewhere, their attempts not counted (but a task with a speculative
// copy on another worker, or the copy of one, lets the other run on).
func (c *Core) LoseWorker(now time.Time, id string) []Decision {
	c.advance(now)
	w, ok := c.workers[id]
	if !ok {
		return nil
	}
	c.free.remove(w)
	delete(c.workers, id)
	c.order = slices.DeleteFunc(c.order, func(w string) bool { return w == id })
	if c.excludedCount() > c.eligibleCount()/2 {
		// Too few workers are left to keep any out (see Core): the
		// tasks of the lost one must not wait for an exclusion to end.
		for _, w := range c.workers {
			w.excludedUntil = time.Time{}
		}
	}
	for _, outs := range c.outputs {
		for m, w := range outs.at {
			if w == id {
				delete(outs.at, m)
			}
		}
	}
	var lost []taskKey
	for k, r := range c.running {
		if r.worker == id {
			lost = append(lost, k)
		}
	}
	slices.SortFunc(lost, compareKeys)
	var ds []Decision
	for _, k := range lost {
		r := c.running[k]
		delete(c.running, k)
		if r.killed || c.jobs[k.job] == nil {
			continue // its job no longer needs it
		}
		ds = c.feed(c.taskOf(k), nil, fmt.Errorf("%w: %s", ErrWorkerLost, id), ds)
	}
	return c.place(ds)
}

// taskOf rebuilds the task a running key stands for.
func (c *Core) taskOf(k taskKey) Task {
	j := c.jobs[k.job]
	s := j.js.stageByID(k.stage)
	return j.js.task(s, k.part, k.attempt)
}

func compareKeys(a, b taskKey) int {
	for _, d := range [...]int{a.job - b.job, a.stage - b.stage, a.part - b.part, a.attempt - b.attempt} {
		if d != 0 {
			return d
		}
	}
	return 0
}

// Submit starts job under id (unique among the core's jobs).
func (c *Core) Submit(now time.Time, id int, job *rdd.Job) []Decision {
	c.advance(now)
	js := NewJob(id, job, c, c.maxAttempts)
	c.jobs[id] = &coreJob{js: js, background: job.Background}
	return c.place(c.absorb(id, js.Start(), nil))
}

// TaskEnded feeds the end of a task on worker at now: its result (result
// tasks) or its error. A map task's success records its output on the
// worker. The first success of a partition's attempts kills the others
// (Kill); the end of a killed attempt only frees its slot.
func (c *Core) TaskEnded(now time.Time, t Task, worker string, result any, err error) []Decision {
	c.advance(now)
	k := keyOf(t)
	r, ok := c.running[k]
	if !ok || r.worker != worker {
		return nil // not running there (its worker was lost meanwhile): stale
	}
	delete(c.running, k)
	if wk := c.workers[worker]; wk != nil {
		c.release(wk, r)
	}
	if r.killed {
		// Another attempt won. Whatever this one says (a success, the
		// cancellation, a fetch failure it may have met while being
		// cancelled) is not news.
		return c.place(nil)
	}
	if err == nil && c.Speculation.Enabled {
		c.timeSuccess(t, r.start)
	}
	if err == nil && t.IsMap() {
		outs := c.outputs[*t.Spec.Shuffle]
		if outs == nil {
			outs = &mapOuts{at: map[int]string{}}
			c.outputs[*t.Spec.Shuffle] = outs
		}
		outs.at[t.Partition()] = worker
	}
	var ff *rdd.FetchFailedError
	if errors.As(err, &ff) {
		c.lose(ff.Shuffle, ff.Map)
		if ff.Unreachable && ff.From != "" {
			// The holder could not be reached: every output it holds is
			// as good as lost (Spark unregisters them all), so a stage
			// resubmitted recomputes them at once rather than one fetch
			// failure at a time.
			c.loseOutputsAt(ff.From)
		}
	}
	ds := c.feed(t, result, err, nil)
	if err == nil && c.Speculation.Enabled {
		ds = c.excludeBeaten(r, ds)
	}
	return c.place(ds)
}

// excludeBeaten excludes the worker of every attempt this success (won,
// which ran as r) superseded that started before it: a copy beat it (see
// Core). A copy that lost to its original says nothing of its worker.
func (c *Core) excludeBeaten(won taskRun, ds []Decision) []Decision {
	cfg := c.Speculation.WithDefaults()
	if cfg.ExcludeFor < 0 {
		return ds
	}
	for _, d := range ds {
		k, ok := d.(Kill)
		if !ok {
			continue
		}
		lost, ok := c.running[keyOf(k.Task)]
		if !ok || !lost.start.Before(won.start) || lost.worker == won.worker {
			continue
		}
		w := c.workers[lost.worker]
		if w == nil || w.id == c.Reserved || w.excluded(c.now) {
			continue // launched before its exclusion: not news
		}
		if !w.lastBeaten.IsZero() && c.now.Sub(w.lastBeaten) > 10*cfg.ExcludeFor {
			w.beatings = 0
		}
		w.beatings++
		w.lastBeaten = c.now
		if c.excludedCount() >= c.eligibleCount()/2 {
			continue // enough workers are out already
		}
		w.excludedUntil = c.now.Add(cfg.ExcludeFor << min(w.beatings-1, maxExcludeDoublings))
		ds = append(ds, Exclude{Worker: w.id, Until: w.excludedUntil})
	}
	return ds
}

// excludedCount is how many workers are excluded now; eligibleCount how
// many could be (all but the reserved one).
func (c *Core) excludedCount() int {
	n := 0
	for _, w := range c.workers {
		if w.excluded(c.now) {
			n++
		}
	}
	return n
}

func (c *Core) eligibleCount() int {
	if _, ok := c.workers[c.Reserved]; ok {
		return len(c.workers) - 1
	}
	return len(c.workers)
}

// timeSuccess records the duration of t's success, which started at
// start, for speculation, if it is its partition's result (a live attempt).
func (c *Core) timeSuccess(t Task, start time.Time) {
	j := c.jobs[t.Job]
	if j == nil {
		return
	}
	if _, n := j.js.Live(t); n == 0 {
		return // stale: not its partition's result
	}
	if ts, ok := j.js.TaskSet(t.Stage); ok {
		j.record(ts, c.now.Sub(start))
	}
}

// kill marks a superseded attempt killed and asks the shell to stop it. (It
// runs: a copy is made only of a running attempt, and placed at once.) Not
// inlined: absorb's frame is on every task's path, and task goroutines
// start with small stacks.
//
//go:noinline
func (c *Core) kill(t Task, ds []Decision) []Decision {
	k := keyOf(t)
	if r, ok := c.running[k]; ok && !r.killed {
		r.killed = true
		c.running[k] = r
		ds = append(ds, Kill{Task: t, Worker: r.worker})
	}
	return ds
}

// record adds a success's duration to its stage run's.
func (j *coreJob) record(ts TaskSet, d time.Duration) {
	if j.durs == nil {
		j.durs = map[int]*runTimes{}
	}
	rt := j.durs[ts.Stage]
	if rt == nil || rt.run != ts.Run {
		rt = &runTimes{run: ts.Run}
		j.durs[ts.Stage] = rt
	}
	rt.durs = append(rt.durs, d)
	rt.sorted = false
}

// median returns the median of the durations of stage run ts's successes
// (the mean of the middle two of an even count, as Spark's MedianHeap), or
// false if none is known.
func (j *coreJob) median(ts TaskSet) (time.Duration, bool) {
	rt := j.durs[ts.Stage]
	if rt == nil || rt.run != ts.Run || len(rt.durs) == 0 {
		return 0, false
	}
	if !rt.sorted {
		slices.Sort(rt.durs)
		rt.sorted = true
	}
	n := len(rt.durs)
	if n%2 == 1 {
		return rt.durs[n/2], true
	}
	return (rt.durs[n/2-1] + rt.durs[n/2]) / 2, true
}

// Tick tells the core the time is now and, with speculation on, copies the
// stragglers it finds onto free slots (see Core).
func (c *Core) Tick(now time.Time) []Decision {
	c.advance(now)
	if !c.Speculation.Enabled {
		return nil
	}
	return c.speculate(nil)
}

// WantsTicks reports whether a Tick could decide anything: speculation is
// on, tasks run, and at least two workers (besides the reserved one) could
// run a task and its copy. A shell ticks its core only while it does.
func (c *Core) WantsTicks() bool {
	if !c.Speculation.Enabled || len(c.running) == 0 {
		return false
	}
	n := 0
	for _, id := range c.order {
		if id != c.Reserved {
			if n++; n == 2 {
				return true
			}
		}
	}
	return false
}

// speculate launches speculative copies of the stragglers (see Core).
func (c *Core) speculate(ds []Decision) []Decision {
	if c.free.best(func(w *worker) bool { return w.id == c.Reserved }) == nil {
		return ds // no slot free
	}
	cfg := c.Speculation.WithDefaults()
	type setKey struct{ job, stage int }
	thresholds := map[setKey]time.Duration{}
	for id, j := range c.jobs {
		for _, ts := range j.js.TaskSets() {
			if ts.Succeeded < max(int(math.Floor(cfg.Quantile*float64(ts.Tasks))), 1) {
				continue
			}
			if m, ok := j.median(ts); ok {
				thresholds[setKey{id, ts.Stage}] = max(time.Duration(cfg.Multiplier*float64(m)), cfg.MinRuntime)
			}
		}
	}
	if len(thresholds) == 0 {
		return ds
	}
	var stragglers []taskKey
	for k, r := range c.running {
		if thr, ok := thresholds[setKey{k.job, k.stage}]; ok && !r.killed && c.now.Sub(r.start) > thr {
			stragglers = append(stragglers, k)
		}
	}
	slices.SortFunc(stragglers, compareKeys)
	for _, k := range stragglers {
		j, r := c.jobs[k.job], c.running[k]
		t := c.taskOf(k)
		if j.background || !j.js.CanSpeculate(t) || (c.Pin != nil && c.Pin(t) != "") || (c.Speculate != nil && !c.Speculate(t)) {
			continue
		}
		w := c.pickOther(t, r.worker)
		if w == nil {
			continue
		}
		cp, _ := j.js.Speculate(t)
		c.use(w, 1)
		c.running[keyOf(cp)] = taskRun{worker: w.id, start: c.now}
		ds = append(ds, Run{Task: cp, Worker: w.id, Start: c.now, Speculative: true})
	}
	return ds
}

// pickOther chooses a free worker for a copy of t other than busy (where t
// runs), preferring where its input is; never the reserved worker.
func (c *Core) pickOther(t Task, busy string) *worker {
	skip := func(w *worker) bool { return w.id == c.Reserved || w.id == busy || w.excluded(c.now) }
	if c.Prefer != nil {
		for _, id := range c.Prefer(t) {
			if w := c.workers[id]; w != nil && w.free > 0 && !skip(w) {
				return w
			}
		}
	}
	return c.free.best(skip)
}

// Cancel ends job id without a JobDone (its submitter stopped waiting): its
// queued tasks are dropped; its running tasks keep their slots until they
// end, and their ends are ignored.
func (c *Core) Cancel(now time.Time, id int) []Decision {
	c.advance(now)
	delete(c.jobs, id)
	c.queue = slices.DeleteFunc(c.queue, func(t Task) bool { return t.Job == id })
	return c.place(nil)
}

// loseOutputsAt forgets every map output worker holds.
func (c *Core) loseOutputsAt(worker string) {
	for _, outs := range c.outputs {
		for m, at := range outs.at {
			if at == worker {
				delete(outs.at, m)
			}
		}
	}
}

func (c *Core) lose(shuffle rdd.ID, mapPart int) {
	if outs := c.outputs[shuffle]; outs != nil {
		delete(outs.at, mapPart)
	}
}

// ForgetShuffles drops the locations of every shuffle matching pred: the
// stream layer forgets old intervals' shuffles.
func (c *Core) ForgetShuffles(pred func(rdd.ID) bool) {
	for id := range c.outputs {
		if pred(id) {
			delete(c.outputs, id)
		}
	}
}

// feed passes a task's end to its job and absorbs the job's actions.
func (c *Core) feed(t Task, result any, err error, ds []Decision) []Decision {
	j := c.jobs[t.Job]
	if j == nil {
		return ds
	}
	var acts []Action
	if errors.Is(err, ErrWorkerLost) {
		acts = j.js.Relaunch(t)
	} else {
		acts = j.js.TaskEnded(t, result, err)
	}
	return c.absorb(t.Job, acts, ds)
}

// absorb queues a job's launches, kills its superseded attempts and
// reports its end.
func (c *Core) absorb(job int, acts []Action, ds []Decision) []Decision {
	for _, a := range acts {
		switch a := a.(type) {
		case Launch:
			c.queue = append(c.queue, a.Task)
		case Supersede:
			ds = c.kill(a.Task, ds)
		case Done:
			delete(c.jobs, job)
			c.queue = slices.DeleteFunc(c.queue, func(t Task) bool { return t.Job == job })
			ds = append(ds, JobDone{Job: job, Results: a.Results, Err: a.Err})
		}
	}
	return ds
}

// place assigns queued tasks to free slots, in queue order; a pinned task
// whose worker is busy lets the tasks after it go first.
func (c *Core) place(ds []Decision) []Decision {
	rest := c.queue[:0]
	full := false // an unpinned task found no task slot: nor will the later ones
	for _, t := range c.queue {
		var w *worker
		bg := c.background(t)
		switch {
		case bg:
			w = c.pickBackground(t)
		case !full:
			var pinned bool
			w, pinned = c.pick(t)
			full = w == nil && !pinned
		}
		if w == nil {
			rest = append(rest, t)
			continue
		}
		if bg {
			w.bgFree--
		} else {
			c.use(w, 1)
		}
		c.running[keyOf(t)] = taskRun{worker: w.id, start: c.now, bg: bg}
		ds = append(ds, Run{Task: t, Worker: w.id, Start: c.now})
	}
	clear(c.queue[len(rest):])
	c.queue = rest
	return ds
}

// pick chooses a free worker for t, or nil; pinned says t may run on one
// worker only.
func (c *Core) pick(t Task) (w *worker, pinned bool) {
	if c.Pin != nil {
		if id := c.Pin(t); id != "" {
			if w := c.workers[id]; w != nil && w.free > 0 {
				return w, true
			}
			return nil, true
		}
	}
	return c.pickAny(t), false
}

// pickAny chooses a free worker for t, preferring where its input is.
func (c *Core) pickAny(t Task) *worker {
	skip := func(w *worker) bool { return w.id == c.Reserved || w.excluded(c.now) }
	if c.Prefer != nil {
		for _, id := range c.Prefer(t) {
			if w := c.workers[id]; w != nil && w.free > 0 && !skip(w) {
				return w
			}
		}
	}
	return c.free.best(skip)
}

// Running returns how many tasks run, and Queued how many wait for a slot.
func (c *Core) Running() int { return len(c.running) }

// Queued returns how many tasks wait for a free slot.
func (c *Core) Queued() int { return len(c.queue) }

// Workers returns the workers' IDs and free slots, in the order added.
func (c *Core) Workers() []WorkerSlots {
	out := make([]WorkerSlots, 0, len(c.order))
	for _, id := range c.order {
		w := c.workers[id]
		ws := WorkerSlots{ID: id, Slots: w.slots, Free: w.free}
		if w.excluded(c.now) {
			ws.ExcludedUntil = w.excludedUntil
		}
		out = append(out, ws)
	}
	return out
}

// WorkerSlots is a worker's slot accounting, and when its exclusion as a
// straggler's worker ends (zero unless it is excluded as of the core's
// latest event; see Core).
type WorkerSlots struct {
	ID            string
	Slots, Free   int
	ExcludedUntil time.Time
}

// Locations returns the worker holding each map output of shuffle ("" for
// one not written), numMaps long: what a reduce task running elsewhere is
// told, so it fetches each bucket from its writer.
func (c *Core) Locations(shuffle rdd.ID, numMaps int) []string {
	out := make([]string, numMaps)
	if outs := c.outputs[shuffle]; outs != nil {
		for m, w := range outs.at {
			if m < numMaps {
				out[m] = w
			}
		}
	}
	return out
}
