package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// RunnerConfig configures the master's job runner.
type RunnerConfig struct {
	// Self is the master's peer address (its cluster listener); in the
	// scheduler the master is a worker of that name with LocalSlots slots,
	// for the tasks only it can run.
	Self       string
	LocalSlots int
	// MaxAttempts bounds each task's attempts (default 4).
	MaxAttempts int
	// Peers connects to workers; required.
	Peers *Peers
	// Rebuildable reports whether a worker can rebuild dataset id from its
	// copy of the graph and the interval manifests (a stream's dataset of
	// an interval). Tasks on other datasets, and jobs whose function is a
	// closure, run on the master.
	Rebuildable func(id rdd.ID) bool
	// OnTask, if set, is told of every task attempt that ended
	// (sched.ShellConfig.OnTask: it must not block).
	OnTask func(sched.TaskEvent)
	// Speculation configures speculative copies of straggling tasks on
	// the worker processes (sched.Speculation); nil: on, with Spark's
	// defaults (sched.DefaultSpeculation). &sched.Speculation{} turns it
	// off. Tasks pinned to the master are never copied. (An output task's
	// copy is safe: attempts write hidden files, and the commit drops those
	// of attempts that lost.)
	Speculation *sched.Speculation
	// Clock times tasks and ticks the scheduler; default the wall clock.
	Clock clock.Clock
	// Unreachable, if set, is told when a worker cannot be reached (its
	// process died, or the network failed): the membership should declare
	// it lost (Master.Drop), which feeds LoseWorker.
	Unreachable func(worker string, err error)
	// Manifests, if set, gives the manifest frames the master's Manifests
	// call would answer (MasterConfig.Manifests), and Session the master's
	// session (Master.Session; "" while it has none): a task carries the
	// frames of the intervals its worker has not learned as far as the
	// runner knows, so the worker need not ask before it runs the task.
	// Without them, every worker asks.
	Manifests func(q ManifestQuery) ([][]byte, error)
	Session   func() string
	Logger    *slog.Logger
}

// Runner is the master's rdd.JobRunner: the scheduler's shell whose workers
// are the worker processes (named by their peer addresses) and the master
// itself, which runs only the tasks pinned to it. A task runs on a worker by RunTask; what it returns comes back
// encoded and is decoded by the job's own datasets. Tasks only the master
// can run are pinned to it; the others prefer the workers holding their
// input.
//
// Speculation: a straggling task may get a copy on another worker; the
// scheduler kills the loser by cancelling its context, which cancels its
// RunTask call, and the worker's task context with it. A killed remote
// attempt is abandoned, not awaited (its worker may still be writing when
// the call returns): an output attempt writes a hidden .part-NNNNN.attempt-K
// that it renames to part-NNNNN, and the job's commit deletes such files
// before it moves the interval's folder in place, so an abandoned copy
// never leaves a visible file in the committed output (see saveText in
// the root package).
type Runner struct {
	*sched.Shell
	cfg   RunnerConfig
	local sched.GoExecutor

	// learned is, per worker, the latest interval a task it ran to the end
	// made it learn from this master: a hint of the manifests it holds,
	// dropped when it joins again or is lost. A worker that knows less
	// than the hint says (a request overtook another) asks for what it
	// lacks, so the hint is never trusted for correctness.
	learnedMu sync.Mutex
	learned   map[string]int64

	// reducers is where each stream shuffle's reduce tasks last ran: map
	// tasks push their buckets there, and reduce tasks return there.
	reducers placements
	// empties is which buckets of the map outputs are empty: their
	// readers skip them.
	empties emptyBuckets
}

// The manifests a task carries at most (attachManifests): beyond, its
// worker asks for them, as after a long pause.
const (
	maxSentFrames = 16
	maxSentBytes  = 1 << 20
)

// NewRunner returns a runner with the master as its only worker; AddWorker
// adds worker processes as they register.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.LocalSlots <= 0 {
		cfg.LocalSlots = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rebuildable == nil {
		cfg.Rebuildable = func(rdd.ID) bool { return false }
	}
	spec := sched.DefaultSpeculation()
	if cfg.Speculation != nil {
		spec = *cfg.Speculation
	}
	r := &Runner{cfg: cfg, learned: map[string]int64{}}
	r.Shell = sched.NewShell(sched.ShellConfig{MaxAttempts: cfg.MaxAttempts, OnTask: cfg.OnTask, Executor: r,
		Prefer: r.prefer, Pin: r.pin, Reserved: cfg.Self, Speculation: spec, Clock: cfg.Clock,
		OnExclude: func(e sched.Exclude) {
			r.cfg.Logger.Warn("cluster: a worker's task was beaten by its speculative copy; no new task goes there for a while",
				"worker", e.Worker, "until", e.Until.Format(time.RFC3339Nano))
		}})
	r.local = sched.GoExecutor{Location: cfg.Self, Remote: &remote{peers: cfg.Peers, self: cfg.Self, mapOutput: r.MapOutput}}
	r.Shell.AddWorker(cfg.Self, cfg.LocalSlots)
	return r
}

// AddWorker adds a worker process with slots task slots (sched.Shell's),
// knowing none of its intervals.
func (r *Runner) AddWorker(worker string, slots int) {
	r.forget(worker)
	r.Shell.AddWorker(worker, slots)
}

// LoseWorker removes a worker process (sched.Shell's).
func (r *Runner) LoseWorker(worker string) {
	r.forget(worker)
	r.Shell.LoseWorker(worker)
}

func (r *Runner) forget(worker string) {
	r.reducers.forget(worker)
	r.learnedMu.Lock()
	defer r.learnedMu.Unlock()
	delete(r.learned, worker)
}

// attachManifests adds to req the manifests of the intervals up to t that
// worker has not learned as far as the runner knows: none when it knows
// them all, the master has no session yet, or they are more than a task
// carries (the worker then asks).
func (r *Runner) attachManifests(req *clusterpb.RunTaskRequest, worker string, t int64) {
	if r.cfg.Manifests == nil || r.cfg.Session == nil {
		return
	}
	r.learnedMu.Lock()
	after, ok := r.learned[worker]
	r.learnedMu.Unlock()
	if !ok || t <= after {
		return // a worker that joined learns its first intervals by asking
	}
	session := r.cfg.Session()
	if session == "" {
		return
	}
	frames, err := r.cfg.Manifests(ManifestQuery{After: after, UpTo: t, Deltas: true, Base: after})
	if err != nil || len(frames) == 0 || len(frames) > maxSentFrames {
		return
	}
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	if size > maxSentBytes {
		return
	}
	req.Manifests, req.ManifestsAfter, req.ManifestsSession = frames, after, session
}

// learnedUpTo records that worker learned every interval up to t.
func (r *Runner) learnedUpTo(worker string, t int64) {
	r.learnedMu.Lock()
	defer r.learnedMu.Unlock()
	if t > r.learned[worker] {
		r.learned[worker] = t
	}
}

// pin keeps on the master the tasks a worker cannot run.
func (r *Runner) pin(t sched.Task, _ *rdd.Lineage) string {
	id := t.Spec.Dataset
	if t.IsMap() {
		id = *t.Spec.Shuffle
	} else if !t.Spec.Result.Named() {
		return r.cfg.Self // the job's function is a closure of this process
	}
	if !r.cfg.Rebuildable(id) {
		return r.cfg.Self
	}
	return ""
}

// prefer sends a task where its input blocks are.
func (r *Runner) prefer(t sched.Task, lin *rdd.Lineage) []string {
	n := lin.Find(t.Spec.Dataset)
	if n == nil {
		return nil
	}
	locs := rdd.PreferredLocations(n, t.Partition())
	if len(locs) == 0 {
		// Nothing held draws it: back where the same partition of its
		// shuffle's reduce ran last interval, where its buckets were pushed.
		for dep := range reducedShuffles(lin, n) {
			if a := r.reducers.of(dep.ID, t.Partition()); a != "" {
				return []string{a}
			}
		}
	}
	out := make([]string, 0, len(locs))
	for _, l := range locs {
		if l == "" {
			l = r.cfg.Self
		}
		out = append(out, l)
	}
	return out
}

// reducedShuffles are the shuffles whose reduce partition p a task
// computing partition p of n reads: n's input shuffles of as many reduce
// partitions as n has (a union or a coalesce between them renumbers
// partitions, and then no guess is made).
func reducedShuffles(lin *rdd.Lineage, n *rdd.Node) iter.Seq[*rdd.ShuffleDep] {
	return func(yield func(*rdd.ShuffleDep) bool) {
		for _, d := range lin.InputShuffles(n) { // shared: not to be changed
			if d.NumReduce == n.NumPartitions && !yield(d) {
				return
			}
		}
	}
}

// probeTimeout bounds how long the master waits for a new connection to a
// worker whose call failed with UNAVAILABLE before it declares the worker
// lost.
const probeTimeout = time.Second

// Execute implements sched.Executor: on the master itself, or by RunTask on
// the worker at address worker, which reports the task's figures with its
// result (rdd.NotMeasured when the call failed, or the worker sent none).
func (r *Runner) Execute(ctx context.Context, worker string, t sched.Task, job *rdd.Job, lin *rdd.Lineage) (any, rdd.TaskFigures, error) {
	if worker == r.cfg.Self {
		return r.local.Execute(ctx, worker, t, job, lin)
	}
	res, resp, err := r.executeRemote(ctx, worker, t, lin, job != nil && job.Background)
	if err == nil {
		// The persisted datasets the task computed stay cached there: a
		// later job's task on them goes there (a keep job's).
		if n := lin.Find(t.Spec.Dataset); n != nil {
			rdd.NoteComputed(n, t.Partition(), worker)
		}
	}
	return res, figuresFromProto(resp.GetFigures()), err
}

// executeRemote runs t on worker by RunTask and returns its decoded result
// and the response (nil when the call failed).
func (r *Runner) executeRemote(ctx context.Context, worker string, t sched.Task, lin *rdd.Lineage, background bool) (any, *clusterpb.RunTaskResponse, error) {
	spec, err := json.Marshal(t.Spec)
	if err != nil {
		return nil, nil, err
	}
	req := &clusterpb.RunTaskRequest{Job: int32(t.Job), Stage: int32(t.Stage), Spec: spec}
	tt := taskTime(t.Spec)
	r.attachManifests(req, worker, tt)
	n := lin.Find(t.Spec.Dataset)
	if n != nil {
		for _, dep := range lin.InputShuffles(n) {
			req.MapOutputs = append(req.MapOutputs, &clusterpb.MapOutputs{
				Shuffle: idToProto(dep.ID), Addresses: r.MapOutputs(dep.ID, dep.Parent.NumPartitions),
				EmptyBuckets: r.empties.of(dep.ID, dep.Parent.NumPartitions)})
		}
	}
	if t.Spec.Shuffle != nil {
		if dep := lin.Shuffle(*t.Spec.Shuffle); dep != nil {
			r.reducers.pushTo(req, dep.ID, dep.NumReduce, worker)
		}
	}
	// Cancelling ctx (the job ended, or the scheduler killed this attempt
	// because another won) cancels the call and the worker's task. A call
	// that meets a reset link to a live worker is sent once more (a task
	// is deterministic and its outputs are committed once, so running it
	// twice is harmless); failing again, the attempt fails and counts, and
	// the worker stays. Only a worker a new connection cannot reach is
	// lost.
	var resp *clusterpb.RunTaskResponse
	err = r.cfg.Peers.call(ctx, worker, func(pc clusterpb.PeerClient) error {
		var err error
		resp, err = pc.RunTask(ctx, req)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, context.Cause(ctx)
		}
		if errors.Is(err, errPeerDown) {
			// The worker is gone (or cut off): the task runs again
			// elsewhere, its attempt not counted, and the worker leaves
			// the scheduler now rather than at its heartbeat timeout.
			if r.cfg.Unreachable != nil {
				r.cfg.Unreachable(worker, err)
			}
			return nil, nil, fmt.Errorf("%w: %s: %v", sched.ErrWorkerLost, worker, err)
		}
		return nil, nil, fmt.Errorf("worker %s: %w", worker, err)
	}
	if f := resp.GetFailure(); f != nil {
		return nil, resp, failureError(f)
	}
	r.learnedUpTo(worker, tt)
	if t.Spec.Shuffle != nil {
		if dep := lin.Shuffle(*t.Spec.Shuffle); dep != nil {
			r.empties.note(dep.ID, dep.Parent.NumPartitions, t.Partition(), resp.GetEmptyBuckets())
		}
	}
	if n != nil && !background {
		// A background job's task (a state checkpoint's) goes where a
		// slot is free beside the interval's, not where the interval's
		// reduce tasks go: it says nothing of where they will.
		for dep := range reducedShuffles(lin, n) {
			r.reducers.note(dep.ID, dep.NumReduce, t.Partition(), worker)
		}
	}
	res, err := lin.DecodeResult(t.Spec, resp.GetResult())
	if err == nil {
		rdd.NotePinned(lin, pinnedFromProto(resp.GetPinned()), worker)
	}
	return res, resp, err
}

// ForgetShuffles implements rdd.ShuffleForgetter: the scheduler drops the
// map output locations of forgotten shuffles, and the runner what it knew
// of their empty buckets.
func (r *Runner) ForgetShuffles(pred func(rdd.ID) bool) {
	r.Shell.ForgetShuffles(pred)
	r.empties.forget(pred)
}

// pinnedToProto is what a task pinned (rdd.TaskContext.Pinned), for the
// master.
func pinnedToProto(ps []rdd.PinnedPartition) []*clusterpb.PinnedPartition {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*clusterpb.PinnedPartition, len(ps))
	for i, p := range ps {
		out[i] = &clusterpb.PinnedPartition{Dataset: idToProto(p.Dataset), Partition: int32(p.Partition)}
	}
	return out
}

// pinnedFromProto rebuilds what a worker's task pinned on the master.
func pinnedFromProto(ps []*clusterpb.PinnedPartition) []rdd.PinnedPartition {
	if len(ps) == 0 {
		return nil
	}
	out := make([]rdd.PinnedPartition, len(ps))
	for i, p := range ps {
		out[i] = rdd.PinnedPartition{Dataset: idFromProto(p.GetDataset()), Partition: int(p.GetPartition())}
	}
	return out
}

// figuresToProto is a task's figures for the master.
func figuresToProto(f rdd.TaskFigures) *clusterpb.TaskFigures {
	return &clusterpb.TaskFigures{RecordsRead: f.RecordsRead, RecordsWritten: f.RecordsWritten,
		ShuffleReadBytes: f.ShuffleReadBytes, ShuffleWriteBytes: f.ShuffleWriteBytes,
		ShuffleRemoteReads: f.ShuffleRemoteReads, ShufflePushes: f.ShufflePushes}
}

// figuresFromProto rebuilds a task's figures on the master; nil (the worker
// sent none) is rdd.NotMeasured.
func figuresFromProto(f *clusterpb.TaskFigures) rdd.TaskFigures {
	if f == nil {
		return rdd.NotMeasured
	}
	return rdd.TaskFigures{RecordsRead: f.GetRecordsRead(), RecordsWritten: f.GetRecordsWritten(),
		ShuffleReadBytes: f.GetShuffleReadBytes(), ShuffleWriteBytes: f.GetShuffleWriteBytes(),
		ShuffleRemoteReads: f.GetShuffleRemoteReads(), ShufflePushes: f.GetShufflePushes()}
}

// failureError rebuilds a task's failure on the master.
func failureError(f *clusterpb.TaskFailure) error {
	if f.GetFetchFailed() {
		return &rdd.FetchFailedError{Shuffle: idFromProto(f.GetShuffle()), Map: int(f.GetMapPartition()), Cause: errors.New(f.GetMessage()),
			From: f.GetFetchFrom(), Unreachable: f.GetUnreachable()}
	}
	return &rdd.TaskError{Op: f.GetOp(), Err: errors.New(f.GetMessage())}
}

// failureOf describes a task's error for the master.
func failureOf(err error) *clusterpb.TaskFailure {
	var ff *rdd.FetchFailedError
	if errors.As(err, &ff) {
		msg := ""
		if ff.Cause != nil {
			msg = ff.Cause.Error()
		}
		return &clusterpb.TaskFailure{FetchFailed: true, Shuffle: idToProto(ff.Shuffle), MapPartition: int32(ff.Map), Message: msg,
			FetchFrom: ff.From, Unreachable: ff.Unreachable}
	}
	var te *rdd.TaskError
	if errors.As(err, &te) {
		return &clusterpb.TaskFailure{Op: te.Op, Message: te.Err.Error()}
	}
	return &clusterpb.TaskFailure{Message: err.Error()}
}
