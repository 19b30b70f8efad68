// Package client injects records into a socket source over TCP: a file's
// lines, or generated records, at a steady rate when asked, reconnecting
// when the connection drops. It is what `dstream send` runs.
//
// The receiver may be named by a list of addresses (Options.To
// "A:9999,B:9999", as a Kafka client's bootstrap list): the sender sends to
// one at a time, and when it cannot connect to it, it tries the next, round
// robin, backing off once every address has failed. A connection that
// drops is made again to the same address first. One address works as it
// always did.
//
// Without Ack, delivery is what plain TCP gives. A record counts as sent once
// the kernel accepted it; when a connection drops, what the kernel had
// accepted but the receiver had not read is lost, and the write that failed
// is resent, whole records only, on the next connection: a record may be
// lost, or (if the receiver got part of the failed write) arrive twice, the
// copy on the broken connection possibly cut short.
//
// With Ack, delivery is at least once. Every connection starts with the
// header source.AckHeader ("\x00DSTREAM-ACK 1\n"); the socket source
// answers "DSTREAM-ACK 1\n", then "ACK <n>\n" lines, n counting this
// connection's records now stored (see source.Socket). The sender keeps each
// record it sent until it is acknowledged, at most MaxUnacked of them (then
// it waits for acknowledgements: backpressure), and when the connection
// drops or the receiver goes away, it reconnects and resends every
// unacknowledged record first, in order. A record that was stored but whose
// acknowledgement was lost is sent, and stored, again: duplicates are
// possible, losses are not (but for a cancel, see Send). A finite send waits
// for every record to be acknowledged before it returns, so its nil error
// means every record was stored. A receiver that answers "DSTREAM-NOACK"
// cannot acknowledge: the sender warns and goes on as without Ack. A
// receiver that does not know the header (an older one, or nc) takes it as a
// record and never answers: the sender fails after AckTimeout.
package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/source"
)

// Options say what to send, where and how fast.
type Options struct {
	To             string        // host:port of a socket source, or a comma-separated list of them (required)
	File           string        // send this file's lines once (exclusive with Generate)
	Generate       string        // a generate kind (exclusive with File)
	Seed           int64         // generator seed
	Rate           int           // records per second; 0 sends as fast as possible
	Duration       time.Duration // stop after this long on Clock; 0: at the end of the file, or never for generators
	Count          int64         // stop after this many records; 0: no limit
	ConnectTimeout time.Duration // give up when no connection can be made for this long; default 30 s
	Clock          clock.Clock   // paces, times out and backs off; default the wall clock
	Logger         *slog.Logger  // default slog.Default()

	// Ack asks the receiver to acknowledge stored records, and resends
	// what it did not acknowledge (see the package doc).
	Ack bool
	// MaxUnacked bounds the records sent and not yet acknowledged; the
	// sender waits for acknowledgements when it is reached. Default 1,000,000.
	MaxUnacked int
	// AckTimeout bounds each wait for acknowledgements: for room under
	// MaxUnacked, and for the last records at the end of a finite send.
	// Default 30 s, on Clock.
	AckTimeout time.Duration
}

// Stats report what was sent.
type Stats struct {
	Records, Bytes int64 // accepted by the kernel, each record counted once; Bytes counts the newlines
	Reconnects     int   // connections made after the first
	Resent         int64 // records sent again on a new connection, not yet acknowledged when the old one dropped (Ack)
	Acked          int64 // records acknowledged as stored (Ack)
}

// Defaults of the acknowledgement options.
const (
	DefaultMaxUnacked = 1_000_000
	DefaultAckTimeout = 30 * time.Second
)

// Tuning; the connection's own timeouts are on the wall clock by nature.
const (
	bufferSize   = 64 << 10              // bytes buffered before a write
	burstTime    = 10 * time.Millisecond // at a rate, records are sent in bursts this far apart
	maxBacklog   = time.Second           // a rated sender that fell further behind forgets the backlog
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
	dialTimeout  = 5 * time.Second // one connection attempt
	drainTimeout = 5 * time.Second // flushing after a cancel, while the receiver reads
)

// Validate reports the first problem with o, in the words of the command
// line's flags.
func (o Options) Validate() error {
	switch {
	case o.To == "":
		return errors.New("--to HOST:PORT is required")
	case o.File != "" && o.Generate != "":
		return errors.New("give exactly one of --file and --generate, not both")
	case o.File == "" && o.Generate == "":
		return fmt.Errorf("give exactly one of --file FILE and --generate KIND (kinds: %v)", generate.Kinds())
	case o.Rate < 0:
		return fmt.Errorf("--rate %d must not be negative", o.Rate)
	case o.Duration < 0:
		return fmt.Errorf("--duration %v must not be negative", o.Duration)
	case o.Count < 0:
		return fmt.Errorf("--count %d must not be negative", o.Count)
	case o.ConnectTimeout < 0:
		return fmt.Errorf("connect timeout %v must not be negative", o.ConnectTimeout)
	case o.MaxUnacked < 0:
		return fmt.Errorf("--max-unacked %d must not be negative", o.MaxUnacked)
	case o.AckTimeout < 0:
		return fmt.Errorf("--ack-timeout %v must not be negative", o.AckTimeout)
	}
	if _, err := addresses(o.To); err != nil {
		return err
	}
	if o.Generate != "" {
		if _, err := generate.New(o.Generate, 0); err != nil {
			return fmt.Errorf("--generate: %w", err)
		}
	}
	return nil
}

// addresses splits Options.To, a comma-separated list of HOST:PORT
// (blanks around commas ignored), and checks each.
func addresses(to string) ([]string, error) {
	var addrs []string
	for a := range strings.SplitSeq(to, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("--to %q: an empty address in the list", to)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("--to %q: want HOST:PORT: %w", a, err)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// Send sends records as o says and returns what it sent. It returns when the
// file is sent (flushed, half-closed and closed), Count records are sent,
// Duration is over, or ctx is cancelled; in the last two cases it flushes
// what it buffered, closes and returns nil. At a Rate, Duration sends the
// records due within it: Rate*Duration of them unless the sender fell behind. It fails when o is invalid, the file
// cannot be read, or no connection could be made for ConnectTimeout.
//
// With Ack, a send that ends by itself (the file, Count or Duration) then
// waits, at most AckTimeout, until every record is acknowledged, resending
// as need be; it fails saying how many records are unacknowledged when they
// are not by then, when MaxUnacked records stay unacknowledged for
// AckTimeout, or when the receiver breaks the protocol. A cancel of ctx makes
// one bounded attempt to write what is buffered and does not wait: records
// not acknowledged by then may be lost (a warning says how many).
func Send(ctx context.Context, o Options) (Stats, error) {
	var st Stats
	if err := o.Validate(); err != nil {
		return st, err
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxUnacked == 0 {
		o.MaxUnacked = DefaultMaxUnacked
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	next, closeSrc, err := records(o)
	if err != nil {
		return st, err
	}
	defer closeSrc()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrs, _ := addresses(o.To) // valid: Validate checked
	s := &sender{o: o, addrs: addrs, st: &st, buf: make([]byte, 0, bufferSize), acks: o.Ack, connCtx: ctx}
	if o.Ack {
		// The end of Duration cancels ctx, and is followed by the wait for
		// acknowledgements: connections live until parent is done.
		s.connCtx = parent
	}
	defer s.readers.Wait()
	if o.Duration > 0 {
		end := o.Clock.Now().Add(o.Duration)
		s.end = end
		go func() {
			if o.Clock.WaitUntil(ctx, end) == nil {
				cancel()
			}
		}()
	}
	defer s.abandon()
	if err := s.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return st, nil
		}
		return st, err
	}
	err = s.run(ctx, next)
	if ctx.Err() != nil && (!s.acks || parent.Err() != nil) {
		s.drain()
		return st, nil
	}
	if ctx.Err() != nil {
		err = nil // Duration is over: wait for the acknowledgements
	}
	ctx = parent
	if err == nil {
		err = s.finish(ctx)
	}
	return st, err
}

// sender is a reconnecting buffered TCP writer. Its buffer holds whole
// newline-terminated records only, so what a failed write did not deliver
// can be resent from a record boundary. (A bufio.Writer would drop its
// buffer on a write error.)
//
// With acknowledgements (acks), buf[head:] holds every record not yet
// acknowledged, count of them: buf[head:head+off] is written on the current
// connection, buf[head:head+ever] was written on some connection.
type sender struct {
	o        Options
	addrs    []string // the receiver's addresses (Options.To)
	cur      int      // the one sent to now
	st       *Stats
	conn     net.Conn
	stopAF   func() bool // undoes the cancel hook of conn
	dials    int         // connections made
	buf      []byte
	produced int64     // records taken from the source
	end      time.Time // when Duration is over; zero without one
	connCtx  context.Context

	acks      bool // acknowledged mode (Ack, and the receiver did not refuse)
	head      int
	off, ever int
	count     int64          // records in buf[head:]
	ac        *ackReader     // reads the current connection's acknowledgements
	connSent  int64          // whole records written on the current connection
	connAcked int64          // of which acknowledged
	readers   sync.WaitGroup // ackReader goroutines
}

// run takes records from next and sends them, paced when o.Rate > 0, until
// the source ends, Count is reached, ctx is done, or sending fails.
func (s *sender) run(ctx context.Context, next nextFunc) error {
	var rec []byte
	// one appends the next record to the buffer; false at the end.
	one := func() (bool, error) {
		if s.o.Count > 0 && s.produced >= s.o.Count {
			return false, nil
		}
		var ok bool
		var err error
		rec, ok, err = next(rec[:0])
		if err != nil || !ok {
			return false, err
		}
		return true, s.add(ctx, rec)
	}
	if s.o.Rate == 0 {
		for i := 0; ; i++ {
			if i%256 == 0 && ctx.Err() != nil {
				return nil
			}
			if ok, err := one(); !ok || err != nil {
				return err
			}
		}
	}
	// Paced: record n is due at start + n/Rate; records go out in bursts
	// of burstTime's worth, each flushed, with a wait on the clock between.
	clk := s.o.Clock
	burst := max(1, int64(s.o.Rate)*int64(burstTime)/int64(time.Second))
	start := clk.Now()
	var n int64
	for {
		due := start.Add(offset(n, s.o.Rate))
		if now := clk.Now(); now.Before(due) {
			if err := s.flush(ctx); err != nil {
				return err
			}
			if clk.WaitUntil(ctx, due) != nil {
				return nil
			}
			continue
		} else if now.Sub(due) > maxBacklog {
			// The receiver was slow (backpressure) or the connection was
			// down: go on at the rate from now rather than burst to catch up.
			s.o.Logger.Warn("sender fell behind its rate; skipping the backlog", "to", s.to(), "behind", now.Sub(due).Round(time.Millisecond))
			start = now.Add(-offset(n, s.o.Rate))
		}
		for range burst {
			if ctx.Err() != nil {
				return nil
			}
			if !s.end.IsZero() && !start.Add(offset(n, s.o.Rate)).Before(s.end) {
				return nil // exactly the records due within Duration
			}
			if ok, err := one(); !ok || err != nil {
				return err
			}
			n++
		}
	}
}

// offset returns when record n is due after the start, at rate per second.
func offset(n int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(n/r)*time.Second + time.Duration(n%r)*time.Second/time.Duration(r)
}

// add buffers one record and its newline, flushing first if full.
func (s *sender) add(ctx context.Context, rec []byte) error {
	if s.acks {
		return s.addAck(ctx, rec)
	}
	if len(s.buf) > 0 && len(s.buf)+len(rec)+1 > bufferSize {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, rec...)
	s.buf = append(s.buf, '\n')
	s.produced++
	return nil
}

// flush writes the buffer, reconnecting and resending from the first record
// not wholly written when the connection fails.
func (s *sender) flush(ctx context.Context) error {
	if s.acks {
		return s.flushAck(ctx)
	}
	for len(s.buf) > 0 {
		if s.conn == nil {
			if err := s.connect(ctx); err != nil {
				return err
			}
		}
		n, err := s.conn.Write(s.buf)
		if err == nil {
			s.sent(len(s.buf))
			return nil
		}
		s.sent(bytes.LastIndexByte(s.buf[:n], '\n') + 1)
		s.o.Logger.Warn("connection dropped; reconnecting", "to", s.to(), "err", err)
		s.abandon()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// sent counts the first n bytes of the buffer, whole records, as sent and
// removes them.
func (s *sender) sent(n int) {
	s.st.Records += int64(bytes.Count(s.buf[:n], []byte{'\n'}))
	s.st.Bytes += int64(n)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
}

// to returns the address of the receiver sent to now.
func (s *sender) to() string { return s.addrs[s.cur] }

// connect dials until it succeeds, ctx is done, or ConnectTimeout passes:
// the current address first, then the next of the list at each failure,
// backing off from minBackoff to maxBackoff once every address failed. The
// connection it makes lives until s.connCtx is done (then a blocked write
// gives up after drainTimeout), which may be after ctx: with
// acknowledgements, past the end of Duration.
func (s *sender) connect(ctx context.Context) error {
	clk := s.o.Clock
	deadline := clk.Now().Add(s.o.ConnectTimeout)
	wait := minBackoff
	d := net.Dialer{Timeout: dialTimeout}
	failed := 0 // addresses that failed since the last wait
	for {
		c, err := d.DialContext(ctx, "tcp", s.to())
		if err == nil && s.acks {
			if err = s.startAcks(c); err != nil {
				c.Close()
			}
		}
		if err == nil {
			if s.dials > 0 {
				s.st.Reconnects++
				s.o.Logger.Info("reconnected", "to", s.to())
			}
			s.dials++
			s.conn = c
			// On a cancel, a write blocked on a receiver that does not read
			// gives up after drainTimeout.
			s.stopAF = context.AfterFunc(s.connCtx, func() { _ = c.SetWriteDeadline(time.Now().Add(drainTimeout)) })
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := clk.Now()
		if !now.Before(deadline) {
			return fmt.Errorf("cannot connect to %s for %v: %w", s.o.To, s.o.ConnectTimeout, err)
		}
		if len(s.addrs) > 1 {
			from := s.to()
			s.cur = (s.cur + 1) % len(s.addrs)
			if failed++; failed < len(s.addrs) {
				s.o.Logger.Warn("cannot connect; trying the next address", "to", from, "next", s.to(), "err", err)
				continue
			}
			failed = 0
		}
		s.o.Logger.Warn("cannot connect; retrying", "to", s.to(), "in", wait, "err", err)
		until := now.Add(wait)
		if until.After(deadline) {
			until = deadline
		}
		if err := clk.WaitUntil(ctx, until); err != nil {
			return err
		}
		wait = min(2*wait, maxBackoff)
	}
}

// finish flushes (reconnecting if need be), half-closes so the receiver sees
// a clean end of stream, and closes.
func (s *sender) finish(ctx context.Context) error {
	if s.acks {
		if err := s.waitAcks(ctx, 0, true); err != nil {
			return err
		}
		if !s.acks { // refused meanwhile
			return s.finish(ctx)
		}
		return s.close()
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	return s.close()
}

// drain makes one bounded attempt to write the buffer after a cancel, then
// closes; what it cannot write is lost (and logged).
func (s *sender) drain() {
	if s.acks {
		s.drainAck()
		return
	}
	if s.conn == nil {
		if len(s.buf) > 0 {
			s.o.Logger.Warn("stopped while disconnected; records not sent", "to", s.to(), "records", bytes.Count(s.buf, []byte{'\n'}))
		}
		return
	}
	if len(s.buf) > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(drainTimeout))
		n, err := s.conn.Write(s.buf)
		s.sent(bytes.LastIndexByte(s.buf[:n], '\n') + 1)
		if err != nil {
			s.o.Logger.Warn("stopped; the last records could not be sent", "to", s.to(), "records", bytes.Count(s.buf, []byte{'\n'}), "err", err)
			s.abandon()
			return
		}
	}
	if err := s.close(); err != nil {
		s.o.Logger.Warn("closing the connection", "to", s.to(), "err", err)
	}
}

// close half-closes and closes the connection.
func (s *sender) close() error {
	if s.conn == nil {
		return nil
	}
	var err error
	if tc, ok := s.conn.(*net.TCPConn); ok {
		err = tc.CloseWrite()
	}
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	s.stopAF()
	s.conn = nil
	s.resetConn()
	return err
}

// abandon closes the connection without ceremony.
func (s *sender) abandon() {
	if s.conn != nil {
		s.conn.Close()
		s.stopAF()
		s.conn = nil
		s.resetConn()
	}
}

// nextFunc appends the next record (without newline) to dst; ok is false at
// the end of the source.
type nextFunc func(dst []byte) (rec []byte, ok bool, err error)

// records opens o's source.
func records(o Options) (nextFunc, func(), error) {
	if o.Generate != "" {
		g, err := generate.New(o.Generate, o.Seed)
		if err != nil {
			return nil, nil, err
		}
		return func(dst []byte) ([]byte, bool, error) { return g.Next(dst), true, nil }, func() {}, nil
	}
	f, err := os.Open(o.File)
	if err != nil {
		return nil, nil, fmt.Errorf("--file: %w", err)
	}
	r := bufio.NewReaderSize(f, 1<<20)
	return func(dst []byte) ([]byte, bool, error) {
		for {
			chunk, err := r.ReadSlice('\n')
			dst = append(dst, chunk...)
			switch err {
			case bufio.ErrBufferFull:
				continue
			case nil:
				return dst[:len(dst)-1], true, nil
			case io.EOF:
				// A last line without a newline is a record; it gets one.
				return dst, len(dst) > 0, nil
			default:
				return nil, false, fmt.Errorf("--file %s: %w", o.File, err)
			}
		}
	}, func() { f.Close() }, nil
}

// resetConn forgets what was written on the connection just closed: the
// next one resends every unacknowledged record.
func (s *sender) resetConn() {
	s.off, s.connSent, s.connAcked, s.ac = 0, 0, 0, nil
}

// startAcks sends the header on a new connection and starts reading its
// acknowledgements.
func (s *sender) startAcks(c net.Conn) error {
	_ = c.SetWriteDeadline(time.Now().Add(dialTimeout))
	if _, err := io.WriteString(c, source.AckHeader); err != nil {
		return err
	}
	_ = c.SetWriteDeadline(time.Time{})
	s.resetConn()
	r := &ackReader{signal: make(chan struct{}, 1)}
	s.ac = r
	s.readers.Add(1)
	to := s.to()
	go func() {
		defer s.readers.Done()
		r.run(c, to)
	}()
	return nil
}

// addAck is add with acknowledgements: it waits while MaxUnacked records
// are unacknowledged.
func (s *sender) addAck(ctx context.Context, rec []byte) error {
	if s.ac != nil && s.ac.changed.Load() {
		if err := s.applyAcks(); err != nil {
			return err
		}
	}
	if s.count >= int64(s.o.MaxUnacked) {
		if err := s.waitAcks(ctx, int64(s.o.MaxUnacked)-1, false); err != nil {
			return err
		}
	}
	if !s.acks { // the receiver refused meanwhile
		return s.add(ctx, rec)
	}
	if unwritten := len(s.buf) - s.head - s.off; unwritten > 0 && unwritten+len(rec)+1 > bufferSize {
		if err := s.flushAck(ctx); err != nil {
			return err
		}
		if !s.acks {
			return s.add(ctx, rec)
		}
	}
	s.buf = append(s.buf, rec...)
	s.buf = append(s.buf, '\n')
	s.count++
	s.produced++
	return nil
}

// maxWrite bounds one write, so acknowledgements are applied between writes
// when a reconnection resends much.
const maxWrite = 1 << 20

// flushAck writes what is not written on the current connection,
// (re)connecting as need be: after a reconnection, every unacknowledged
// record, in order.
func (s *sender) flushAck(ctx context.Context) error {
	for {
		if s.ac != nil && s.ac.changed.Load() {
			if err := s.applyAcks(); err != nil {
				return err
			}
		}
		if !s.acks {
			return s.flush(ctx)
		}
		if s.head+s.off == len(s.buf) {
			return nil
		}
		if s.conn == nil {
			if err := s.connect(ctx); err != nil {
				return err
			}
			if !s.acks {
				continue
			}
		}
		a := s.off
		end := min(len(s.buf), s.head+a+maxWrite)
		n, err := s.conn.Write(s.buf[s.head+a : end])
		s.wrote(a, n)
		if err != nil {
			s.o.Logger.Warn("connection dropped; reconnecting to resend what is not acknowledged", "to", s.to(), "unacknowledged", s.count, "err", err)
			s.abandon()
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}

var newline = []byte{'\n'}

// wrote accounts for n bytes written on the current connection from
// buf[head+a:].
func (s *sender) wrote(a, n int) {
	w := s.buf[s.head+a : s.head+a+n]
	s.connSent += int64(bytes.Count(w, newline))
	s.off = a + n
	end := a + bytes.LastIndexByte(w, '\n') + 1 // whole records only
	if end <= a {
		return
	}
	if from := min(s.ever, end); from > a {
		s.st.Resent += int64(bytes.Count(s.buf[s.head+a:s.head+from], newline))
	}
	if end > s.ever {
		from := max(a, s.ever)
		s.st.Records += int64(bytes.Count(s.buf[s.head+from:s.head+end], newline))
		s.st.Bytes += int64(end - from)
		s.ever = end
	}
}

// applyAcks applies what the acknowledgement reader heard: drops the
// acknowledged records, switches to plain sending when the receiver refused,
// abandons the connection when it is gone (the next flush resends), and
// fails on a protocol error.
func (s *sender) applyAcks() error {
	r := s.ac
	if r == nil || !r.changed.Swap(false) {
		return nil
	}
	r.mu.Lock()
	state, reason, acked, rerr, fatal := r.state, r.reason, r.acked, r.err, r.fatal
	r.mu.Unlock()
	if state == ackRefused {
		s.o.Logger.Warn("the receiver does not acknowledge records; sending without acknowledgements (a record may be lost when a connection drops)",
			"to", s.to(), "reason", reason)
		s.acks = false
		s.buf = s.buf[:copy(s.buf, s.buf[s.head+s.off:])]
		s.head, s.off, s.ever, s.count = 0, 0, 0, 0
		return nil
	}
	if acked > s.connSent {
		return fmt.Errorf("receiver %s acknowledged %d records on a connection that carried %d: not a dstream socket source, or a broken one", s.to(), acked, s.connSent)
	}
	if k := acked - s.connAcked; k > 0 {
		s.drop(k)
		s.connAcked = acked
		s.st.Acked += k
	}
	if rerr != nil {
		if fatal {
			return rerr
		}
		if s.count > 0 {
			s.o.Logger.Warn("connection dropped; reconnecting to resend what is not acknowledged", "to", s.to(), "unacknowledged", s.count, "err", rerr)
		}
		s.abandon()
	}
	return nil
}

// drop removes the first k records, acknowledged.
func (s *sender) drop(k int64) {
	i := s.head
	for range k {
		i += bytes.IndexByte(s.buf[i:], '\n') + 1
	}
	d := i - s.head
	s.head, s.off, s.ever, s.count = i, s.off-d, s.ever-d, s.count-k
	switch {
	case s.head == len(s.buf):
		s.buf, s.head = s.buf[:0], 0
	case s.head > bufferSize && s.head > len(s.buf)/2:
		s.buf = s.buf[:copy(s.buf, s.buf[s.head:])]
		s.head = 0
	}
}

// waitAcks writes everything and waits until at most target records are
// unacknowledged, reconnecting and resending when the connection drops, for
// at most AckTimeout; end says whether this is the wait at the end of the
// send, for the error.
func (s *sender) waitAcks(ctx context.Context, target int64, end bool) error {
	clk := s.o.Clock
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timeout := make(chan struct{})
	deadline := clk.Now().Add(s.o.AckTimeout)
	go func() {
		if clk.WaitUntil(tctx, deadline) == nil {
			close(timeout)
		}
	}()
	for {
		if err := s.flushAck(ctx); err != nil {
			return err
		}
		if !s.acks || s.count <= target {
			return nil
		}
		r := s.ac
		if r == nil {
			continue // abandoned while applying: flushAck reconnects
		}
		select {
		case <-r.signal:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			if err := s.applyAcks(); err != nil {
				return err
			}
			if !s.acks || s.count <= target {
				return nil
			}
			hint := ""
			r.mu.Lock()
			if r.state == ackWaiting {
				hint = " (it never answered the acknowledgement header: if it is not a dstream socket source, send without acknowledgements, --ack=false)"
			}
			r.mu.Unlock()
			if end {
				return fmt.Errorf("%d of the records sent to %s not acknowledged within %v%s", s.count, s.to(), s.o.AckTimeout, hint)
			}
			return fmt.Errorf("%d records sent to %s (MaxUnacked, --max-unacked) not acknowledged for %v%s", s.count, s.to(), s.o.AckTimeout, hint)
		}
	}
}

// drainAck is drain with acknowledgements: one bounded attempt to write
// what is not written, then close; what is not acknowledged may be lost.
func (s *sender) drainAck() {
	_ = s.applyAcks()
	if !s.acks {
		s.drain()
		return
	}
	if s.conn != nil && s.head+s.off < len(s.buf) {
		_ = s.conn.SetWriteDeadline(time.Now().Add(drainTimeout))
		a := s.off
		n, err := s.conn.Write(s.buf[s.head+a:])
		s.wrote(a, n)
		if err != nil {
			s.abandon()
		}
	}
	if s.count > 0 {
		s.o.Logger.Warn("stopped; records sent and not acknowledged may be lost", "to", s.to(), "records", s.count)
	}
	if err := s.close(); err != nil {
		s.o.Logger.Warn("closing the connection", "to", s.to(), "err", err)
	}
}

// The states of an acknowledged connection.
const (
	ackWaiting  = iota // for the answer to the header
	ackAccepted        // acknowledgements follow
	ackRefused         // the receiver cannot acknowledge
)

// ackReader reads a connection's acknowledgements, from its own goroutine,
// with bounded memory. The sender applies what it heard (applyAcks) when
// changed is set; signal wakes a sender waiting for it.
type ackReader struct {
	mu     sync.Mutex
	state  int
	reason string // why the receiver refused
	acked  int64  // the latest count acknowledged
	err    error  // the connection's end (EOF, reset), or a protocol error when fatal
	fatal  bool

	changed atomic.Bool
	signal  chan struct{} // capacity 1
}

// maxAckLine bounds a line from the receiver.
const maxAckLine = 256

func (r *ackReader) run(c net.Conn, to string) {
	br := bufio.NewReaderSize(c, maxAckLine)
	for {
		line, err := br.ReadSlice('\n')
		r.mu.Lock()
		done := true
		switch {
		case err == bufio.ErrBufferFull:
			r.err, r.fatal = fmt.Errorf("receiver %s sent %.64q..., a line too long to be an acknowledgement: not a dstream socket source?", to, line), true
		case err != nil:
			r.err = fmt.Errorf("the connection to %s ended: %w", to, err)
		default:
			line = line[:len(line)-1]
			done = r.parseLocked(line, to)
		}
		r.mu.Unlock()
		r.changed.Store(true)
		select {
		case r.signal <- struct{}{}:
		default:
		}
		if done {
			return
		}
	}
}

// parseLocked takes one line (without its newline); it returns whether
// reading is over. r.mu is held.
func (r *ackReader) parseLocked(line []byte, to string) bool {
	bad := func(why string) bool {
		r.err, r.fatal = fmt.Errorf("receiver %s sent %.64q: %s", to, line, why), true
		return true
	}
	switch r.state {
	case ackWaiting:
		switch {
		case string(line)+"\n" == source.AckAccepted:
			r.state = ackAccepted
			return false
		case bytes.HasPrefix(line, []byte(source.AckRefused)):
			r.state, r.reason = ackRefused, string(bytes.TrimSpace(line[len(source.AckRefused):]))
			return true
		}
		return bad("not an answer to the acknowledgement header: not a dstream socket source?")
	default:
		rest, ok := bytes.CutPrefix(line, []byte(source.AckPrefix))
		if !ok {
			return bad("not an acknowledgement")
		}
		n, err := strconv.ParseInt(string(rest), 10, 64)
		if err != nil || n < 0 {
			return bad("not an acknowledgement: bad count")
		}
		if n < r.acked {
			return bad(fmt.Sprintf("the count went back from %d", r.acked))
		}
		r.acked = n
		return false
	}
}
