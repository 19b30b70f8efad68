package engine

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/manifest"
)

// Event time (the root package's WithEventTime and event-time windows).
// Intervals stay arrival-time intervals; event time is data. After each
// interval the master asks every event-time stream for the largest event
// time among the interval's records (EventTimeSource.EventTimeStats, a job
// over the stream's dataset), keeps the running maximum, and writes it with
// the watermark it gives (the maximum less the stream's maximum delay) into
// the next interval's manifest (manifest.EventTime) and into the interval's
// "done" record of the metadata log. An interval's operators read the
// watermark from its manifest only, so a recomputation, a worker, a
// restarted master and a standby that took over see the same one: a
// restarted master takes the progress from its last completed interval's
// record, and the manifests of earlier intervals it rebuilds from the
// manifests it logged.

//
// A stream read per partition of a log (a Kafka stream, through operators
// that keep each partition's records apart) reports its statistics per
// partition, and its watermark follows the slowest partition: the minimum
// over the partitions of their largest event time, less the maximum delay,
// as Flink's per-split watermarks. A partition that carried no record for
// the stream's idleness timeout (measured in interval times, never the wall
// clock) is idle and left out of the minimum until it carries records
// again; without a timeout (0) a quiet partition holds the watermark. Every
// partition idle, the watermark stays. advanceEventTime decides, from the
// progress before the interval and the interval's statistics only.

// EventTimeSource is a stream whose records carry event times.
type EventTimeSource interface {
	OpID() int32
	// MaxDelay is how far behind the largest event time seen the
	// watermark stays.
	MaxDelay() time.Duration
	// Idleness is how long a partition of a stream read per partition
	// carries no record before it no longer holds the watermark (0:
	// never).
	Idleness() time.Duration
	// EventTimeStats runs a job over the stream's dataset of interval t
	// and returns what its records carried.
	EventTimeStats(ctx context.Context, t time.Time) (EventTimeStats, error)
}

// EventTimeStats is what an event-time stream's records of one interval
// carried.
type EventTimeStats struct {
	// Max is the largest event time among the records (Unix ms) and
	// Records how many there are (0: none, and Max means nothing).
	Max, Records int64
	// Partitions is, for a stream read per partition of a log, the same per
	// partition, one entry for every partition the interval read (an empty
	// range too: Records 0); nil for other streams.
	Partitions map[Partition]PartitionStats
}

// PartitionStats is what one partition's records of an interval carried.
type PartitionStats struct {
	Max, Records int64
}

// LateCounter is an event-time operator that drops late records.
type LateCounter interface {
	OpID() int32
	// LateRecords runs a job over the operator's data of interval t and
	// returns how many of the interval's records were late.
	LateRecords(ctx context.Context, t time.Time) (int64, error)
}

// eventTimes is the master's view of the event-time streams.
type eventTimes struct {
	mu       sync.Mutex
	sources  []EventTimeSource
	counters []LateCounter
	// cur is each stream's progress as the next interval to run starts.
	cur map[int32]manifest.EventTime
	// logged holds the progress the metadata log's manifests recorded, by
	// interval: intervals completed before a restart are rebuilt with it.
	logged map[int64][]manifest.EventTime
	late   int64 // late records dropped, since the start
}

// AddEventTimeSource registers an event-time stream (while the graph is built).
func (c *Engine) AddEventTimeSource(s EventTimeSource) {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	c.et.sources = append(c.et.sources, s)
}

// AddLateCounter registers an operator that drops late records.
func (c *Engine) AddLateCounter(l LateCounter) {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	c.et.counters = append(c.et.counters, l)
}

// EventTimeSources returns the IDs of the graph's event-time streams.
func (c *Engine) EventTimeSources() map[int32]time.Duration {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	ids := make(map[int32]time.Duration, len(c.et.sources))
	for _, s := range c.et.sources {
		ids[s.OpID()] = s.MaxDelay()
	}
	return ids
}

// LateRecords returns how many late records the event-time operators have
// dropped since the start (in this master process).
func (c *Engine) LateRecords() int64 {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	return c.et.late
}

// eventTimesFor returns the progress interval t starts with: the logged
// one for an interval a restarted master completed before, else the
// current one.
func (c *Engine) eventTimesFor(t time.Time) []manifest.EventTime {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	if ets, ok := c.et.logged[t.UnixMilli()]; ok {
		return slices.Clone(ets)
	}
	return sortedEventTimes(c.et.cur)
}

// eventTimesNext returns the progress the next interval starts with, for
// the metadata log's "done" record.
func (c *Engine) eventTimesNext() []manifest.EventTime {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	return sortedEventTimes(c.et.cur)
}

func sortedEventTimes(m map[int32]manifest.EventTime) []manifest.EventTime {
	if len(m) == 0 {
		return nil
	}
	ets := slices.Collect(maps.Values(m))
	slices.SortFunc(ets, func(a, b manifest.EventTime) int { return cmp.Compare(a.Stream, b.Stream) })
	return ets
}

// observeEventTimes runs, after interval t's outputs, every event-time
// stream's statistics job and advances its progress, then counts the
// operators' late records (posted as listener.LateRecords).
func (c *Engine) observeEventTimes(t time.Time) error {
	c.et.mu.Lock()
	sources, counters := slices.Clone(c.et.sources), slices.Clone(c.et.counters)
	c.et.mu.Unlock()
	if len(sources) == 0 && len(counters) == 0 {
		return nil
	}
	ctx := c.RunCtx()
	type obs struct {
		src EventTimeSource
		st  EventTimeStats
	}
	var seen []obs
	for _, s := range sources {
		st, err := s.EventTimeStats(ctx, t)
		if err != nil {
			return fmt.Errorf("event time of stream %d: %w", s.OpID(), err)
		}
		seen = append(seen, obs{s, st})
	}
	var late int64
	for _, l := range counters {
		n, err := l.LateRecords(ctx, t)
		if err != nil {
			return fmt.Errorf("late records of stream %d: %w", l.OpID(), err)
		}
		if n > 0 {
			c.bus.Post(listener.LateRecords{Time: t, Stream: l.OpID(), Records: n})
		}
		late += n
	}
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	c.et.late += late
	if c.et.cur == nil {
		c.et.cur = make(map[int32]manifest.EventTime)
	}
	for _, o := range seen {
		id := o.src.OpID()
		prev, had := c.et.cur[id]
		if e, ok := advanceEventTime(prev, had, id, o.st, t.UnixMilli(), c.cfg.BatchInterval.Milliseconds(), o.src.MaxDelay(), o.src.Idleness()); ok {
			c.et.cur[id] = e
		}
	}
	return nil
}

// advanceEventTime returns stream's progress after interval t (Unix ms),
// from its progress before (prev, if had) and the interval's statistics
// st; false while the stream has none (no record, no partition). batch is
// the batch interval (ms): a partition first read in interval t has been
// quiet since t - batch. It is pure: a restarted master given the same
// progress and statistics decides the same.
func advanceEventTime(prev manifest.EventTime, had bool, stream int32, st EventTimeStats, t, batch int64, delay, idleness time.Duration) (manifest.EventTime, bool) {
	if st.Partitions == nil && len(prev.Partitions) == 0 {
		if st.Records == 0 {
			return prev, had
		}
		if had && st.Max <= prev.Max {
			return prev, true
		}
		return manifest.EventTime{Stream: stream, Max: st.Max, Watermark: st.Max - delay.Milliseconds()}, true
	}
	e := manifest.EventTime{Stream: stream, Max: prev.Max, Watermark: prev.Watermark, Pending: !had || prev.Pending}
	seenAny := had && (!prev.Pending || slices.ContainsFunc(prev.Partitions, func(p manifest.PartitionTime) bool { return p.Seen }))
	if st.Records > 0 {
		if !seenAny || st.Max > e.Max {
			e.Max = st.Max
		}
		seenAny = true
	}
	old := make(map[Partition]manifest.PartitionTime, len(prev.Partitions))
	for _, p := range prev.Partitions {
		old[Partition{p.Topic, p.Partition}] = p
	}
	// The partitions the interval read; one it no longer reads (a topic
	// gone) no longer counts.
	keys := slices.SortedFunc(maps.Keys(st.Partitions), func(a, b Partition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	if st.Partitions == nil {
		// (A stream read per partition before whose lineage no longer
		// tells the partitions apart: the partitions keep their progress.)
		keys = slices.Collect(maps.Keys(old))
		slices.SortFunc(keys, func(a, b Partition) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
	}
	low, all, active := int64(math.MaxInt64), true, 0
	for _, k := range keys {
		p, ok := old[k]
		if !ok {
			p = manifest.PartitionTime{Topic: k.Topic, Partition: k.Partition, Active: t - batch}
		}
		if ps := st.Partitions[k]; ps.Records > 0 {
			if !p.Seen || ps.Max > p.Max {
				p.Max = ps.Max
			}
			p.Seen, p.Active = true, t
		}
		p.Idle = idleness > 0 && t-p.Active >= idleness.Milliseconds()
		e.Partitions = append(e.Partitions, p)
		if p.Idle {
			continue
		}
		active++
		if !p.Seen {
			all = false
			continue
		}
		low = min(low, p.Max)
	}
	if active > 0 && all {
		// Every partition not idle has carried a record: the slowest one's
		// progress gives the watermark, which never moves back. (Every
		// partition idle: it stays.)
		if w := low - delay.Milliseconds(); e.Pending || w > e.Watermark {
			e.Watermark, e.Pending = w, false
		}
	}
	if !seenAny {
		e.Max = 0
	}
	if e.Pending {
		e.Watermark = 0
	}
	return e, had || len(e.Partitions) > 0 || seenAny
}

// resumeEventTimes gives a restarted master the progress it logged: done,
// that of its last completed interval's record, and every logged
// manifest's.
func (c *Engine) resumeEventTimes(logged map[int64]loggedManifest, done []manifest.EventTime) {
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	c.et.cur = make(map[int32]manifest.EventTime, len(done))
	for _, e := range done {
		c.et.cur[e.Stream] = e
	}
	c.et.logged = make(map[int64][]manifest.EventTime, len(logged))
	for t, lm := range logged {
		c.et.logged[t] = lm.m.EventTimes
	}
}

// EventTimesAt returns the event-time streams' progress interval t starts
// with: its manifest's while the context remembers it, else what the
// metadata log recorded for it (a restarted master rebuilding a state's
// intervals from an older checkpoint); false if neither knows t.
func (c *Engine) EventTimesAt(t time.Time) ([]manifest.EventTime, bool) {
	if m, ok := c.manifests.Get(t.UnixMilli()); ok {
		return m.EventTimes, true
	}
	c.et.mu.Lock()
	defer c.et.mu.Unlock()
	ets, ok := c.et.logged[t.UnixMilli()]
	return ets, ok
}

// EventTimeSourcesOf returns the event-time streams among n and its ancestors.
func (c *Engine) EventTimeSourcesOf(n Node) []int32 {
	srcs := c.EventTimeSources()
	seen := map[int32]bool{}
	var out []int32
	var walk func(Node)
	walk = func(n Node) {
		if seen[n.OpID()] {
			return
		}
		seen[n.OpID()] = true
		if _, ok := srcs[n.OpID()]; ok {
			out = append(out, n.OpID())
			return
		}
		for _, p := range n.ParentNodes() {
			walk(p)
		}
	}
	walk(n)
	slices.Sort(out)
	return out
}

// WatermarkAt returns the watermark interval t runs with for an operator
// fed by the event-time streams sources: the minimum of theirs in t's manifest; false if one has
// none yet.
func (c *Engine) WatermarkAt(sources []int32, t time.Time) (int64, bool, error) {
	ets, ok := c.EventTimesAt(t)
	if !ok {
		return 0, false, fmt.Errorf("no manifest of interval %d: its watermark is unknown", t.UnixMilli())
	}
	wm := int64(math.MaxInt64)
	for _, id := range sources {
		i := slices.IndexFunc(ets, func(e manifest.EventTime) bool { return e.Stream == id })
		if i < 0 || !ets[i].HasWatermark() {
			return 0, false, nil
		}
		wm = min(wm, ets[i].Watermark)
	}
	return wm, len(sources) > 0, nil
}
