package source

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
)

// ackRig is a socket receiver into a generator on a manual clock.
type ackRig struct {
	clk  *clock.Manual
	sink *memSink
	gen  *BlockGenerator
	sock *Socket
}

const ackInterval = 100 * time.Millisecond

func newAckRig(t *testing.T) *ackRig {
	t.Helper()
	r := &ackRig{clk: clock.NewManual(epoch), sink: &memSink{}}
	r.gen = NewBlockGenerator(GeneratorConfig{Interval: ackInterval, Clock: r.clk, Sink: r.sink, Logger: quiet})
	r.gen.Start(context.Background())
	t.Cleanup(func() { r.gen.Stop() })
	r.sock, _ = startSocket(t, SocketOptions{}, r.gen)
	return r
}

// cut waits until the generator holds n records, then moves the clock past
// the block boundary so they are cut and stored.
func (r *ackRig) cut(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d records buffered", n), func() bool { return r.gen.Stats().Buffered == n })
	r.clk.Advance(ackInterval)
}

func dial(t *testing.T, addr net.Addr) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), bufio.NewReader(c)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading an acknowledgement: %q, %v", l, err)
	}
	return l
}

func TestSocketAcknowledgesStoredRecords(t *testing.T) {
	r := newAckRig(t)
	c, br := dial(t, r.sock.Addr())
	if _, err := io.WriteString(c, AckHeader+"a\nb\nc\n"); err != nil {
		t.Fatal(err)
	}
	if got := readLine(t, br); got != "DSTREAM-ACK 1\n" {
		t.Fatalf("answer to the header = %q", got)
	}
	r.cut(t, 3)
	if got := readLine(t, br); got != "ACK 3\n" {
		t.Fatalf("first ack = %q, want ACK 3", got)
	}
	io.WriteString(c, "d\ne\n")
	r.cut(t, 2)
	if got := readLine(t, br); got != "ACK 5\n" {
		t.Fatalf("second ack = %q, want ACK 5", got)
	}
	// A clean end: the receiver acknowledges what is left, then closes.
	io.WriteString(c, "f\n")
	c.CloseWrite()
	r.cut(t, 1)
	if got := readLine(t, br); got != "ACK 6\n" {
		t.Fatalf("last ack = %q, want ACK 6", got)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the last ack: %q, %v; want the end of stream", rest, err)
	}
	if got := r.sink.records(); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Fatalf("stored %q (the header is no record)", got)
	}
}

// Two acknowledged connections and a plain one share blocks: each hears
// of its own records only, the plain one hears nothing.
func TestSocketAcknowledgesEachConnectionItsOwn(t *testing.T) {
	r := newAckRig(t)
	c1, br1 := dial(t, r.sock.Addr())
	c2, br2 := dial(t, r.sock.Addr())
	p, pr := dial(t, r.sock.Addr())
	io.WriteString(c1, AckHeader+"1a\n1b\n")
	io.WriteString(c2, AckHeader+"2a\n")
	io.WriteString(p, "pa\npb\npc\n")
	readLine(t, br1)
	readLine(t, br2)
	r.cut(t, 6)
	if got := readLine(t, br1); got != "ACK 2\n" {
		t.Errorf("connection 1: %q", got)
	}
	if got := readLine(t, br2); got != "ACK 1\n" {
		t.Errorf("connection 2: %q", got)
	}
	p.CloseWrite()
	if rest, err := io.ReadAll(pr); err != nil || len(rest) != 0 {
		t.Fatalf("the plain connection got %q, %v; want nothing written back", rest, err)
	}
}

// A plain (nc-style) connection is served as before: its records are
// stored, nothing is written back, even a first line that merely starts
// with a NUL.
func TestSocketPlainConnectionGetsNoBytes(t *testing.T) {
	r := newAckRig(t)
	c, br := dial(t, r.sock.Addr())
	io.WriteString(c, "\x00DSTREAM\nx\n")
	r.cut(t, 2)
	eventually(t, "stored", func() bool { return len(r.sink.records()) == 2 })
	c.CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("got %q, %v; want nothing written back", rest, err)
	}
	if got := r.sink.records(); !slices.Equal(got, []string{"\x00DSTREAM", "x"}) {
		t.Fatalf("stored %q", got)
	}
}

func TestSocketRefusesAcks(t *testing.T) {
	for _, tc := range []struct {
		name, header, reason string
		tagged               bool
	}{
		{"writer cannot tell", AckHeader, "cannot tell when records are stored", false},
		{"unknown version", "\x00DSTREAM-ACK 2\n", "unsupported header", true},
		{"garbled header", "\x00DSTREAM-\xff\xfe\n", "unsupported header", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w Writer = &collect{}
			var r *ackRig
			if tc.tagged {
				r = newAckRig(t)
			} else {
				s, _ := startSocket(t, SocketOptions{}, w)
				r = &ackRig{sock: s}
			}
			c, br := dial(t, r.sock.Addr())
			io.WriteString(c, tc.header+"x\ny\n")
			got := readLine(t, br)
			if !strings.HasPrefix(got, AckRefused+" ") || !strings.Contains(got, tc.reason) {
				t.Fatalf("answer %q, want %s ... %s", got, AckRefused, tc.reason)
			}
			c.CloseWrite()
			if tc.tagged {
				r.cut(t, 2)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("after the refusal: %q, %v; want nothing", rest, err)
			}
			var recs []string
			if tc.tagged {
				eventually(t, "stored", func() bool { return len(r.sink.records()) == 2 })
				recs = r.sink.records()
			} else {
				eventually(t, "received", func() bool { return w.(*collect).len() == 2 })
				recs = w.(*collect).get()
			}
			if !slices.Equal(recs, []string{"x", "y"}) {
				t.Fatalf("records %q, want x y (the header is no record)", recs)
			}
		})
	}
}

// A header cut short by a broken connection is a partial line: dropped,
// nothing stored, no panic.
func TestSocketHalfHeader(t *testing.T) {
	r := newAckRig(t)
	c, _ := dial(t, r.sock.Addr())
	io.WriteString(c, AckHeader[:6])
	c.SetLinger(0)
	c.Close()
	c2, br := dial(t, r.sock.Addr())
	io.WriteString(c2, AckHeader+"ok\n")
	readLine(t, br)
	r.cut(t, 1)
	if got := readLine(t, br); got != "ACK 1\n" {
		t.Fatalf("ack %q", got)
	}
	if got := r.sink.records(); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("stored %q", got)
	}
}

func TestBlockGeneratorReportsTaggedRecords(t *testing.T) {
	clk := clock.NewManual(epoch)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Interval: ackInterval, Clock: clk, Sink: sink, MaxRecords: 5, Logger: quiet})
	var mu sync.Mutex
	heard := map[string][]int{}
	tag := func(name string) *Tag {
		return NewTag(func(n int) { mu.Lock(); heard[name] = append(heard[name], n); mu.Unlock() })
	}
	a, b, c := tag("a"), tag("b"), tag("c")
	g.Start(context.Background())
	// Block 0 (cut early at 5 records): a a b untagged a. Block 1: c b, at the tick.
	for _, w := range []struct {
		rec string
		t   *Tag
	}{{"1", a}, {"2", a}, {"3", b}, {"4", nil}, {"5", a}, {"6", c}, {"7", b}} {
		var err error
		if w.t == nil {
			err = g.Write(w.rec)
		} else {
			err = g.WriteTagged(w.rec, w.t)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(ackInterval)
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string][]int{"a": {3}, "b": {1, 1}, "c": {1}}
	for k, v := range want {
		if !slices.Equal(heard[k], v) {
			t.Errorf("tag %s heard %v, want %v", k, heard[k], v)
		}
	}
	if len(sink.stored()) != 2 {
		t.Errorf("%d blocks, want 2", len(sink.stored()))
	}
}

// A block that fails to store is not reported.
func TestBlockGeneratorDoesNotReportFailedBlocks(t *testing.T) {
	sink := &memSink{fail: fmt.Errorf("disk on fire")}
	clk := clock.NewManual(epoch)
	g := NewBlockGenerator(GeneratorConfig{Interval: ackInterval, Clock: clk, Sink: sink, Logger: quiet})
	reported := 0
	tg := NewTag(func(n int) { reported += n })
	g.Start(context.Background())
	if err := g.WriteTagged("x", tg); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(); err == nil {
		t.Fatal("Stop = nil, want the sink's error")
	}
	if reported != 0 {
		t.Fatalf("reported %d records of a block that failed", reported)
	}
}
