package dstream

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
)

// KafkaRecord is a record read from Kafka: its topic, partition and
// offset, key, value, headers and timestamp.
type KafkaRecord = kafka.Record

// KafkaOptions configure KafkaStream: where to read (package kafka's
// Options) and how fast.
type KafkaOptions struct {
	kafka.Options
	// MaxRatePerPartition caps the records per second an interval takes
	// from each partition (0: no cap), as Spark's
	// spark.streaming.kafka.maxRatePerPartition: a job that starts far
	// behind catches up in intervals of bounded size. With
	// Config.Backpressure the job's processing rate caps them further,
	// shared among partitions in proportion to their lag.
	MaxRatePerPartition int64
	// SplitRecords splits a range spanning more offsets than this into
	// several partitions of the interval's dataset, each fetching its
	// part (0: one partition per range). More tasks than partitions keep
	// more slots busy when a topic has few partitions.
	SplitRecords int64
}

// KafkaStream reads Kafka topics directly, as Spark's
// DirectKafkaInputDStream: no receiver, no consumer group membership, no
// copy of the records in the job. At each interval the master asks the
// brokers for each partition's latest offset (the last stable offset when
// reading committed records, the default) and fixes the interval's range
// [from, until) of every partition: from where the previous interval
// ended (the first interval: Options.Start or Options.Offsets), until the
// latest offset, capped by MaxRatePerPartition and backpressure. The
// interval's manifest names the ranges, and its dataset has one partition
// per non-empty range, fetched by the task that computes it, wherever it
// runs: a lost partition is fetched again, the same records. New topics
// (TopicPattern) and partitions are picked up within seconds (the client's
// metadata age).
//
// With a checkpoint folder the ranges are also written when the interval
// is cut, and a restarted master replays them: the intervals it runs again
// read exactly what they read before, and the next one starts where they
// ended, so no record is read twice or skipped (docs/ARCHITECTURE.md,
// "Master restart"). Offsets the stream needs that the log no longer holds
// (retention, compaction, a topic created again) stop the job with a
// *kafka.OffsetsMissingError, unless Options.OnMissing skips them.
//
// An event-time stream read from it (WithEventTime) has a watermark that
// follows the slowest partition, and WithIdleness says when a partition
// that carries no records stops holding it.
//
// With Options.CommitOffsets each completed interval's positions are
// committed to Options.Group, for lag tools; the job never resumes from
// them (only a fresh job with Start: kafka.Committed starts there).
func KafkaStream(c *Context, opts KafkaOptions) *Stream[KafkaRecord] {
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	src, err := kafka.NewSource(opts.Options)
	if err != nil {
		c.setErr(fmt.Errorf("KafkaStream (%s): %w", caller(), err))
	}
	if opts.SplitRecords < 0 {
		c.setErr(fmt.Errorf("KafkaStream (%s): SplitRecords %d must not be negative", caller(), opts.SplitRecords))
	}
	if opts.MaxRatePerPartition < 0 {
		c.setErr(fmt.Errorf("KafkaStream (%s): MaxRatePerPartition %d must not be negative", caller(), opts.MaxRatePerPartition))
	}
	name := "kafka " + strings.Join(opts.Topics, ",")
	if opts.TopicPattern != "" {
		name = "kafka /" + opts.TopicPattern + "/"
	}
	var oi *engine.OffsetInput
	s := newStream(c, name, c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[KafkaRecord], error) {
		rs, _ := oi.RangesAt(t)
		return kafkaDataset(c, src, rs, opts.SplitRecords), nil
	})
	if src != nil {
		oi = c.e.AddOffsets(s.rt, kafkaSource{src}, engine.OffsetOptions{MaxRatePerPartition: opts.MaxRatePerPartition, Commit: opts.CommitOffsets})
		c.mu.Lock()
		if c.kafkaInputs == nil {
			c.kafkaInputs = map[int32]*kafkaInput{}
		}
		c.kafkaInputs[s.id] = &kafkaInput{id: s.id, oi: oi, split: opts.SplitRecords}
		c.mu.Unlock()
	}
	return s
}

// kafkaParts is the dataset's partitions for ranges rs: the non-empty
// ranges, each whole or (split > 0) in splits of at most split offsets.
func kafkaParts(rs []manifest.OffsetRange, split int64) []kafka.Range {
	var parts []kafka.Range
	for _, r := range rs {
		for from := r.From; from < r.Until; {
			until := r.Until
			if split > 0 {
				until = min(r.Until, from+split)
			}
			parts = append(parts, kafka.Range{Topic: r.Topic, Partition: r.Partition, From: from, Until: until})
			from = until
		}
	}
	return parts
}

// partitionsOf maps each partition of n, a dataset of interval t derived
// from the stream's dataset of t by operators that keep each partition's
// records apart (each node one narrow dependency on a parent of as many
// partitions: Map, Filter, FlatMap, MapPartitions...), to the Kafka
// partition its records come from; all is every partition the interval
// read, an empty range too. False if n's lineage mixes partitions (a
// shuffle, a union, a window).
func (k *kafkaInput) partitionsOf(n *rdd.Node, t time.Time) (of, all []engine.Partition, ok bool) {
	parts := n.NumPartitions
	for n.ID.Op != k.id || n.ID.Time != t.UnixMilli() {
		deps := n.Deps()
		if len(deps) != 1 {
			return nil, nil, false
		}
		nd, narrow := deps[0].(rdd.NarrowDep)
		if !narrow || nd.Parent.NumPartitions != parts {
			return nil, nil, false
		}
		n = nd.Parent
	}
	rs, known := k.oi.RangesAt(t)
	if !known {
		return nil, nil, false
	}
	for _, r := range rs {
		all = append(all, engine.Partition{Topic: r.Topic, Partition: r.Partition})
	}
	ps := kafkaParts(rs, k.split)
	if len(ps) == 0 {
		return make([]engine.Partition, parts), all, true // the empty dataset: no record to place
	}
	if len(ps) != parts {
		return nil, nil, false
	}
	for _, r := range ps {
		of = append(of, engine.Partition{Topic: r.Topic, Partition: r.Partition})
	}
	return of, all, true
}

// kafkaDataset fetches the non-empty ranges of rs, one partition each, or
// one per split of at most split offsets (split > 0).
func kafkaDataset(c *Context, src *kafka.Source, rs []manifest.OffsetRange, split int64) *rdd.Dataset[KafkaRecord] {
	parts := kafkaParts(rs, split)
	if len(parts) == 0 {
		return rdd.Empty[KafkaRecord](c.rctx())
	}
	return rdd.FromFunc(c.rctx(), "kafka input", len(parts), func(tc *rdd.TaskContext, p int) iter.Seq[KafkaRecord] {
		return func(yield func(KafkaRecord) bool) {
			if err := src.Fetch(tc.Ctx, parts[p], yield); err != nil {
				tc.Fail(err)
			}
		}
	})
}

// kafkaSource is a kafka.Source as the engine's OffsetSource.
type kafkaSource struct{ s *kafka.Source }

func (k kafkaSource) Check(ctx context.Context) error { return k.s.Check(ctx) }

func (k kafkaSource) Plan(ctx context.Context, next map[engine.Partition]int64, limit engine.Limit) ([]manifest.OffsetRange, map[engine.Partition]int64, error) {
	kn := make(map[kafka.Partition]int64, len(next))
	for p, o := range next {
		kn[kafka.Partition(p)] = o
	}
	rs, ends, err := k.s.Plan(ctx, kn, kafka.Limit(limit))
	if err != nil {
		return nil, nil, err
	}
	out := make([]manifest.OffsetRange, len(rs))
	for i, r := range rs {
		out[i] = manifest.OffsetRange(r)
	}
	en := make(map[engine.Partition]int64, len(ends))
	for p, o := range ends {
		en[engine.Partition(p)] = o
	}
	return out, en, nil
}

func (k kafkaSource) Commit(ctx context.Context, upTo []manifest.OffsetRange) error {
	rs := make([]kafka.Range, len(upTo))
	for i, r := range upTo {
		rs[i] = kafka.Range(r)
	}
	return k.s.Commit(ctx, rs)
}

// KafkaSinkOptions configure SaveToKafka: package kafka's WriterOptions.
type KafkaSinkOptions = kafka.WriterOptions

// SaveToKafka writes every interval's records to Kafka (a record without a
// topic goes to opts.Topic; records are partitioned by key), exactly once:
// each output partition of an interval is written in a Kafka transaction
// that also commits a marker (the interval, as the offset of a consumer
// group of its own), and an attempt that finds the marker writes nothing.
// Retried tasks, speculative copies, a lost worker's tasks run elsewhere
// and intervals a restarted master runs again leave each record once in
// the log's committed records: consumers must read with isolation level
// read_committed (kcat: -X isolation.level=read_committed) to see exactly
// once; a read_uncommitted consumer may also see the records of aborted
// attempts. See package kafka's Writer for the protocol. The topic must
// exist when the job starts (Start fails otherwise).
func SaveToKafka(s *Stream[KafkaRecord], opts KafkaSinkOptions) {
	c := s.ctx
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	w, err := kafka.NewWriter(opts)
	if err != nil {
		c.setErr(fmt.Errorf("SaveToKafka (%s): %w", caller(), err))
		return
	}
	var op *engine.Output
	open := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return w.Check(ctx)
	}
	op = addOutput(s, "saveToKafka", open, func(ctx context.Context, ds *rdd.Dataset[KafkaRecord], t time.Time) error {
		return ds.RunOutput(ctx, int(op.ID))
	})
	// Any process that built the graph writes a partition: the task's
	// spec names the output (package rdd, RegisterOutput).
	rdd.RegisterOutput(c.rctx(), int(op.ID), func(tc *rdd.TaskContext, ms int64, p int, records []KafkaRecord) error {
		return w.Write(tc.Ctx, ms, p, records)
	})
}

// KafkaLag is one partition's consumer lag: how many offsets were past the
// end of the range its Kafka stream took at the latest interval cut.
type KafkaLag struct {
	Stream    int32
	Topic     string
	Partition int32
	Lag       int64
}

// KafkaLags returns the lag of every partition of every Kafka stream at
// the latest interval cut (the master's; none in a worker or before the
// first cut), sorted by stream, topic and partition.
func (c *Context) KafkaLags() []KafkaLag {
	var out []KafkaLag
	for stream, lags := range c.e.OffsetLags() {
		for p, n := range lags {
			out = append(out, KafkaLag{Stream: stream, Topic: p.Topic, Partition: p.Partition, Lag: n})
		}
	}
	slices.SortFunc(out, func(a, b KafkaLag) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
