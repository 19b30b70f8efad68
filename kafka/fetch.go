package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Fetch yields the records of range r, in offset order, and returns nil
// once it reached r.Until; yield returning false stops it early. Offsets
// in the range that hold no record (compacted away, transaction markers,
// aborted records when reading committed ones) are passed over. It fails
// with an *OffsetsMissingError when the range is no longer in the log
// (unless Options.OnMissing skips what is missing), and with an error
// naming the range when no record comes for Options.FetchTimeout.
//
// A fetch uses a consumer assigned to the range's partition alone, at
// From. Consumers are kept between fetches: the next interval's range of
// the partition starts where this one ended, and the consumer that read
// up to there goes on (with what it fetched ahead).
func (s *Source) Fetch(ctx context.Context, r Range, yield func(Record) bool) error {
	if r.Until <= r.From {
		return nil
	}
	rd, err := s.readers.take(Partition{r.Topic, r.Partition}, r.From)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if keep {
			s.readers.put(rd)
		} else {
			rd.close()
		}
	}()
	next := r.From
	for next < r.Until {
		recs := rd.carry
		rd.carry = nil
		if len(recs) == 0 {
			recs, err = rd.poll(ctx, s.opts.FetchTimeout)
			var oor *outOfRange
			switch {
			case errors.As(err, &oor) && s.opts.OnMissing == SkipMissing:
				start, lerr := s.logStart(ctx, Partition{r.Topic, r.Partition})
				if lerr != nil {
					return lerr
				}
				s.log.Warn("kafka: offsets no longer in the log are skipped (OnMissing: SkipMissing)", "topic", r.Topic, "partition", r.Partition, "from", next, "log_start", start)
				if start >= r.Until || start <= next {
					return nil // the rest of the range is gone (or nothing can be done)
				}
				rd.close()
				if rd, err = s.readers.take(Partition{r.Topic, r.Partition}, start); err != nil {
					return err
				}
				next = start
				continue
			case errors.As(err, &oor):
				return &OffsetsMissingError{Topic: r.Topic, Partition: r.Partition, From: next, LogStart: -1, LogEnd: -1,
					Explaining: "retention or compaction deleted them after the interval fixed its range"}
			case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
				return fmt.Errorf("kafka: %s/%d: fetched offsets [%d, %d) of [%d, %d), then no record for %v", r.Topic, r.Partition, r.From, next, r.From, r.Until, s.opts.FetchTimeout)
			case err != nil:
				return fmt.Errorf("kafka: fetching %s/%d [%d, %d): %w", r.Topic, r.Partition, r.From, r.Until, err)
			}
		}
		for i, rec := range recs {
			if rec.Topic != r.Topic || rec.Partition != r.Partition || rec.Offset < next {
				continue
			}
			if rec.Offset >= r.Until {
				rd.carry = recs[i:]
				break
			}
			next = rec.Offset + 1
			if rec.Attrs.IsControl() {
				continue
			}
			if !yield(recordOf(rec)) {
				return nil // stopped early: the consumer's position is past what was read
			}
		}
	}
	rd.next = r.Until
	keep = true
	return nil
}

// logStart returns a partition's first offset in the log.
func (s *Source) logStart(ctx context.Context, tp Partition) (int64, error) {
	adm, err := s.admin()
	if err != nil {
		return 0, err
	}
	starts, err := listStarts(ctx, adm, tp.Topic)
	if err != nil {
		return 0, err
	}
	return starts[tp], nil
}

func recordOf(r *kgo.Record) Record {
	out := Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		out.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			out.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return out
}

// reader is a consumer of one partition and its position: the offset of
// the next record a fetch takes from it (the first of carry, if any).
type reader struct {
	tp    Partition
	cl    *kgo.Client
	next  int64
	carry []*kgo.Record // polled, past the previous range
	idle  time.Time
}

// outOfRange is the broker's answer for offsets not in the log.
type outOfRange struct{ err error }

func (e *outOfRange) Error() string { return e.err.Error() }

// poll returns the next records, waiting at most timeout for them.
func (rd *reader) poll(ctx context.Context, timeout time.Duration) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fs := rd.cl.PollFetches(pctx)
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, kerr.OffsetOutOfRange):
			return nil, &outOfRange{fe.Err}
		case errors.Is(fe.Err, context.DeadlineExceeded), errors.Is(fe.Err, context.Canceled):
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, context.DeadlineExceeded
		default:
			return nil, fe.Err
		}
	}
	return fs.Records(), nil
}

func (rd *reader) close() {
	if rd.cl != nil {
		rd.cl.Close()
		rd.cl = nil
	}
}

// readerPool keeps idle readers for the next ranges of their partitions:
// at most maxIdleReaders, none idle longer than readerIdleTime. An idle
// reader holds what it fetched ahead: one response (readerFetchBytes) in
// the client and at most one polled past its range (carry), so the pool
// holds at most 2 * maxIdleReaders * readerFetchBytes (64 MiB).
type readerPool struct {
	s      *Source
	mu     sync.Mutex
	idle   []*reader
	closed bool
}

const (
	maxIdleReaders   = 32
	readerIdleTime   = time.Minute
	readerFetchBytes = 1 << 20
)

func newReaderPool(s *Source) *readerPool { return &readerPool{s: s} }

// take returns a reader of tp positioned at from: an idle one that ended
// there, or a new one.
func (p *readerPool) take(tp Partition, from int64) (*reader, error) {
	p.mu.Lock()
	for i, rd := range p.idle {
		if rd.tp == tp && rd.next == from {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.mu.Unlock()
			return rd, nil
		}
	}
	p.mu.Unlock()
	level := kgo.ReadCommitted()
	if p.s.opts.ReadUncommitted {
		level = kgo.ReadUncommitted()
	}
	cl, err := kgo.NewClient(p.s.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tp.Topic: {tp.Partition: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(readerFetchBytes),
		kgo.FetchMaxPartitionBytes(readerFetchBytes),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &reader{tp: tp, cl: cl, next: from}, nil
}

// put keeps rd for the partition's next range, closing the readers idle
// too long or too many.
func (p *readerPool) put(rd *reader) {
	now := time.Now()
	rd.idle = now
	var drop []*reader
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		rd.close()
		return
	}
	// A reader whose partition ends where rd does is superseded.
	kept := p.idle[:0]
	for _, o := range p.idle {
		if now.Sub(o.idle) > readerIdleTime || o.tp == rd.tp {
			drop = append(drop, o)
			continue
		}
		kept = append(kept, o)
	}
	p.idle = append(kept, rd)
	if len(p.idle) > maxIdleReaders {
		drop = append(drop, p.idle[0])
		p.idle = p.idle[1:]
	}
	p.mu.Unlock()
	for _, o := range drop {
		o.close()
	}
}

func (p *readerPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, rd := range idle {
		rd.close()
	}
}
