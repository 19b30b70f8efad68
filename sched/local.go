package sched

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/dstream/dstream/rdd"
)

// TaskEvent describes a finished task attempt, for listeners (UI, metrics).
type TaskEvent struct {
	Task Task
	Err  error
}

// Local runs jobs' tasks on a fixed number of slots in this process:
// the local[N] deployment.
type Local struct {
	slots       chan struct{}
	outputs     MapOutputs
	maxAttempts int
	onTask      func(TaskEvent)
	nextJob     atomic.Int64
}

// LocalConfig configures a Local runner.
type LocalConfig struct {
	Slots       int        // concurrent tasks; default 1
	Outputs     MapOutputs // the shuffle store
	MaxAttempts int        // per task; default 4
	OnTaskEnd   func(TaskEvent)
}

// NewLocal returns a runner with cfg.Slots task slots.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	return &Local{slots: make(chan struct{}, cfg.Slots), outputs: cfg.Outputs, maxAttempts: cfg.MaxAttempts, onTask: cfg.OnTaskEnd}
}

// Slots returns the number of task slots.
func (l *Local) Slots() int { return cap(l.slots) }

type ended struct {
	task   Task
	result any
	err    error
}

// RunJob implements rdd.JobRunner. It returns when the job has ended; tasks of
// a failed job still running are cancelled through their context.
func (l *Local) RunJob(ctx context.Context, job *rdd.Job) ([]any, error) {
	ctx, cancel := context.WithCancel(ctx)
	id := int(l.nextJob.Add(1))
	js := NewJob(id, job, l.outputs, l.maxAttempts)
	events := make(chan ended, 64)
	var running sync.WaitGroup
	// On return, cancel first: tasks still running (of a failed job) stop
	// waiting to report, and then they are waited for.
	defer func() {
		cancel()
		running.Wait()
	}()
	lin := rdd.IndexLineage(job.Final)
	acts := js.Start()
	for {
		for _, a := range acts {
			switch a := a.(type) {
			case Done:
				return a.Results, a.Err
			case Launch:
				running.Add(1)
				go func(t Task) {
					defer running.Done()
					r, err := l.runTask(ctx, job, lin, t)
					if l.onTask != nil {
						l.onTask(TaskEvent{Task: t, Err: err})
					}
					select {
					case events <- ended{t, r, err}:
					case <-ctx.Done():
					}
				}(a.Task)
			}
		}
		select {
		case e := <-events:
			acts = js.TaskEnded(e.task, e.result, e.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *Local) runTask(ctx context.Context, job *rdd.Job, lin *rdd.Lineage, t Task) (any, error) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.slots }()
	tc := rdd.NewTaskContext(ctx, t.Job, t.Stage, t.Partition(), t.Attempt())
	if t.IsMap() || job.Kind.Named() {
		return lin.Execute(tc, t.Spec)
	}
	return rdd.RunTask(tc, func() (any, error) { return job.Func(tc, t.Partition()) })
}
