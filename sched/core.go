package sched

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dstream/dstream/rdd"
)

// Core is the scheduler's pure core, one for a deployment: it knows the
// workers and their free slots, the jobs running (each a JobScheduler, which
// decides stages and retries), the tasks queued and running, and where every
// shuffle's map outputs live. It is fed events (a worker added or lost, a job
// submitted, a task ended, which says when a map output was found lost; shuffles forgotten) and returns
// decisions (run this task on that worker, this job is done). It does no I/O
// and reads no clock or mutable store, so transcripts test it
// deterministically; Local is its goroutine shell for one process, and a
// cluster master will be another.
//
// Placement: a task goes to the first free worker among its preferred ones
// (the process that holds its input, as Prefer says), else to the free
// worker with the most free slots (ties: the earliest added); tasks wait in
// submission order when no slot is free.
type Core struct {
	maxAttempts int
	// Prefer returns the workers that hold a task's input (nil: any). Set
	// by the shell; the manifest's block locations will feed it.
	Prefer func(t Task) []string
	// Pin returns the only worker that may run a task ("": any). Set by a
	// cluster's shell for tasks only the submitting process can run (a
	// job whose function is a closure, datasets a worker cannot rebuild).
	Pin func(t Task) string
	// Reserved names a worker that runs only the tasks pinned to it (a
	// cluster's master), or "".
	Reserved string

	workers map[string]*worker
	order   []string // workers in the order they were added
	jobs    map[int]*coreJob
	queue   []Task              // launchable, waiting for a slot, in order
	running map[taskKey]string  // task -> worker
	outputs map[rdd.ID]*mapOuts // shuffle -> where its map outputs live
}

type worker struct {
	id          string
	slots, free int
}

type coreJob struct {
	js *JobScheduler
}

type taskKey struct{ job, stage, part, attempt int }

func keyOf(t Task) taskKey { return taskKey{t.Job, t.Stage, t.Partition(), t.Attempt()} }

// mapOuts records the worker holding each map partition's output.
type mapOuts struct{ at map[int]string }

// Decision is what the core asks its shell to do: Run or JobDone.
type Decision interface{ isDecision() }

// Run asks the shell to run a task on a worker.
type Run struct {
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

func (Run) isDecision()     {}
func (JobDone) isDecision() {}

// ErrWorkerLost is the error of a task whose worker was lost; such a task is
// run again without counting against its attempts.
var ErrWorkerLost = errors.New("worker lost")

// NewCore returns a core with no workers. maxAttempts bounds each task's
// attempts and each stage's resubmissions (Spark uses 4).
func NewCore(maxAttempts int) *Core {
	return &Core{maxAttempts: maxAttempts, workers: map[string]*worker{}, jobs: map[int]*coreJob{},
		running: map[taskKey]string{}, outputs: map[rdd.ID]*mapOuts{}}
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
func (c *Core) AddWorker(id string, slots int) []Decision {
	if w, ok := c.workers[id]; ok {
		w.free += slots - w.slots
		w.slots = slots
	} else {
		c.workers[id] = &worker{id: id, slots: slots, free: slots}
		c.order = append(c.order, id)
	}
	return c.place(nil)
}

// LoseWorker removes a worker: the map outputs it held are gone (the stages
// that need them recompute them from lineage), and its running tasks run
// again elsewhere, their attempts not counted.
func (c *Core) LoseWorker(id string) []Decision {
	if _, ok := c.workers[id]; !ok {
		return nil
	}
	delete(c.workers, id)
	c.order = slices.DeleteFunc(c.order, func(w string) bool { return w == id })
	for _, outs := range c.outputs {
		for m, w := range outs.at {
			if w == id {
				delete(outs.at, m)
			}
		}
	}
	var lost []Task
	for k, w := range c.running {
		if w == id {
			lost = append(lost, c.taskOf(k))
		}
	}
	slices.SortFunc(lost, func(a, b Task) int { return compareKeys(keyOf(a), keyOf(b)) })
	var ds []Decision
	for _, t := range lost {
		delete(c.running, keyOf(t))
		ds = c.feed(t, nil, fmt.Errorf("%w: %s", ErrWorkerLost, id), ds)
	}
	return c.place(ds)
}

// taskOf rebuilds the task a running key stands for.
func (c *Core) taskOf(k taskKey) Task {
	j := c.jobs[k.job]
	s := j.js.stageByID(k.stage)
	t := j.js.task(s, k.part)
	t.Spec.Attempt = k.attempt
	return t
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
func (c *Core) Submit(id int, job *rdd.Job) []Decision {
	js := NewJob(id, job, c, c.maxAttempts)
	c.jobs[id] = &coreJob{js: js}
	return c.place(c.absorb(id, js.Start(), nil))
}

// TaskEnded feeds the end of a task on worker: its result (result tasks) or
// its error. A map task's success records its output on the worker.
func (c *Core) TaskEnded(t Task, worker string, result any, err error) []Decision {
	k := keyOf(t)
	w, ok := c.running[k]
	if !ok || w != worker {
		return nil // not running there (its worker was lost meanwhile): stale
	}
	delete(c.running, k)
	if wk := c.workers[worker]; wk != nil {
		wk.free++
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
	}
	return c.place(c.feed(t, result, err, nil))
}

// Cancel ends job id without a JobDone (its submitter stopped waiting): its
// queued tasks are dropped; its running tasks keep their slots until they
// end, and their ends are ignored.
func (c *Core) Cancel(id int) []Decision {
	delete(c.jobs, id)
	c.queue = slices.DeleteFunc(c.queue, func(t Task) bool { return t.Job == id })
	return c.place(nil)
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

// absorb queues a job's launches and reports its end.
func (c *Core) absorb(job int, acts []Action, ds []Decision) []Decision {
	for _, a := range acts {
		switch a := a.(type) {
		case Launch:
			c.queue = append(c.queue, a.Task)
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
	for i, t := range c.queue {
		w, pinned := c.pick(t)
		if w == nil {
			if pinned {
				rest = append(rest, t)
				continue
			}
			rest = append(rest, c.queue[i:]...)
			break
		}
		w.free--
		c.running[keyOf(t)] = w.id
		ds = append(ds, Run{Task: t, Worker: w.id})
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
	if c.Prefer != nil {
		for _, id := range c.Prefer(t) {
			if w := c.workers[id]; w != nil && w.free > 0 && id != c.Reserved {
				return w
			}
		}
	}
	var best *worker
	for _, id := range c.order {
		if w := c.workers[id]; w.free > 0 && id != c.Reserved && (best == nil || w.free > best.free) {
			best = w
		}
	}
	return best
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
		out = append(out, WorkerSlots{ID: id, Slots: w.slots, Free: w.free})
	}
	return out
}

// WorkerSlots is a worker's slot accounting.
type WorkerSlots struct {
	ID          string
	Slots, Free int
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
