package engine

import (
	"time"

	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/sched"
)

// observeScheduler posts the scheduler's jobs and task attempts to the
// listener bus, for the UI and metrics. Posting never blocks: the bus
// drops task events first when its listeners fall behind, never the
// engine's own work.
func (c *Engine) observeScheduler() {
	if c.shell == nil {
		return
	}
	c.shell.SetOnTask(func(e sched.TaskEvent) {
		if e.Err != nil && !e.Killed {
			c.log.Info("task attempt failed", "task", e.Task.String(), "worker", e.Worker, "err", e.Err)
		}
		c.bus.Post(listener.TaskEnded{
			Time: intervalOf(e.Task.Spec.Dataset.Time), Job: e.Task.Job, Stage: e.Task.Stage,
			Partition: e.Task.Partition(), Attempt: e.Task.Attempt(), Map: e.Task.IsMap(),
			Speculative: e.Speculative, Worker: e.Worker, Start: e.Start, End: e.End,
			Records: e.Figures.RecordsWritten, RecordsRead: e.Figures.RecordsRead,
			ShuffleReadBytes: e.Figures.ShuffleReadBytes, ShuffleWriteBytes: e.Figures.ShuffleWriteBytes,
			ShuffleRemoteReads: e.Figures.ShuffleRemoteReads, ShufflePushes: e.Figures.ShufflePushes, Err: e.Err,
		})
	})
	c.shell.SetOnJob(func(e sched.JobEvent) {
		t := intervalOf(e.Final.Time)
		op := c.outputRunning(t)
		if e.End.IsZero() {
			c.bus.Post(listener.JobStarted{Time: t, OutputOp: op, Job: e.Job, Name: e.Name, Start: e.Start})
			return
		}
		c.bus.Post(listener.JobEnded{Time: t, OutputOp: op, Job: e.Job, Name: e.Name, Start: e.Start, End: e.End, Err: e.Err})
	})
}

// intervalOf is the interval time of a dataset ID's time (0: a dataset
// outside the intervals, a static one).
func intervalOf(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// outputRunning returns the output operation the interval runner is running
// for interval t, or -1.
func (c *Engine) outputRunning(t time.Time) int {
	cur := c.curOutput.Load()
	if cur == nil || !cur.t.Equal(t) {
		return -1
	}
	return cur.op
}

// runningOutput is the output operation the runner runs, and its interval.
type runningOutput struct {
	t  time.Time
	op int
}
