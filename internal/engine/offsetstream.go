package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rate"
)

// Offset streams, as Spark's DirectKafkaInputDStream: nothing is received.
// The input is a log that keeps its records and numbers them per partition
// (Kafka), so an interval's input is fully described by one offset range
// [from, until) per partition. At each interval the master asks the log for
// each partition's latest offset (OffsetSource.Plan) and fixes the range
// from the previous interval's end, capped by the per-partition rate and,
// with Config.Backpressure, by the rate the job keeps up with. The
// interval's manifest names the ranges, and every process builds the
// interval's dataset from them (the API's, one partition per range): a lost
// partition is fetched again, the same records.
//
// With a checkpoint folder the master also writes each interval's ranges
// under offsets/ when it cuts it (before it is queued; a failed write stops
// the job: a restart could otherwise take a range twice), and a restarted
// master replays them: the intervals logged but not completed, or cut but
// not run, take exactly the ranges they took, and the next interval starts
// where the last of them ended. After an interval's outputs complete, the
// source may commit its ranges' ends (OffsetSource.Commit, a consumer
// group's offsets), for the usual lag tools.

// OffsetSource is the log an offset stream reads: package kafka's, adapted
// by the API.
type OffsetSource interface {
	// Check is called by Start on the master: the log is reachable and
	// what it reads exists. It may fix starting positions (the latest
	// offsets, for a stream that starts there).
	Check(ctx context.Context) error
	// Plan returns the ranges of the next interval, one per partition
	// the stream reads now, sorted by topic and partition: each starts
	// at next's offset for its partition (a partition not in next
	// starts at the stream's starting position) and ends at most at
	// the partition's latest offset, and spans at most limit's records.
	// ends are the partitions' latest offsets, for the lag.
	Plan(ctx context.Context, next map[Partition]int64, limit Limit) (ranges []manifest.OffsetRange, ends map[Partition]int64, err error)
	// Commit is told the positions after an interval whose outputs
	// completed (the end of each of its ranges).
	Commit(ctx context.Context, upTo []manifest.OffsetRange) error
}

// Partition names one partition of a log.
type Partition struct {
	Topic     string
	Partition int32
}

// Limit caps an interval's ranges.
type Limit struct {
	// PerPartition is the most records a partition's range spans
	// (0: no cap).
	PerPartition int64
	// Total is the most records all ranges span together (0: no cap),
	// shared among partitions in proportion to their lag: backpressure.
	Total int64
}

// OffsetOptions configure an offset stream's input.
type OffsetOptions struct {
	// MaxRatePerPartition caps the records per second a partition's
	// ranges span (0: no cap), as spark.streaming.kafka.maxRatePerPartition.
	MaxRatePerPartition int64
	// Commit asks that each completed interval's positions be given to
	// OffsetSource.Commit.
	Commit bool
}

// OffsetInput is an offset stream's input: on the master it fixes each
// interval's ranges when the interval is cut; in every process it
// remembers the ranges of the intervals it knows (from its cuts or their
// manifests).
type OffsetInput struct {
	c    *Engine
	node Node
	src  OffsetSource
	opts OffsetOptions

	mu       sync.Mutex
	selected map[int64][]manifest.OffsetRange // by interval (Unix ms)
	next     map[Partition]int64              // the master's position: the end of the latest range
	latest   int64                            // the latest interval known
	lag      map[Partition]int64              // at the latest cut: latest offset - the range's end
	cuts     int

	rateOnce sync.Once
	rate     *rate.Controller // with Backpressure
	records  perStreamRecords
}

// AddOffsets adds the input of offset stream n, which reads src.
func (c *Engine) AddOffsets(n Node, src OffsetSource, opts OffsetOptions) *OffsetInput {
	oi := &OffsetInput{c: c, node: n, src: src, opts: opts, selected: map[int64][]manifest.OffsetRange{}, next: map[Partition]int64{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutters = append(c.cutters, oi)
	return oi
}

func (oi *OffsetInput) OpID() int32                     { return oi.node.OpID() }
func (oi *OffsetInput) RememberDuration() time.Duration { return oi.node.RememberDuration() }

// check is called by Start on the master (startChecker).
func (oi *OffsetInput) check(ctx context.Context) error {
	if err := oi.src.Check(ctx); err != nil {
		return fmt.Errorf("offset stream %d: %w", oi.OpID(), err)
	}
	if oi.opts.Commit {
		oi.c.bus.Add(offsetCommitter{oi})
	}
	return nil
}

// RangesAt returns the ranges of interval t, and whether it is known.
func (oi *OffsetInput) RangesAt(t time.Time) ([]manifest.OffsetRange, bool) {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	rs, ok := oi.selected[t.UnixMilli()]
	return rs, ok
}

// Lag returns, per partition, how many offsets were past the end of its
// range at the latest cut (the master's; empty elsewhere).
func (oi *OffsetInput) Lag() map[Partition]int64 {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	return maps.Clone(oi.lag)
}

// keep is how long before the latest interval a selection is kept: as long
// as the stream remembers its datasets (a window refetches them).
func (oi *OffsetInput) keep() time.Duration {
	return oi.c.Timeline().Retention(oi.node.RememberDuration(), 0)
}

// record makes rs the ranges of interval ms, moves the position past them,
// and forgets the selections no interval needs any more.
func (oi *OffsetInput) record(ms int64, rs []manifest.OffsetRange) {
	if rs == nil {
		rs = []manifest.OffsetRange{}
	}
	oi.mu.Lock()
	defer oi.mu.Unlock()
	oi.selected[ms] = rs
	if ms >= oi.latest {
		for _, r := range rs {
			oi.next[Partition{r.Topic, r.Partition}] = r.Until
		}
	}
	oi.latest = max(oi.latest, ms)
	keepFrom := oi.latest - oi.keep().Milliseconds()
	for t := range oi.selected {
		if t < keepFrom {
			delete(oi.selected, t)
		}
	}
}

// learn records the ranges a manifest names (a worker's Materialize).
func (oi *OffsetInput) learn(ms int64, rs []manifest.OffsetRange) { oi.record(ms, rs) }

// limit is the cap of the next interval's ranges.
func (oi *OffsetInput) limit() Limit {
	var l Limit
	batch := oi.c.cfg.BatchInterval
	if r := oi.opts.MaxRatePerPartition; r > 0 {
		l.PerPartition = max(1, int64(float64(r)*batch.Seconds()))
	}
	if oi.rate != nil {
		perSec, ok := oi.rate.Rate()
		if !ok && oi.c.cfg.InitialRate > 0 {
			// Before the first estimate (Spark's
			// spark.streaming.backpressure.initialRate).
			perSec, ok = float64(oi.c.cfg.InitialRate), true
		}
		if ok {
			l.Total = max(1, int64(perSec*batch.Seconds()))
		}
	}
	return l
}

// startRate gives the input a rate controller when Backpressure is on, at
// its first cut.
func (oi *OffsetInput) startRate() {
	c := oi.c
	if !c.cfg.Backpressure {
		return
	}
	pid, err := rate.NewDefaultPID(c.cfg.BatchInterval)
	if err != nil {
		c.log.Warn("offset stream: no backpressure", "stream", oi.OpID(), "err", err)
		return
	}
	ctl, err := rate.NewController(rate.ControllerConfig{Estimator: pid, InitialRate: c.cfg.InitialRate,
		Records: oi.records.of, Logger: c.log.With("stream", fmt.Sprint(oi.node))})
	if err != nil {
		c.log.Warn("offset stream: no backpressure", "stream", oi.OpID(), "err", err)
		return
	}
	oi.rate = ctl
	c.bus.Add(ctl)
}

// cut fixes interval t's ranges on the master: those it took before a
// restart, if it was cut then; otherwise from the log now. With a
// checkpoint folder they are written before the interval is queued.
func (oi *OffsetInput) cut(ctx context.Context, t time.Time) error {
	oi.rateOnce.Do(oi.startRate)
	ms := t.UnixMilli()
	if rs, ok := oi.RangesAt(t); ok {
		oi.c.log.Debug("offset stream: interval replays the ranges it took before the restart", "stream", oi.OpID(), "time", ms, "ranges", len(rs))
		oi.records.note(t, rangeRecords(rs))
		return nil
	}
	oi.mu.Lock()
	next := maps.Clone(oi.next)
	oi.mu.Unlock()
	rs, ends, err := oi.src.Plan(ctx, next, oi.limit())
	if err != nil {
		return fmt.Errorf("offset stream %d: %w", oi.OpID(), err)
	}
	if err := checkRanges(rs, next); err != nil {
		return fmt.Errorf("offset stream %d: %w", oi.OpID(), err)
	}
	if err := oi.persist(ctx, ms, rs); err != nil {
		return err
	}
	oi.record(ms, rs)
	lag := make(map[Partition]int64, len(rs))
	for _, r := range rs {
		p := Partition{r.Topic, r.Partition}
		lag[p] = max(0, ends[p]-r.Until)
	}
	oi.mu.Lock()
	oi.lag = lag
	oi.mu.Unlock()
	oi.records.note(t, rangeRecords(rs))
	return nil
}

// checkRanges refuses a plan that would skip or repeat offsets: each
// partition once, sorted, starting where the previous interval ended.
func checkRanges(rs []manifest.OffsetRange, next map[Partition]int64) error {
	for i, r := range rs {
		if r.Until < r.From || r.From < 0 {
			return fmt.Errorf("malformed range %+v", r)
		}
		if i > 0 && cmp.Or(cmp.Compare(rs[i-1].Topic, r.Topic), cmp.Compare(rs[i-1].Partition, r.Partition)) >= 0 {
			return fmt.Errorf("ranges not sorted by topic and partition, each once: %s/%d after %s/%d", r.Topic, r.Partition, rs[i-1].Topic, rs[i-1].Partition)
		}
		if n, ok := next[Partition{r.Topic, r.Partition}]; ok && n != r.From {
			return fmt.Errorf("range %s/%d [%d, %d) does not start where the previous interval ended (%d)", r.Topic, r.Partition, r.From, r.Until, n)
		}
	}
	return nil
}

func rangeRecords(rs []manifest.OffsetRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.Records()
	}
	return n
}

// offsetSelection is a selection as written to the checkpoint store.
type offsetSelection struct {
	Stream int32                  `json:"stream"`
	Time   int64                  `json:"time"`
	Ranges []manifest.OffsetRange `json:"ranges"`
}

const offsetSelectionKind = "dstream.offsets"

// prefix is where the stream's selections are written.
func (oi *OffsetInput) prefix() string { return fmt.Sprintf("offsets/%06d/", oi.OpID()) }

// persist writes interval ms's ranges to the checkpoint store, when the
// master has a metadata log, and now and then deletes those no restart can
// need. Unlike a file stream's selection, a failed write stops the job: a
// restart would fix the interval's ranges again from the last written
// ones, taking offsets twice if a later interval's were written.
func (oi *OffsetInput) persist(ctx context.Context, ms int64, rs []manifest.OffsetRange) error {
	c := oi.c
	if !c.metaOpen() {
		return nil
	}
	store, err := c.CheckpointStore()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(offsetSelection{Stream: oi.OpID(), Time: ms, Ranges: rs})
	name := fmt.Sprintf("%s%020d", oi.prefix(), ms)
	if err := c.retryDurable(ctx, "offset ranges "+name, func() error {
		return store.Put(ctx, name, checkpoint.Frame(offsetSelectionKind, 1, b))
	}); err != nil {
		return err
	}
	oi.mu.Lock()
	oi.cuts++
	sweep := oi.cuts%16 == 1
	oi.mu.Unlock()
	if sweep {
		// Keep what a restart replays: the intervals a window still
		// reaches, and every one not yet completed.
		from := min(ms-oi.keep().Milliseconds(), c.lastDoneMs()-oi.keep().Milliseconds())
		oi.deleteOld(ctx, store, from)
	}
	return nil
}

// lastDoneMs is the last interval the runner completed (0: none yet).
func (c *Engine) lastDoneMs() int64 {
	if c.run == nil {
		return 0
	}
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	if c.run.lastDone.IsZero() {
		return 0
	}
	return c.run.lastDone.UnixMilli()
}

// deleteOld deletes the selections written for intervals before from.
func (oi *OffsetInput) deleteOld(ctx context.Context, store checkpoint.Store, from int64) {
	names, err := store.List(ctx, oi.prefix())
	if err != nil {
		return
	}
	for _, n := range names {
		t, err := strconv.ParseInt(strings.TrimPrefix(n, oi.prefix()), 10, 64)
		if err != nil || t >= from {
			continue
		}
		if err := store.Delete(ctx, n); err != nil {
			oi.c.log.Warn("offset stream: old selection not deleted", "name", n, "err", err)
		}
	}
}

// resume gives a restarted master the ranges it fixed before: those
// written at the cuts, and those of the manifests logged for intervals not
// completed. The intervals the restart runs again take exactly those
// ranges, and the next interval starts where the latest of them ended. A
// selection that cannot be read stops the restart: guessing it could take
// offsets twice or skip them.
func (oi *OffsetInput) resume(ctx context.Context, store checkpoint.Store, logged map[int64]loggedManifest, first time.Time) error {
	c := oi.c
	names, err := store.List(ctx, oi.prefix())
	if err != nil {
		return fmt.Errorf("offset stream %d: %w", oi.OpID(), err)
	}
	for _, n := range names {
		t, err := strconv.ParseInt(strings.TrimPrefix(n, oi.prefix()), 10, 64)
		if err != nil {
			continue
		}
		b, err := store.Get(ctx, n)
		if errors.Is(err, checkpoint.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("offset stream %d: %w", oi.OpID(), err)
		}
		var sel offsetSelection
		err = decodeSelection(b, offsetSelectionKind, &sel)
		if err == nil && (sel.Time != t || sel.Stream != oi.OpID()) {
			err = fmt.Errorf("holds interval %d of stream %d", sel.Time, sel.Stream)
		}
		if err != nil {
			return fmt.Errorf("offset stream %d: the ranges written as %s are unreadable (%w); move the checkpoint folder aside to start afresh", oi.OpID(), n, err)
		}
		oi.record(t, sel.Ranges)
	}
	for _, t := range slices.Sorted(maps.Keys(logged)) {
		for _, in := range logged[t].m.Inputs {
			if in.Stream == oi.OpID() {
				oi.record(t, in.Ranges)
			}
		}
	}
	oi.mu.Lock()
	n, parts := len(oi.selected), len(oi.next)
	oi.mu.Unlock()
	if n > 0 {
		c.log.Info("offset stream: ranges fixed before the restart restored", "stream", oi.OpID(), "intervals", n, "partitions", parts, "first", first.UnixMilli())
	}
	return nil
}

// offsetInputOf returns the offset input of stream, or nil.
func (c *Engine) offsetInputOf(stream int32) *OffsetInput {
	for _, in := range c.cutters {
		if oi, ok := in.(*OffsetInput); ok && oi.OpID() == stream {
			return oi
		}
	}
	return nil
}

// offsetCommitter commits each completed interval's positions, on the
// listener bus: briefly (a commit that takes longer is dropped, as the next
// interval's covers it), so an unreachable group coordinator delays the
// other listeners little, and a graceful stop, which delivers the queued
// events, commits the last interval's.
type offsetCommitter struct{ oi *OffsetInput }

func (oc offsetCommitter) OnEvent(e listener.Event) {
	done, ok := e.(listener.BatchCompleted)
	if !ok || done.Batch.Err != nil {
		return
	}
	rs, ok := oc.oi.RangesAt(done.Batch.Time)
	if !ok || len(rs) == 0 {
		return
	}
	c := oc.oi.c
	ctx, cancel := context.WithTimeout(c.RunCtx(), 3*time.Second)
	defer cancel()
	if err := oc.oi.src.Commit(ctx, rs); err != nil && ctx.Err() == nil {
		c.log.Warn("offset stream: positions not committed (the next interval's commit covers them)", "stream", oc.oi.OpID(), "time", done.Batch.Time.UnixMilli(), "err", err)
	}
}

// startChecker is a cut input that checks its source when the master
// starts (Start fails with its error).
type startChecker interface {
	check(ctx context.Context) error
}

// resumer is a cut input that restores the selections it made before a
// restart (recovery.go).
type resumer interface {
	resume(ctx context.Context, store checkpoint.Store, logged map[int64]loggedManifest, first time.Time) error
}

// offsetRecords is how many offsets the offset streams' ranges of interval
// t span: the interval's records from them (for the UI and the listeners).
func (c *Engine) offsetRecords(t time.Time) int64 {
	var n int64
	for _, in := range c.cutters {
		if oi, ok := in.(*OffsetInput); ok {
			rs, _ := oi.RangesAt(t)
			n += rangeRecords(rs)
		}
	}
	return n
}

// OffsetLags returns, for every offset stream, each partition's lag at the
// latest cut: how many offsets were past the end of its range.
func (c *Engine) OffsetLags() map[int32]map[Partition]int64 {
	out := map[int32]map[Partition]int64{}
	c.mu.Lock()
	cutters := c.cutters
	c.mu.Unlock()
	for _, in := range cutters {
		if oi, ok := in.(*OffsetInput); ok {
			out[oi.OpID()] = oi.Lag()
		}
	}
	return out
}
