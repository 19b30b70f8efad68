package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
)

// collect is a Writer keeping what it is given; failAfter > 0 makes writes
// fail once that many records are in.
type collect struct {
	mu        sync.Mutex
	recs      []string
	failAfter int
}

var errFull = errors.New("collector full")

func (c *collect) Write(r string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAfter > 0 && len(c.recs) >= c.failAfter {
		return errFull
	}
	c.recs = append(c.recs, r)
	return nil
}

func (c *collect) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}

func (c *collect) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSocket opens a socket receiver on a free loopback port and runs it
// into w; stop cancels it and returns Receive's result.
func startSocket(t *testing.T, opts SocketOptions, w Writer) (s *Socket, stop func() error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s = NewSocket("127.0.0.1:0", opts)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Receive(ctx, w) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

// send writes data on a new connection and closes it cleanly.
func send(t *testing.T, addr net.Addr, data []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write(data); err != nil {
		t.Error(err)
	}
}

func TestSocketReceivesEveryLineOfConcurrentConnections(t *testing.T) {
	c := &collect{}
	s, stop := startSocket(t, SocketOptions{}, c)
	var wg sync.WaitGroup
	var want []string
	for conn := range 3 {
		var b bytes.Buffer
		for i := range 2000 {
			line := fmt.Sprintf("c%d-%d", conn, i)
			want = append(want, line)
			b.WriteString(line + "\n")
		}
		wg.Go(func() { send(t, s.Addr(), b.Bytes()) })
	}
	wg.Wait()
	eventually(t, "all lines", func() bool { return c.len() >= len(want) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := c.get()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("received %d lines, want %d exactly once each", len(got), len(want))
	}
}

func TestSocketLineRules(t *testing.T) {
	c := &collect{}
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s, stop := startSocket(t, SocketOptions{MaxRecordBytes: 1 << 20, Logger: logger}, c)
	big := strings.Repeat("x", 2<<20) // over the limit: dropped
	atLimit := strings.Repeat("y", 1<<20)
	input := "first\r\n" + "\n" + "\r\n" + "bad\xff\xfe\x00utf8\n" + "inner\rcr\n" + big + "\n" + "after-big\n" +
		atLimit + "\r\n" + atLimit + "z\n" + "tail-without-newline"
	send(t, s.Addr(), []byte(input))
	want := []string{"first", "", "", "bad\xff\xfe\x00utf8", "inner\rcr", "after-big", atLimit, "tail-without-newline"}
	eventually(t, "records", func() bool { return c.len() >= len(want) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := c.get()
	if !slices.Equal(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w string
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("record %d: got %d bytes %.20q, want %d bytes %.20q", i, len(g), g, len(w), w)
			}
		}
	}
	if l := logs.String(); !strings.Contains(l, "over-long") || !strings.Contains(l, fmt.Sprint(2<<20)) || !strings.Contains(l, "from=127.0.0.1:") {
		t.Errorf("no warning naming the connection and size of the dropped line:\n%s", l)
	}
}

func TestSocketTenMegabyteLineByDefault(t *testing.T) {
	c := &collect{}
	s, stop := startSocket(t, SocketOptions{}, c)
	line := strings.Repeat("y", 10<<20)
	send(t, s.Addr(), []byte(line+"\nnext\n"))
	eventually(t, "records", func() bool { return c.len() >= 2 })
	stop()
	got := c.get()
	if len(got) != 2 || got[0] != line || got[1] != "next" {
		t.Errorf("got %d records, the first of %d bytes", len(got), len(got[0]))
	}
}

func TestSocketBinaryGarbage(t *testing.T) {
	c := &collect{}
	s, stop := startSocket(t, SocketOptions{MaxRecordBytes: 4096}, c)
	data := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	data[len(data)-1] = '\n'
	send(t, s.Addr(), data)
	want := strings.Split(string(data[:len(data)-1]), "\n")
	for i, w := range want {
		want[i] = strings.TrimSuffix(w, "\r")
	}
	eventually(t, "records", func() bool { return c.len() >= len(want) })
	stop()
	if !slices.Equal(c.get(), want) {
		t.Errorf("binary input not passed through byte-exact as lines")
	}
}

func TestSocketResetMidLineDropsThePartialLine(t *testing.T) {
	c := &collect{}
	var logs logBuffer
	s, stop := startSocket(t, SocketOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, c)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("whole\npart")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the whole line", func() bool { return c.len() == 1 })
	conn.(*net.TCPConn).SetLinger(0) // close with a reset
	conn.Close()
	eventually(t, "the warning", func() bool { return strings.Contains(logs.String(), "partial record dropped") })
	// The receiver goes on serving other connections.
	send(t, s.Addr(), []byte("later\n"))
	eventually(t, "later", func() bool { return c.len() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := c.get(); !slices.Equal(got, []string{"whole", "later"}) {
		t.Errorf("got %q", got)
	}
}

func TestSocketDrainsOpenConnectionsOnStop(t *testing.T) {
	c := &collect{}
	s, stop := startSocket(t, SocketOptions{}, c)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&b, "line-%d\n", i)
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	// Stop at once: what the sender wrote must still be read.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := c.len(); n != 20000 {
		t.Errorf("received %d of 20000 lines written before the stop", n)
	}
}

func TestSocketStopClosesIdleConnectionsAndListener(t *testing.T) {
	c := &collect{}
	s, stop := startSocket(t, SocketOptions{}, c)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send(t, s.Addr(), []byte("x\n"))
	eventually(t, "a record", func() bool { return c.len() == 1 })
	if err := stop(); err != nil { // returns although conn stays open and silent
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the receiver left a connection open")
	}
	if c, err := net.Dial("tcp", s.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener still accepts after the stop")
	}
}

func TestSocketWriterFailureStopsReceive(t *testing.T) {
	c := &collect{failAfter: 2}
	s := NewSocket("127.0.0.1:0", SocketOptions{Logger: quiet})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Receive(context.Background(), c) }()
	idle, err := net.Dial("tcp", s.Addr().String()) // must not keep Receive running
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	send(t, s.Addr(), []byte("a\nb\nc\nd\n"))
	select {
	case err := <-done:
		if !errors.Is(err, errFull) || !strings.Contains(err.Error(), "socket 127.0.0.1:0") {
			t.Errorf("Receive = %v, want the writer's error naming the source", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive went on after its writer failed")
	}
}

func TestSocketPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	err = NewSocket(addr, SocketOptions{}).Open()
	if err == nil || !strings.Contains(err.Error(), "source socket "+addr+": listen: address already in use") {
		t.Errorf("Open on a used port = %v", err)
	}
	if err := NewSocket("127.0.0.1:99999", SocketOptions{}).Open(); err == nil || !strings.Contains(err.Error(), "127.0.0.1:99999") {
		t.Errorf("Open on a bad port = %v", err)
	}
}

func TestSocketReceiveAfterCancelReleasesThePort(t *testing.T) {
	s := NewSocket("127.0.0.1:0", SocketOptions{Logger: quiet})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Receive(ctx, &collect{}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", s.Addr().String())
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	l.Close()
}

// TestSocketIntoBlockGenerator runs a socket receiver into a block generator
// under the manual clock, as the engine does.
func TestSocketIntoBlockGenerator(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Stream: 1, Interval: 200 * time.Millisecond, Clock: clk, Sink: sink, Logger: quiet})
	g.Start(context.Background())
	s, stop := startSocket(t, SocketOptions{}, g)
	send(t, s.Addr(), []byte("a\nb\n"))
	eventually(t, "records buffered", func() bool { return g.Stats().Buffered == 2 })
	clk.Advance(200 * time.Millisecond)
	eventually(t, "a block", func() bool { return len(sink.stored()) == 1 })
	send(t, s.Addr(), []byte("c\n"))
	eventually(t, "records buffered", func() bool { return g.Stats().Buffered == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	blocks := sink.stored()
	if len(blocks) != 2 || !blocks[0].Time.Equal(epoch.Add(200*time.Millisecond)) ||
		!slices.Equal(blocks[0].Records, []string{"a", "b"}) || !slices.Equal(blocks[1].Records, []string{"c"}) {
		t.Errorf("blocks %+v", blocks)
	}
}

// TestSocketDropsAndCountsAnOverLongRecord: over a real socket, a line
// one byte over the limit between good lines is dropped and counted once;
// every good line arrives, in order, a line exactly at the limit included.
func TestSocketDropsAndCountsAnOverLongRecord(t *testing.T) {
	for _, c := range []struct {
		name  string
		limit int // SocketOptions.MaxRecordBytes
		max   int // the limit in force
	}{
		{"default 16MiB", 0, DefaultMaxRecordBytes},
		{"1KiB", 1 << 10, 1 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := &collect{}
			var logs logBuffer
			s, stop := startSocket(t, SocketOptions{MaxRecordBytes: c.limit, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, col)
			var want []string
			var in bytes.Buffer
			good := func(n int) {
				for range n {
					line := fmt.Sprintf("good-%d", len(want))
					want = append(want, line)
					in.WriteString(line + "\n")
				}
			}
			good(500)
			in.WriteString(strings.Repeat("x", c.max+1) + "\r\n") // over: dropped
			good(500)
			atLimit := strings.Repeat("y", c.max)
			want = append(want, atLimit)
			in.WriteString(atLimit + "\r\n")
			good(500)
			send(t, s.Addr(), in.Bytes())
			eventually(t, "records", func() bool { return col.len() >= len(want) })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := col.get()
			if !slices.Equal(got, want) {
				t.Errorf("received %d records, want the %d good ones exactly, in order", len(got), len(want))
			}
			if n := s.DroppedRecords(); n != 1 {
				t.Errorf("DroppedRecords() = %d, want 1", n)
			}
			if l := logs.String(); strings.Count(l, "over-long") != 1 || !strings.Contains(l, fmt.Sprintf("bytes=%d", c.max+1)) {
				t.Errorf("want one warning naming the dropped line's size %d:\n%s", c.max+1, l)
			}
		})
	}
}

func TestSocketOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		max  int
		want string // in the error; "" for none
	}{
		{0, ""},
		{1, ""},
		{DefaultMaxRecordBytes, ""},
		{MaxRecordBytesLimit, ""},
		{-1, "must not be negative"},
		{MaxRecordBytesLimit + 1, "over the limit"},
	} {
		err := SocketOptions{MaxRecordBytes: c.max}.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Validate(MaxRecordBytes %d) = %v, want %q", c.max, err, c.want)
		}
		// Open says the same, naming the source, and binds nothing.
		s := NewSocket("127.0.0.1:0", SocketOptions{MaxRecordBytes: c.max, Logger: quiet})
		err = s.Open()
		if c.want == "" {
			if err != nil {
				t.Errorf("Open with MaxRecordBytes %d: %v", c.max, err)
			} else {
				s.ln.Close()
			}
		} else if err == nil || !strings.Contains(err.Error(), "source socket 127.0.0.1:0: ") || !strings.Contains(err.Error(), c.want) || s.Addr() != nil {
			t.Errorf("Open with MaxRecordBytes %d: %v, want an error naming the source and %q", c.max, err, c.want)
		}
	}
}
