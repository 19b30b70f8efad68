// Package sched decides how a job runs: it splits the job into stages at
// shuffle boundaries, launches the tasks of each stage once its parents'
// outputs exist, retries failed tasks, and recomputes lost shuffle outputs
// from lineage. JobScheduler is a pure state machine, fed events and returning
// actions, so it is tested deterministically; Local is the goroutine shell that
// runs its tasks on N slots in this process.
package sched

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dstream/dstream/rdd"
)

// MapOutputs tells which map outputs of a shuffle are missing.
type MapOutputs interface {
	Missing(shuffle rdd.ID, numMaps int) []int
}

// Task is one attempt at computing one partition of one stage: the job and
// stage it belongs to, and its spec, which names what to compute (a map
// task writes a shuffle's output; a result task runs the job's result kind,
// or its Func when the kind is not named) with no closure in it.
type Task struct {
	Job   int
	Stage int
	Spec  rdd.TaskSpec
}

// Partition is the partition the task computes.
func (t Task) Partition() int { return t.Spec.Partition }

// Attempt is the task's attempt number.
func (t Task) Attempt() int { return t.Spec.Attempt }

// IsMap reports whether the task writes shuffle output.
func (t Task) IsMap() bool { return t.Spec.Shuffle != nil }

func (t Task) String() string {
	kind := "result"
	if t.IsMap() {
		kind = "map"
	}
	return fmt.Sprintf("task %d.%d.%d#%d (%s)", t.Job, t.Stage, t.Partition(), t.Attempt(), kind)
}

// Action is what the scheduler asks its shell to do: Launch or Done.
type Action interface{ isAction() }

// Launch asks the shell to run a task.
type Launch struct{ Task Task }

// Done reports that the job ended: Results in the order of the job's
// partitions, or Err.
type Done struct {
	Results []any
	Err     error
}

func (Launch) isAction() {}
func (Done) isAction()   {}

type stage struct {
	id      int
	node    *rdd.Node
	shuffle *rdd.ShuffleDep // nil for the result stage
	parents []*stage

	attempts int          // how many times the stage was submitted
	running  bool         // tasks launched and not all done
	pending  map[int]bool // partitions still to finish in the current run
	tries    map[int]int  // task attempts per partition
	relaunch map[int]int  // attempts per partition that ran again on a lost worker's behalf
}

// JobScheduler runs one job. It is not safe for concurrent use: the shell
// feeds it events one at a time.
type JobScheduler struct {
	id          int
	job         *rdd.Job
	outputs     MapOutputs
	maxAttempts int

	result   *stage
	byShuf   map[rdd.ID]*stage
	nextID   int
	results  []any
	index    map[int]int  // job partition -> position in results
	done     map[int]bool // job partitions whose result is in
	finished bool
}

// NewJob returns a scheduler for job. maxAttempts bounds the attempts of each
// task and the resubmissions of each stage (Spark uses 4).
func NewJob(id int, job *rdd.Job, outputs MapOutputs, maxAttempts int) *JobScheduler {
	if maxAttempts <= 0 {
		maxAttempts = 4
	}
	j := &JobScheduler{id: id, job: job, outputs: outputs, maxAttempts: maxAttempts, byShuf: make(map[rdd.ID]*stage)}
	j.results = make([]any, len(job.Partitions))
	j.index = make(map[int]int, len(job.Partitions))
	j.done = make(map[int]bool, len(job.Partitions))
	for i, p := range job.Partitions {
		j.index[p] = i
	}
	j.result = j.newStage(job.Final, nil)
	return j
}

func (j *JobScheduler) newStage(n *rdd.Node, dep *rdd.ShuffleDep) *stage {
	s := &stage{id: j.nextID, node: n, shuffle: dep, tries: make(map[int]int), relaunch: make(map[int]int)}
	j.nextID++
	s.parents = j.parentStages(n)
	return s
}

// parentStages walks n's narrow lineage to the shuffle dependencies that bound its stage.
func (j *JobScheduler) parentStages(n *rdd.Node) []*stage {
	var parents []*stage
	seen := map[*rdd.Node]bool{}
	var walk func(*rdd.Node)
	walk = func(n *rdd.Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range n.Deps() {
			if sd, ok := d.(*rdd.ShuffleDep); ok {
				parents = append(parents, j.mapStage(sd))
				continue
			}
			walk(rdd.ParentOf(d))
		}
	}
	walk(n)
	return parents
}

func (j *JobScheduler) mapStage(dep *rdd.ShuffleDep) *stage {
	if s, ok := j.byShuf[dep.ID]; ok {
		return s
	}
	s := j.newStage(dep.Parent, dep)
	j.byShuf[dep.ID] = s
	return s
}

// missing lists the partitions s still has to compute.
func (j *JobScheduler) missing(s *stage) []int {
	if s.shuffle == nil {
		var ps []int
		for _, p := range j.job.Partitions {
			if !j.done[p] {
				ps = append(ps, p)
			}
		}
		return ps
	}
	return j.outputs.Missing(s.shuffle.ID, s.node.NumPartitions)
}

// Start returns the first tasks to launch.
func (j *JobScheduler) Start() []Action {
	if len(j.job.Partitions) == 0 {
		j.finished = true
		return []Action{Done{Results: nil}}
	}
	return j.submit(j.result, nil)
}

// submit launches s's missing tasks if its parents are complete, or submits
// the parents first.
func (j *JobScheduler) submit(s *stage, acts []Action) []Action {
	if s.running {
		return acts
	}
	var waiting bool
	for _, p := range s.parents {
		if len(j.missing(p)) > 0 {
			waiting = true
			acts = j.submit(p, acts)
		}
	}
	if waiting {
		return acts
	}
	parts := j.missing(s)
	if len(parts) == 0 {
		return j.stageDone(s, acts)
	}
	s.attempts++
	if s.attempts > j.maxAttempts {
		return j.fail(fmt.Errorf("stage %d (%s) was resubmitted %d times: giving up", s.id, s.node, s.attempts-1), acts)
	}
	s.running = true
	s.pending = make(map[int]bool, len(parts))
	for _, p := range parts {
		s.pending[p] = true
		acts = append(acts, Launch{j.task(s, p)})
	}
	return acts
}

// task names the current attempt at partition p of stage s.
func (j *JobScheduler) task(s *stage, p int) Task {
	spec := rdd.TaskSpec{Dataset: s.node.ID, Partition: p, Attempt: s.tries[p]}
	if s.shuffle != nil {
		id := s.shuffle.ID
		spec.Shuffle = &id
	} else {
		spec.Result = j.job.Kind
	}
	return Task{Job: j.id, Stage: s.id, Spec: spec}
}

func (j *JobScheduler) stageByID(id int) *stage {
	if j.result.id == id {
		return j.result
	}
	for _, s := range j.byShuf {
		if s.id == id {
			return s
		}
	}
	return nil
}

// TaskEnded feeds the outcome of a task: its result (result tasks) or err.
func (j *JobScheduler) TaskEnded(t Task, result any, err error) []Action {
	if j.finished {
		return nil
	}
	s := j.stageByID(t.Stage)
	if s == nil || !s.running || !s.pending[t.Partition()] || t.Attempt() != s.tries[t.Partition()] {
		return nil // a stale attempt
	}
	if err != nil {
		var ff *rdd.FetchFailedError
		if errors.As(err, &ff) {
			// A parent's output vanished: stop this stage and recompute
			// the missing outputs from lineage, then run it again.
			s.running = false
			s.pending = nil
			return j.submit(s, nil)
		}
		s.tries[t.Partition()]++
		if s.tries[t.Partition()]-s.relaunch[t.Partition()] >= j.maxAttempts {
			return j.fail(fmt.Errorf("%s failed %d times, most recently: %w", t, j.maxAttempts, err), nil)
		}
		return []Action{Launch{j.task(s, t.Partition())}}
	}
	delete(s.pending, t.Partition())
	if s.shuffle == nil {
		j.results[j.index[t.Partition()]] = result
		j.done[t.Partition()] = true
	}
	if len(s.pending) > 0 {
		return nil
	}
	s.running = false
	return j.stageDone(s, nil)
}

// Relaunch runs a task again under a new attempt number because the worker
// running it was lost: the attempt does not count against the task's
// failures. A task that is not the current attempt is stale: nothing to do.
func (j *JobScheduler) Relaunch(t Task) []Action {
	if j.finished {
		return nil
	}
	s := j.stageByID(t.Stage)
	if s == nil || !s.running || !s.pending[t.Partition()] || t.Attempt() != s.tries[t.Partition()] {
		return nil
	}
	s.tries[t.Partition()]++
	s.relaunch[t.Partition()]++
	return []Action{Launch{j.task(s, t.Partition())}}
}

// stageDone moves on from a stage whose tasks all finished.
func (j *JobScheduler) stageDone(s *stage, acts []Action) []Action {
	if s == j.result {
		if len(j.missing(s)) == 0 {
			j.finished = true
			return append(acts, Done{Results: j.results})
		}
		return j.submit(s, acts)
	}
	// Submit every stage that was waiting on this one, in ID order so the
	// launch order is deterministic.
	var waiting []*stage
	for _, c := range append(j.stages(), j.result) {
		if !c.running && slices.Contains(c.parents, s) {
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b *stage) int { return a.id - b.id })
	for _, c := range waiting {
		if j.finished {
			break
		}
		if c == j.result || j.needed(c) {
			acts = j.submit(c, acts)
		}
	}
	return acts
}

// needed reports whether a map stage is an ancestor of the result stage that
// still has missing output.
func (j *JobScheduler) needed(s *stage) bool { return len(j.missing(s)) > 0 }

func (j *JobScheduler) stages() []*stage {
	out := make([]*stage, 0, len(j.byShuf))
	for _, s := range j.byShuf {
		out = append(out, s)
	}
	return out
}

func (j *JobScheduler) fail(err error, acts []Action) []Action {
	j.finished = true
	return append(acts, Done{Err: err})
}

// Finished reports whether the job has ended.
func (j *JobScheduler) Finished() bool { return j.finished }
