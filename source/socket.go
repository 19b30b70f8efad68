package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// SocketOptions configure a Socket receiver.
type SocketOptions struct {
	MaxRecordBytes int // longer lines are dropped with a warning; default 16 MiB
	Logger         *slog.Logger
}

// Socket listens on a TCP address and receives newline-delimited text
// records from any number of connections (`dstream send` is its client).
// Every line is a record, empty lines too; bytes pass through unchanged
// (invalid UTF-8 included). At a clean end of stream an unterminated last
// line is a record; when a connection breaks mid-line, the partial line is
// dropped with a warning.
type Socket struct {
	addr string
	opts SocketOptions
	ln   net.Listener
}

// Bounds on draining open connections when the receiver stops.
const (
	drainIdle = 300 * time.Millisecond
	drainMax  = 5 * time.Second
)

// NewSocket returns a receiver that will listen on addr ("host:port"; port 0
// picks a free port, see Addr).
func NewSocket(addr string, opts SocketOptions) *Socket {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 16 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Socket{addr: addr, opts: opts}
}

// Name describes the receiver.
func (s *Socket) Name() string { return "socket " + s.addr }

// Open binds the listening socket.
func (s *Socket) Open() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		if errors.Is(err, errAddrInUse) {
			return fmt.Errorf("source socket %s: address already in use (another process listens there)", s.addr)
		}
		return fmt.Errorf("source socket %s: %w", s.addr, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address after Open (nil before).
func (s *Socket) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Receive accepts connections and writes their lines to w until ctx is done.
func (s *Socket) Receive(ctx context.Context, w Writer) error {
	if s.ln == nil {
		return fmt.Errorf("source %s: Receive before Open", s.Name())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
		first error
	)
	// On stop: accept no more connections, and let open ones drain what the
	// senders already wrote (until each is idle for drainIdle, or drainMax).
	stop := context.AfterFunc(ctx, func() {
		s.ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(drainIdle))
		}
		mu.Unlock()
	})
	defer stop()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.Error("socket source stopped accepting", "addr", s.addr, "err", err)
				first = fmt.Errorf("source %s: accept: %w", s.Name(), err)
				cancel()
			}
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			conn.Close()
			break
		}
		conns[conn] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.serve(ctx, conn, w)
			mu.Lock()
			delete(conns, conn)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
			conn.Close()
			if err != nil {
				cancel() // the engine cannot take more: stop receiving
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return first
}

// serve reads one connection; it returns an error only when w fails.
func (s *Socket) serve(ctx context.Context, conn net.Conn, w Writer) error {
	peer := conn.RemoteAddr().String()
	var drainUntil time.Time
	lr := newLineReader(conn, s.opts.MaxRecordBytes, func(size int) {
		s.opts.Logger.Warn("socket source dropped an over-long record", "from", peer, "bytes", size, "max", s.opts.MaxRecordBytes)
	})
	for {
		line, partial, err := lr.next()
		if err == nil || (err == io.EOF && line != "") {
			if werr := w.Write(line); werr != nil {
				return fmt.Errorf("source %s: %w", s.Name(), werr)
			}
		}
		if err == nil && ctx.Err() != nil {
			// Draining: keep reading while data keeps coming, within bounds.
			now := time.Now()
			if drainUntil.IsZero() {
				drainUntil = now.Add(drainMax)
			}
			dl := now.Add(drainIdle)
			if dl.After(drainUntil) {
				dl = drainUntil
			}
			_ = conn.SetReadDeadline(dl)
		}
		var ne net.Error
		switch {
		case err == nil:
			continue
		case err == io.EOF:
			return nil
		case ctx.Err() != nil && errors.As(err, &ne) && ne.Timeout():
			if partial > 0 {
				s.opts.Logger.Warn("socket source stopped mid-record; partial record dropped", "from", peer, "bytes", partial)
			}
			return nil
		default:
			if partial > 0 {
				s.opts.Logger.Warn("socket source: connection broke mid-record; partial record dropped", "from", peer, "bytes", partial, "err", err)
			}
			return nil
		}
	}
}
