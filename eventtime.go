package dstream

import (
	"context"
	"fmt"
	"iter"
	"math"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/internal/eventwin"
	"github.com/dstream/dstream/rdd"
)

// Event is a record with its event time.
type Event[T any] struct {
	Time  time.Time
	Value T
}

// Windowed is an event-time window's value for one key: the window is
// [Start, End).
type Windowed[K, A any] struct {
	Key        K
	Start, End time.Time
	Value      A
}

func (w Windowed[K, A]) String() string {
	return fmt.Sprintf("%v[%d,%d)=%v", w.Key, w.Start.UnixMilli(), w.End.UnixMilli(), w.Value)
}

// OutputMode says when an event-time window operator outputs a window.
type OutputMode int

const (
	// AppendMode outputs a window once, at the first interval whose
	// watermark is at or past its end, with its final value.
	AppendMode OutputMode = iota
	// UpdateMode outputs, every interval, the windows that interval's
	// records changed, with their values so far.
	UpdateMode
)

func (m OutputMode) String() string {
	switch m {
	case AppendMode:
		return "append"
	case UpdateMode:
		return "update"
	}
	return fmt.Sprintf("OutputMode(%d)", int(m))
}

// EventWindows says how records are grouped into windows by event time:
// TumblingWindows, SlidingWindows or SessionWindows.
type EventWindows struct {
	size, slide, gap time.Duration
}

// TumblingWindows are consecutive windows of size, [k*size, (k+1)*size).
func TumblingWindows(size time.Duration) EventWindows {
	return EventWindows{size: size, slide: size}
}

// SlidingWindows are windows of size starting every slide, [k*slide,
// k*slide+size); a record belongs to every one that covers its event time.
// 0 < slide <= size.
func SlidingWindows(size, slide time.Duration) EventWindows {
	return EventWindows{size: size, slide: slide}
}

// SessionWindows group each key's records into sessions: a record at
// event time e opens [e, e+gap), and sessions that overlap or touch merge.
func SessionWindows(gap time.Duration) EventWindows { return EventWindows{gap: gap} }

func (w EventWindows) session() bool { return w.gap != 0 }

// String describes the windows ("sliding 10s every 5s", "session gap 30s").
func (w EventWindows) String() string {
	switch {
	case w.session():
		return fmt.Sprintf("event-time session gap %v", w.gap)
	case w.size == w.slide:
		return fmt.Sprintf("event-time tumbling %v", w.size)
	}
	return fmt.Sprintf("event-time sliding %v every %v", w.size, w.slide)
}

// spec is w in package eventwin's terms.
func (w EventWindows) spec() eventwin.Windows {
	return eventwin.Windows{Size: w.size.Milliseconds(), Slide: w.slide.Milliseconds(), Gap: w.gap.Milliseconds()}
}

func (w EventWindows) check() error {
	ms := time.Millisecond
	switch {
	case w.session():
		if w.gap < ms || w.gap%ms != 0 {
			return fmt.Errorf("session gap %v must be a positive whole number of milliseconds", w.gap)
		}
	case w.size < ms || w.size%ms != 0 || w.slide < ms || w.slide%ms != 0:
		return fmt.Errorf("window size %v and slide %v must be positive whole numbers of milliseconds", w.size, w.slide)
	case w.slide > w.size:
		return fmt.Errorf("window slide %v is longer than its size %v", w.slide, w.size)
	}
	return nil
}

// WithEventTime makes s an event-time stream: each record stamped with
// eventTime(record), and a watermark maxDelay behind the largest event
// time it has carried. eventTime must be deterministic. After every
// interval the master runs a small job over the interval's records to learn
// their largest event time.
//
// Event time. Intervals are arrival-time intervals, as everywhere in
// dstream; event time is data: WithEventTime stamps each record with the
// time it says it happened, and the event-time window operators
// (AggregateByEventWindow, ReduceByEventWindow, CountByEventWindow) group
// records by it, keeping the open windows as partitioned, checkpointed
// state. The semantics are those of Spark Structured Streaming's
// withWatermark with one Spark micro-batch per interval (and Spark's
// no-data batches on):
//
//   - The watermark of an event-time stream, for interval t, is the largest
//     event time among its records in the intervals before t, less the
//     stream's maxDelay. A stream that has carried no record has none.
//     The master decides it after each interval from what the interval's
//     tasks report and records it in the next interval's manifest (package
//     manifest), so a recomputation, a worker, a restart and a standby
//     master that takes over all see the same one.
//   - A stream read from a KafkaStream through operators that keep each
//     partition's records apart (Map, Filter, FlatMap, MapPartitions...;
//     no shuffle, union or window before WithEventTime) is tracked per
//     topic-partition: its watermark is the minimum over the partitions of
//     their largest event time, less maxDelay, so the slowest partition
//     holds it, and it has none until every partition has carried a record.
//     A partition that carries no record holds it too, unless WithIdleness
//     makes it idle. Each partition's progress is in the manifest
//     (manifest.EventTime.Partitions) and decided by the master from the
//     tasks' reports and the interval's offset ranges only. A stream whose
//     lineage mixes the partitions is tracked as a whole (a warning is
//     logged once).
//   - An operator fed by several event-time streams (unioned, joined,
//     transformed together) uses the minimum of their watermarks, and none
//     until every one of them has carried a record (Spark's default
//     "min" policy). It never moves back.
//   - Windows are half open, [start, end), in Unix milliseconds; tumbling
//     and sliding windows start at multiples of their slide since the Unix
//     epoch. A session window of a key starts at a record's event time and
//     ends gap after the latest event time in it; two sessions of a key
//     whose ranges overlap or touch merge.
//   - A record's part in a window whose end is at or before the interval's
//     watermark is dropped: the window is closed. A record all of whose
//     windows are closed is late: it is counted (listener.LateRecords, the
//     UI's dstream_late_records_total) and, if the program asks, given to the
//     operator's Late stream. A record whose event time is before the
//     watermark may still count in a window that has not ended (as in
//     Spark, the guarantee is one-way: nothing within maxDelay of the
//     largest event time is dropped).
//   - AppendMode: an interval outputs each window whose end is at or before
//     its watermark, once, with its final value, and forgets it.
//     UpdateMode: an interval outputs every window its records changed,
//     with its value so far, and forgets, without output, the windows the
//     watermark passed. Either way the state holds only windows the
//     watermark has not passed.
//
// Event times are taken at millisecond precision.
func WithEventTime[T any](s *Stream[T], eventTime func(T) time.Time, maxDelay time.Duration, opts ...EventTimeOption) *Stream[Event[T]] {
	c := s.ctx
	if eventTime == nil || maxDelay < 0 {
		c.setErr(fmt.Errorf("withEventTime (%s): needs an event time function and a maxDelay of 0 or more (got %v)", caller(), maxDelay))
		eventTime = func(T) time.Time { return time.Time{} }
		maxDelay = 0
	}
	var o eventTimeOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	kin := kafkaInputOf(c, s.rt)
	switch {
	case o.idleness < 0 || o.idleness%time.Millisecond != 0:
		c.setErr(fmt.Errorf("withEventTime (%s): idleness %v must be a whole number of milliseconds, 0 or more", caller(), o.idleness))
		o.idleness = 0
	case o.idleness > 0 && kin == nil:
		c.setErr(fmt.Errorf("withEventTime (%s): WithIdleness applies to a stream read per partition, derived from one KafkaStream by Map, Filter, FlatMap and the like", caller()))
		o.idleness = 0
	}
	out := derive(s, "withEventTime", func(ds *rdd.Dataset[T]) *rdd.Dataset[Event[T]] {
		return rdd.Map(ds, func(x T) Event[T] { return Event[T]{Time: eventTime(x), Value: x} })
	})
	// Each partition's largest event time, folded where the partition is
	// (one record a partition), so the master's job after each interval
	// moves no records.
	stats := derive(out, "eventTimeStats", func(ds *rdd.Dataset[Event[T]]) *rdd.Dataset[eventStats] {
		return rdd.MapPartitions(ds, func(recs iter.Seq[Event[T]]) iter.Seq[eventStats] {
			return func(yield func(eventStats) bool) {
				st := eventStats{Max: math.MinInt64}
				for r := range recs {
					st.Max = max(st.Max, r.Time.UnixMilli())
					st.N++
				}
				yield(st)
			}
		})
	})
	src := &eventSource[T]{s: out, stats: stats, delay: maxDelay, idleness: o.idleness, kafka: kin}
	src.fn = engine.PartitionFunc(c.e, func(_ *rdd.TaskContext, parts []eventStats, _ string) (eventStats, error) {
		st := eventStats{Max: math.MinInt64}
		for _, p := range parts {
			st.Max, st.N = max(st.Max, p.Max), st.N+p.N
		}
		return st, nil
	})
	c.e.AddEventTimeSource(src)
	return out
}

// EventTimeOption configures WithEventTime.
type EventTimeOption func(*eventTimeOptions)

type eventTimeOptions struct {
	idleness time.Duration
}

// WithIdleness makes a partition of a stream read per partition (a Kafka
// stream's) idle once the stream has carried none of its records for d of
// arrival time (interval times: the intervals of the last d read nothing
// from it, or only records dropped before WithEventTime): an idle
// partition no longer holds the watermark, as Flink's
// WatermarkStrategy.withIdleness, until it carries records again. Those
// records may then be late: the watermark never moves back. Without it (d
// = 0, the default) a partition that carries no records holds the
// watermark where its last record put it, or, if it never carried one,
// keeps the stream without a watermark.
func WithIdleness(d time.Duration) EventTimeOption {
	return func(o *eventTimeOptions) { o.idleness = d }
}

// kafkaInputOf returns the Kafka stream n reads through single-parent
// streams, or nil: n's event times can then be told apart per partition
// when its lineage keeps the partitions apart (kafkaInput.partitionsOf).
func kafkaInputOf(c *Context, n engine.Node) *kafkaInput {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if k, ok := c.kafkaInputs[n.OpID()]; ok {
			return k
		}
		ps := n.ParentNodes()
		if len(ps) != 1 {
			return nil
		}
		n = ps[0]
	}
}

// eventStats is what one partition of an event-time stream reports.
type eventStats struct {
	Max int64 // Unix ms
	N   int64
}

// eventSource is an event-time stream as the engine sees it.
type eventSource[T any] struct {
	s        *Stream[Event[T]]
	stats    *Stream[eventStats] // each partition's eventStats
	delay    time.Duration
	idleness time.Duration
	kafka    *kafkaInput // the Kafka stream it is read from, or nil
	fn       int
	warned   atomic.Bool // that its lineage mixes the Kafka partitions
}

func (e *eventSource[T]) OpID() int32             { return e.s.id }
func (e *eventSource[T]) MaxDelay() time.Duration { return e.delay }
func (e *eventSource[T]) Idleness() time.Duration { return e.idleness }

func (e *eventSource[T]) EventTimeStats(ctx context.Context, t time.Time) (engine.EventTimeStats, error) {
	var out engine.EventTimeStats
	ds, err := e.stats.At(t)
	if ds == nil || err != nil {
		return out, err
	}
	parts, err := rdd.RunPartitionFunc[eventStats, eventStats](ctx, ds, e.fn, "", nil)
	if err != nil {
		return out, err
	}
	var of []engine.Partition
	if e.kafka != nil {
		var all []engine.Partition
		var ok bool
		if of, all, ok = e.kafka.partitionsOf(ds.Node(), t); ok {
			out.Partitions = make(map[engine.Partition]engine.PartitionStats, len(all))
			for _, p := range all {
				out.Partitions[p] = engine.PartitionStats{}
			}
		} else if !e.warned.Swap(true) {
			e.s.ctx.log.Warn("event time: the stream's records mix the Kafka partitions (a shuffle, union or window before WithEventTime): its watermark follows the stream as a whole", "stream", e.s.String())
		}
	}
	out.Max = math.MinInt64
	for i, p := range parts {
		if p.N == 0 {
			continue
		}
		out.Max, out.Records = max(out.Max, p.Max), out.Records+p.N
		if out.Partitions != nil {
			k := of[i]
			ps := out.Partitions[k]
			if ps.Records == 0 || p.Max > ps.Max {
				ps.Max = p.Max
			}
			ps.Records += p.N
			out.Partitions[k] = ps
		}
	}
	if out.Records == 0 {
		out.Max = 0
	}
	return out, nil
}
