package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// A Log is an append-only sequence of records in a Store: the master's
// metadata log. Record seq (numbered from 1) is the object prefix/ followed
// by seq as 20 decimal digits, holding one frame of the record's kind and
// payload, so the log survives any crash that Store.Put survives, and the
// records sort by name in the order they were appended.
//
// A log has one writer: one Log in one process. A Log is safe for
// concurrent use; Appends are serialized.
//
// # Fencing
//
// In a store that is Conditional (Dir, S3), Append writes record N only if
// there is none (PutIf with version ""), so two writers that both believe
// they are the one (a master, and a standby that took over from it while
// it was paused) cannot both append record N: the second one's Append
// fails with an error wrapping ErrConflict, and so does every later Append
// of its Log, which is fenced off for good. The new writer makes sure of
// that by appending as soon as it takes over: the old writer's next Append
// then conflicts. A record overwritten in place is only a torn last record
// found by OpenLog, replaced conditionally on its version. An Append that
// failed, or whose answer was lost and retried, may have written its
// record: Append recognizes its own bytes in record N, and goes on after
// them. (Two writers appending byte-identical records at N both succeed;
// the log holds that one record, as both expect.)
type Log struct {
	s      Store
	c      Conditional // s, if it is; nil: Appends overwrite
	prefix string      // ends with a slash

	mu     sync.Mutex
	next   uint64 // seq of the next Append
	torn   string // version of a torn record at next, to replace; "": none
	failed []byte // the frame of the last failed Append, at next
	fenced error  // the conflict that fenced this Log off; nil: none
}

const (
	// logVersion is the frame version of a record.
	logVersion = 1
	seqDigits  = 20
)

// OpenLog opens the log stored under prefix in s, reading its last
// record. The next Append follows the last valid record: if the last
// record is torn, it overwrites it. OpenLog fails if the last record is of
// an unknown version.
func OpenLog(ctx context.Context, s Store, prefix string) (*Log, error) {
	p := strings.TrimSuffix(prefix, "/")
	if err := ValidName(p); err != nil {
		return nil, fmt.Errorf("checkpoint: open log: %w", err)
	}
	l := &Log{s: s, prefix: p + "/", next: 1}
	l.c, _ = s.(Conditional)
	seqs, err := l.seqs(ctx)
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return l, nil
	}
	last := seqs[len(seqs)-1]
	switch _, _, err := l.read(ctx, last); {
	case err == nil:
		l.next = last + 1
	case errors.Is(err, ErrCorrupt):
		l.next = last
		if l.c != nil {
			_, l.torn, err = l.c.GetVersion(ctx, l.name(last))
			if err != nil {
				return nil, fmt.Errorf("checkpoint: log %s: torn record %d: %w", l.prefix, last, err)
			}
		}
	default:
		return nil, err
	}
	return l, nil
}

// Next returns the sequence number the next Append will use.
func (l *Log) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

func (l *Log) name(seq uint64) string {
	return fmt.Sprintf("%s%0*d", l.prefix, seqDigits, seq)
}

// seqs lists the records' sequence numbers in order. Objects under the
// prefix that are not named like records are ignored.
func (l *Log) seqs(ctx context.Context) ([]uint64, error) {
	names, err := l.s.List(ctx, l.prefix)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: log %s: %w", l.prefix, err)
	}
	var seqs []uint64
	for _, n := range names {
		rest := n[len(l.prefix):]
		if len(rest) != seqDigits {
			continue
		}
		if seq, err := strconv.ParseUint(rest, 10, 64); err == nil && seq > 0 {
			seqs = append(seqs, seq)
		}
	}
	return seqs, nil // zero-padded names sort as their numbers
}

// read returns record seq. The error wraps ErrNotFound, ErrCorrupt or
// ErrUnknownVersion, or is the Store's.
func (l *Log) read(ctx context.Context, seq uint64) (kind string, payload []byte, err error) {
	b, err := l.s.Get(ctx, l.name(seq))
	if err != nil {
		return "", nil, err
	}
	kind, v, payload, err := Unframe(b)
	if err == nil && v != logVersion {
		err = frameErr(FrameUnknownVersion, "log record version %d, this program reads version %d", v, logVersion)
	}
	if err != nil {
		return "", nil, fmt.Errorf("checkpoint: log %s: record %d: %w", l.prefix, seq, err)
	}
	return kind, payload, nil
}

// Append writes a record and returns its sequence number. If Append fails,
// the record may or may not have been written (it will be replayed or not),
// and the next Append reuses the sequence number, overwriting it (in a
// Conditional store: going on after it, if it was written). If the error
// wraps ErrConflict, another writer appended to the log (see Fencing):
// this Log appends nothing more.
func (l *Log) Append(ctx context.Context, kind string, payload []byte) (uint64, error) {
	if len(kind) > MaxKind || uint64(len(payload)) > MaxPayload {
		return 0, fmt.Errorf("checkpoint: log %s: record of kind %.20q with %d bytes is too large", l.prefix, kind, len(payload))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fenced != nil {
		return 0, l.fenced
	}
	frame := Frame(kind, logVersion, payload)
	seq := l.next
	if l.c == nil {
		if err := l.s.Put(ctx, l.name(seq), frame); err != nil {
			return 0, fmt.Errorf("checkpoint: log %s: append %d: %w", l.prefix, seq, err)
		}
		l.next++
		return seq, nil
	}
	for {
		_, err := l.c.PutIf(ctx, l.name(seq), frame, l.torn)
		if errors.Is(err, ErrConflict) {
			// Ours (a lost answer, retried; an earlier failed
			// Append), or another writer's?
			var got []byte
			got, _, err = l.c.GetVersion(ctx, l.name(seq))
			switch {
			case err != nil:
			case bytes.Equal(got, frame):
			case l.failed != nil && bytes.Equal(got, l.failed):
				// The failed Append was written: ours goes after it.
				l.next, l.torn, l.failed = seq+1, "", nil
				seq = l.next
				continue
			default:
				l.fenced = fmt.Errorf("checkpoint: log %s: append %d: another writer appended it: %w", l.prefix, seq, ErrConflict)
				return 0, l.fenced
			}
		}
		if err != nil {
			l.failed = frame
			return 0, fmt.Errorf("checkpoint: log %s: append %d: %w", l.prefix, seq, err)
		}
		l.next, l.torn, l.failed = seq+1, "", nil
		return seq, nil
	}
}

// A TornTailError is returned by Replay when the log's last record is
// truncated or damaged, as a crash mid-append on a Store without atomic
// Puts would leave it. The records before it were delivered; it was not.
// A caller recovering from a crash may accept it:
//
//	var torn *checkpoint.TornTailError
//	if err := log.Replay(ctx, apply); errors.As(err, &torn) {
//		logger.Printf("dropping torn last record: %v", torn)
//	} else if err != nil {
//		return err
//	}
type TornTailError struct {
	Seq uint64
	Err error // wraps ErrCorrupt
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("checkpoint: last log record %d is torn: %v", e.Seq, e.Err)
}

func (e *TornTailError) Unwrap() error { return e.Err }

// Replay calls fn for each record, in order, with the records present when
// it starts. It stops at the first error fn returns and returns it.
//
// If the last record is corrupt, Replay returns a *TornTailError after
// delivering the others. A corrupt record before the last, a missing one
// (a gap in the numbers) or one of an unknown version is an error naming
// its sequence number (wrapping ErrCorrupt or ErrUnknownVersion), returned
// when Replay reaches it.
//
// The payload passed to fn is fn's to keep. Truncating records that a
// running Replay has not delivered yet makes it fail.
func (l *Log) Replay(ctx context.Context, fn func(seq uint64, kind string, payload []byte) error) error {
	seqs, err := l.seqs(ctx)
	if err != nil {
		return err
	}
	delivered := false
	for i, seq := range seqs {
		if i > 0 && seq != seqs[i-1]+1 {
			return fmt.Errorf("checkpoint: log %s: %w: record %d missing", l.prefix, ErrCorrupt, seqs[i-1]+1)
		}
		kind, payload, err := l.read(ctx, seq)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound) && !delivered:
			continue // truncated since we listed
		case errors.Is(err, ErrCorrupt) && i == len(seqs)-1:
			return &TornTailError{Seq: seq, Err: err}
		default:
			return err
		}
		if err := fn(seq, kind, payload); err != nil {
			return err
		}
		delivered = true
	}
	return nil
}

// Truncate deletes the records numbered below before, oldest first, so a
// crash leaves the log whole from some record on. It keeps the last record
// even if before is past it, so that a reopened Log goes on numbering
// after it.
func (l *Log) Truncate(ctx context.Context, before uint64) error {
	l.mu.Lock()
	before = min(before, l.next-1)
	l.mu.Unlock()
	seqs, err := l.seqs(ctx)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if seq >= before {
			break
		}
		if err := l.s.Delete(ctx, l.name(seq)); err != nil {
			return fmt.Errorf("checkpoint: log %s: truncate: %w", l.prefix, err)
		}
	}
	return nil
}
