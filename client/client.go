// Package client injects records into a socket source over TCP: a file's
// lines, or generated records, at a steady rate when asked, reconnecting
// when the connection drops. It is what `dstream send` runs.
//
// Delivery is what plain TCP gives. A record counts as sent once the kernel
// accepted it; when a connection drops, what the kernel had accepted but the
// receiver had not read is lost, and the write that failed is resent, whole
// records only, on the next connection: a record may be lost, or (if the
// receiver got part of the failed write) arrive twice, the copy on the broken
// connection possibly cut short. Exactly-once delivery would need
// acknowledgements, which a socket source does not send.
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
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/generate"
)

// Options say what to send, where and how fast.
type Options struct {
	To             string        // host:port of a socket source (required)
	File           string        // send this file's lines once (exclusive with Generate)
	Generate       string        // a generate kind (exclusive with File)
	Seed           int64         // generator seed
	Rate           int           // records per second; 0 sends as fast as possible
	Duration       time.Duration // stop after this long on Clock; 0: at the end of the file, or never for generators
	Count          int64         // stop after this many records; 0: no limit
	ConnectTimeout time.Duration // give up when no connection can be made for this long; default 30 s
	Clock          clock.Clock   // paces, times out and backs off; default the wall clock
	Logger         *slog.Logger  // default slog.Default()
}

// Stats report what was sent.
type Stats struct {
	Records, Bytes int64 // accepted by the kernel; Bytes counts the newlines
	Reconnects     int   // connections made after the first
}

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
	}
	if _, _, err := net.SplitHostPort(o.To); err != nil {
		return fmt.Errorf("--to %q: want HOST:PORT: %w", o.To, err)
	}
	if o.Generate != "" {
		if _, err := generate.New(o.Generate, 0); err != nil {
			return fmt.Errorf("--generate: %w", err)
		}
	}
	return nil
}

// Send sends records as o says and returns what it sent. It returns when the
// file is sent (flushed, half-closed and closed), Count records are sent,
// Duration is over, or ctx is cancelled; in the last two cases it flushes
// what it buffered, closes and returns nil. At a Rate, Duration sends the
// records due within it: Rate*Duration of them unless the sender fell behind. It fails when o is invalid, the file
// cannot be read, or no connection could be made for ConnectTimeout.
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
	next, closeSrc, err := records(o)
	if err != nil {
		return st, err
	}
	defer closeSrc()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &sender{o: o, st: &st, buf: make([]byte, 0, bufferSize)}
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
	if ctx.Err() != nil {
		s.drain()
		return st, nil
	}
	if err == nil {
		err = s.finish(ctx)
	}
	return st, err
}

// sender is a reconnecting buffered TCP writer. Its buffer holds whole
// newline-terminated records only, so what a failed write did not deliver
// can be resent from a record boundary. (A bufio.Writer would drop its
// buffer on a write error.)
type sender struct {
	o        Options
	st       *Stats
	conn     net.Conn
	stopAF   func() bool // undoes the cancel hook of conn
	dials    int         // connections made
	buf      []byte
	produced int64     // records taken from the source
	end      time.Time // when Duration is over; zero without one
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
			s.o.Logger.Warn("sender fell behind its rate; skipping the backlog", "to", s.o.To, "behind", now.Sub(due).Round(time.Millisecond))
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
		s.o.Logger.Warn("connection dropped; reconnecting", "to", s.o.To, "err", err)
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

// connect dials until it succeeds, ctx is done, or ConnectTimeout passes,
// backing off from minBackoff to maxBackoff between attempts.
func (s *sender) connect(ctx context.Context) error {
	clk := s.o.Clock
	deadline := clk.Now().Add(s.o.ConnectTimeout)
	wait := minBackoff
	d := net.Dialer{Timeout: dialTimeout}
	for {
		c, err := d.DialContext(ctx, "tcp", s.o.To)
		if err == nil {
			if s.dials > 0 {
				s.st.Reconnects++
				s.o.Logger.Info("reconnected", "to", s.o.To)
			}
			s.dials++
			s.conn = c
			// On a cancel, a write blocked on a receiver that does not read
			// gives up after drainTimeout.
			s.stopAF = context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(time.Now().Add(drainTimeout)) })
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := clk.Now()
		if !now.Before(deadline) {
			return fmt.Errorf("cannot connect to %s for %v: %w", s.o.To, s.o.ConnectTimeout, err)
		}
		s.o.Logger.Warn("cannot connect; retrying", "to", s.o.To, "in", wait, "err", err)
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
	if err := s.flush(ctx); err != nil {
		return err
	}
	return s.close()
}

// drain makes one bounded attempt to write the buffer after a cancel, then
// closes; what it cannot write is lost (and logged).
func (s *sender) drain() {
	if s.conn == nil {
		if len(s.buf) > 0 {
			s.o.Logger.Warn("stopped while disconnected; records not sent", "to", s.o.To, "records", bytes.Count(s.buf, []byte{'\n'}))
		}
		return
	}
	if len(s.buf) > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(drainTimeout))
		n, err := s.conn.Write(s.buf)
		s.sent(bytes.LastIndexByte(s.buf[:n], '\n') + 1)
		if err != nil {
			s.o.Logger.Warn("stopped; the last records could not be sent", "to", s.o.To, "records", bytes.Count(s.buf, []byte{'\n'}), "err", err)
			s.abandon()
			return
		}
	}
	if err := s.close(); err != nil {
		s.o.Logger.Warn("closing the connection", "to", s.o.To, "err", err)
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
	return err
}

// abandon closes the connection without ceremony.
func (s *sender) abandon() {
	if s.conn != nil {
		s.conn.Close()
		s.stopAF()
		s.conn = nil
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
