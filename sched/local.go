package sched

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/rdd"
)

// TaskEvent describes a task attempt that ended, for listeners (the UI,
// metrics): its task (job, stage, partition, attempt; map or result), the
// worker it ran on, whether it was a speculative copy, when it started and
// ended (on the shell's clock), what it measured of its work and its error
// (nil: it succeeded).
type TaskEvent struct {
	Task        Task
	Worker      string
	Speculative bool
	// Killed: another attempt of the partition won and the shell cancelled
	// this one (its Err is then most likely ErrKilled's cancellation); its
	// result, if it has one, was ignored. An attempt that ended just as the
	// other won may say false though its result was ignored too.
	Killed     bool
	Start, End time.Time
	// Figures are the records and shuffle bytes the attempt read and
	// wrote, as its Executor reported them (rdd.TaskFigures; figures an
	// executor could not measure are -1).
	Figures rdd.TaskFigures
	Err     error
}

// JobEvent is what the shell tells an OnJob hook when a job is submitted
// (End zero) and when it ends: its id (the Job of its tasks), its name, the
// dataset it computes, when it started and ended, and its error.
type JobEvent struct {
	Job        int
	Name       string
	Final      rdd.ID
	Start, End time.Time
	Err        error
}

// ErrKilled is the cause (context.Cause) of a killed attempt's context: a
// speculative copy or its original that another attempt of the same
// partition beat.
var ErrKilled = errors.New("sched: killed: another attempt of the task succeeded")

// Executor runs one task attempt on a worker and returns its result and
// what the attempt measured of its work (rdd.TaskFigures; rdd.NotMeasured
// for an attempt that did not run, or whose figures did not come back, and
// -1 for any figure not measured). It is the seam between the scheduler and
// where tasks run: goroutines of this process (GoExecutor) or a remote
// worker (the cluster's). ctx is cancelled when the job no longer needs the
// task: the job ended, or another attempt of the task's partition won
// (context.Cause(ctx) is then ErrKilled).
type Executor interface {
	Execute(ctx context.Context, worker string, t Task, job *rdd.Job, lin *rdd.Lineage) (any, rdd.TaskFigures, error)
}

// GoExecutor runs tasks as goroutines of this process: a named task from
// its spec against the job's lineage, else the job's Func.
type GoExecutor struct {
	// Remote, if set, is given to every task, for what other processes hold.
	Remote rdd.Remote
	// Location is this process's peer address ("" in local[N]).
	Location string
}

// Execute implements Executor; the figures are the task context's
// (rdd.TaskContext.Figures). The partitions a task that succeeded pinned
// (rdd.PinOnCompute) are noted as at Location (rdd.NotePinned).
func (e GoExecutor) Execute(ctx context.Context, _ string, t Task, job *rdd.Job, lin *rdd.Lineage) (any, rdd.TaskFigures, error) {
	tc := rdd.NewTaskContext(ctx, t.Job, t.Stage, t.Partition(), t.Attempt())
	tc.Remote, tc.Location = e.Remote, e.Location
	var res any
	var err error
	if t.IsMap() || job.Kind.Named() {
		res, err = lin.Execute(tc, t.Spec)
	} else {
		res, err = rdd.RunTask(tc, func() (any, error) { return job.Func(tc, t.Partition()) })
	}
	if err == nil {
		rdd.NotePinned(lin, tc.Pinned(), e.Location)
	}
	return res, tc.Figures(), err
}

// Shell is the scheduler's Core with I/O: it implements rdd.JobRunner, feeds
// the core under a lock and carries out its decisions, running each task on
// its own goroutine through the Executor and cancelling the context of one
// the core kills. It reads its clock only when the core needs times
// (speculation on) or OnTask wants them, and has a goroutine of its own only
// to tick the core while the core wants ticks (Core.WantsTicks: speculation
// on, tasks running, two workers that could run a copy), so local[N] (one
// worker, no speculation) costs nothing more. local[N] is a Shell with one
// worker (this process, N slots) and a GoExecutor; a cluster master's shell
// has a worker per worker process.
type Shell struct {
	onTask   atomic.Pointer[func(TaskEvent)]
	onJob    atomic.Pointer[func(JobEvent)]
	exec     Executor
	clk      clock.Clock
	spec     bool          // speculation on: stamp times, cancel per task, tick
	interval time.Duration // tick period
	// onExclude is ShellConfig.OnExclude.
	onExclude func(Exclude)

	mu      sync.Mutex
	core    *Core
	jobs    map[int]*shellJob
	next    int
	cancels map[taskKey]context.CancelCauseFunc // running attempts (speculation on)
	ticker  context.CancelFunc                  // stops the tick goroutine; nil when none runs
}

// shellJob is a job running on a Shell.
type shellJob struct {
	job     *rdd.Job
	lin     *rdd.Lineage
	ctx     context.Context // cancelled when the job ends: its running tasks stop
	cancel  context.CancelFunc
	tasks   sync.WaitGroup // its running tasks
	done    chan JobDone   // receives the job's end, once
	settled bool           // done has been sent
}

// ShellConfig configures a Shell.
type ShellConfig struct {
	MaxAttempts int // per task; default 4
	// OnTask, if set, is called once per task attempt that ended, on the
	// attempt's goroutine with no lock held, concurrently for different
	// attempts. It must return quickly and never block (post to a queue
	// that drops when full): the attempt's slot is freed only after it.
	// Shell.SetOnTask sets it later.
	OnTask   func(TaskEvent)
	Executor Executor // default GoExecutor{}
	// Prefer and Pin are the core's placement hooks (Core.Prefer,
	// Core.Pin), given the task's job's lineage too.
	Prefer func(t Task, lin *rdd.Lineage) []string
	Pin    func(t Task, lin *rdd.Lineage) string
	// Reserved is a worker that runs only pinned tasks (Core.Reserved).
	Reserved string
	// Speculation configures speculative copies of stragglers
	// (Core.Speculation); off unless Enabled. Zero fields take Spark's
	// defaults.
	Speculation Speculation
	// Speculate, if set, reports whether a task may be speculated at all
	// (Core.Speculate), given its job's lineage too.
	Speculate func(t Task, lin *rdd.Lineage) bool
	// Clock times tasks and ticks the core; default the wall clock.
	Clock clock.Clock
	// OnExclude, if set, is told of each straggler's worker the core
	// excludes (Exclude), with the shell's lock held: it must return
	// quickly (log it).
	OnExclude func(Exclude)
}

// NewShell returns a shell with no workers.
func NewShell(cfg ShellConfig) *Shell {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Executor == nil {
		cfg.Executor = GoExecutor{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	s := &Shell{exec: cfg.Executor, clk: cfg.Clock, core: NewCore(cfg.MaxAttempts), jobs: map[int]*shellJob{}, onExclude: cfg.OnExclude}
	s.SetOnTask(cfg.OnTask)
	s.core.Reserved = cfg.Reserved
	if cfg.Speculation.Enabled {
		cfg.Speculation = cfg.Speculation.WithDefaults()
		s.spec, s.interval = true, cfg.Speculation.Interval
		s.cancels = map[taskKey]context.CancelCauseFunc{}
	}
	s.core.Speculation = cfg.Speculation
	// The core calls its hooks under s.mu, while the job is in s.jobs.
	if cfg.Prefer != nil {
		s.core.Prefer = func(t Task) []string {
			if sj := s.jobs[t.Job]; sj != nil {
				return cfg.Prefer(t, sj.lin)
			}
			return nil
		}
	}
	if cfg.Pin != nil {
		s.core.Pin = func(t Task) string {
			if sj := s.jobs[t.Job]; sj != nil {
				return cfg.Pin(t, sj.lin)
			}
			return ""
		}
	}
	if cfg.Speculate != nil {
		s.core.Speculate = func(t Task) bool {
			if sj := s.jobs[t.Job]; sj != nil {
				return cfg.Speculate(t, sj.lin)
			}
			return false
		}
	}
	return s
}

// SetOnTask sets (nil: removes) the hook called for every task attempt that
// ends (ShellConfig.OnTask). Safe to call at any time.
func (s *Shell) SetOnTask(f func(TaskEvent)) {
	if f == nil {
		s.onTask.Store(nil)
		return
	}
	s.onTask.Store(&f)
}

// SetOnJob sets the hook told of every job's submission and end (nil: none).
// It runs on the submitting goroutine and must return quickly.
func (s *Shell) SetOnJob(f func(JobEvent)) {
	if f == nil {
		s.onJob.Store(nil)
		return
	}
	s.onJob.Store(&f)
}

// now reads the clock if anyone needs the time: the core (speculation) or
// OnTask. Otherwise it is the zero time, which the core takes as no news.
func (s *Shell) now() time.Time {
	if s.spec || s.onTask.Load() != nil {
		return s.clk.Now()
	}
	return time.Time{}
}

// Local is the local[N] deployment: a Shell whose one worker is this process.
type Local = Shell

// LocalConfig configures a Local runner.
type LocalConfig struct {
	Slots       int // concurrent tasks; default 1
	MaxAttempts int // per task; default 4
	OnTask      func(TaskEvent)
	Clock       clock.Clock // times tasks for OnTask; default the wall clock
}

// LocalWorker is the worker name of this process in a shell.
const LocalWorker = "local"

// NewLocal returns a runner with cfg.Slots task slots in this process. With
// one worker it never speculates.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	s := NewShell(ShellConfig{MaxAttempts: cfg.MaxAttempts, OnTask: cfg.OnTask, Clock: cfg.Clock})
	s.AddWorker(LocalWorker, cfg.Slots)
	return s
}

// AddWorker adds a worker with slots task slots; queued tasks may start on it.
func (s *Shell) AddWorker(id string, slots int) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.act(s.core.AddWorker(now, id, slots))
}

// LoseWorker removes a worker: its running tasks and the map outputs it held
// are run again elsewhere (Core.LoseWorker).
func (s *Shell) LoseWorker(id string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.act(s.core.LoseWorker(now, id))
}

// RunJob implements rdd.JobRunner. It returns when the job has ended and
// its tasks have stopped (killed speculative attempts included); the tasks
// of a failed or cancelled job still running are cancelled through their
// context.
func (s *Shell) RunJob(ctx context.Context, job *rdd.Job) ([]any, error) {
	jctx, cancel := context.WithCancel(ctx)
	sj := &shellJob{job: job, lin: rdd.IndexLineage(job.Final), ctx: jctx, cancel: cancel, done: make(chan JobDone, 1)}
	now := s.now()
	s.mu.Lock()
	s.next++
	id := s.next
	s.jobs[id] = sj
	s.act(s.core.Submit(now, id, job))
	s.mu.Unlock()
	onJob := s.onJob.Load()
	var start time.Time
	if onJob != nil {
		start = s.clk.Now()
		(*onJob)(JobEvent{Job: id, Name: job.Name, Final: job.Final.ID, Start: start})
	}
	var d JobDone
	select {
	case d = <-sj.done:
	case <-ctx.Done():
		now := s.now()
		s.mu.Lock()
		if !sj.settled {
			s.act(s.core.Cancel(now, id))
			s.settle(id, sj, JobDone{Job: id, Err: ctx.Err()})
		}
		s.mu.Unlock()
		d = <-sj.done
	}
	cancel()
	sj.tasks.Wait()
	if onJob != nil {
		(*onJob)(JobEvent{Job: id, Name: job.Name, Final: job.Final.ID, Start: start, End: s.clk.Now(), Err: d.Err})
	}
	return d.Results, d.Err
}

// act carries out the core's decisions, then starts or stops the tick
// goroutine as the core wants; s.mu is held.
func (s *Shell) act(ds []Decision) {
	for _, d := range ds {
		switch d := d.(type) {
		case Run:
			s.start(d)
		case Kill:
			s.kill(d)
		case JobDone:
			if sj := s.jobs[d.Job]; sj != nil {
				s.settle(d.Job, sj, d)
			}
		case Exclude:
			if s.onExclude != nil {
				s.onExclude(d)
			}
		}
	}
	if s.spec {
		s.ticking()
	}
}

// start runs a task attempt on its own goroutine; s.mu is held.
func (s *Shell) start(d Run) {
	sj := s.jobs[d.Task.Job]
	sj.tasks.Add(1)
	if !s.spec {
		// Nothing kills a task: it shares the job's context.
		go s.run(sj.ctx, sj, nil, d.Task, d.Worker, d.Start, d.Speculative)
		return
	}
	// Its own context, which Kill cancels.
	ctx, cancel := context.WithCancelCause(sj.ctx)
	s.cancels[keyOf(d.Task)] = cancel
	go s.run(ctx, sj, cancel, d.Task, d.Worker, d.Start, d.Speculative)
}

// kill cancels a running attempt's context; s.mu is held.
func (s *Shell) kill(d Kill) {
	if cancel := s.cancels[keyOf(d.Task)]; cancel != nil {
		cancel(ErrKilled)
	}
}

// ticking starts or stops the tick goroutine as the core wants; s.mu is
// held.
func (s *Shell) ticking() {
	switch want := s.core.WantsTicks(); {
	case want && s.ticker == nil:
		ctx, cancel := context.WithCancel(context.Background())
		s.ticker = cancel
		go s.tick(ctx)
	case !want && s.ticker != nil:
		s.ticker()
		s.ticker = nil
	}
}

// tick feeds the core a Tick every interval of the shell's clock until ctx
// is cancelled (act stops it when the core no longer wants ticks).
func (s *Shell) tick(ctx context.Context) {
	for {
		if err := s.clk.WaitUntil(ctx, s.clk.Now().Add(s.interval)); err != nil {
			return
		}
		now := s.clk.Now()
		s.mu.Lock()
		if ctx.Err() == nil {
			s.act(s.core.Tick(now))
		}
		s.mu.Unlock()
	}
}

// settle ends job id with d; s.mu is held.
func (s *Shell) settle(id int, sj *shellJob, d JobDone) {
	delete(s.jobs, id)
	sj.settled = true
	sj.cancel()
	sj.done <- d
}

// run executes one task attempt (a Run decision's fields: passed apart, as
// a Run too big for the go statement to copy would cost an allocation) and
// feeds its end to the core. ctx is the attempt's context, cancel (nil
// without speculation) releases it.
func (s *Shell) run(ctx context.Context, sj *shellJob, cancel context.CancelCauseFunc, t Task, worker string, start time.Time, speculative bool) {
	defer sj.tasks.Done()
	res, fig, err := s.exec.Execute(ctx, worker, t, sj.job, sj.lin)
	now := s.now()
	if f := s.onTask.Load(); f != nil {
		report(*f, ctx, cancel != nil, &t, worker, start, speculative, now, &fig, err)
	}
	s.mu.Lock()
	if cancel != nil {
		s.forget(&t)
	}
	if sj.ctx.Err() != nil && !sj.settled {
		s.abandon(sj, t.Job, now)
	}
	s.act(s.core.TaskEnded(now, t, worker, res, err))
	s.mu.Unlock()
	if cancel != nil {
		cancel(context.Canceled)
	}
}

// forget drops an ended attempt's cancel function; s.mu is held.
func (s *Shell) forget(t *Task) { delete(s.cancels, keyOf(*t)) }

// abandon ends job id, whose caller gave up, at now; s.mu is held. The
// attempt whose end found it so (most likely ended by the cancellation
// itself) is not a failure to retry.
func (s *Shell) abandon(sj *shellJob, id int, now time.Time) {
	s.act(s.core.Cancel(now, id))
	s.settle(id, sj, JobDone{Job: id, Err: sj.ctx.Err()})
}

// report tells f of an attempt that ended at end, having measured fig, with
// err; killable says the shell could kill it (its context is its own). Out
// of run, whose frame every task's goroutine may grow its stack for.
func report(f func(TaskEvent), ctx context.Context, killable bool, t *Task, worker string, start time.Time, speculative bool, end time.Time, fig *rdd.TaskFigures, err error) {
	killed := killable && errors.Is(context.Cause(ctx), ErrKilled)
	f(TaskEvent{Task: *t, Worker: worker, Speculative: speculative, Killed: killed, Start: start, End: end, Figures: *fig, Err: err})
}

// Workers returns the slot accounting of every worker, in the order added.
func (s *Shell) Workers() []WorkerSlots {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Workers()
}

// MapOutputs returns the worker holding each map output of shuffle ("" for
// one not written), numMaps long.
func (s *Shell) MapOutputs(shuffle rdd.ID, numMaps int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Locations(shuffle, numMaps)
}

// MapOutput returns the worker holding map output m of shuffle, or "".
func (s *Shell) MapOutput(shuffle rdd.ID, m int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Locations(shuffle, m+1)[m]
}

// ForgetShuffles implements rdd.ShuffleForgetter: the core drops the map
// output locations of forgotten shuffles.
func (s *Shell) ForgetShuffles(pred func(rdd.ID) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.core.ForgetShuffles(pred)
}
