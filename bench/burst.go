package bench

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream/listener"
)

// BurstResult is what Burst measured: each measured interval's processing
// time, sorted, and where the time of a median interval goes (Phases).
type BurstResult struct {
	Took []time.Duration
	// Phases are the medians, over the measured intervals, of the parts of
	// an interval's processing time as the master's events tell them
	// (listener.BatchStarted, JobStarted, TaskEnded, JobEnded,
	// BatchCompleted).
	Phases Phases
	// MasterCPU and WorkersCPU are the CPU time (user and system) an
	// interval took, averaged over the measured intervals: the process
	// running the job (the master; all of local[N]) and its worker
	// processes together (none in local[N]). Zero where not measured
	// (WorkersCPU reads /proc).
	MasterCPU, WorkersCPU time.Duration
}

// Phases split an interval's processing time (wall clock). Tasks is the time some task
// of the interval was running (from the master's side: a remote task's call,
// its worker's learning the interval, building and running the task, and
// its result's return), Between the time no task ran while a job did
// (scheduling: a stage's submission, a job's end and the next job's start),
// Before the time from the interval's start to its first job (the manifest,
// the graph's datasets), After the time from its last job's end to the
// interval's end (finishing, forgetting, the events).
type Phases struct {
	Before, Tasks, Between, After time.Duration
	// TasksRun is the tasks an interval ran, Stages its stages, Jobs its jobs.
	TasksRun, Stages, Jobs int
}

// Median is the median measured interval.
func (b BurstResult) Median() time.Duration { return b.Took[len(b.Took)/2] }

// P90 is the 90th percentile of the measured intervals.
func (b BurstResult) P90() time.Duration { return b.Took[len(b.Took)*9/10] }

// Burst runs a workload at a fixed n records an interval on a manual clock,
// intervals back to back (as the capacity search's probes do): fill
// intervals first (the window's state), then measure intervals, and returns
// each measured interval's time. With n = 0 every interval is empty (one
// empty partition per core): the fixed cost of an interval. It is what
// profiles and paired comparisons run, with no search and no wall clock.
func Burst(cfg Config, n, fill, measure int) (BurstResult, error) {
	if err := cfg.defaults(); err != nil {
		return BurstResult{}, err
	}
	if measure < 1 {
		measure = 1
	}
	m, err := startManual(Workloads[cfg.Workload], cfg, NewPool(1<<20), n)
	if err != nil {
		return BurstResult{}, err
	}
	defer m.ctx.Stop(false)
	ev := &intervalEvents{by: map[time.Time]*intervalLog{}}
	m.ctx.AddListener(ev)
	var r BurstResult
	var measured []wallSpan
	var pids []int
	var cpu0, workers0 time.Duration
	for range fill + measure {
		if m.i == fill {
			for _, w := range m.ctx.Workers() {
				if w.ID != "master" && w.PID > 0 && w.PID != os.Getpid() {
					pids = append(pids, w.PID)
				}
			}
			cpu0, workers0 = processCPU(), processesCPU(pids)
		}
		start := time.Now()
		if err := m.next(); err != nil {
			return r, err
		}
		if m.i > fill {
			end := time.Now()
			r.Took = append(r.Took, end.Sub(start))
			measured = append(measured, wallSpan{m.ctx.StartTime().Add(time.Duration(m.i) * m.cfg.Batch), start, end})
		}
	}
	r.MasterCPU = (processCPU() - cpu0) / time.Duration(measure)
	r.WorkersCPU = (processesCPU(pids) - workers0) / time.Duration(measure)
	slices.Sort(r.Took)
	// The bus delivers asynchronously: the last interval's completion may
	// still be on its way.
	deadline := time.Now().Add(2 * time.Second)
	for !ev.complete(measured[len(measured)-1].t) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r.Phases = ev.phases(measured)
	return r, nil
}

// wallSpan is when interval t was processed, by the wall clock (the
// batch's own times are the manual clock's).
type wallSpan struct{ t, start, end time.Time }

// intervalLog is what the bus said of one interval.
type intervalLog struct {
	done   bool           // BatchCompleted came
	jobs   [][2]time.Time // each job's start and end
	tasks  [][2]time.Time // each task attempt's start and end
	stages map[[2]int]bool
}

// intervalEvents gathers the bus's events by interval (a listener.Listener).
type intervalEvents struct {
	mu sync.Mutex
	by map[time.Time]*intervalLog
}

func (e *intervalEvents) log(t time.Time) *intervalLog {
	l := e.by[t]
	if l == nil {
		l = &intervalLog{stages: map[[2]int]bool{}}
		e.by[t] = l
	}
	return l
}

// OnEvent implements listener.Listener.
func (e *intervalEvents) OnEvent(ev listener.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case listener.BatchCompleted:
		e.log(ev.Batch.Time).done = true
	case listener.JobEnded:
		if debugJobs {
			fmt.Fprintf(os.Stderr, "job %d %s t=%d start %s took %v\n", ev.Job, ev.Name, ev.Time.UnixMilli()%100000, ev.Start.Format("05.000000"), ev.End.Sub(ev.Start))
		}
		if !ev.Time.IsZero() {
			l := e.log(ev.Time)
			l.jobs = append(l.jobs, [2]time.Time{ev.Start, ev.End})
		}
	case listener.TaskEnded:
		if debugJobs {
			fmt.Fprintf(os.Stderr, "  task j%d s%d p%d map=%v %s start %s took %v remote reads %d pushes %d\n", ev.Job, ev.Stage, ev.Partition, ev.Map, ev.Worker, ev.Start.Format("05.000000"), ev.End.Sub(ev.Start), ev.ShuffleRemoteReads, ev.ShufflePushes)
		}
		if !ev.Time.IsZero() {
			l := e.log(ev.Time)
			l.tasks = append(l.tasks, [2]time.Time{ev.Start, ev.End})
			l.stages[[2]int{ev.Job, ev.Stage}] = true
		}
	}
}

func (e *intervalEvents) complete(t time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.by[t]
	return l != nil && l.done
}

// phases returns the median of each phase over intervals ws. The
// interval's own start and end are the wall clock's around AwaitBatch: they
// include advancing the manual clock and the wake-up of the waiter.
func (e *intervalEvents) phases(ws []wallSpan) Phases {
	e.mu.Lock()
	defer e.mu.Unlock()
	var before, tasks, between, after []time.Duration
	var nTasks, nStages, nJobs []int
	for _, w := range ws {
		l := e.by[w.t]
		if l == nil || !l.done || len(l.jobs) == 0 {
			continue
		}
		first, last := l.jobs[0][0], l.jobs[0][1]
		for _, j := range l.jobs {
			first, last = minTime(first, j[0]), maxTime(last, j[1])
		}
		before = append(before, first.Sub(w.start))
		after = append(after, w.end.Sub(last))
		busy := union(l.tasks)
		tasks = append(tasks, busy)
		between = append(between, last.Sub(first)-busy)
		nTasks, nStages, nJobs = append(nTasks, len(l.tasks)), append(nStages, len(l.stages)), append(nJobs, len(l.jobs))
	}
	if len(before) == 0 {
		return Phases{}
	}
	return Phases{Before: median(before), Tasks: median(tasks), Between: median(between), After: median(after),
		TasksRun: median(nTasks), Stages: median(nStages), Jobs: median(nJobs)}
}

// union is the time covered by at least one of spans.
func union(spans [][2]time.Time) time.Duration {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var total time.Duration
	var cur [2]time.Time
	for i, sp := range s {
		switch {
		case i == 0:
			cur = sp
		case !sp[0].After(cur[1]):
			cur[1] = maxTime(cur[1], sp[1])
		default:
			total += cur[1].Sub(cur[0])
			cur = sp
		}
	}
	if len(s) > 0 {
		total += cur[1].Sub(cur[0])
	}
	return total
}

func median[T int | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// debugJobs, with DSTREAM_BENCH_JOBS=1 in the environment, prints every job
// and task of a Burst to stderr as the master saw it (start, duration,
// worker): how an interval's time splits between its tasks.
var debugJobs = os.Getenv("DSTREAM_BENCH_JOBS") != ""
