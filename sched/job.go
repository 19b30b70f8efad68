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

// Action is what the scheduler asks its shell to do: Launch, Supersede or
// Done.
type Action interface{ isAction() }

// Launch asks the shell to run a task.
type Launch struct{ Task Task }

// Supersede says a task attempt still running is no longer needed: another
// attempt of its partition (its speculative copy, or the original it
// copied) succeeded. Its end will be ignored; the shell may stop it.
type Supersede struct{ Task Task }

// Done reports that the job ended: Results in the order of the job's
// partitions, or Err.
type Done struct {
	Results []any
	Err     error
}

func (Launch) isAction()    {}
func (Supersede) isAction() {}
func (Done) isAction()      {}

type stage struct {
	id      int
	node    *rdd.Node
	shuffle *rdd.ShuffleDep // nil for the result stage
	parents []*stage

	attempts int          // how many times the stage was submitted
	running  bool         // tasks launched and not all done
	pending  map[int]bool // partitions still to finish in the current run
	tasks    int          // how many tasks the current run launched (Spark's task set)

	parts map[int]attempts // by partition; none for a partition in the state firstAttempt
}

// attempts is the attempt bookkeeping of one partition of a stage. Every
// attempt in flight has its own number, so per-attempt names (an output's
// part file) never collide: cur is the number a plain (re)launch uses, next
// the lowest number never used. A launch after a failure or a lost worker
// takes next, and so does a launch after a stop or a success that left an
// attempt in flight (they move cur to next); a stage run again after its
// attempts all ended reuses cur.
type attempts struct {
	cur, next int
	failures  int    // counted failures (maxAttempts bounds them)
	live      [2]int // while pending: the attempts whose end is awaited, the original and its copy
	nlive     int    // how many of live are
	copied    bool   // a speculative copy ran since the last launch
}

// firstAttempt is a partition's state before its first launch and after it
// (attempt 0 live): stages keep none of these, so a run without failures
// or copies writes no bookkeeping.
var firstAttempt = attempts{next: 1, nlive: 1}

// end removes attempt n from the live ones.
func (a *attempts) end(n int) {
	for i := range a.nlive {
		if a.live[i] == n {
			copy(a.live[i:a.nlive], a.live[i+1:a.nlive])
			a.nlive--
			return
		}
	}
}

// part returns the bookkeeping of partition p of s.
func (s *stage) part(p int) attempts {
	if a, ok := s.parts[p]; ok {
		return a
	}
	return firstAttempt
}

// setPart stores the bookkeeping of partition p of s.
func (s *stage) setPart(p int, a attempts) {
	switch {
	case a == firstAttempt:
		delete(s.parts, p)
	case s.parts == nil:
		s.parts = map[int]attempts{p: a}
	default:
		s.parts[p] = a
	}
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
	s := &stage{id: j.nextID, node: n, shuffle: dep}
	j.nextID++
	s.parents = j.parentStages(n)
	return s
}

// parentStages walks n's narrow lineage to the shuffle dependencies that bound its stage.
func (j *JobScheduler) parentStages(n *rdd.Node) []*stage {
	deps := rdd.InputShuffles(n)
	parents := make([]*stage, len(deps))
	for i, sd := range deps {
		parents[i] = j.mapStage(sd)
	}
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
	s.tasks = len(parts)
	for _, p := range parts {
		s.pending[p] = true
		acts = append(acts, j.launch(s, p))
	}
	return acts
}

// launch starts a new round of partition p of s: attempt cur, the only one
// live, with no speculative copy yet.
func (j *JobScheduler) launch(s *stage, p int) Action {
	return j.launchAs(s, p, s.part(p))
}

// launchAs launches p from bookkeeping ps: attempt ps.cur.
func (j *JobScheduler) launchAs(s *stage, p int, ps attempts) Action {
	ps.live[0], ps.nlive = ps.cur, 1
	ps.next = max(ps.next, ps.cur+1)
	ps.copied = false
	if ps != firstAttempt || s.parts != nil {
		s.setPart(p, ps)
	}
	return Launch{j.task(s, p, ps.cur)}
}

// relaunch starts p again under a fresh attempt number.
func (j *JobScheduler) relaunch(s *stage, p int, ps attempts) Action {
	ps.cur = ps.next
	return j.launchAs(s, p, ps)
}

// stop ends s's current run early: the attempts still in flight become
// stale, and a later run gives their partitions fresh numbers.
func (j *JobScheduler) stop(s *stage) {
	for p := range s.pending {
		if ps := s.part(p); ps.nlive > 0 {
			ps.cur, ps.nlive = ps.next, 0
			s.setPart(p, ps)
		}
	}
	s.running = false
	s.pending = nil
}

// task names attempt a at partition p of stage s.
func (j *JobScheduler) task(s *stage, p, a int) Task {
	spec := rdd.TaskSpec{Dataset: s.node.ID, Partition: p, Attempt: a}
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

// current reports whether attempt a of partition p is live in s's current
// run: one whose end the scheduler awaits.
func (s *stage) current(p, a int) bool {
	if s == nil || !s.running || !s.pending[p] {
		return false
	}
	ps := s.part(p)
	return ps.live[0] == a && ps.nlive > 0 || ps.live[1] == a && ps.nlive > 1
}

// TaskEnded feeds the outcome of a task: its result (result tasks) or err.
// The first success among a partition's live attempts is its result; the
// other attempts (a speculative copy, or the original it copied) become
// stale. A failure while another attempt of the partition still runs is
// not counted; a failure that leaves none running is, once.
func (j *JobScheduler) TaskEnded(t Task, result any, err error) []Action {
	if j.finished {
		return nil
	}
	s := j.stageByID(t.Stage)
	if !s.current(t.Partition(), t.Attempt()) {
		return nil // a stale attempt
	}
	if err != nil {
		return j.failed(s, t, err)
	}
	p := t.Partition()
	ps := s.part(p)
	ps.end(t.Attempt())
	delete(s.pending, p)
	var acts []Action
	if ps.nlive > 0 {
		acts = j.supersede(s, p, ps)
	}
	if s.shuffle == nil {
		j.results[j.index[p]] = result
		j.done[p] = true
	}
	if len(s.pending) > 0 {
		return acts
	}
	s.running = false
	return j.stageDone(s, acts)
}

// failed handles the failure of t, a live attempt of s.
func (j *JobScheduler) failed(s *stage, t Task, err error) []Action {
	p := t.Partition()
	ps := s.part(p)
	ps.end(t.Attempt())
	var ff *rdd.FetchFailedError
	if errors.As(err, &ff) {
		// A parent's output vanished: stop this stage and recompute the
		// missing outputs from lineage, then run it again.
		s.setPart(p, ps)
		j.stop(s)
		return j.submit(s, nil)
	}
	if ps.nlive > 0 {
		s.setPart(p, ps)
		return nil // its other copy runs on
	}
	ps.failures++
	if ps.failures >= j.maxAttempts {
		return j.fail(fmt.Errorf("%s failed %d times, most recently: %w", t, j.maxAttempts, err), nil)
	}
	return []Action{j.relaunch(s, p, ps)}
}

// supersede retires the attempts of p still live after one succeeded: they
// run on until stopped, so they keep their numbers (cur moves past them).
func (j *JobScheduler) supersede(s *stage, p int, ps attempts) []Action {
	acts := make([]Action, 0, ps.nlive)
	for _, a := range ps.live[:ps.nlive] {
		acts = append(acts, Supersede{j.task(s, p, a)})
	}
	ps.cur, ps.nlive = ps.next, 0
	s.setPart(p, ps)
	return acts
}

// Relaunch runs a task again under a new attempt number because the worker
// running it was lost: the attempt does not count against the task's
// failures. A task that is not a live attempt is stale, and one whose
// partition has another live attempt (a speculative copy, or the original
// of one) needs none: nothing to do.
func (j *JobScheduler) Relaunch(t Task) []Action {
	if j.finished {
		return nil
	}
	s := j.stageByID(t.Stage)
	if !s.current(t.Partition(), t.Attempt()) {
		return nil
	}
	ps := s.part(t.Partition())
	ps.end(t.Attempt())
	if ps.nlive > 0 {
		s.setPart(t.Partition(), ps)
		return nil
	}
	return []Action{j.relaunch(s, t.Partition(), ps)}
}

// Live returns the live attempts of t's partition, live[:n] in launch
// order (t's among them: the original and its speculative copy), or n = 0
// when t is not live: its end would be ignored.
func (j *JobScheduler) Live(t Task) (live [2]int, n int) {
	if j.finished {
		return live, 0
	}
	s := j.stageByID(t.Stage)
	if !s.current(t.Partition(), t.Attempt()) {
		return live, 0
	}
	ps := s.part(t.Partition())
	return ps.live, ps.nlive
}

// CanSpeculate reports whether t may get a speculative copy: it is the only
// live attempt of its partition, and the partition has had no copy since
// it was last launched (one copy per round; a round ends when every
// attempt of the partition has failed or been lost).
func (j *JobScheduler) CanSpeculate(t Task) bool {
	if j.finished {
		return false
	}
	s := j.stageByID(t.Stage)
	if !s.current(t.Partition(), t.Attempt()) {
		return false
	}
	ps := s.part(t.Partition())
	return ps.nlive == 1 && !ps.copied
}

// Speculate returns a speculative copy of t: a new attempt of its
// partition, live beside t; false if t may not be copied (CanSpeculate).
func (j *JobScheduler) Speculate(t Task) (Task, bool) {
	if !j.CanSpeculate(t) {
		return Task{}, false
	}
	s := j.stageByID(t.Stage)
	p := t.Partition()
	ps := s.part(p)
	a := ps.next
	ps.next++
	ps.live[1], ps.nlive = a, 2
	ps.copied = true
	s.setPart(p, ps)
	return j.task(s, p, a), true
}

// TaskSet describes the current run of a running stage (Spark's task set):
// its run number (1 for the stage's first), how many tasks it launched and
// how many of those have succeeded.
type TaskSet struct {
	Stage, Run       int
	Tasks, Succeeded int
}

// TaskSets returns the current runs of the running stages, by stage ID.
func (j *JobScheduler) TaskSets() []TaskSet {
	if j.finished {
		return nil
	}
	var out []TaskSet
	for _, s := range append(j.stages(), j.result) {
		if s.running {
			out = append(out, TaskSet{Stage: s.id, Run: s.attempts, Tasks: s.tasks, Succeeded: s.tasks - len(s.pending)})
		}
	}
	slices.SortFunc(out, func(a, b TaskSet) int { return a.Stage - b.Stage })
	return out
}

// TaskSet returns the current run of stage id, if it is running.
func (j *JobScheduler) TaskSet(id int) (TaskSet, bool) {
	s := j.stageByID(id)
	if j.finished || s == nil || !s.running {
		return TaskSet{}, false
	}
	return TaskSet{Stage: s.id, Run: s.attempts, Tasks: s.tasks, Succeeded: s.tasks - len(s.pending)}, true
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
