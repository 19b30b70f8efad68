package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Writing exactly once. A job's output is written per interval t and
// output partition p, by a task that may run several times: retried after
// a failure or a lost worker, run twice by speculation, run again by a
// master restarted after it wrote. Writer.Write makes the records of (t, p)
// appear once, to consumers reading committed records (isolation.level
// read_committed), by Kafka transactions (KIP-98) with a marker committed
// in the same transaction:
//
//   - Each output partition p has its own transactional ID, PREFIX-p, and
//     its own marker: the offset committed for group PREFIX-p on the
//     topic's partition 0, which is the last interval whose records for p
//     were committed. (A consumer group's offsets are the one thing Kafka
//     commits atomically with records: KIP-447's consume-transform-produce.)
//   - An attempt initializes its producer (InitProducerID, which fences
//     every earlier producer of PREFIX-p: their open transactions are
//     aborted and their commits fail), then reads the marker, waiting for
//     a pending transactional commit to resolve (RequireStable). A marker
//     at t or later means the records are already written: it returns.
//   - Otherwise it writes the records and the marker t in one
//     transaction and commits it.
//
// Two attempts' commits of (t, p) cannot both succeed: the one whose
// producer was initialized later fences the other, and it reads the marker
// only after that. Intervals run in order, so a marker past t also means t
// was written. Records are keyed and partitioned by the producer's default
// partitioner (by key; records without a key spread).

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// Topic is where records without a topic go, and the topic whose
	// partition 0 holds the markers. Required.
	Topic string
	// TransactionalID is the prefix of the transactional IDs and marker
	// groups: one per output of one job, the same across its restarts,
	// never shared with another job. Required.
	TransactionalID string
	// TransactionTimeout is how long a transaction left open by a
	// killed writer holds back read_committed consumers before the
	// broker aborts it. Default 60 s.
	TransactionTimeout time.Duration
	// ClientOptions are further franz-go options (TLS, SASL, ...).
	ClientOptions []kgo.Opt
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports the first invalid option.
func (o WriterOptions) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("kafka sink: no brokers")
	case o.Topic == "":
		return errors.New("kafka sink: no topic")
	case o.TransactionalID == "":
		return errors.New("kafka sink: no transactional ID (one per output of a job, the same across its restarts)")
	case strings.ContainsAny(o.TransactionalID, " \t\n"):
		return fmt.Errorf("kafka sink: transactional ID %q has white space", o.TransactionalID)
	case o.TransactionTimeout < 0:
		return fmt.Errorf("kafka sink: transaction timeout %v is negative", o.TransactionTimeout)
	}
	return nil
}

// Writer writes intervals' output partitions exactly once (see above). It
// is safe for concurrent use; make one per output in every process.
type Writer struct {
	opts WriterOptions
	log  *slog.Logger

	mu   sync.Mutex
	idle map[int]*kgo.Client // a producer per output partition, not in use
	adm  *kadm.Client
	admC *kgo.Client
	tid  *[16]byte // the topic's ID, once known
}

// NewWriter returns a writer over o; it connects when first used.
func NewWriter(o WriterOptions) (*Writer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.TransactionTimeout == 0 {
		o.TransactionTimeout = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Writer{opts: o, log: o.Logger, idle: map[int]*kgo.Client{}}, nil
}

// Check connects and checks that the topic exists.
func (w *Writer) Check(ctx context.Context) error {
	adm, err := w.admin()
	if err != nil {
		return err
	}
	td, err := adm.ListTopics(ctx, w.opts.Topic)
	if err != nil {
		return fmt.Errorf("kafka sink: %w", err)
	}
	if d, ok := td[w.opts.Topic]; !ok || d.Err != nil {
		return fmt.Errorf("kafka sink: topic %q does not exist", w.opts.Topic)
	}
	return nil
}

func (w *Writer) admin() (*kadm.Client, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.adm != nil {
		return w.adm, nil
	}
	cl, err := kgo.NewClient(w.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	w.admC, w.adm = cl, kadm.NewClient(cl)
	return w.adm, nil
}

func (w *Writer) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(w.opts.Brokers...), kgo.ClientID("dstream")}
	opts = append(opts, w.opts.ClientOptions...)
	return append(opts, extra...)
}

// Close closes the writer's clients.
func (w *Writer) Close() {
	w.mu.Lock()
	idle, adm := w.idle, w.admC
	w.idle, w.adm, w.admC = map[int]*kgo.Client{}, nil, nil
	w.mu.Unlock()
	for _, cl := range idle {
		cl.Close()
	}
	if adm != nil {
		adm.Close()
	}
}

// id is the transactional ID and marker group of output partition p.
func (w *Writer) id(p int) string { return fmt.Sprintf("%s-%d", w.opts.TransactionalID, p) }

// producer returns output partition p's producer: the idle one, or a new
// one (which fences any other, here or in another process).
func (w *Writer) producer(p int) (cl *kgo.Client, reused bool, err error) {
	w.mu.Lock()
	cl = w.idle[p]
	delete(w.idle, p)
	w.mu.Unlock()
	if cl != nil {
		return cl, true, nil
	}
	cl, err = kgo.NewClient(w.clientOpts(
		kgo.TransactionalID(w.id(p)),
		kgo.TransactionTimeout(w.opts.TransactionTimeout),
		kgo.DefaultProduceTopic(w.opts.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return nil, false, fmt.Errorf("kafka sink: %w", err)
	}
	return cl, false, nil
}

func (w *Writer) release(p int, cl *kgo.Client) {
	w.mu.Lock()
	old := w.idle[p]
	w.idle[p] = cl
	w.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// Write writes records as output partition p of interval t (Unix ms),
// exactly once across every attempt (see above). It returns nil when an
// earlier attempt committed them.
func (w *Writer) Write(ctx context.Context, t int64, p int, records []Record) error {
	if len(records) == 0 {
		return nil
	}
	for try := 0; ; try++ {
		cl, reused, err := w.producer(p)
		if err != nil {
			return err
		}
		err = w.write(ctx, cl, t, p, records)
		if err == nil {
			w.release(p, cl)
			return nil
		}
		// Whatever state the producer is in (fenced, a transaction
		// half done), a fresh one starts the next attempt.
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = cl.AbortBufferedRecords(actx)
		_ = cl.EndTransaction(actx, kgo.TryAbort)
		cancel()
		cl.Close()
		// A kept producer that another one fenced since (a retry or a
		// speculative copy elsewhere) is replaced at once: the new one
		// fences it in turn and reads the marker.
		if reused && try == 0 && (errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)) && ctx.Err() == nil {
			continue
		}
		return fmt.Errorf("kafka sink: interval %d, partition %d: %w", t, p, err)
	}
}

func (w *Writer) write(ctx context.Context, cl *kgo.Client, t int64, p int, records []Record) error {
	if _, _, err := cl.ProducerID(ctx); err != nil { // initializes it: fences earlier producers of the ID
		return err
	}
	done, err := w.marker(ctx, p)
	if err != nil {
		return err
	}
	if done >= t {
		w.log.Debug("kafka sink: interval already written", "interval", t, "partition", p, "marker", done)
		return nil
	}
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	for i := range records {
		cl.Produce(ctx, kgoRecord(&records[i]), func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = cmpOr(firstErr, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	// The producer's epoch may have moved (KIP-890 bumps it at each
	// commit): ask again.
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	group := w.id(p)
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = group, id, epoch, group
	addResp, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("adding the marker to the transaction: %w", err)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = group, group, id, epoch
	commit.Generation, commit.MemberID = -1, ""
	meta := fmt.Sprintf("dstream interval %d", t)
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset, tp.LeaderEpoch, tp.Metadata = 0, t, -1, &meta
	topicID, err := w.topicID(ctx)
	if err != nil {
		return err
	}
	topic := kmsg.NewTxnOffsetCommitRequestTopic()
	topic.Topic, topic.TopicID, topic.Partitions = w.opts.Topic, topicID, []kmsg.TxnOffsetCommitRequestTopicPartition{tp}
	commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{topic}
	commitResp, err := commit.RequestWith(ctx, cl)
	if err == nil {
		for _, rt := range commitResp.Topics {
			for _, rp := range rt.Partitions {
				err = cmpOr(err, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	if err != nil {
		w.mu.Lock()
		w.tid = nil // the topic may have been created again
		w.mu.Unlock()
		return fmt.Errorf("committing the marker in the transaction: %w", err)
	}
	return cl.EndTransaction(ctx, kgo.TryCommit)
}

// topicID returns the topic's ID (newer brokers name topics by ID in
// offset commits).
func (w *Writer) topicID(ctx context.Context) ([16]byte, error) {
	w.mu.Lock()
	tid := w.tid
	w.mu.Unlock()
	if tid != nil {
		return *tid, nil
	}
	adm, err := w.admin()
	if err != nil {
		return [16]byte{}, err
	}
	td, err := adm.ListTopics(ctx, w.opts.Topic)
	if err != nil {
		return [16]byte{}, err
	}
	d, ok := td[w.opts.Topic]
	if !ok || d.Err != nil {
		return [16]byte{}, fmt.Errorf("topic %q does not exist", w.opts.Topic)
	}
	id := [16]byte(d.ID)
	w.mu.Lock()
	w.tid = &id
	w.mu.Unlock()
	return id, nil
}

// marker returns the last interval whose records output partition p
// committed (0: none), once no transactional commit of it is pending.
func (w *Writer) marker(ctx context.Context, p int) (int64, error) {
	adm, err := w.admin()
	if err != nil {
		return 0, err
	}
	os, err := adm.FetchOffsets(kadm.RequireStable(ctx), w.id(p))
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0, nil // no marker yet
	}
	if err != nil {
		return 0, fmt.Errorf("reading the marker of group %s: %w", w.id(p), err)
	}
	o, ok := os.Lookup(w.opts.Topic, 0)
	if !ok || o.At < 0 {
		return 0, nil
	}
	if o.Err != nil {
		return 0, fmt.Errorf("reading the marker of group %s: %w", w.id(p), o.Err)
	}
	return o.At, nil
}

func kgoRecord(r *Record) *kgo.Record {
	out := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		out.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			out.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return out
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
