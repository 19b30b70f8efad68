package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/timeline"
)

// A Series is a stream's runtime: its datasets by interval, generated on
// first use, remembered as long as the graph needs them, and, for a state
// stream, materialized, kept, checkpointed and recovered. It is the
// engine's Node for the typed stream of package dstream, which holds one
// and adds the API.
//
// State checkpoints (the D-Stream paper, section 4.3). A state stream's
// dataset of every interval is materialized where it is computed. In one
// process (local[N]) nothing can lose it, so its lineage is cut at once. In
// a cluster its lineage is kept (rdd.Dataset.Keep): a partition whose
// holder dies is recomputed, in parallel with the others, from the last
// checkpoint and the inputs since, which the parents remember. Every
// checkpoint interval (SetCheckpointEvery; default max(10 s, 5 slides)) the
// dataset is written to the checkpoint store (Config.CheckpointDir) by the
// processes that hold its partitions, asynchronously, beside the intervals
// that follow; once committed, the lineage is cut there.
type Series[T any] struct {
	e        *Engine
	id       int32
	name     string
	slide    time.Duration
	compute  func(t time.Time) (*rdd.Dataset[T], error)
	parents  []Node
	isState  bool // materialize each interval's dataset and checkpoint it
	mu       sync.Mutex
	remember time.Duration
	datasets map[int64]*rdd.Dataset[T]

	// State streams only.
	stateName   string                                               // the user's name of the state (Stream.Name); "" unnamed
	partitions  int                                                  // the state's partitions (0: the default parallelism)
	window      string                                               // the window the state covers ("" none)
	ckEvery     time.Duration                                        // SetCheckpointEvery's interval; 0: the default
	durableFunc int                                                  // the partition function writing a checkpoint's part
	durable     map[int64]string                                     // committed checkpoints: interval time -> store folder
	pendingCut  map[int64]func(context.Context, int) ([]byte, error) // committed, cut at the next manifest
	keptAt      map[int64][]string                                   // kept datasets' locations, from manifests
	ckRunning   chan struct{}                                        // closed when the durable checkpoint in flight ends
	lastCut     int64                                                // the latest interval whose lineage was cut (ms; 0: none yet)
	ckRetry     bool                                                 // a checkpoint failed: the next interval's dataset tries again
	retained    bool                                                 // checkpoint.Retain ran once
	unretained  int                                                  // checkpoints committed since it last ran
	entries     map[int64]entry[T]                                   // LastCheckpoints' entries, reused while unchanged
}

// entry is a manifest entry LastCheckpoints built, with what it was built
// from: it stands while the interval's dataset, its storage version and its
// durable checkpoint are the same.
type entry[T any] struct {
	ds      *rdd.Dataset[T]
	version uint64
	durable string
	cp      manifest.Checkpoint
}

var _ Node = (*Series[int])(nil)

// CheckpointsKept is how many committed checkpoints of each state stream
// the store keeps at least: the newest, and older ones to fall back to (a
// stream that reads older ones, as a window's reductions, keeps those too).
const CheckpointsKept = 3

// NewSeries adds a stream to e's graph, computed by compute from parents,
// producing a dataset every slide. Operator IDs are assigned in creation
// order, so every process that builds the same graph agrees on them.
func NewSeries[T any](e *Engine, name string, slide time.Duration, compute func(time.Time) (*rdd.Dataset[T], error), parents []Node) *Series[T] {
	e.CheckBuilding(name)
	s := &Series[T]{e: e, id: e.NextID(), name: name, slide: slide, compute: compute, parents: parents, remember: slide,
		datasets: make(map[int64]*rdd.Dataset[T]), durable: make(map[int64]string), keptAt: make(map[int64][]string),
		pendingCut: make(map[int64]func(context.Context, int) ([]byte, error)), entries: make(map[int64]entry[T])}
	e.AddNode(s)
	return s
}

// PartitionFunc registers fn as the engine's next partition function and
// returns its id. Registration happens while the graph is built, in the
// same order in every process, so ids agree.
func PartitionFunc[T, R any](e *Engine, fn func(tc *rdd.TaskContext, records []T, arg string) (R, error)) int {
	e.mu.Lock()
	e.nextFunc++
	id := e.nextFunc
	e.mu.Unlock()
	if err := rdd.RegisterPartitionFunc(e.rctx, id, fn); err != nil {
		e.SetErr(err)
	}
	return id
}

func (s *Series[T]) String() string { return fmt.Sprintf("%s#%d", s.name, s.id) }

// OpID is the stream's operator ID.
func (s *Series[T]) OpID() int32 { return s.id }

// SlideDuration is how often the stream produces a dataset.
func (s *Series[T]) SlideDuration() time.Duration { return s.slide }

// ParentNodes are the streams the stream is computed from.
func (s *Series[T]) ParentNodes() []Node { return s.parents }

// Checkpoints reports whether the stream is a state stream (MarkState).
func (s *Series[T]) Checkpoints() bool { return s.isState }

// Describe says what the stream is, for the graph's fingerprint.
func (s *Series[T]) Describe() graphspec.Node {
	n := graphspec.Node{ID: s.id, Kind: "stream", Name: s.name, Type: reflect.TypeFor[T]().String(), Slide: s.slide, State: s.isState}
	if s.isState {
		s.mu.Lock()
		n.StateName = s.stateName
		s.mu.Unlock()
		n.StateType = graphspec.TypeFingerprint(reflect.TypeFor[T]())
		n.Partitions, n.Partitioner, n.Window = s.partitions, "hash", s.window
	}
	for _, p := range s.parents {
		n.Parents = append(n.Parents, p.OpID())
	}
	return n
}

// RememberAtLeast asks the stream to keep what it generated for at least d.
func (s *Series[T]) RememberAtLeast(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remember = max(s.remember, d)
}

// SetCheckpointEvery sets how often a state stream writes a durable
// checkpoint (a positive multiple of its slide, which the caller checked).
func (s *Series[T]) SetCheckpointEvery(every time.Duration) {
	s.mu.Lock()
	s.ckEvery = every
	s.mu.Unlock()
}

// Remembered is how long the stream keeps what it generated (for an error
// message).
func (s *Series[T]) Remembered() time.Duration { return s.RememberDuration() }

// isTime reports whether t is an interval at which the stream produces a dataset.
func (s *Series[T]) isTime(t time.Time) bool {
	return s.e.Timeline().IsSlide(t, s.slide)
}

// At returns the stream's dataset for interval t, generating it (and what it
// depends on) on first use. It returns nil when the stream produces nothing
// at t (t is not a multiple of its slide, or precedes the start).
func (s *Series[T]) At(t time.Time) (*rdd.Dataset[T], error) {
	if !s.isTime(t) {
		return nil, nil
	}
	ms := t.UnixMilli()
	s.mu.Lock()
	ds, ok := s.datasets[ms]
	s.mu.Unlock()
	if ok {
		return ds, nil
	}
	var err error
	s.e.rctx.InScope(s.id, ms, func() {
		ds, err = s.compute(t)
	})
	if err != nil {
		return nil, fmt.Errorf("%s at %d: %w", s, ms, err)
	}
	s.mu.Lock()
	if ds != nil && s.isState {
		// Kept at the end of the interval (FinishInterval): the tasks that
		// compute it pin it where they run, so keeping it needs no job.
		ds.PinOnCompute()
		if locs, ok := s.keptAt[ms]; ok {
			ds.MarkKept(locs)
		}
	}
	s.datasets[ms] = ds
	s.mu.Unlock()
	return ds, nil
}

func (s *Series[T]) NodeAt(t time.Time) (*rdd.Node, error) {
	ds, err := s.At(t)
	if ds == nil || err != nil {
		return nil, err
	}
	return ds.Node(), nil
}

// AtOrEmpty is At, with an empty dataset in place of nil.
func (s *Series[T]) AtOrEmpty(t time.Time) (*rdd.Dataset[T], error) {
	ds, err := s.At(t)
	if ds == nil && err == nil {
		ds = rdd.Empty[T](s.e.rctx)
	}
	return ds, err
}

func (s *Series[T]) CheckpointInterval() time.Duration {
	if !s.isState {
		return 0
	}
	return s.checkpointEvery()
}

func (s *Series[T]) RememberDuration() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remember
}

func (s *Series[T]) Forget(t time.Time) {
	s.mu.Lock()
	cutoff := t.Add(-s.remember).UnixMilli()
	if s.isState {
		// Keep the chain back to the latest cut: a lost partition is
		// recomputed from it.
		cut := int64(-1)
		for ms, ds := range s.datasets {
			if ds != nil && ms <= t.UnixMilli() && ds.Checkpointed() && ms > cut {
				cut = ms
			}
		}
		if cut >= 0 {
			cutoff = min(cutoff, cut-1)
		} else {
			cutoff = -1
		}
		for ms := range s.keptAt {
			if ms <= cutoff {
				delete(s.keptAt, ms)
			}
		}
		for ms := range s.durable {
			if ms <= cutoff {
				delete(s.durable, ms)
			}
		}
	}
	for ms := range s.datasets {
		if ms <= cutoff {
			delete(s.datasets, ms)
		}
	}
	s.mu.Unlock()
	id := s.id
	s.e.rctx.Forget(rdd.ForgetRule{Op: id, UpTo: cutoff})
}

// FinishInterval materializes a state stream's datasets generated up to t:
// the one of t, and any generated late (a window sliding by several
// intervals generates an in-between interval's data only when it next
// slides). In one process their lineage is cut at once; in a cluster it is
// kept (a lost partition is recomputed) until a checkpoint interval's
// dataset is written durably, beside the intervals that follow
// (checkpointing.go). Without a checkpoint store the lineage is cut in
// memory at each checkpoint interval instead.
func (s *Series[T]) FinishInterval(t time.Time) error {
	if !s.isState {
		return nil
	}
	s.mu.Lock()
	var times []int64
	for ms, ds := range s.datasets {
		if ds != nil && ms <= t.UnixMilli() && !ds.Kept() {
			times = append(times, ms)
		}
	}
	slices.Sort(times)
	dss := make([]*rdd.Dataset[T], len(times))
	for i, ms := range times {
		dss[i] = s.datasets[ms]
	}
	s.mu.Unlock()
	keep := s.e.KeepsLineage()
	tl := s.e.Timeline()
	every := s.checkpointEvery()
	var err error
	for i, ds := range dss {
		due := tl.CheckpointDue(time.UnixMilli(times[i]), every) || s.takeRetry()
		var cerr error
		if keep {
			cerr = ds.Keep(s.e.RunCtx())
			if cerr == nil {
				s.e.ForgetDeadHolders(ds.Node(), ds.LoseLocation)
				if due && !s.e.HasCheckpointStore() {
					// No store to write to: the lineage is cut in memory,
					// at the next manifest as a durable checkpoint's is
					// (checkpointDurably): a later stream's job of this
					// interval plans through this dataset, and the workers,
					// which learn of the cut from that manifest, must plan
					// it the same way.
					s.mu.Lock()
					s.pendingCut[times[i]] = nil
					s.lastCut = max(s.lastCut, times[i])
					s.mu.Unlock()
				}
			}
		} else {
			cerr = ds.Checkpoint(s.e.RunCtx())
		}
		if cerr != nil {
			if times[i] == t.UnixMilli() {
				err = cerr // interval t's own failure
				continue
			}
			// An earlier interval's data: its own interval reported why.
			s.e.log.Warn("state of an earlier interval not kept", "stream", s.String(), "time", times[i], "err", cerr)
			continue
		}
		if due && s.e.HasCheckpointStore() {
			s.startDurable(time.UnixMilli(times[i]), ds)
		}
	}
	return err
}

// startDurable starts writing ds, the dataset of t, to the checkpoint store
// beside the intervals that follow. One checkpoint per stream is in flight
// at a time: the next waits for the one before, which bounds the lineage to
// about two checkpoint intervals.
func (s *Series[T]) startDurable(t time.Time, ds *rdd.Dataset[T]) {
	s.mu.Lock()
	prev := s.ckRunning
	done := make(chan struct{})
	s.ckRunning = done
	s.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-s.e.RunCtx().Done():
		}
	}
	s.e.Background(func() {
		defer close(done)
		s.checkpointDurably(t, ds)
	})
}

// checkpointEvery is how often s writes a durable checkpoint.
func (s *Series[T]) checkpointEvery() time.Duration {
	s.mu.Lock()
	every := s.ckEvery
	s.mu.Unlock()
	return timeline.CheckpointEvery(s.slide, every, s.e.cfg.CheckpointInterval)
}

// MarkState makes s a state stream of n partitions (<= 0: the default
// parallelism, which the master resolves: a worker learns it later)
// covering window ("" none): its datasets are materialized each interval
// and checkpointed. Call it while the graph is built: it registers the
// partition function that writes a durable checkpoint.
func (s *Series[T]) MarkState(n int, window string) {
	s.isState = true
	s.partitions, s.window = max(n, 0), window
	s.durableFunc = PartitionFunc(s.e, func(tc *rdd.TaskContext, records []T, dir string) (string, error) {
		return s.e.WritePart(tc, records, dir)
	})
}

// SetStateName names the state (Stream.Name, which checked the name): its
// checkpoints go under the name, and a restart with a changed graph
// matches it by name (graphspec.Upgrade).
func (s *Series[T]) SetStateName(name string) {
	s.mu.Lock()
	s.stateName = name
	s.mu.Unlock()
}

// LoseHolder forgets that addr holds partitions of s's kept datasets: a
// task that needs one recomputes it from lineage, or reads it from the
// checkpoint store.
func (s *Series[T]) LoseHolder(addr string) {
	if !s.isState {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ds := range s.datasets {
		if ds != nil && ds.LoseLocation(addr) {
			n++
		}
	}
	for ms, locs := range s.keptAt {
		for p, l := range locs {
			if l == addr {
				s.keptAt[ms][p] = ""
			}
		}
	}
	if n > 0 {
		s.e.log.Info("state partitions on a lost worker will be recomputed from lineage", "stream", s.String(), "worker", addr, "datasets", n)
	}
}

// takeRetry reports (once) whether a failed checkpoint asked the next
// interval's dataset to try again.
func (s *Series[T]) takeRetry() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ckRetry
	s.ckRetry = false
	return r
}

// retainDue counts a committed checkpoint and reports whether the old ones
// are to be deleted now: at the first, then once every keep/4.
func (s *Series[T]) retainDue(keep int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unretained++
	if s.retained && s.unretained < max(1, keep/4) {
		return false
	}
	s.retained, s.unretained = true, 0
	return true
}

// checkpointDurably writes ds, s's dataset of interval t, to the checkpoint
// store and, once every partition is there, commits it and cuts its lineage.
// It runs beside the intervals that follow; a failure is logged and the
// lineage stays (the next checkpoint tries again).
func (s *Series[T]) checkpointDurably(t time.Time, ds *rdd.Dataset[T]) {
	ctx := s.e.RunCtx()
	s.mu.Lock()
	name := s.stateName
	s.mu.Unlock()
	dir := CheckpointDir(s.id, name, t.UnixMilli())
	start := s.e.cfg.Clock.Now()
	err := func() error {
		store, err := s.e.CheckpointStore()
		if err != nil {
			return err
		}
		// A store's errors are often transient (a full queue, a lost
		// connection to an object store): the parts' tasks retry as tasks
		// do, the job once more, and the commit three times.
		var parts []string
		for attempt := range 2 {
			if parts, err = rdd.RunPartitionFuncBackground[T, string](ctx, ds, s.durableFunc, dir, nil); err == nil || ctx.Err() != nil {
				break
			}
			if attempt == 0 {
				s.e.log.Info("state checkpoint: writing its parts failed; trying again", "stream", s.String(), "time", t.UnixMilli(), "err", err)
			}
		}
		if err != nil {
			return err
		}
		id := ds.ID()
		meta, err := json.Marshal(CommitMeta{Stream: s.id, State: name, Dataset: manifest.ID{Op: id.Op, Time: id.Time, Seq: id.Seq}, Name: ds.Node().Name,
			Partitions: ds.NumPartitions(), HashPartitions: ds.HashPartitions(), Parts: parts, Zero: s.e.Timeline().Zero().UnixMilli(), Slide: s.slide})
		if err != nil {
			return err
		}
		for attempt := range 3 {
			if err = checkpoint.Commit(ctx, store, dir, meta); err == nil || ctx.Err() != nil {
				break
			}
			s.e.log.Info("state checkpoint: its commit failed", "stream", s.String(), "time", t.UnixMilli(), "attempt", attempt+1, "err", err)
		}
		if err != nil {
			return err
		}
		// The lineage is cut when the next interval's manifest is written,
		// not now: a job of this interval may still plan the lineage, and
		// the workers learn of the checkpoint from that manifest, so every
		// process switches at the same interval (lastCheckpoints).
		s.mu.Lock()
		s.pendingCut[t.UnixMilli()] = s.e.DurableReader(parts)
		s.durable[t.UnixMilli()] = dir
		s.lastCut = max(s.lastCut, t.UnixMilli())
		s.mu.Unlock()
		s.e.MetaCheckpointed(s.id, t.UnixMilli(), dir)
		// Keep every checkpoint the stream still reads (a window reads its
		// reductions a window back) or a remembered manifest names (a
		// worker joining now learns the manifests the master remembers,
		// which name the checkpoints of their time), and CheckpointsKept
		// at least.
		//
		// Retain lists the stream's folder and reads every commit record
		// in it: O(keep) objects. It runs at the first checkpoint (what an
		// earlier run left) and then once every keep/4 checkpoints, so an
		// interval pays O(1) of it (a store holds up to keep + keep/4
		// checkpoints between two). At one checkpoint an interval and a
		// 30 s window (keep 62) it was 40% of a local-cluster master's CPU.
		keep := max(CheckpointsKept, int((s.RememberDuration()+s.e.MaxRemember())/s.checkpointEvery())+2)
		if s.retainDue(keep) {
			if err := checkpoint.Retain(ctx, store, StatePrefix(s.id, name), keep); err != nil && ctx.Err() == nil {
				s.e.log.Warn("old state checkpoints not deleted", "stream", s.String(), "err", err)
			}
		}
		return nil
	}()
	if err != nil {
		s.e.CheckpointFailed()
		if ctx.Err() != nil {
			return
		}
		every := s.checkpointEvery()
		s.mu.Lock()
		defer s.mu.Unlock()
		// The inputs the lineage replays are remembered two checkpoint
		// intervals: while the next interval's dataset is still within
		// them (with a slide to spare for the attempt), it tries again,
		// its lineage kept. Past that the job stops: a restart could not
		// rebuild the state from forgotten input.
		last := s.e.Timeline().Zero()
		if s.lastCut > 0 {
			last = time.UnixMilli(s.lastCut)
		}
		if t.Add(2 * s.slide).Before(last.Add(2 * every)) {
			s.e.log.Warn("state checkpoint not written; the next interval tries again", "stream", s.String(), "time", t.UnixMilli(), "err", err)
			s.ckRetry = true
			return
		}
		// Out of retries: the job stops (durable writes, engine/durable.go).
		s.e.log.Error("state checkpoint not written, and the inputs its lineage replays are about to go; stopping the job", "stream", s.String(), "time", t.UnixMilli(), "err", err)
		s.e.DurableFailed(&DurableError{What: fmt.Sprintf("state checkpoint of %s at %d", s, t.UnixMilli()), Err: err})
		return
	}
	s.e.log.Debug("state checkpoint committed", "stream", s.String(), "time", t.UnixMilli(), "dir", dir, "took", s.e.cfg.Clock.Now().Sub(start))
}

// LastCheckpoints returns what interval t of a state stream starts from:
// every dataset before t it remembers that is materialized, with where its
// partitions are, whether its lineage is cut, and its durable checkpoint.
// All of them, not only the latest: a window reads older ones, and one kept
// when an earlier manifest named it may have become durable since.
func (s *Series[T]) LastCheckpoints(t time.Time) []manifest.Checkpoint {
	if !s.isState {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ms, read := range s.pendingCut {
		if ds := s.datasets[ms]; ds != nil {
			ds.Truncate(read)
		}
		delete(s.pendingCut, ms)
	}
	// Called for every interval, over a window's worth of datasets (200
	// at 50 ms intervals and a 10 s window): sized once, no growing.
	times := make([]int64, 0, len(s.datasets))
	for ms, ds := range s.datasets {
		if ds != nil && ms < t.UnixMilli() && ds.Kept() {
			times = append(times, ms)
		}
	}
	slices.Sort(times)
	cps := make([]manifest.Checkpoint, 0, len(times))
	for _, ms := range times {
		ds := s.datasets[ms]
		n := ds.Node()
		// The version first, then the state it covers (StorageVersion).
		version := n.StorageVersion()
		if e, ok := s.entries[ms]; ok && e.ds == ds && e.version == version && e.durable == s.durable[ms] {
			cps = append(cps, e.cp) // shares its Locations: entries are never written to
			continue
		}
		id := ds.ID()
		cp := manifest.Checkpoint{Stream: s.id, Dataset: manifest.ID{Op: id.Op, Time: id.Time, Seq: id.Seq},
			Name: n.Name, Partitions: ds.NumPartitions(), HashPartitions: ds.HashPartitions(),
			Kept: !ds.Checkpointed(), Durable: s.durable[ms]}
		for p := range cp.Partitions {
			if l := n.Locations(p); len(l) > 0 {
				if cp.Locations == nil {
					cp.Locations = make([]string, cp.Partitions)
				}
				cp.Locations[p] = l[0]
			}
		}
		s.entries[ms] = entry[T]{ds: ds, version: version, durable: cp.Durable, cp: cp}
		cps = append(cps, cp)
	}
	if len(s.entries) > len(times) {
		// Forget the entries of datasets gone from the listing.
		listed := make(map[int64]bool, len(times))
		for _, ms := range times {
			listed[ms] = true
		}
		for ms := range s.entries {
			if !listed[ms] {
				delete(s.entries, ms)
			}
		}
	}
	return cps
}

// Adopt applies a manifest's checkpoint entry to the stream. A checkpoint
// (lineage cut) becomes the stream's dataset at its time, in place of one
// this process computed itself: the manifest decides what is checkpointed,
// so a process's own history never changes an interval's lineage. A kept
// dataset keeps this process's lineage, and learns where its partitions are.
func (s *Series[T]) Adopt(cp manifest.Checkpoint) error {
	ms := cp.Dataset.Time
	s.mu.Lock()
	ds, ok := s.datasets[ms]
	known := ok && ds != nil && s.durable[ms] == cp.Durable && (cp.Kept || ds.Checkpointed()) && (cp.Durable == "" || ds.Durable())
	s.mu.Unlock()
	if known && (!cp.Kept || slices.Equal(s.keptLocations(ms), cp.Locations)) {
		return nil // as an earlier manifest said
	}
	var read func(ctx context.Context, p int) ([]byte, error)
	if cp.Durable != "" {
		read = s.e.CommittedReader(cp.Durable)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cp.Durable != "" {
		s.durable[ms] = cp.Durable
	}
	ds, ok = s.datasets[ms]
	if cp.Kept {
		s.keptAt[ms] = slices.Clone(cp.Locations)
		if ok && ds != nil {
			ds.MarkKept(cp.Locations)
		}
		return nil
	}
	if !ok || ds == nil || ds.ID() != (rdd.ID{Op: cp.Dataset.Op, Time: cp.Dataset.Time, Seq: cp.Dataset.Seq}) {
		id := rdd.ID{Op: cp.Dataset.Op, Time: cp.Dataset.Time, Seq: cp.Dataset.Seq}
		ds = rdd.FromCheckpoint[T](s.e.rctx, id, cp.Name, cp.Partitions, cp.HashPartitions)
		s.datasets[ms] = ds
	}
	// The dataset this process built is cut in place: later datasets'
	// lineage points at it.
	if locs := cp.Locations; len(locs) == cp.Partitions {
		ds.MarkKept(locs)
	}
	if !ds.Checkpointed() || (read != nil && !ds.Durable()) {
		ds.Truncate(read)
	}
	return nil
}

// keptLocations returns the locations a manifest gave kept dataset ms.
func (s *Series[T]) keptLocations(ms int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keptAt[ms]
}

// Reset forgets every dataset the stream generated, and a state stream's
// checkpoints and kept datasets (Node.Reset).
func (s *Series[T]) Reset() {
	s.mu.Lock()
	clear(s.datasets)
	clear(s.durable)
	clear(s.pendingCut)
	clear(s.keptAt)
	s.lastCut, s.ckRetry = 0, false
	s.mu.Unlock()
	s.e.rctx.Forget(rdd.ForgetRule{Op: s.id, UpTo: math.MaxInt64})
}

// Latest returns the stream's dataset of the last completed interval at
// which it produced one, and that interval's time; ok is false before the
// first. The dataset stays usable while the stream remembers it (its slide,
// or what Remember asked): a query that runs longer than that may find what
// it reads forgotten, and fails saying so.
func (s *Series[T]) Latest() (ds *rdd.Dataset[T], t time.Time, ok bool) {
	done := s.e.LastCompleted()
	if done.IsZero() {
		return nil, time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best := int64(-1)
	for ms, d := range s.datasets {
		if d != nil && ms <= done.UnixMilli() && ms > best {
			best, ds = ms, d
		}
	}
	if ds == nil {
		return nil, time.Time{}, false
	}
	return ds, time.UnixMilli(best), true
}

// Slice returns the datasets the stream generated at its slide times in
// [from, to], in time order, for intervals already completed. Every one of
// them must still be remembered (see Remember): a range reaching further
// back, or past the last completed interval, is an error saying which.
func (s *Series[T]) Slice(from, to time.Time) ([]*rdd.Dataset[T], error) {
	done := s.e.LastCompleted()
	if to.After(done) {
		return nil, fmt.Errorf("%s: slice up to %d: the last completed interval is %d", s, to.UnixMilli(), done.UnixMilli())
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%s: slice from %d to %d: the range is empty", s, from.UnixMilli(), to.UnixMilli())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*rdd.Dataset[T]
	for t := s.e.Timeline().FirstSlideAtOrAfter(from, s.slide); !t.After(to); t = t.Add(s.slide) {
		ds, ok := s.datasets[t.UnixMilli()]
		if !ok {
			return nil, fmt.Errorf("%s: interval %d is no longer remembered (it keeps %v; call Remember to keep more)", s, t.UnixMilli(), s.remember)
		}
		if ds != nil {
			out = append(out, ds)
		}
	}
	return out, nil
}
