package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// SocketOptions configure a Socket receiver.
type SocketOptions struct {
	// MaxRecordBytes is the longest line taken as a record, "\r\n" not
	// counted: a longer one is dropped, counted (Socket.DroppedRecords)
	// and logged. 0 means DefaultMaxRecordBytes; it must be at most
	// MaxRecordBytesLimit, and not negative (see Validate).
	MaxRecordBytes int
	Logger         *slog.Logger // default slog.Default()
}

// Bounds of SocketOptions.MaxRecordBytes. Memory per connection stays
// within about MaxRecordBytes plus a 64 KiB read buffer.
const (
	DefaultMaxRecordBytes = 16 << 20
	MaxRecordBytesLimit   = 1 << 30
)

// Validate reports options NewSocket cannot use; Open returns the same
// error, naming the source.
func (o SocketOptions) Validate() error {
	switch {
	case o.MaxRecordBytes < 0:
		return fmt.Errorf("MaxRecordBytes %d must not be negative (0: the default, %d)", o.MaxRecordBytes, DefaultMaxRecordBytes)
	case o.MaxRecordBytes > MaxRecordBytesLimit:
		return fmt.Errorf("MaxRecordBytes %d is over the limit of %d (1 GiB): a record is held in memory whole", o.MaxRecordBytes, MaxRecordBytesLimit)
	}
	return nil
}

// Socket listens on a TCP address and receives newline-delimited text
// records from any number of concurrent connections (`dstream send` is its
// client). Every line is a record, empty lines too, without its "\n" and a
// "\r" before it; other bytes pass through unchanged (invalid UTF-8 and
// binary included). A line longer than MaxRecordBytes is dropped, counted
// (DroppedRecords) and logged with a warning naming the connection and the
// size, and reading goes on at the next line; memory per connection stays
// bounded. At a clean end of stream an
// unterminated last line is a record; when a connection breaks mid-line, the
// partial line is dropped with a warning.
//
// Acknowledgements (opt-in, for `dstream send` and client.Send with Ack): a
// connection whose very first line is the header AckHeader ("\x00DSTREAM-ACK
// 1\n": a NUL byte, then "DSTREAM-ACK 1", then a newline) asks for them. The
// header is not a record. If the Writer reports stored blocks (a
// TaggedWriter: a BlockGenerator), the receiver answers on the same
// connection "DSTREAM-ACK 1\n" at once, then "ACK <n>\n" (n in decimal) as
// blocks are stored, n being how many of this connection's records are
// stored so far (their block's StoreBlock returned nil): n only grows, and
// there is at most one ACK line per stored block, fewer when several blocks
// are stored before the line is written. Otherwise, or when the first line
// starts with "\x00DSTREAM-" but is not exactly the header (another version),
// it answers "DSTREAM-NOACK <reason>\n" and takes the connection's records
// without acknowledging them. When an acknowledged connection ends cleanly,
// the receiver keeps it open until its records are stored and acknowledged
// (or the receiver stops). A connection without the header is read exactly as
// above and nothing is ever written back to it; only a first line starting
// with "\x00DSTREAM-" is taken as a header rather than a record.
//
// Stopping (cancelling Receive's ctx) closes the listener at once; open
// connections are drained of what their senders already wrote until each is
// idle for drainIdle (at most drainMax), then closed, so a graceful engine
// stop loses nothing a sender flushed before it.
type Socket struct {
	addr    string
	opts    SocketOptions
	optsErr error // from opts.Validate: Open fails with it
	ln      net.Listener
	remote  atomic.Pointer[net.TCPAddr] // where another process runs this receiver
	dropped atomic.Int64                // over-long records dropped
}

// AckHeader is the first line of a connection that asks for
// acknowledgements (see Socket), newline included.
const AckHeader = "\x00DSTREAM-ACK 1\n"

// Replies to the header, and acknowledgement lines (see Socket).
const (
	ackHeaderPrefix = "\x00DSTREAM-"
	AckAccepted     = "DSTREAM-ACK 1\n" // the header is accepted: ACK lines follow
	AckRefused      = "DSTREAM-NOACK"   // then " <reason>\n": records are taken, not acknowledged
	AckPrefix       = "ACK "            // then the count and "\n"
)

// ackWriteTimeout bounds writing one acknowledgement line to a sender that
// does not read them; the connection is then closed.
const ackWriteTimeout = 10 * time.Second

// Bounds on draining open connections when the receiver stops. These are
// socket deadlines, on the wall clock by nature.
const (
	drainIdle = 300 * time.Millisecond
	drainMax  = 5 * time.Second
)

// NewSocket returns a receiver that will listen on addr ("host:port"; port 0
// picks a free port, see Addr). Options that do not validate make Open fail.
func NewSocket(addr string, opts SocketOptions) *Socket {
	err := opts.Validate()
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Socket{addr: addr, opts: opts, optsErr: err}
}

// Name returns "socket ADDR".
func (s *Socket) Name() string { return "socket " + s.addr }

// Open binds the listening socket. A port in use gives
// "source socket ADDR: listen: address already in use"; options that do
// not validate give "source socket ADDR: " and Validate's error.
func (s *Socket) Open() error {
	if s.optsErr != nil {
		return fmt.Errorf("source %s: %w", s.Name(), s.optsErr)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, syscall.EADDRINUSE) {
			msg = "address already in use (another process listens there)"
		}
		return &openError{msg: fmt.Sprintf("source %s: listen: %s", s.Name(), msg), err: err}
	}
	s.ln = ln
	return nil
}

// openError is Open's error: a clear message, wrapping the system's error.
type openError struct {
	msg string
	err error
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

// Addr returns the bound address after Open (nil before), or, when the
// receiver runs in another process of a cluster, where that one listens.
func (s *Socket) Addr() net.Addr {
	if s.ln == nil {
		if r := s.remote.Load(); r != nil {
			return r
		}
		return nil
	}
	return s.ln.Addr()
}

// DroppedRecords returns how many records this receiver has dropped since
// it was made because they were longer than MaxRecordBytes (in this
// process: when the receiver runs on a worker of a cluster, that worker's
// Socket counts them). It is safe to call from any goroutine.
func (s *Socket) DroppedRecords() int64 { return s.dropped.Load() }

// RunsAt records that this receiver runs in another process (a worker of
// the cluster), listening at addr, so Addr reports it.
func (s *Socket) RunsAt(addr string) error {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return fmt.Errorf("source %s: runs at %q: %w", s.Name(), addr, err)
	}
	s.remote.Store(a)
	return nil
}

// Receive accepts connections and writes their lines to w until ctx is done,
// then closes the listener, drains and closes the connections, and waits for
// their goroutines. It returns nil when stopped by ctx, and an error when w
// fails (the other connections are then stopped too) or accepting fails for
// good.
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
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	// On stop: accept no more connections, and let the open ones drain.
	stop := context.AfterFunc(ctx, func() {
		s.ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(drainIdle))
		}
		mu.Unlock()
	})
	defer stop()
	var backoff time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if isTemporaryAccept(err) {
				// Out of file descriptors or memory: wait and retry, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.opts.Logger.Warn("socket source cannot accept; retrying", "addr", s.addr, "in", backoff, "err", err)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				continue
			}
			s.opts.Logger.Error("socket source stopped accepting", "addr", s.addr, "err", err)
			fail(fmt.Errorf("source %s: accept: %w", s.Name(), err))
			break
		}
		backoff = 0
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
			conn.Close()
			mu.Lock()
			delete(conns, conn)
			mu.Unlock()
			if err != nil {
				fail(err) // the engine cannot take more: stop receiving
			}
		}()
	}
	s.ln.Close()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return first
}

// isTemporaryAccept reports accept errors worth retrying.
func isTemporaryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// serve reads one connection until its end, a break, or the end of the drain
// after ctx is done. It returns an error only when w fails.
func (s *Socket) serve(ctx context.Context, conn net.Conn, w Writer) error {
	peer := conn.RemoteAddr().String()
	log := s.opts.Logger
	var drainUntil time.Time
	lr := newLineReader(conn, s.opts.MaxRecordBytes, func(size int) {
		s.dropped.Add(1)
		log.Warn("socket source dropped an over-long record", "addr", s.addr, "from", peer, "bytes", size, "max", s.opts.MaxRecordBytes)
	})
	var (
		first = true
		ack   *acker // acknowledging this connection's records
		tw    TaggedWriter
	)
	defer func() {
		if ack != nil {
			ack.stop()
		}
	}()
	for {
		line, ok, partial, err := lr.next()
		if ok && first {
			first = false
			if len(line) >= len(ackHeaderPrefix) && line[:len(ackHeaderPrefix)] == ackHeaderPrefix {
				ok = false // a header, never a record
				ack, tw = s.startAcks(conn, line, w)
			}
		}
		if ok {
			var werr error
			if ack != nil {
				werr = tw.WriteTagged(line, ack.tag)
				ack.written++
			} else {
				werr = w.Write(line)
			}
			if werr != nil {
				return fmt.Errorf("source %s: %w", s.Name(), werr)
			}
		}
		if err == nil {
			if ctx.Err() != nil {
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
			continue
		}
		if err == io.EOF {
			if ack != nil {
				// The sender is done: acknowledge what it sent before
				// closing, unless the receiver stops first.
				ack.finish(ctx)
			}
			return nil
		}
		var ne net.Error
		switch {
		case ctx.Err() != nil && errors.As(err, &ne) && ne.Timeout():
			if !drainUntil.IsZero() && !time.Now().Before(drainUntil) {
				log.Warn("socket source stopped draining a connection that kept sending; what it sends from now on is not received",
					"addr", s.addr, "from", peer, "drained_for", drainMax)
			}
			if partial > 0 {
				log.Warn("socket source stopped mid-record; partial record dropped", "addr", s.addr, "from", peer, "bytes", partial)
			}
		case partial > 0:
			log.Warn("socket source: connection broke mid-record; partial record dropped", "addr", s.addr, "from", peer, "bytes", partial, "err", err)
		case ctx.Err() == nil:
			log.Info("socket source: connection broke", "addr", s.addr, "from", peer, "err", err)
		}
		return nil
	}
}

// startAcks answers a connection's header line. It returns the acker of the
// connection and the writer to tag records with, or nil when the connection
// gets no acknowledgements.
func (s *Socket) startAcks(conn net.Conn, header string, w Writer) (*acker, TaggedWriter) {
	log := s.opts.Logger
	peer := conn.RemoteAddr().String()
	refuse := func(reason string) (*acker, TaggedWriter) {
		log.Warn("socket source: a sender asked for acknowledgements, which it will not get; its records are taken",
			"addr", s.addr, "from", peer, "header", fmt.Sprintf("%q", header), "reason", reason)
		_ = conn.SetWriteDeadline(time.Now().Add(ackWriteTimeout))
		_, _ = io.WriteString(conn, AckRefused+" "+reason+"\n")
		return nil, nil
	}
	if header+"\n" != AckHeader {
		return refuse("unsupported header")
	}
	tw, ok := w.(TaggedWriter)
	if !ok {
		return refuse("this receiver cannot tell when records are stored")
	}
	a := &acker{
		conn:  conn,
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		final: -1,
		log:   log.With("addr", s.addr, "from", peer),
	}
	a.tag = NewTag(func(n int) {
		a.stored.Add(int64(n))
		select {
		case a.wake <- struct{}{}:
		default:
		}
	})
	go a.loop()
	return a, tw
}

// acker writes a connection's acknowledgement lines: the reply to the
// header, then "ACK <n>" whenever more of its records are stored, from its
// own goroutine (so a stored block never waits on a sender's socket).
type acker struct {
	conn    net.Conn
	tag     *Tag
	stored  atomic.Int64  // records of this connection stored (onStored)
	written int64         // records written to the Writer; serve's goroutine only
	final   int64         // set under the wake, before finish: stop once this many are acknowledged
	finalMu sync.Mutex    // guards final
	wake    chan struct{} // capacity 1: more stored, or final set
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when loop returns
	log     *slog.Logger
	stopped bool // serve's goroutine only
}

func (a *acker) loop() {
	defer close(a.done)
	var (
		acked int64
		line  = make([]byte, 0, 32)
	)
	write := func() bool {
		n := a.stored.Load()
		if n <= acked {
			return true
		}
		line = append(append(line[:0], AckPrefix...), strconv.FormatInt(n, 10)...)
		line = append(line, '\n')
		_ = a.conn.SetWriteDeadline(time.Now().Add(ackWriteTimeout))
		if _, err := a.conn.Write(line); err != nil {
			a.log.Info("socket source: cannot acknowledge; closing the connection", "err", err)
			a.conn.Close() // the sender resends what it did not hear of
			return false
		}
		acked = n
		return true
	}
	_ = a.conn.SetWriteDeadline(time.Now().Add(ackWriteTimeout))
	if _, err := io.WriteString(a.conn, AckAccepted); err != nil {
		a.log.Info("socket source: cannot answer the acknowledgement header; closing the connection", "err", err)
		a.conn.Close()
		return
	}
	for {
		select {
		case <-a.wake:
		case <-a.quit:
			write() // what was stored by now
			return
		}
		if !write() {
			return
		}
		a.finalMu.Lock()
		final := a.final
		a.finalMu.Unlock()
		if final >= 0 && acked >= final {
			return
		}
	}
}

// finish waits until every record written is acknowledged, the
// acknowledgements fail, or ctx is done (the receiver stops; what is not
// acknowledged then is resent by the sender). Called from serve.
func (a *acker) finish(ctx context.Context) {
	a.finalMu.Lock()
	a.final = a.written
	a.finalMu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

// stop ends the acknowledgements, writing what is stored by now, and waits
// for the goroutine. Called from serve, before the connection is closed.
func (a *acker) stop() {
	if !a.stopped {
		a.stopped = true
		close(a.quit)
	}
	<-a.done
}
