// Package simnet is an in-memory network for running a whole cluster in
// one process: hosts listen and dial by name ("w1:7000"), and the network
// delays, cuts and partitions their links and crashes hosts, when a
// simulation tells it to. It is the transport fault seam of the
// deterministic simulation (sim_test.go in the root package), as
// pebble's errorfs is the file system's.
//
// Every wait is on a channel or a timer, never on a socket, so goroutines
// blocked on this network are durably blocked in a testing/synctest
// bubble: time in the bubble advances only when every goroutine waits, and
// a latency of 20 ms costs no real time.
//
// A connection behaves as TCP does: bytes arrive in order, each write
// after its latency (never before an earlier write's); a reset (Reset, a
// crashed host) fails both ends at once and loses what was in flight; a
// partition stalls traffic both ways (bytes wait, dials hang) until it
// heals, as a cut cable does, and what waited is then delivered.
package simnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxBuffered bounds the bytes written to one direction of a connection and
// not yet read; a writer waits beyond it (gRPC's flow control keeps far
// below it).
const maxBuffered = 4 << 20

// backlog bounds a listener's connections not yet accepted; a dial beyond
// it is refused.
const backlog = 128

// Config configures a Network.
type Config struct {
	// Latency, if set, is the one-way delay of a write of n bytes from
	// host from to host to; the k-th write on a connection's direction
	// passes k (from 0), so a seeded simulation can derive delays from
	// what is sent rather than from when.
	Latency func(from, to string, k, n int) time.Duration
}

// Network is a set of hosts and the links between them.
type Network struct {
	cfg Config

	mu        sync.Mutex
	listeners map[string]*listener // by address
	ports     map[string]int       // the last port given per host
	pipes     map[*pipe]struct{}   // every open direction of every connection
	down      map[string]bool      // crashed hosts
	cut       map[link]bool        // partitioned pairs of hosts
	healed    chan struct{}        // closed (and replaced) when a partition heals
	traffic   map[string]*Traffic  // by host
}

// Traffic is what a host has sent and received since the network was
// made: writes (each Write on a connection: a gRPC flush of one or more
// frames) and their bytes. A write counts as received when it is written,
// whether or not it is read.
type Traffic struct {
	WritesSent, BytesSent         int64
	WritesReceived, BytesReceived int64
}

// Traffic returns what host has sent and received so far.
func (n *Network) Traffic(host string) Traffic {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.traffic[host]; t != nil {
		return *t
	}
	return Traffic{}
}

// countLocked adds a write of size bytes from one host to another; n.mu is
// held.
func (n *Network) countLocked(from, to string, size int) {
	for _, h := range [...]string{from, to} {
		if n.traffic[h] == nil {
			n.traffic[h] = &Traffic{}
		}
	}
	f, t := n.traffic[from], n.traffic[to]
	f.WritesSent++
	f.BytesSent += int64(size)
	t.WritesReceived++
	t.BytesReceived += int64(size)
}

// link is an unordered pair of hosts.
type link struct{ a, b string }

func linkOf(a, b string) link {
	if b < a {
		a, b = b, a
	}
	return link{a, b}
}

// New returns an empty network.
func New(cfg Config) *Network {
	return &Network{cfg: cfg, listeners: map[string]*listener{}, ports: map[string]int{},
		pipes: map[*pipe]struct{}{}, down: map[string]bool{}, cut: map[link]bool{}, healed: make(chan struct{}),
		traffic: map[string]*Traffic{}}
}

// Host returns host name's view of the network: what its process listens
// and dials with (a cluster.Network).
func (n *Network) Host(name string) *Host { return &Host{n: n, name: name} }

// Host is one host's view of a Network.
type Host struct {
	n    *Network
	name string
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Listen listens at addr, "HOST:PORT" where HOST is this host's name (or
// empty, 127.0.0.1, localhost or 0.0.0.0, meaning this host) and PORT 0
// picks a free port.
func (h *Host) Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "sim", Err: err}
	}
	switch host {
	case h.name, "", "127.0.0.1", "localhost", "0.0.0.0", "::":
	default:
		return nil, &net.OpError{Op: "listen", Net: "sim", Err: fmt.Errorf("host %s cannot listen at %s", h.name, addr)}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, &net.OpError{Op: "listen", Net: "sim", Err: fmt.Errorf("bad port in %q", addr)}
	}
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down[h.name] {
		return nil, &net.OpError{Op: "listen", Net: "sim", Err: fmt.Errorf("host %s is down", h.name)}
	}
	if p == 0 {
		p = max(n.ports[h.name], 10000) + 1
		for n.listeners[Addr(net.JoinHostPort(h.name, strconv.Itoa(p))).String()] != nil {
			p++
		}
		n.ports[h.name] = p
	}
	a := Addr(net.JoinHostPort(h.name, strconv.Itoa(p)))
	if n.listeners[a.String()] != nil {
		return nil, &net.OpError{Op: "listen", Net: "sim", Addr: a, Err: syscall.EADDRINUSE}
	}
	l := &listener{n: n, host: h.name, addr: a, conns: make(chan net.Conn, backlog), done: make(chan struct{})}
	n.listeners[a.String()] = l
	return l, nil
}

// Dial connects to addr. It is refused when this host or addr's is down or
// nothing listens there, and waits while the two hosts are partitioned,
// until ctx ends or the partition heals.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	to, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "sim", Err: err}
	}
	n := h.n
	for {
		n.mu.Lock()
		l := n.listeners[addr]
		switch {
		case n.down[h.name] || n.down[to] || l == nil:
			n.mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: "sim", Addr: Addr(addr), Err: syscall.ECONNREFUSED}
		case n.cut[linkOf(h.name, to)]:
			healed := n.healed
			n.mu.Unlock()
			select {
			case <-healed:
				continue
			case <-ctx.Done():
				return nil, &net.OpError{Op: "dial", Net: "sim", Addr: Addr(addr), Err: ctx.Err()}
			}
		}
		local := Addr(net.JoinHostPort(h.name, strconv.Itoa(n.ephemeral(h.name))))
		up, down := n.newPipe(h.name, to), n.newPipe(to, h.name)
		client := &Conn{in: down, out: up, local: local, remote: Addr(addr)}
		server := &Conn{in: up, out: down, local: Addr(addr), remote: local}
		select {
		case l.conns <- server:
			n.mu.Unlock()
			return client, nil
		default:
			n.closePipesLocked(up, down)
			n.mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: "sim", Addr: Addr(addr), Err: syscall.ECONNREFUSED}
		}
	}
}

// ephemeral returns a client port; n.mu is held.
func (n *Network) ephemeral(host string) int {
	n.ports["~"+host]++
	return 40000 + n.ports["~"+host]%20000
}

// Crash takes host down: its listeners close, its connections reset, and
// dials to or from it are refused until Restart. (The process itself is
// the caller's to stop.)
func (n *Network) Crash(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[host] = true
	for a, l := range n.listeners {
		if l.host == host {
			delete(n.listeners, a)
			l.closeOnce.Do(func() { close(l.done) })
		}
	}
	for p := range n.pipes {
		if p.from == host || p.to == host {
			n.breakLocked(p)
		}
	}
}

// Restart brings a crashed host back: its new process may listen again.
func (n *Network) Restart(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.down, host)
}

// Partition cuts the link between hosts a and b: bytes between them wait
// and dials hang until Heal.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[linkOf(a, b)] = true
}

// Heal restores the link between a and b; what waited is delivered.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, linkOf(a, b))
	close(n.healed)
	n.healed = make(chan struct{})
	for p := range n.pipes {
		p.notifyLocked()
	}
}

// Reset resets every open connection between hosts a and b (a TCP reset:
// both ends fail, what was in flight is lost) and returns how many
// directions it broke.
func (n *Network) Reset(a, b string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for p := range n.pipes {
		if linkOf(p.from, p.to) == linkOf(a, b) {
			n.breakLocked(p)
			k++
		}
	}
	return k
}

// Conns returns how many connections are open (both directions counted
// once each), for tests that check nothing leaks.
func (n *Network) Conns() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pipes) / 2
}

// Addr is an address on a Network.
type Addr string

func (Addr) Network() string  { return "sim" }
func (a Addr) String() string { return string(a) }

type listener struct {
	n         *Network
	host      string
	addr      Addr
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "sim", Addr: l.addr, Err: net.ErrClosed}
	}
}

func (l *listener) Close() error {
	l.n.mu.Lock()
	if l.n.listeners[l.addr.String()] == l {
		delete(l.n.listeners, l.addr.String())
	}
	l.n.mu.Unlock()
	l.closeOnce.Do(func() { close(l.done) })
	// Connections dialed but never accepted are refused, as a closed
	// socket's backlog is.
	for {
		select {
		case c := <-l.conns:
			c.Close()
		default:
			return nil
		}
	}
}

func (l *listener) Addr() net.Addr { return l.addr }

// pipe is one direction of a connection.
type pipe struct {
	n        *Network
	from, to string

	// guarded by n.mu
	chunks   []chunk
	buffered int
	writes   int
	last     time.Time     // when the latest chunk arrives
	closed   bool          // the writer closed: EOF after the chunks
	broken   bool          // reset: both ends fail at once
	changed  chan struct{} // closed (and replaced) at every change
}

type chunk struct {
	data []byte
	at   time.Time
}

func (n *Network) newPipe(from, to string) *pipe {
	p := &pipe{n: n, from: from, to: to, changed: make(chan struct{})}
	n.pipes[p] = struct{}{}
	return p
}

// notifyLocked wakes every goroutine waiting on p (its reader, a writer
// waiting for room); n.mu is held.
func (p *pipe) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (n *Network) breakLocked(p *pipe) {
	p.broken, p.chunks, p.buffered = true, nil, 0
	delete(n.pipes, p)
	p.notifyLocked()
}

func (n *Network) closePipesLocked(ps ...*pipe) {
	for _, p := range ps {
		p.closed = true
		delete(n.pipes, p)
		p.notifyLocked()
	}
}

// Conn is one end of a connection.
type Conn struct {
	in, out       *pipe
	local, remote Addr

	mu            sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
	closed        bool
}

var errReset = &net.OpError{Op: "read", Net: "sim", Err: syscall.ECONNRESET}

// usable returns op's ("read" or "write") deadline and the time now, or
// the error op fails with at once: this end is closed, or its deadline
// has passed.
func (c *Conn) usable(op string) (deadline, now time.Time, err error) {
	c.mu.Lock()
	closed := c.closed
	deadline = c.readDeadline
	if op == "write" {
		deadline = c.writeDeadline
	}
	c.mu.Unlock()
	now = time.Now()
	switch {
	case closed:
		err = &net.OpError{Op: op, Net: "sim", Addr: c.local, Err: net.ErrClosed}
	case !deadline.IsZero() && !now.Before(deadline):
		err = &net.OpError{Op: op, Net: "sim", Addr: c.local, Err: os.ErrDeadlineExceeded}
	}
	return deadline, now, err
}

// Read reads what has arrived, waiting for the next write to arrive.
func (c *Conn) Read(b []byte) (int, error) {
	p := c.in
	n := p.n
	for {
		deadline, now, err := c.usable("read")
		if err != nil {
			return 0, err
		}
		n.mu.Lock()
		if p.broken {
			n.mu.Unlock()
			return 0, errReset
		}
		stalled := n.cut[linkOf(p.from, p.to)]
		var wait time.Duration
		if len(p.chunks) > 0 && !stalled {
			if ch := &p.chunks[0]; !ch.at.After(now) {
				k := copy(b, ch.data)
				ch.data = ch.data[k:]
				p.buffered -= k
				if len(ch.data) == 0 {
					p.chunks = slices.Delete(p.chunks, 0, 1)
				}
				p.notifyLocked() // room for a waiting writer
				n.mu.Unlock()
				return k, nil
			}
			wait = p.chunks[0].at.Sub(now)
		} else if len(p.chunks) == 0 && p.closed && !stalled {
			delete(n.pipes, p)
			n.mu.Unlock()
			return 0, io.EOF
		}
		changed := p.changed
		n.mu.Unlock()
		if !deadline.IsZero() && (wait == 0 || deadline.Sub(now) < wait) {
			wait = deadline.Sub(now)
		}
		waitFor(changed, wait)
	}
}

// waitFor waits until changed is closed or d passes (d == 0: no limit).
func waitFor(changed <-chan struct{}, d time.Duration) {
	if d <= 0 {
		<-changed
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	}
}

// Write queues b for the other end, arriving after the link's latency.
func (c *Conn) Write(b []byte) (int, error) {
	p := c.out
	n := p.n
	for {
		deadline, now, err := c.usable("write")
		if err != nil {
			return 0, err
		}
		n.mu.Lock()
		if p.broken || p.closed {
			n.mu.Unlock()
			return 0, &net.OpError{Op: "write", Net: "sim", Addr: c.local, Err: syscall.EPIPE}
		}
		if p.buffered+len(b) <= maxBuffered || p.buffered == 0 {
			at := now
			if lat := n.cfg.Latency; lat != nil {
				at = now.Add(lat(p.from, p.to, p.writes, len(b)))
			}
			if at.Before(p.last) {
				at = p.last // in order, as TCP
			}
			p.last = at
			p.writes++
			p.chunks = append(p.chunks, chunk{data: slices.Clone(b), at: at})
			p.buffered += len(b)
			n.countLocked(p.from, p.to, len(b))
			p.notifyLocked()
			n.mu.Unlock()
			return len(b), nil
		}
		changed := p.changed
		n.mu.Unlock()
		var wait time.Duration
		if !deadline.IsZero() {
			wait = deadline.Sub(now)
		}
		waitFor(changed, wait)
	}
}

// Close closes this end: the other end reads EOF after what was written,
// and writes to it fail.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	n := c.out.n
	n.mu.Lock()
	defer n.mu.Unlock()
	c.out.closed = true
	c.in.closed = true
	c.in.chunks, c.in.buffered = nil, 0
	delete(n.pipes, c.in)
	if len(c.out.chunks) == 0 {
		delete(n.pipes, c.out)
	} // else the other end reads it to its EOF, across a partition's heal, unless a reset breaks it first
	c.out.notifyLocked()
	c.in.notifyLocked()
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error      { return c.setDeadlines(&t, &t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.setDeadlines(&t, nil) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadlines(nil, &t) }

// setDeadlines sets the deadlines given and wakes what waits on either
// direction, to look at them again.
func (c *Conn) setDeadlines(read, write *time.Time) error {
	c.mu.Lock()
	if read != nil {
		c.readDeadline = *read
	}
	if write != nil {
		c.writeDeadline = *write
	}
	c.mu.Unlock()
	c.wakeBoth()
	return nil
}

func (c *Conn) wakeBoth() {
	n := c.in.n
	n.mu.Lock()
	c.in.notifyLocked()
	c.out.notifyLocked()
	n.mu.Unlock()
}
