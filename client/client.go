// Package client injects records into a socket source over TCP: a file's
// lines, or generated records, at a steady rate when asked, reconnecting
// when the connection drops. It is what `dstream send` runs.
package client

import (
	"bufio"
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
	To             string        // host:port of a socket source
	File           string        // send this file's lines once (exclusive with Generate)
	Generate       string        // a generate kind
	Seed           int64         // generator seed
	Rate           int           // records per second; 0 sends as fast as possible
	Duration       time.Duration // stop after this long; 0: at the end of the file, or never for generators
	Count          int64         // stop after this many records; 0: no limit
	ConnectTimeout time.Duration // give up when no connection can be made for this long; default 30 s
	Clock          clock.Clock   // default the wall clock
	Logger         *slog.Logger
}

// Stats report what was sent.
type Stats struct {
	Records, Bytes int64
	Reconnects     int
}

// Validate reports the first problem with o.
func (o Options) Validate() error {
	switch {
	case o.To == "":
		return errors.New("--to HOST:PORT is required")
	case (o.File == "") == (o.Generate == ""):
		return errors.New("give exactly one of --file and --generate")
	case o.Rate < 0:
		return fmt.Errorf("--rate %d must not be negative", o.Rate)
	case o.Duration < 0:
		return fmt.Errorf("--duration %v must not be negative", o.Duration)
	case o.Count < 0:
		return fmt.Errorf("--count %d must not be negative", o.Count)
	}
	if _, _, err := net.SplitHostPort(o.To); err != nil {
		return fmt.Errorf("--to %q: %w", o.To, err)
	}
	if o.Generate != "" {
		if _, err := generate.New(o.Generate, 0); err != nil {
			return err
		}
	}
	return nil
}

// conn is a reconnecting buffered TCP writer.
type conn struct {
	o     Options
	c     net.Conn
	w     *bufio.Writer
	stats *Stats
}

func (k *conn) connect(ctx context.Context) error {
	deadline := time.Now().Add(k.o.ConnectTimeout)
	wait := 100 * time.Millisecond
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", k.o.To)
		if err == nil {
			k.c, k.w = c, bufio.NewWriterSize(c, 64<<10)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot connect to %s for %v: %w", k.o.To, k.o.ConnectTimeout, err)
		}
		k.o.Logger.Warn("cannot connect; retrying", "to", k.o.To, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// write sends one record and its newline. When the connection fails it
// reconnects and resends the record. Plain TCP gives no acknowledgement, so
// what the kernel had buffered when a connection dropped may be lost, and a
// record may arrive twice.
func (k *conn) write(ctx context.Context, rec []byte) error {
	for {
		if k.c == nil {
			if err := k.connect(ctx); err != nil {
				return err
			}
		}
		_, err := k.w.Write(rec)
		if err == nil {
			err = k.w.WriteByte('\n')
		}
		if err == nil {
			k.stats.Records++
			k.stats.Bytes += int64(len(rec)) + 1
			return nil
		}
		k.o.Logger.Warn("connection dropped; reconnecting", "to", k.o.To, "err", err)
		k.c.Close()
		k.c = nil
		k.stats.Reconnects++
	}
}

func (k *conn) flush() error {
	if k.c == nil {
		return nil
	}
	return k.w.Flush()
}

// close flushes, half-closes so the receiver sees a clean end of stream, and closes.
func (k *conn) close() error {
	if k.c == nil {
		return nil
	}
	err := k.w.Flush()
	if tc, ok := k.c.(*net.TCPConn); ok && err == nil {
		err = tc.CloseWrite()
	}
	if cerr := k.c.Close(); err == nil {
		err = cerr
	}
	k.c = nil
	return err
}

// Send sends records as o says and returns what it sent. Cancelling ctx
// flushes and returns without error.
func Send(ctx context.Context, o Options) (Stats, error) {
	var st Stats
	if err := o.Validate(); err != nil {
		return st, err
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	next, closeSrc, err := records(o)
	if err != nil {
		return st, err
	}
	defer closeSrc()
	k := &conn{o: o, stats: &st}
	if err := k.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return st, nil
		}
		return st, err
	}
	defer k.close()
	start := o.Clock.Now()
	const burst = 10 * time.Millisecond // pace in bursts, not per record
	var buf []byte
	for o.Count == 0 || st.Records < o.Count {
		if ctx.Err() != nil {
			return st, k.close()
		}
		if o.Rate > 0 {
			// Records due by now (plus one burst), on the clock.
			due := int64(float64(o.Clock.Now().Sub(start)+burst) / float64(time.Second) * float64(o.Rate))
			if st.Records >= due {
				if err := k.flush(); err != nil {
					k.o.Logger.Warn("flush failed", "err", err)
				}
				wake := start.Add(time.Duration(float64(st.Records) / float64(o.Rate) * float64(time.Second)))
				if err := o.Clock.WaitUntil(ctx, wake); err != nil {
					return st, k.close()
				}
				continue
			}
		}
		var ok bool
		buf, ok, err = next(buf[:0])
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		if err := k.write(ctx, buf); err != nil {
			if ctx.Err() != nil {
				return st, nil
			}
			return st, err
		}
	}
	return st, k.close()
}

// records returns a function that appends the next record to dst, or reports
// the end of a file.
func records(o Options) (func(dst []byte) ([]byte, bool, error), func(), error) {
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
				return dst, len(dst) > 0, nil
			default:
				return nil, false, fmt.Errorf("--file %s: %w", o.File, err)
			}
		}
	}, func() { f.Close() }, nil
}
