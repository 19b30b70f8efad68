package sched

import (
	"context"
	"sync"

	"github.com/dstream/dstream/rdd"
)

// TaskEvent describes a finished task attempt, for listeners (UI, metrics).
type TaskEvent struct {
	Task Task
	Err  error
}

// Local is the local[N] deployment's shell around the scheduler's Core: one
// worker, this process, with N slots; tasks run as goroutines and execute
// their specs against the job's lineage (or the job's Func, for a job whose
// result kind is not named). It has no goroutine of its own: RunJob and the
// tasks feed the core under a lock and act on its decisions.
type Local struct {
	onTask func(TaskEvent)
	slots  int

	mu   sync.Mutex
	core *Core
	jobs map[int]*localJob
	next int
}

// localJob is a job running on a Local.
type localJob struct {
	job     *rdd.Job
	lin     *rdd.Lineage
	ctx     context.Context // cancelled when the job ends: its running tasks stop
	cancel  context.CancelFunc
	tasks   sync.WaitGroup // its running tasks
	done    chan JobDone   // receives the job's end, once
	settled bool           // done has been sent
}

// LocalConfig configures a Local runner.
type LocalConfig struct {
	Slots       int // concurrent tasks; default 1
	MaxAttempts int // per task; default 4
	OnTaskEnd   func(TaskEvent)
}

// localWorker is the one worker of a Local: this process.
const localWorker = "local"

// NewLocal returns a runner with cfg.Slots task slots.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	l := &Local{onTask: cfg.OnTaskEnd, slots: cfg.Slots, core: NewCore(cfg.MaxAttempts), jobs: map[int]*localJob{}}
	l.core.AddWorker(localWorker, cfg.Slots)
	return l
}

// Slots returns the number of task slots.
func (l *Local) Slots() int { return l.slots }

// RunJob implements rdd.JobRunner. It returns when the job has ended and
// its tasks have stopped; the tasks of a failed or cancelled job still
// running are cancelled through their context.
func (l *Local) RunJob(ctx context.Context, job *rdd.Job) ([]any, error) {
	jctx, cancel := context.WithCancel(ctx)
	lj := &localJob{job: job, lin: rdd.IndexLineage(job.Final), ctx: jctx, cancel: cancel, done: make(chan JobDone, 1)}
	l.mu.Lock()
	l.next++
	id := l.next
	l.jobs[id] = lj
	l.act(l.core.Submit(id, job))
	l.mu.Unlock()
	var d JobDone
	select {
	case d = <-lj.done:
	case <-ctx.Done():
		l.mu.Lock()
		if !lj.settled {
			l.act(l.core.Cancel(id))
			l.settle(id, lj, JobDone{Job: id, Err: ctx.Err()})
		}
		l.mu.Unlock()
		d = <-lj.done
	}
	cancel()
	lj.tasks.Wait()
	return d.Results, d.Err
}

// act carries out the core's decisions; l.mu is held.
func (l *Local) act(ds []Decision) {
	for _, d := range ds {
		switch d := d.(type) {
		case Run:
			lj := l.jobs[d.Task.Job]
			lj.tasks.Add(1)
			go l.run(lj, d.Task)
		case JobDone:
			if lj := l.jobs[d.Job]; lj != nil {
				l.settle(d.Job, lj, d)
			}
		}
	}
}

// settle ends job id with d; l.mu is held.
func (l *Local) settle(id int, lj *localJob, d JobDone) {
	delete(l.jobs, id)
	lj.settled = true
	lj.cancel()
	lj.done <- d
}

// run executes one task and feeds its end to the core.
func (l *Local) run(lj *localJob, t Task) {
	defer lj.tasks.Done()
	tc := rdd.NewTaskContext(lj.ctx, t.Job, t.Stage, t.Partition(), t.Attempt())
	var res any
	var err error
	if t.IsMap() || lj.job.Kind.Named() {
		res, err = lj.lin.Execute(tc, t.Spec)
	} else {
		res, err = rdd.RunTask(tc, func() (any, error) { return lj.job.Func(tc, t.Partition()) })
	}
	if l.onTask != nil {
		l.onTask(TaskEvent{Task: t, Err: err})
	}
	l.mu.Lock()
	if lj.ctx.Err() != nil && !lj.settled {
		// The caller gave up: the job ends now, and this end (most likely
		// the cancellation itself) is not a failure to retry.
		l.act(l.core.Cancel(t.Job))
		l.settle(t.Job, lj, JobDone{Job: t.Job, Err: lj.ctx.Err()})
	}
	l.act(l.core.TaskEnded(t, localWorker, res, err))
	l.mu.Unlock()
}

// Workers returns the slot accounting of the one worker, this process.
func (l *Local) Workers() []WorkerSlots {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.Workers()
}

// ForgetShuffles implements rdd.ShuffleForgetter: the core drops the map
// output locations of forgotten shuffles.
func (l *Local) ForgetShuffles(pred func(rdd.ID) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.core.ForgetShuffles(pred)
}
