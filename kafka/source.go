package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is one record of a topic's partition.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// StartAt is where a stream starts reading a partition it has no position
// for (a fresh job's, or a partition created while it runs).
type StartAt int

const (
	// Earliest starts at the partition's first offset still in the log.
	Earliest StartAt = iota
	// Latest starts at the partition's latest offset when the job
	// starts: only records written afterwards are read. A partition
	// created later starts at its first offset (no record is skipped).
	Latest
	// Committed starts at the offsets Options.Group committed, and
	// where it committed none, at the earliest.
	Committed
)

// String names the position as the flags do.
func (s StartAt) String() string {
	switch s {
	case Earliest:
		return "earliest"
	case Latest:
		return "latest"
	case Committed:
		return "committed"
	}
	return fmt.Sprintf("StartAt(%d)", int(s))
}

// ParseStartAt parses "earliest", "latest" or "committed".
func ParseStartAt(s string) (StartAt, error) {
	for _, v := range []StartAt{Earliest, Latest, Committed} {
		if s == v.String() {
			return v, nil
		}
	}
	return 0, fmt.Errorf("kafka start position %q: want earliest, latest or committed", s)
}

// OnMissing is what a stream does when the offsets it must read next no
// longer exist in the log (deleted by retention or compaction before they
// were read, or a topic deleted and created again).
type OnMissing int

const (
	// FailOnMissing stops the job with an *OffsetsMissingError (the
	// default): records are never skipped without a word.
	FailOnMissing OnMissing = iota
	// SkipMissing goes on from the earliest offset still in the log,
	// logging how many offsets were skipped.
	SkipMissing
)

// Options configure a Source. Every process of a job must use the same
// options (they are part of the program).
type Options struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// Topics are read by name; TopicPattern, a regular expression
	// (matched anywhere in the name, as regexp.MatchString), reads every
	// topic it matches, internal ones aside. One of them is required.
	// Topics and partitions created while the job runs are picked up at
	// the first interval after the client's metadata refresh (franz-go's
	// MetadataMinAge, 5 s by default).
	Topics       []string
	TopicPattern string
	// Start is where a partition with no position starts. Default
	// Earliest.
	Start StartAt
	// Offsets are explicit starting offsets, by topic and partition:
	// they take precedence over Start for the partitions they name.
	Offsets map[string]map[int32]int64
	// Group is the consumer group whose offsets Start: Committed reads,
	// and to which CommitOffsets commits (the job never joins it).
	Group string
	// CommitOffsets commits each completed interval's positions to
	// Group, so the usual lag tools see the job. The job itself resumes
	// from its checkpoint folder, never from the group.
	CommitOffsets bool
	// OnMissing says what to do when offsets to read no longer exist.
	OnMissing OnMissing
	// ReadUncommitted reads records of transactions not yet committed
	// (and aborted ones). By default a stream reads committed records
	// only, up to the last stable offset.
	ReadUncommitted bool
	// FetchTimeout bounds how long a task waits without progress on its
	// range before it fails (and is retried). Default 30 s.
	FetchTimeout time.Duration
	// ClientOptions are further franz-go options for every client the
	// stream makes (TLS, SASL, ...).
	ClientOptions []kgo.Opt
	// Logger receives the stream's warnings. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("kafka: no brokers")
	case len(o.Topics) == 0 && o.TopicPattern == "":
		return errors.New("kafka: no topic: name topics or give a pattern")
	case len(o.Topics) > 0 && o.TopicPattern != "":
		return errors.New("kafka: topics and a topic pattern are exclusive")
	case o.Start < Earliest || o.Start > Committed:
		return fmt.Errorf("kafka: unknown start position %d", int(o.Start))
	case (o.Start == Committed || o.CommitOffsets) && o.Group == "":
		return errors.New("kafka: starting at committed offsets, or committing them, needs a group")
	case o.OnMissing != FailOnMissing && o.OnMissing != SkipMissing:
		return fmt.Errorf("kafka: unknown missing-offsets policy %d", int(o.OnMissing))
	case o.FetchTimeout < 0:
		return fmt.Errorf("kafka: fetch timeout %v is negative", o.FetchTimeout)
	}
	for _, b := range o.Brokers {
		if b == "" || !strings.Contains(b, ":") {
			return fmt.Errorf("kafka: broker %q: want host:port", b)
		}
	}
	for _, t := range o.Topics {
		if t == "" {
			return errors.New("kafka: an empty topic name")
		}
	}
	if o.TopicPattern != "" {
		if _, err := regexp.Compile(o.TopicPattern); err != nil {
			return fmt.Errorf("kafka: topic pattern: %w", err)
		}
	}
	for t, ps := range o.Offsets {
		for p, off := range ps {
			if off < 0 || p < 0 {
				return fmt.Errorf("kafka: starting offset %d of %s/%d: want a partition and an offset of at least 0", off, t, p)
			}
		}
	}
	return nil
}

// Partition names a topic's partition.
type Partition struct {
	Topic     string
	Partition int32
}

// Range is the records [From, Until) of one partition.
type Range struct {
	Topic     string
	Partition int32
	From      int64
	Until     int64
}

// OffsetsMissingError says that offsets a stream must read are no longer
// in the log.
type OffsetsMissingError struct {
	Topic      string
	Partition  int32
	From       int64 // the first offset the stream needs
	LogStart   int64 // the first offset in the log (-1: unknown)
	LogEnd     int64 // the latest offset (-1: unknown)
	Explaining string
}

func (e *OffsetsMissingError) Error() string {
	return fmt.Sprintf("kafka: %s/%d: offset %d is no longer in the log (log offsets [%d, %d)): %s; the stream stops rather than skip records (Options.OnMissing: SkipMissing goes on from the earliest offset)",
		e.Topic, e.Partition, e.From, e.LogStart, e.LogEnd, e.Explaining)
}

// Source reads a set of topics. Its master side (Check, Plan, Commit)
// lists offsets; its worker side (Fetch) reads ranges. It is safe for
// concurrent use; make one per stream in every process.
type Source struct {
	opts    Options
	pattern *regexp.Regexp
	log     *slog.Logger

	mu      sync.Mutex
	admCl   *kgo.Client
	adm     *kadm.Client
	initial map[Partition]int64 // starting positions fixed at Check
	readers *readerPool
}

// NewSource returns a source over o; it connects when first used.
func NewSource(o Options) (*Source, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.FetchTimeout == 0 {
		o.FetchTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Source{opts: o, log: o.Logger, initial: map[Partition]int64{}}
	if o.TopicPattern != "" {
		s.pattern = regexp.MustCompile(o.TopicPattern)
	}
	s.readers = newReaderPool(s)
	return s, nil
}

// Options returns the source's options, defaults applied.
func (s *Source) Options() Options { return s.opts }

// clientOpts are the options every client of the source starts from.
func (s *Source) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(s.opts.Brokers...), kgo.ClientID("dstream")}
	opts = append(opts, s.opts.ClientOptions...)
	return append(opts, extra...)
}

// admin returns the source's admin client, made at first use.
func (s *Source) admin() (*kadm.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adm != nil {
		return s.adm, nil
	}
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	s.admCl, s.adm = cl, kadm.NewClient(cl)
	return s.adm, nil
}

// Close closes the source's clients.
func (s *Source) Close() {
	s.mu.Lock()
	cl := s.admCl
	s.admCl, s.adm = nil, nil
	s.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	s.readers.close()
}

// topics returns the topics the source reads now, with their partitions.
func (s *Source) topics(ctx context.Context, adm *kadm.Client) (map[string][]int32, error) {
	var (
		td  kadm.TopicDetails
		err error
	)
	if s.pattern != nil {
		td, err = adm.ListTopics(ctx)
	} else {
		td, err = adm.ListTopics(ctx, s.opts.Topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: listing topics at %s: %w", strings.Join(s.opts.Brokers, ","), err)
	}
	out := map[string][]int32{}
	for name, d := range td {
		if s.pattern != nil && (d.IsInternal || !s.pattern.MatchString(name)) {
			continue
		}
		if errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			continue // said below
		}
		if d.Err != nil {
			return nil, fmt.Errorf("kafka: topic %q: %w", name, d.Err)
		}
		for p := range d.Partitions {
			out[name] = append(out[name], p)
		}
		slices.Sort(out[name])
	}
	for _, t := range s.opts.Topics {
		if _, ok := out[t]; !ok {
			return nil, fmt.Errorf("kafka: topic %q does not exist", t)
		}
	}
	return out, nil
}

// Check connects, checks that the named topics exist, and, for a stream
// starting at the latest offsets, fixes them.
func (s *Source) Check(ctx context.Context) error {
	adm, err := s.admin()
	if err != nil {
		return err
	}
	topics, err := s.topics(ctx, adm)
	if err != nil {
		return err
	}
	if s.opts.Start != Latest || len(topics) == 0 {
		return nil
	}
	ends, err := s.listEnds(ctx, adm, topics)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, end := range ends {
		s.initial[p] = end
	}
	return nil
}

// listEnds lists the partitions' latest offsets: the last stable offset
// when reading committed records (the end of the committed records), the
// high watermark otherwise.
func (s *Source) listEnds(ctx context.Context, adm *kadm.Client, topics map[string][]int32) (map[Partition]int64, error) {
	names := sortedKeys(topics)
	var (
		lo  kadm.ListedOffsets
		err error
	)
	if s.opts.ReadUncommitted {
		lo, err = adm.ListEndOffsets(ctx, names...)
	} else {
		lo, err = adm.ListCommittedOffsets(ctx, names...)
	}
	return listed(lo, err, "latest")
}

// listStarts lists the partitions' first offsets in the log.
func listStarts(ctx context.Context, adm *kadm.Client, topics ...string) (map[Partition]int64, error) {
	lo, err := adm.ListStartOffsets(ctx, topics...)
	return listed(lo, err, "first")
}

func listed(lo kadm.ListedOffsets, err error, what string) (map[Partition]int64, error) {
	if err != nil {
		return nil, fmt.Errorf("kafka: listing %s offsets: %w", what, err)
	}
	out := map[Partition]int64{}
	for t, ps := range lo {
		for p, o := range ps {
			if p < 0 {
				continue // a topic that vanished since it was listed
			}
			if o.Err != nil {
				return nil, fmt.Errorf("kafka: listing %s offsets of %s/%d: %w", what, t, p, o.Err)
			}
			out[Partition{t, p}] = o.Offset
		}
	}
	return out, nil
}

// Limit caps an interval's ranges: PerPartition records a partition, Total
// in all (shared by lag); 0: no cap.
type Limit struct {
	PerPartition int64
	Total        int64
}

// Plan returns the next interval's ranges, one per partition the source
// reads now, sorted by topic and partition: each starts at next's offset
// for its partition (or its starting position) and ends at the latest
// offset, capped by limit. ends are the latest offsets.
//
// A listing that fails with a retriable error (a partition's leader moved,
// a broker restarts) is tried again, with backoff, for up to planRetryTime.
func (s *Source) Plan(ctx context.Context, next map[Partition]int64, limit Limit) ([]Range, map[Partition]int64, error) {
	deadline := time.Now().Add(planRetryTime)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		rs, ends, err := s.plan(ctx, next, limit)
		if err == nil || !kerr.IsRetriable(err) || time.Now().Add(wait).After(deadline) {
			return rs, ends, err
		}
		s.log.Debug("kafka: listing offsets failed; trying again", "err", err)
		s.mu.Lock()
		if s.admCl != nil {
			s.admCl.ForceMetadataRefresh()
		}
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// planRetryTime bounds how long Plan retries retriable errors.
const planRetryTime = 20 * time.Second

func (s *Source) plan(ctx context.Context, next map[Partition]int64, limit Limit) ([]Range, map[Partition]int64, error) {
	adm, err := s.admin()
	if err != nil {
		return nil, nil, err
	}
	topics, err := s.topics(ctx, adm)
	if err != nil {
		return nil, nil, err
	}
	if len(topics) == 0 {
		return nil, nil, nil
	}
	ends, err := s.listEnds(ctx, adm, topics)
	if err != nil {
		return nil, nil, err
	}
	starts, err := listStarts(ctx, adm, sortedKeys(topics)...)
	if err != nil {
		return nil, nil, err
	}
	var committed kadm.OffsetResponses
	var rs []Range
	for _, t := range sortedKeys(topics) {
		for _, p := range topics[t] {
			tp := Partition{t, p}
			end, ok := ends[tp]
			if !ok {
				continue // its leader is not known yet: at a later interval
			}
			start := starts[tp]
			from, known := next[tp]
			if !known {
				if from, err = s.startOf(ctx, adm, tp, start, &committed); err != nil {
					return nil, nil, err
				}
			}
			switch {
			case from < start:
				e := &OffsetsMissingError{Topic: t, Partition: p, From: from, LogStart: start, LogEnd: end,
					Explaining: "retention or compaction deleted offsets before the stream read them"}
				if s.opts.OnMissing == FailOnMissing {
					return nil, nil, e
				}
				s.log.Warn("kafka: offsets no longer in the log are skipped (OnMissing: SkipMissing)", "topic", t, "partition", p, "from", from, "log_start", start, "skipped", start-from)
				from = start
			case from > end:
				e := &OffsetsMissingError{Topic: t, Partition: p, From: from, LogStart: start, LogEnd: end,
					Explaining: "the log ends before the stream's position (the topic was deleted and created again, or a broker lost records)"}
				if s.opts.OnMissing == FailOnMissing {
					return nil, nil, e
				}
				s.log.Warn("kafka: the log ends before the stream's position: reading from its start (OnMissing: SkipMissing)", "topic", t, "partition", p, "from", from, "log_start", start, "log_end", end)
				from = start
			}
			rs = append(rs, Range{Topic: t, Partition: p, From: from, Until: end})
		}
	}
	capRanges(rs, limit)
	return rs, ends, nil
}

// capRanges shortens ranges to limit: each to PerPartition, and all to
// Total, shared in proportion to each partition's lag (at least one record
// a partition with any), as Spark's direct stream does.
func capRanges(rs []Range, limit Limit) {
	if limit.PerPartition > 0 {
		for i := range rs {
			rs[i].Until = min(rs[i].Until, rs[i].From+limit.PerPartition)
		}
	}
	if limit.Total <= 0 {
		return
	}
	var lag int64
	for _, r := range rs {
		lag += r.Until - r.From
	}
	if lag <= limit.Total {
		return
	}
	for i, r := range rs {
		n := r.Until - r.From
		if n == 0 {
			continue
		}
		share := max(1, int64(float64(limit.Total)*float64(n)/float64(lag)))
		rs[i].Until = r.From + min(n, share)
	}
}

// startOf is where a partition with no position starts.
func (s *Source) startOf(ctx context.Context, adm *kadm.Client, tp Partition, logStart int64, committed *kadm.OffsetResponses) (int64, error) {
	if off, ok := s.opts.Offsets[tp.Topic][tp.Partition]; ok {
		return off, nil
	}
	switch s.opts.Start {
	case Latest:
		s.mu.Lock()
		off, ok := s.initial[tp]
		s.mu.Unlock()
		if ok {
			return off, nil
		}
	case Committed:
		if *committed == nil {
			os, err := adm.FetchOffsets(ctx, s.opts.Group)
			if err != nil {
				return 0, fmt.Errorf("kafka: committed offsets of group %q: %w", s.opts.Group, err)
			}
			*committed = os
		}
		if o, ok := committed.Lookup(tp.Topic, tp.Partition); ok && o.Err == nil && o.At >= 0 {
			return o.At, nil
		}
	}
	return logStart, nil
}

// Commit commits the positions after a completed interval (the end of
// each range) to the group, when Options.CommitOffsets asks.
func (s *Source) Commit(ctx context.Context, upTo []Range) error {
	if !s.opts.CommitOffsets || len(upTo) == 0 {
		return nil
	}
	adm, err := s.admin()
	if err != nil {
		return err
	}
	var os kadm.Offsets
	for _, r := range upTo {
		os.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.Until, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, s.opts.Group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: committing offsets to group %q: %w", s.opts.Group, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmp.Compare)
	return ks
}

// Records is how many offsets the range spans.
func (r Range) Records() int64 { return r.Until - r.From }
