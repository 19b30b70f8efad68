package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memSink stores blocks in memory; block, when set, holds StoreBlock until closed.
type memSink struct {
	mu     sync.Mutex
	blocks []Block
	block  chan struct{}
}

func (s *memSink) StoreBlock(ctx context.Context, b Block) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks = append(s.blocks, b)
	return nil
}

func (s *memSink) records() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.blocks {
		out = append(out, b.Records...)
	}
	return out
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestBlockGeneratorCutsOnTheClock(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	clk := clock.NewManual(start)
	sink := &memSink{}
	g := NewBlockGenerator(GeneratorConfig{Stream: 3, Interval: 200 * time.Millisecond, Clock: clk, Sink: sink, Logger: quiet})
	g.Start(context.Background())
	for _, r := range []string{"a", "b"} {
		if err := g.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(200 * time.Millisecond)
	eventually(t, "first block", func() bool { return len(sink.records()) == 2 })
	g.Write("c")
	clk.Advance(400 * time.Millisecond) // an empty cut is skipped, Seq stays gap-free
	eventually(t, "second block", func() bool { return len(sink.records()) == 3 })
	g.Write("d")
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := g.Write("e"); !errors.Is(err, ErrStopped) {
		t.Errorf("Write after Stop = %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.blocks) != 3 {
		t.Fatalf("%d blocks, want 3", len(sink.blocks))
	}
	for i, b := range sink.blocks {
		if b.Seq != int64(i) || b.Stream != 3 {
			t.Errorf("block %d: seq %d stream %d", i, b.Seq, b.Stream)
		}
	}
	if !sink.blocks[0].Time.Equal(start.Add(200*time.Millisecond)) || !sink.blocks[1].Time.Equal(start.Add(400*time.Millisecond)) {
		t.Errorf("cut times %v, %v", sink.blocks[0].Time, sink.blocks[1].Time)
	}
	if got := sink.blocks[2].Records; !slices.Equal(got, []string{"d"}) {
		t.Errorf("final block %v, want [d] (flushed by Stop)", got)
	}
}

func TestBlockGeneratorBackpressure(t *testing.T) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	sink := &memSink{block: make(chan struct{})}
	g := NewBlockGenerator(GeneratorConfig{Interval: 100 * time.Millisecond, Clock: clk, Sink: sink, MaxPending: 1, MaxRecords: 2, Logger: quiet})
	g.Start(context.Background())
	// The sink is stuck storing the first block, so with MaxPending 1 the
	// next block cannot be cut; once the buffer holds MaxRecords, Write waits.
	for i := range 2 {
		for j := range 2 {
			if err := g.Write(fmt.Sprint(i, j)); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(100 * time.Millisecond)
		if i == 0 {
			eventually(t, "first cut", func() bool { return g.Stats().Blocks == 1 })
		}
	}
	wrote := make(chan error, 1)
	go func() { wrote <- g.Write("blocked") }()
	select {
	case err := <-wrote:
		t.Fatalf("Write returned %v while the engine was stuck", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(sink.block) // the engine catches up
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.records()); n != 5 {
		t.Errorf("stored %d records, want 5", n)
	}
}

type collect struct {
	mu   sync.Mutex
	recs []string
}

func (c *collect) Write(r string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r)
	return nil
}

func (c *collect) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}

// startSocket opens a socket receiver on a free loopback port.
func startSocket(t *testing.T, opts SocketOptions) (*Socket, *collect, func() error) {
	t.Helper()
	opts.Logger = quiet
	s := NewSocket("127.0.0.1:0", opts)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Receive(ctx, c) }()
	stop := func() error { cancel(); return <-done }
	t.Cleanup(func() { cancel() })
	return s, c, stop
}

func send(t *testing.T, addr net.Addr, data []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestSocketReceivesEveryLineOfConcurrentConnections(t *testing.T) {
	s, c, stop := startSocket(t, SocketOptions{})
	var wg sync.WaitGroup
	var want []string
	for conn := range 3 {
		var b bytes.Buffer
		for i := range 500 {
			line := fmt.Sprintf("c%d-%d", conn, i)
			want = append(want, line)
			b.WriteString(line + "\n")
		}
		wg.Add(1)
		go func() { defer wg.Done(); send(t, s.Addr(), b.Bytes()) }()
	}
	wg.Wait()
	eventually(t, "all lines", func() bool { return len(c.get()) >= len(want) })
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

func TestSocketBadInput(t *testing.T) {
	s, c, stop := startSocket(t, SocketOptions{MaxRecordBytes: 1 << 20})
	big := strings.Repeat("x", 2<<20) // over the limit: dropped
	input := "first\r\n\n" + "bad\xff\xfe\n" + big + "\n" + "after-big\n" + "tail-without-newline"
	send(t, s.Addr(), []byte(input))
	want := []string{"first", "", "bad\xff\xfe", "after-big", "tail-without-newline"}
	eventually(t, "records", func() bool { return len(c.get()) >= len(want) })
	stop()
	if got := c.get(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSocketAcceptsTenMegabyteLineByDefault(t *testing.T) {
	s, c, stop := startSocket(t, SocketOptions{})
	line := strings.Repeat("y", 10<<20)
	send(t, s.Addr(), []byte(line+"\nnext\n"))
	eventually(t, "records", func() bool { return len(c.get()) >= 2 })
	stop()
	got := c.get()
	if len(got[0]) != len(line) || got[1] != "next" {
		t.Errorf("got %d records, first of %d bytes", len(got), len(got[0]))
	}
}

func TestSocketDrainsOpenConnectionsOnStop(t *testing.T) {
	s, c, stop := startSocket(t, SocketOptions{})
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
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
	conn.Close()
	if n := len(c.get()); n != 20000 {
		t.Errorf("received %d of 20000 lines written before the stop", n)
	}
}

func TestSocketPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = NewSocket(l.Addr().String(), SocketOptions{}).Open()
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Open on a used port = %v", err)
	}
}

func TestDirectoryReadsNewFilesOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old.txt"), []byte("o1\no2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	d := NewDirectory(dir, DirectoryOptions{Poll: time.Second, Clock: clk, Logger: quiet})
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Receive(ctx, c) }()
	eventually(t, "existing file", func() bool { return len(c.get()) == 2 })
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("h\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "_tmp"), []byte("t\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "new.txt"), []byte("n1\nn2"), 0o644)
	clk.Advance(time.Second)
	eventually(t, "new file", func() bool { return len(c.get()) == 4 })
	clk.Advance(time.Second)
	clk.Advance(time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := c.get()
	slices.Sort(got)
	if !slices.Equal(got, []string{"n1", "n2", "o1", "o2"}) {
		t.Errorf("got %v", got)
	}
	if err := NewDirectory(filepath.Join(dir, "missing"), DirectoryOptions{}).Open(); err == nil {
		t.Error("Open of a missing folder succeeded")
	}
}
