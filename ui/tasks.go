package ui

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/dstream/dstream/listener"
)

// DefaultMaxTasksPerBatch bounds the task attempts a Progress keeps for one
// batch unless told otherwise; later ones are counted, not kept.
const DefaultMaxTasksPerBatch = 10_000

// DefaultRetainedTasks bounds the task attempts a Progress keeps over all
// its retained batches unless told otherwise (as Spark's
// spark.ui.retainedTasks): past it the tasks of the oldest batches that
// still have some are dropped, whole, and counted.
const DefaultRetainedTasks = 100_000

// MaxJobsPerBatch bounds the jobs a Progress keeps for one batch; later
// ones are counted, not kept (their tasks still are).
const MaxJobsPerBatch = 1000

// BatchTasks is what GET /api/v1/batches/{batchTime}/tasks returns: the
// jobs the batch's output operations ran, each with its stages and their
// task attempts.
type BatchTasks struct {
	// BatchID ("batchId") is the batch's interval time in Unix ms.
	BatchID int64 `json:"batchId"`
	// NumTasks ("numTasks") counts the task attempts kept for the batch.
	NumTasks int `json:"numTasks"`
	// NumDroppedTasks ("numDroppedTasks") counts those not kept: past the
	// per-batch bound, or dropped with the batch's other tasks to keep
	// within the bound over all batches. Task events the listener bus
	// dropped are not counted here (dstream_listener_events_dropped_total
	// counts them).
	NumDroppedTasks int64 `json:"numDroppedTasks"`
	// NumDroppedJobs ("numDroppedJobs") counts jobs past MaxJobsPerBatch.
	NumDroppedJobs int64 `json:"numDroppedJobs"`
	// Jobs ("jobs") in job ID order.
	Jobs []Job `json:"jobs"`
}

// Job is one job of a batch, in BatchTasks. A job is known from its job
// events or from its tasks alone (when its job events were not posted or
// were dropped): then its name, output operation and times are null and its
// status "unknown".
type Job struct {
	// JobID ("jobId") is the scheduler's ID of the job.
	JobID int `json:"jobId"`
	// Name ("name"), e.g. "count"; null when unknown.
	Name *string `json:"name"`
	// OutputOpID ("outputOpId") is the output operation that ran it; null
	// when unknown.
	OutputOpID *int `json:"outputOpId"`
	// Status ("status"): running, succeeded, failed, or unknown.
	Status string `json:"status"`
	// SubmissionTime ("submissionTime") and CompletionTime
	// ("completionTime"), RFC 3339, and Duration ("duration", ms) between
	// them; null when not known (yet).
	SubmissionTime *string `json:"submissionTime"`
	CompletionTime *string `json:"completionTime"`
	Duration       *int64  `json:"duration"`
	// FailureReason ("failureReason") is a failed job's error.
	FailureReason *string `json:"failureReason"`
	// NumTasks ("numTasks") and NumFailedTasks ("numFailedTasks") count its
	// task attempts kept, and the failed ones among them.
	NumTasks       int `json:"numTasks"`
	NumFailedTasks int `json:"numFailedTasks"`
	// Stages ("stages") in stage ID order.
	Stages []Stage `json:"stages"`
}

// Stage is one stage of a job, in BatchTasks, summing its task attempts.
type Stage struct {
	// StageID ("stageId") is the stage's ID within its job (0: the result
	// stage).
	StageID int `json:"stageId"`
	// Kind ("kind"): map (writes a shuffle's output) or result.
	Kind string `json:"kind"`
	// NumTasks ("numTasks"), NumFailedTasks ("numFailedTasks") and
	// NumSpeculativeTasks ("numSpeculativeTasks") count its attempts.
	NumTasks            int `json:"numTasks"`
	NumFailedTasks      int `json:"numFailedTasks"`
	NumSpeculativeTasks int `json:"numSpeculativeTasks"`
	// FirstLaunchTime ("firstLaunchTime") and LastFinishTime
	// ("lastFinishTime") bound its attempts, RFC 3339; Duration
	// ("duration") is the span between them in ms.
	FirstLaunchTime string `json:"firstLaunchTime"`
	LastFinishTime  string `json:"lastFinishTime"`
	Duration        int64  `json:"duration"`
	// TaskDurationMin, TaskDurationMedian and TaskDurationMax
	// ("taskDurationMin", ...) summarise its attempts' durations, in ms.
	TaskDurationMin    int64 `json:"taskDurationMin"`
	TaskDurationMedian int64 `json:"taskDurationMedian"`
	TaskDurationMax    int64 `json:"taskDurationMax"`
	// RecordsRead ("recordsRead"), Records ("records": the records
	// written), ShuffleReadBytes ("shuffleReadBytes") and ShuffleWriteBytes
	// ("shuffleWriteBytes") sum its attempts' figures (as in Task); null
	// when no attempt measured it.
	RecordsRead       *int64 `json:"recordsRead"`
	Records           *int64 `json:"records"`
	ShuffleReadBytes  *int64 `json:"shuffleReadBytes"`
	ShuffleWriteBytes *int64 `json:"shuffleWriteBytes"`
	// ShuffleRemoteReads ("shuffleRemoteReads") and ShufflePushes
	// ("shufflePushes") sum the buckets its attempts fetched from other
	// processes and pushed to their readers (as in Task).
	ShuffleRemoteReads *int64 `json:"shuffleRemoteReads"`
	ShufflePushes      *int64 `json:"shufflePushes"`
	// Workers ("workers") are the workers that ran its attempts, sorted.
	Workers []string `json:"workers"`
	// Tasks ("tasks") are its attempts, by partition, then attempt.
	Tasks []Task `json:"tasks"`
}

// Task is one task attempt, in BatchTasks.
type Task struct {
	// Partition ("partition") and Attempt ("attempt", 0 first) name it
	// within its stage.
	Partition int `json:"partition"`
	Attempt   int `json:"attempt"`
	// Worker ("worker") ran it.
	Worker string `json:"worker"`
	// Speculative ("speculative") marks a speculative copy.
	Speculative bool `json:"speculative"`
	// Status ("status"): succeeded or failed.
	Status string `json:"status"`
	// LaunchTime ("launchTime") and FinishTime ("finishTime"), RFC 3339;
	// Duration ("duration") between them in ms.
	LaunchTime string `json:"launchTime"`
	FinishTime string `json:"finishTime"`
	Duration   int64  `json:"duration"`
	// RecordsRead ("recordsRead") is the records the attempt read (from
	// its sources, stored blocks and shuffle buckets), Records ("records")
	// those it wrote (a map task: to the shuffle; a result task: handed to
	// the job's action), ShuffleReadBytes ("shuffleReadBytes") and
	// ShuffleWriteBytes ("shuffleWriteBytes") the shuffle bytes it read and
	// wrote (listener.TaskEnded): each null when not measured.
	RecordsRead       *int64 `json:"recordsRead"`
	Records           *int64 `json:"records"`
	ShuffleReadBytes  *int64 `json:"shuffleReadBytes"`
	ShuffleWriteBytes *int64 `json:"shuffleWriteBytes"`
	// ShuffleRemoteReads ("shuffleRemoteReads") is the shuffle buckets it
	// fetched from another process (the rest it read in place),
	// ShufflePushes ("shufflePushes") those it pushed to the process
	// expected to read them; 0 in local[N], null when not measured.
	ShuffleRemoteReads *int64 `json:"shuffleRemoteReads"`
	ShufflePushes      *int64 `json:"shufflePushes"`
	// FailureReason ("failureReason") is a failed attempt's error.
	FailureReason *string `json:"failureReason"`
}

// taskRecord is a TaskEnded as a Progress keeps it: small, and with no
// pointer but the worker's name (shared with the event) and an error's text.
type taskRecord struct {
	job, stage, partition, attempt int32
	flags                          uint8
	start, end                     int64 // Unix ns
	read, records                  int64 // records read and written; -1: not measured
	shufRead, shufWrite            int64 // -1: not measured
	remoteReads, pushes            int32 // buckets; -1: not measured
	worker                         string
	failure                        string
}

const (
	taskMap uint8 = 1 << iota
	taskSpeculative
	taskFailed
)

type jobRecord struct {
	id       int
	name     string
	outputOp int
	started  bool
	ended    bool
	start    time.Time
	end      time.Time
	failure  string
	failed   bool
}

// LimitTasks sets the bounds on the task attempts p keeps: perBatch for one
// batch and total over all its batches (each DefaultMaxTasksPerBatch and
// DefaultRetainedTasks when <= 0; total is raised to perBatch if smaller).
// Call it before p receives events.
func (p *Progress) LimitTasks(perBatch, total int) {
	if perBatch <= 0 {
		perBatch = DefaultMaxTasksPerBatch
	}
	if total <= 0 {
		total = DefaultRetainedTasks
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.taskLimit, p.taskBudget = perBatch, max(total, perBatch)
}

// onTask records a task attempt for its batch. It is called for every task
// the bus delivers, so it does a binary search and an append, nothing more
// (but for the rare eviction). The caller holds p.mu.
func (p *Progress) onTask(e *listener.TaskEnded) {
	b := p.lookup(e.Time.UnixMilli())
	if b == nil {
		p.strayTasks++ // a batch not retained, or not an interval's job
		return
	}
	if len(b.tasks) >= p.taskLimit || b.tasksEvicted {
		b.tasksDropped++
		return
	}
	if p.taskCount >= p.taskBudget {
		p.evictTasks(b)
	}
	r := taskRecord{job: int32(e.Job), stage: int32(e.Stage), partition: int32(e.Partition), attempt: int32(e.Attempt),
		start: e.Start.UnixNano(), end: e.End.UnixNano(), read: e.RecordsRead, records: e.Records, shufRead: e.ShuffleReadBytes, shufWrite: e.ShuffleWriteBytes,
		remoteReads: clamp32(e.ShuffleRemoteReads), pushes: clamp32(e.ShufflePushes), worker: e.Worker}
	if e.Map {
		r.flags |= taskMap
	}
	if e.Speculative {
		r.flags |= taskSpeculative
	}
	if e.Err != nil {
		r.flags |= taskFailed
		r.failure = truncate(e.Err.Error())
	}
	b.tasks = append(b.tasks, r)
	p.taskCount++
}

// evictTasks drops the tasks of the oldest batch other than keep that has
// any, to make room. The caller holds p.mu.
func (p *Progress) evictTasks(keep *batchRecord) {
	for _, b := range p.batches {
		if b != keep && len(b.tasks) > 0 {
			p.taskCount -= len(b.tasks)
			b.tasksDropped += int64(len(b.tasks))
			b.tasks, b.tasksEvicted = nil, true
			return
		}
	}
}

// onJob records a job event for its batch. The caller holds p.mu.
func (p *Progress) onJob(t time.Time, id, outputOp int, name string, start, end time.Time, err error, ended bool) {
	b := p.lookup(t.UnixMilli())
	if b == nil {
		return
	}
	var j *jobRecord
	for i := len(b.jobs) - 1; i >= 0; i-- {
		if b.jobs[i].id == id {
			j = &b.jobs[i]
			break
		}
	}
	if j == nil {
		if len(b.jobs) >= MaxJobsPerBatch {
			b.jobsDropped++
			return
		}
		b.jobs = append(b.jobs, jobRecord{id: id})
		j = &b.jobs[len(b.jobs)-1]
	}
	j.name, j.outputOp, j.start, j.started = name, outputOp, start, true
	if ended {
		j.ended, j.end = true, end
		if err != nil {
			j.failed, j.failure = true, truncate(err.Error())
		}
	}
}

// Tasks returns the jobs, stages and task attempts kept for the retained
// batch of interval ms.
func (p *Progress) Tasks(ms int64) (BatchTasks, bool) {
	p.mu.Lock()
	b := p.lookup(ms)
	if b == nil {
		p.mu.Unlock()
		return BatchTasks{}, false
	}
	// Copy under the lock, build the document outside it: the bus's
	// goroutine waits only for the copy.
	tasks := slices.Clone(b.tasks)
	jobs := slices.Clone(b.jobs)
	out := BatchTasks{BatchID: ms, NumTasks: len(tasks), NumDroppedTasks: b.tasksDropped, NumDroppedJobs: b.jobsDropped, Jobs: []Job{}}
	p.mu.Unlock()

	slices.SortFunc(tasks, func(a, b taskRecord) int {
		return cmp.Or(cmp.Compare(a.job, b.job), cmp.Compare(a.stage, b.stage), cmp.Compare(a.partition, b.partition),
			cmp.Compare(a.attempt, b.attempt), cmp.Compare(a.start, b.start))
	})
	slices.SortFunc(jobs, func(a, b jobRecord) int { return cmp.Compare(a.id, b.id) })
	jobIndex := map[int]int{}
	for _, j := range jobs {
		jobIndex[j.id] = len(out.Jobs)
		out.Jobs = append(out.Jobs, jobView(j))
	}
	for i := 0; i < len(tasks); {
		// tasks[i:k] are one stage's.
		k := i + 1
		for k < len(tasks) && tasks[k].job == tasks[i].job && tasks[k].stage == tasks[i].stage {
			k++
		}
		id := int(tasks[i].job)
		ji, ok := jobIndex[id]
		if !ok {
			ji = len(out.Jobs)
			jobIndex[id] = ji
			out.Jobs = append(out.Jobs, Job{JobID: id, Status: "unknown", Stages: []Stage{}})
		}
		st := stageView(tasks[i:k])
		j := &out.Jobs[ji]
		j.Stages = append(j.Stages, st)
		j.NumTasks += st.NumTasks
		j.NumFailedTasks += st.NumFailedTasks
		i = k
	}
	slices.SortStableFunc(out.Jobs, func(a, b Job) int { return cmp.Compare(a.JobID, b.JobID) })
	return out, true
}

func jobView(j jobRecord) Job {
	v := Job{JobID: j.id, Name: ptr(j.name), Status: "running", SubmissionTime: ptr(stamp(j.start)), Stages: []Stage{}}
	if j.outputOp >= 0 {
		v.OutputOpID = ptr(j.outputOp)
	}
	if j.ended {
		v.Status = "succeeded"
		v.CompletionTime = ptr(stamp(j.end))
		v.Duration = ptr(j.end.Sub(j.start).Milliseconds())
		if j.failed {
			v.Status, v.FailureReason = "failed", ptr(j.failure)
		}
	}
	return v
}

// clamp32 is a bucket count as a task record keeps it.
func clamp32(v int64) int32 { return int32(min(max(v, -1), math.MaxInt32)) }

// stageView sums one stage's attempts, sorted by partition and attempt.
func stageView(ts []taskRecord) Stage {
	st := Stage{StageID: int(ts[0].stage), Kind: "result", NumTasks: len(ts), Tasks: make([]Task, len(ts)), Workers: []string{}}
	if ts[0].flags&taskMap != 0 {
		st.Kind = "map"
	}
	first, last := ts[0].start, ts[0].end
	durs := make([]int64, len(ts))
	var recsRead, records, read, write, remote, pushes *int64
	sum := func(acc **int64, v int64) {
		if v < 0 {
			return
		}
		if *acc == nil {
			*acc = new(int64)
		}
		**acc += v
	}
	measure := func(v int64) *int64 {
		if v < 0 {
			return nil
		}
		return ptr(v)
	}
	for i, r := range ts {
		first, last = min(first, r.start), max(last, r.end)
		d := time.Duration(r.end - r.start).Milliseconds()
		durs[i] = d
		t := Task{Partition: int(r.partition), Attempt: int(r.attempt), Worker: r.worker, Speculative: r.flags&taskSpeculative != 0,
			Status: "succeeded", LaunchTime: stamp(time.Unix(0, r.start)), FinishTime: stamp(time.Unix(0, r.end)), Duration: d,
			RecordsRead: measure(r.read), Records: measure(r.records), ShuffleReadBytes: measure(r.shufRead), ShuffleWriteBytes: measure(r.shufWrite),
			ShuffleRemoteReads: measure(int64(r.remoteReads)), ShufflePushes: measure(int64(r.pushes))}
		if r.flags&taskFailed != 0 {
			t.Status, t.FailureReason = "failed", ptr(r.failure)
			st.NumFailedTasks++
		}
		if t.Speculative {
			st.NumSpeculativeTasks++
		}
		sum(&recsRead, r.read)
		sum(&records, r.records)
		sum(&read, r.shufRead)
		sum(&write, r.shufWrite)
		sum(&remote, int64(r.remoteReads))
		sum(&pushes, int64(r.pushes))
		if !slices.Contains(st.Workers, r.worker) {
			st.Workers = append(st.Workers, r.worker)
		}
		st.Tasks[i] = t
	}
	slices.Sort(st.Workers)
	slices.Sort(durs)
	st.FirstLaunchTime, st.LastFinishTime = stamp(time.Unix(0, first)), stamp(time.Unix(0, last))
	st.Duration = time.Duration(last - first).Milliseconds()
	st.TaskDurationMin, st.TaskDurationMedian, st.TaskDurationMax = durs[0], durs[len(durs)/2], durs[len(durs)-1]
	st.RecordsRead, st.Records, st.ShuffleReadBytes, st.ShuffleWriteBytes = recsRead, records, read, write
	st.ShuffleRemoteReads, st.ShufflePushes = remote, pushes
	return st
}

// tasks serves GET /api/v1/batches/{batchTime}/tasks.
func (s *Server) tasks(w http.ResponseWriter, r *http.Request) {
	ms, ok := s.batchTime(w, r)
	if !ok {
		return
	}
	bt, ok := s.progress.Tasks(ms)
	if !ok {
		s.noBatch(w, ms)
		return
	}
	writeJSON(w, http.StatusOK, bt)
}
