package engine

import (
	"cmp"
	"context"
	"fmt"
	"maps"
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

// EventTimeSource is a stream whose records carry event times.
type EventTimeSource interface {
	OpID() int32
	// MaxDelay is how far behind the largest event time seen the
	// watermark stays.
	MaxDelay() time.Duration
	// EventTimeStats runs a job over the stream's dataset of interval t and
	// returns the largest event time among its records (Unix ms) and how
	// many records it has (0: none, and max means nothing).
	EventTimeStats(ctx context.Context, t time.Time) (max int64, records int64, err error)
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
		id    int32
		delay time.Duration
		max   int64
	}
	var seen []obs
	for _, s := range sources {
		mx, n, err := s.EventTimeStats(ctx, t)
		if err != nil {
			return fmt.Errorf("event time of stream %d: %w", s.OpID(), err)
		}
		if n > 0 {
			seen = append(seen, obs{s.OpID(), s.MaxDelay(), mx})
		}
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
		e, ok := c.et.cur[o.id]
		if !ok || o.max > e.Max {
			c.et.cur[o.id] = manifest.EventTime{Stream: o.id, Max: o.max, Watermark: o.max - o.delay.Milliseconds()}
		}
	}
	return nil
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
