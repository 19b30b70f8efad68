package sched

import (
	"context"
	"sync"

	"github.com/dstream/dstream/rdd"
)

// TaskEvent describes a finished task attempt, for listeners (UI, metrics).
type TaskEvent struct {
	Task   Task
	Worker string
	Err    error
}

// Executor runs one task attempt on a worker and returns its result. It is
// the seam between the scheduler and where tasks run: goroutines of this
// process (GoExecutor) or a remote worker (the cluster's). ctx is cancelled
// when the job no longer needs the task.
type Executor interface {
	Execute(ctx context.Context, worker string, t Task, job *rdd.Job, lin *rdd.Lineage) (any, error)
}

// GoExecutor runs tasks as goroutines of this process: a named task from
// its spec against the job's lineage, else the job's Func.
type GoExecutor struct {
	// Remote, if set, is given to every task, for what other processes hold.
	Remote rdd.Remote
	// Location is this process's peer address ("" in local[N]).
	Location string
}

// Execute implements Executor.
func (e GoExecutor) Execute(ctx context.Context, _ string, t Task, job *rdd.Job, lin *rdd.Lineage) (any, error) {
	tc := rdd.NewTaskContext(ctx, t.Job, t.Stage, t.Partition(), t.Attempt())
	tc.Remote, tc.Location = e.Remote, e.Location
	if t.IsMap() || job.Kind.Named() {
		return lin.Execute(tc, t.Spec)
	}
	return rdd.RunTask(tc, func() (any, error) { return job.Func(tc, t.Partition()) })
}

// Shell is the scheduler's Core with I/O: it implements rdd.JobRunner, feeds
// the core under a lock and carries out its decisions, running each task on
// its own goroutine through the Executor. It has no goroutine of its own.
// local[N] is a Shell with one worker (this process, N slots) and a
// GoExecutor; a cluster master's shell has a worker per worker process.
type Shell struct {
	onTask func(TaskEvent)
	exec   Executor

	mu   sync.Mutex
	core *Core
	jobs map[int]*shellJob
	next int
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
	OnTaskEnd   func(TaskEvent)
	Executor    Executor // default GoExecutor{}
	// Prefer and Pin are the core's placement hooks (Core.Prefer,
	// Core.Pin), given the task's job's lineage too.
	Prefer func(t Task, lin *rdd.Lineage) []string
	Pin    func(t Task, lin *rdd.Lineage) string
	// Reserved is a worker that runs only pinned tasks (Core.Reserved).
	Reserved string
}

// NewShell returns a shell with no workers.
func NewShell(cfg ShellConfig) *Shell {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Executor == nil {
		cfg.Executor = GoExecutor{}
	}
	s := &Shell{onTask: cfg.OnTaskEnd, exec: cfg.Executor, core: NewCore(cfg.MaxAttempts), jobs: map[int]*shellJob{}}
	s.core.Reserved = cfg.Reserved
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
	return s
}

// Local is the local[N] deployment: a Shell whose one worker is this process.
type Local = Shell

// LocalConfig configures a Local runner.
type LocalConfig struct {
	Slots       int // concurrent tasks; default 1
	MaxAttempts int // per task; default 4
	OnTaskEnd   func(TaskEvent)
}

// LocalWorker is the worker name of this process in a shell.
const LocalWorker = "local"

// NewLocal returns a runner with cfg.Slots task slots in this process.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	s := NewShell(ShellConfig{MaxAttempts: cfg.MaxAttempts, OnTaskEnd: cfg.OnTaskEnd})
	s.AddWorker(LocalWorker, cfg.Slots)
	return s
}

// AddWorker adds a worker with slots task slots; queued tasks may start on it.
func (s *Shell) AddWorker(id string, slots int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.act(s.core.AddWorker(id, slots))
}

// LoseWorker removes a worker: its running tasks and the map outputs it held
// are run again elsewhere (Core.LoseWorker).
func (s *Shell) LoseWorker(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.act(s.core.LoseWorker(id))
}

// RunJob implements rdd.JobRunner. It returns when the job has ended and
// its tasks have stopped; the tasks of a failed or cancelled job still
// running are cancelled through their context.
func (s *Shell) RunJob(ctx context.Context, job *rdd.Job) ([]any, error) {
	jctx, cancel := context.WithCancel(ctx)
	sj := &shellJob{job: job, lin: rdd.IndexLineage(job.Final), ctx: jctx, cancel: cancel, done: make(chan JobDone, 1)}
	s.mu.Lock()
	s.next++
	id := s.next
	s.jobs[id] = sj
	s.act(s.core.Submit(id, job))
	s.mu.Unlock()
	var d JobDone
	select {
	case d = <-sj.done:
	case <-ctx.Done():
		s.mu.Lock()
		if !sj.settled {
			s.act(s.core.Cancel(id))
			s.settle(id, sj, JobDone{Job: id, Err: ctx.Err()})
		}
		s.mu.Unlock()
		d = <-sj.done
	}
	cancel()
	sj.tasks.Wait()
	return d.Results, d.Err
}

// act carries out the core's decisions; s.mu is held.
func (s *Shell) act(ds []Decision) {
	for _, d := range ds {
		switch d := d.(type) {
		case Run:
			sj := s.jobs[d.Task.Job]
			sj.tasks.Add(1)
			go s.run(sj, d.Task, d.Worker)
		case JobDone:
			if sj := s.jobs[d.Job]; sj != nil {
				s.settle(d.Job, sj, d)
			}
		}
	}
}

// settle ends job id with d; s.mu is held.
func (s *Shell) settle(id int, sj *shellJob, d JobDone) {
	delete(s.jobs, id)
	sj.settled = true
	sj.cancel()
	sj.done <- d
}

// run executes one task and feeds its end to the core.
func (s *Shell) run(sj *shellJob, t Task, worker string) {
	defer sj.tasks.Done()
	res, err := s.exec.Execute(sj.ctx, worker, t, sj.job, sj.lin)
	if s.onTask != nil {
		s.onTask(TaskEvent{Task: t, Worker: worker, Err: err})
	}
	s.mu.Lock()
	if sj.ctx.Err() != nil && !sj.settled {
		// The caller gave up: the job ends now, and this end (most likely
		// the cancellation itself) is not a failure to retry.
		s.act(s.core.Cancel(t.Job))
		s.settle(t.Job, sj, JobDone{Job: t.Job, Err: sj.ctx.Err()})
	}
	s.act(s.core.TaskEnded(t, worker, res, err))
	s.mu.Unlock()
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
