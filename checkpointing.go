package dstream

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/timeline"
)

// State checkpoints (the D-Stream paper, section 4.3). A state stream's
// dataset of every interval is materialized where it is computed. In one
// process (local[N]) nothing can lose it, so its lineage is cut at once. In
// a cluster its lineage is kept (rdd.Dataset.Keep): a partition whose
// holder dies is recomputed, in parallel with the others, from the last
// checkpoint and the inputs since, which the parents remember. Every
// checkpoint interval (Stream.Checkpoint; default max(10 s, 5 slides)) the
// dataset is written to the checkpoint store (Config.CheckpointDir) by the
// processes that hold its partitions, asynchronously, beside the intervals
// that follow; once committed, the lineage is cut there.

// DefaultCheckpointInterval is the least default interval between a state
// stream's durable checkpoints; the default is the larger of it and five
// slides (Spark's rule).
const DefaultCheckpointInterval = timeline.DefaultCheckpointInterval

// CheckpointsKept is how many committed checkpoints of each state stream
// the store keeps at least: the newest, and older ones to fall back to (a
// stream that reads older ones, as a window's reductions, keeps those too).
const CheckpointsKept = 3

// Checkpoint sets how often the state stream s writes its state to the
// checkpoint store (a positive multiple of its slide), overriding
// Config.CheckpointInterval. On a stream that keeps no state it is a graph
// error. It returns s.
func (s *Stream[T]) Checkpoint(every time.Duration) *Stream[T] {
	if !s.isState {
		s.ctx.setErr(fmt.Errorf("Checkpoint (%s): %s keeps no state to checkpoint", caller(), s))
		return s
	}
	if checkMultiple(s.ctx, "Checkpoint", "interval", every, s.slide) {
		s.mu.Lock()
		s.ckEvery = every
		s.mu.Unlock()
	}
	return s
}

// Name names the state that s keeps, so that a later version of the
// program finds it in the checkpoint folder: a master restarted on the
// folder with a changed graph resumes each named state from its
// checkpoint by name, as Flink matches operator state by uid. Call it on
// the result of a state operator: UpdateStateByKey, MapWithState (the
// mapped stream or MapWithStateStream.Name), ReduceByKeyAndWindowInv and
// the operators built on it (CountByValueAndWindow, ReduceByWindowInv,
// CountByWindow), and the event-time window operators
// (EventWindowStream.Name). A window operator keeps two states, its
// window's and its intervals' reductions; the second is named
// name+".reduced".
//
// A name begins with a letter and holds letters, digits, '_', '-' and
// '.', at most 100 characters; two states of a graph may not share one.
// A bad name, or a stream that keeps no state, is a graph error.
//
// What a restart with a changed graph resumes (graphspec.Upgrade):
//
//   - A named state resumes when its operator, record type (the
//     structure of its key and value types, graphspec.TypeFingerprint),
//     partitions, slide and window are unchanged; otherwise Start refuses,
//     naming the state and what changed. The intervals after its newest
//     checkpoint are computed again by the new graph, from the inputs'
//     logged positions.
//   - Outputs, stateless streams and state streams may be added or
//     removed around it. A state the checkpoint lacks starts as a state
//     without a checkpoint: rebuilt from what the inputs still replay.
//     A named state the new graph lacks is refused unless
//     Config.AllowDroppedState.
//   - Inputs resume from their logged positions when they are the same
//     kind at the same operator ID (create the inputs first, in the same
//     order); a new input starts at its configured start.
//   - If the checkpoint holds an unnamed state, nothing may change (the
//     error says so): unnamed state is matched by operator ID, which any
//     change may shift. Naming a state is itself such a change, so a job
//     whose checkpoint holds unnamed state starts afresh once to name it.
//
// It returns s.
func (s *Stream[T]) Name(name string) *Stream[T] {
	if s.nameTarget != nil && !s.isState {
		s.nameTarget.nameState(name, caller())
		return s
	}
	s.nameState(name, caller())
	return s
}

// stateNamer is a state stream of any record type, named by Name.
type stateNamer interface{ nameState(name, at string) }

var validStateName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)

func (s *Stream[T]) nameState(name, at string) {
	switch {
	case !s.isState:
		s.ctx.setErr(fmt.Errorf("Name (%s): %s keeps no state to name", at, s))
		return
	case !validStateName.MatchString(name):
		s.ctx.setErr(fmt.Errorf("Name (%s): state name %q: want a letter, then letters, digits, '_', '-' or '.' (at most 100)", at, name))
		return
	}
	for _, n := range s.ctx.e.Graph() {
		if n.StateName == name && n.ID != s.id {
			s.ctx.setErr(fmt.Errorf("Name (%s): two states named %q (%s and stream %d)", at, name, s, n.ID))
			return
		}
	}
	s.mu.Lock()
	s.stateName = name
	s.mu.Unlock()
	for _, c := range s.companions {
		c.nameState(name+".reduced", at)
	}
}

// checkpointEvery is how often s writes a durable checkpoint.
func (s *Stream[T]) checkpointEvery() time.Duration {
	s.mu.Lock()
	every := s.ckEvery
	s.mu.Unlock()
	return timeline.CheckpointEvery(s.slide, every, s.ctx.cfg.CheckpointInterval)
}

// markState makes s a state stream of n partitions (<= 0: the default
// parallelism, which the master resolves: a worker learns it later)
// covering window ("" none): its datasets are materialized each interval
// and checkpointed (see above). Call it while the graph is built: it
// registers the partition function that writes a durable checkpoint.
func (s *Stream[T]) markState(n int, window string) {
	s.isState = true
	s.partitions, s.window = max(n, 0), window
	s.durableFunc = partitionFunc(s.ctx, func(tc *rdd.TaskContext, records []T, dir string) (string, error) {
		return s.ctx.e.WritePart(tc, records, dir)
	})
}

// loseHolder forgets that addr holds partitions of s's kept datasets: a
// task that needs one recomputes it from lineage, or reads it from the
// checkpoint store.
func (s *Stream[T]) loseHolder(addr string) {
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
		s.ctx.log.Info("state partitions on a lost worker will be recomputed from lineage", "stream", s.String(), "worker", addr, "datasets", n)
	}
}

// takeRetry reports (once) whether a failed checkpoint asked the next
// interval's dataset to try again.
func (s *Stream[T]) takeRetry() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ckRetry
	s.ckRetry = false
	return r
}

// checkpointDurably writes ds, s's dataset of interval t, to the checkpoint
// store and, once every partition is there, commits it and cuts its lineage.
// It runs beside the intervals that follow; a failure is logged and the
// lineage stays (the next checkpoint tries again).
func (s *Stream[T]) checkpointDurably(t time.Time, ds *rdd.Dataset[T]) {
	c := s.ctx
	ctx := c.e.RunCtx()
	s.mu.Lock()
	name := s.stateName
	s.mu.Unlock()
	dir := engine.CheckpointDir(s.id, name, t.UnixMilli())
	start := c.cfg.Clock.Now()
	err := func() error {
		store, err := c.e.CheckpointStore()
		if err != nil {
			return err
		}
		// A store's errors are often transient (a full queue, a lost
		// connection to an object store): the parts' tasks retry as tasks
		// do, the job once more, and the commit three times.
		var parts []string
		for attempt := range 2 {
			if parts, err = rdd.RunPartitionFunc[T, string](ctx, ds, s.durableFunc, dir, nil); err == nil || ctx.Err() != nil {
				break
			}
			if attempt == 0 {
				c.log.Info("state checkpoint: writing its parts failed; trying again", "stream", s.String(), "time", t.UnixMilli(), "err", err)
			}
		}
		if err != nil {
			return err
		}
		id := ds.ID()
		meta, err := json.Marshal(engine.CommitMeta{Stream: s.id, State: name, Dataset: manifest.ID{Op: id.Op, Time: id.Time, Seq: id.Seq}, Name: ds.Node().Name,
			Partitions: ds.NumPartitions(), HashPartitions: ds.HashPartitions(), Parts: parts, Zero: c.e.Timeline().Zero().UnixMilli(), Slide: s.slide})
		if err != nil {
			return err
		}
		for attempt := range 3 {
			if err = checkpoint.Commit(ctx, store, dir, meta); err == nil || ctx.Err() != nil {
				break
			}
			c.log.Info("state checkpoint: its commit failed", "stream", s.String(), "time", t.UnixMilli(), "attempt", attempt+1, "err", err)
		}
		if err != nil {
			return err
		}
		// The lineage is cut when the next interval's manifest is written,
		// not now: a job of this interval may still plan the lineage, and
		// the workers learn of the checkpoint from that manifest, so every
		// process switches at the same interval (lastCheckpoints).
		s.mu.Lock()
		s.pendingCut[t.UnixMilli()] = c.e.DurableReader(parts)
		s.durable[t.UnixMilli()] = dir
		s.lastCut = max(s.lastCut, t.UnixMilli())
		s.mu.Unlock()
		c.e.MetaCheckpointed(s.id, t.UnixMilli(), dir)
		// Keep every checkpoint the stream still reads (a window reads its
		// reductions a window back) or a remembered manifest names (a
		// worker joining now learns the manifests the master remembers,
		// which name the checkpoints of their time), and CheckpointsKept
		// at least.
		keep := max(CheckpointsKept, int((s.rememberDuration()+c.e.MaxRemember())/s.checkpointEvery())+2)
		if err := checkpoint.Retain(ctx, store, engine.StatePrefix(s.id, name), keep); err != nil && ctx.Err() == nil {
			c.log.Warn("old state checkpoints not deleted", "stream", s.String(), "err", err)
		}
		return nil
	}()
	if err != nil {
		c.e.CheckpointFailed()
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
		last := c.e.Timeline().Zero()
		if s.lastCut > 0 {
			last = time.UnixMilli(s.lastCut)
		}
		if t.Add(2 * s.slide).Before(last.Add(2 * every)) {
			c.log.Warn("state checkpoint not written; the next interval tries again", "stream", s.String(), "time", t.UnixMilli(), "err", err)
			s.ckRetry = true
			return
		}
		// Out of retries: the job stops (durable writes, engine/durable.go).
		c.log.Error("state checkpoint not written, and the inputs its lineage replays are about to go; stopping the job", "stream", s.String(), "time", t.UnixMilli(), "err", err)
		c.e.DurableFailed(&engine.DurableError{What: fmt.Sprintf("state checkpoint of %s at %d", s, t.UnixMilli()), Err: err})
		return
	}
	c.log.Debug("state checkpoint committed", "stream", s.String(), "time", t.UnixMilli(), "dir", dir, "took", c.cfg.Clock.Now().Sub(start))
}

// lastCheckpoints returns what interval t of a state stream starts from:
// every dataset before t it remembers that is materialized, with where its
// partitions are, whether its lineage is cut, and its durable checkpoint.
// All of them, not only the latest: a window reads older ones, and one kept
// when an earlier manifest named it may have become durable since.
func (s *Stream[T]) lastCheckpoints(t time.Time) []manifest.Checkpoint {
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
	var times []int64
	for ms, ds := range s.datasets {
		if ds != nil && ms < t.UnixMilli() && ds.Kept() {
			times = append(times, ms)
		}
	}
	slices.Sort(times)
	var cps []manifest.Checkpoint
	for _, ms := range times {
		ds := s.datasets[ms]
		id := ds.ID()
		cp := manifest.Checkpoint{Stream: s.id, Dataset: manifest.ID{Op: id.Op, Time: id.Time, Seq: id.Seq},
			Name: ds.Node().Name, Partitions: ds.NumPartitions(), HashPartitions: ds.HashPartitions(),
			Kept: !ds.Checkpointed(), Durable: s.durable[ms]}
		for p := range cp.Partitions {
			if l := ds.Node().Locations(p); len(l) > 0 {
				if cp.Locations == nil {
					cp.Locations = make([]string, cp.Partitions)
				}
				cp.Locations[p] = l[0]
			}
		}
		cps = append(cps, cp)
	}
	return cps
}

// adopt applies a manifest's checkpoint entry to the stream. A checkpoint
// (lineage cut) becomes the stream's dataset at its time, in place of one
// this process computed itself: the manifest decides what is checkpointed,
// so a process's own history never changes an interval's lineage. A kept
// dataset keeps this process's lineage, and learns where its partitions are.
func (s *Stream[T]) adopt(cp manifest.Checkpoint) error {
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
		meta, err := s.ctx.e.ReadCommit(cp.Durable)
		if err != nil {
			return err
		}
		read = s.ctx.e.DurableReader(meta.Parts)
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
		ds = rdd.FromCheckpoint[T](s.ctx.rctx(), id, cp.Name, cp.Partitions, cp.HashPartitions)
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
func (s *Stream[T]) keptLocations(ms int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keptAt[ms]
}
