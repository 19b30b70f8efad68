package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/generate"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// server accepts connections on a loopback port and keeps the bytes each
// sends; resetFirstAfter > 0 makes it reset the first connection once it has
// read that many lines.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns [][]byte // bytes read, per connection
	eofs  int      // connections that ended cleanly
	wg    sync.WaitGroup
}

func newServer(t *testing.T, resetFirstAfter int) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ln, resetFirstAfter)
}

func serve(t *testing.T, ln net.Listener, resetFirstAfter int) *server {
	s := &server{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			i := len(s.conns)
			s.conns = append(s.conns, nil)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				lines := 0
				for {
					b, err := r.ReadBytes('\n')
					s.mu.Lock()
					s.conns[i] = append(s.conns[i], b...)
					if err == io.EOF {
						s.eofs++
					}
					s.mu.Unlock()
					if err != nil {
						return
					}
					lines++
					if i == 0 && resetFirstAfter > 0 && lines == resetFirstAfter {
						c.(*net.TCPConn).SetLinger(0)
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// lines returns the complete lines of connection i (all connections when i < 0).
func (s *server) lines(i int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []byte
	for j, b := range s.conns {
		if i < 0 || i == j {
			all = append(all, b...)
		}
	}
	ls := strings.SplitAfter(string(all), "\n")
	var out []string
	for _, l := range ls {
		if strings.HasSuffix(l, "\n") {
			out = append(out, strings.TrimSuffix(l, "\n"))
		}
	}
	return out
}

func (s *server) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Join(s.conns, nil)
}

func (s *server) count() (conns, eofs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.eofs
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func generated(kind string, seed int64, n int) []string {
	g, _ := generate.New(kind, seed)
	out := make([]string, n)
	for i := range out {
		out[i] = string(g.Next(nil))
	}
	return out
}

func TestSendFileExactly(t *testing.T) {
	s := newServer(t, 0)
	path := filepath.Join(t.TempDir(), "in.txt")
	big := strings.Repeat("z", 3<<20) // longer than every buffer on the way
	if err := os.WriteFile(path, []byte("a\n\nb c\r\n"+big+"\n\xff\xfe\nlast"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Send(context.Background(), Options{To: s.addr(), File: path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	want := "a\n\nb c\r\n" + big + "\n\xff\xfe\nlast\n" // the last line gets its newline
	// Send closed the connection: the server sees a clean end of stream.
	eventually(t, "end of stream", func() bool { _, eofs := s.count(); return eofs == 1 })
	if got := s.bytes(); string(got) != want {
		t.Errorf("server got %d bytes, want %d", len(got), len(want))
	}
	if st.Records != 6 || st.Bytes != int64(len(want)) || st.Reconnects != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSendEmptyFile(t *testing.T) {
	s := newServer(t, 0)
	path := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(path, nil, 0o644)
	st, err := Send(context.Background(), Options{To: s.addr(), File: path, Logger: quiet})
	if err != nil || st.Records != 0 {
		t.Fatalf("Send = %+v, %v", st, err)
	}
	eventually(t, "end of stream", func() bool { _, eofs := s.count(); return eofs == 1 })
}

func TestSendGeneratedCount(t *testing.T) {
	s := newServer(t, 0)
	st, err := Send(context.Background(), Options{To: s.addr(), Generate: "words", Seed: 5, Count: 3000, Logger: quiet})
	if err != nil || st.Records != 3000 {
		t.Fatalf("Send = %+v, %v", st, err)
	}
	want := generated("words", 5, 3000)
	eventually(t, "all records", func() bool { return len(s.lines(-1)) == 3000 })
	if !slices.Equal(s.lines(-1), want) {
		t.Error("the server did not get the generator's records in order")
	}
	var n int64
	for _, w := range want {
		n += int64(len(w)) + 1
	}
	if st.Bytes != n {
		t.Errorf("stats count %d bytes, want %d", st.Bytes, n)
	}
}

// sendPaced runs Send to s with opts at 1000 records/s on a manual clock,
// checks that each of bursts 10 ms steps delivers exactly 10 more records
// and nothing ahead of time, and returns Send's stats.
func sendPaced(t *testing.T, s *server, opts Options, bursts int) Stats {
	t.Helper()
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	opts.To, opts.Clock, opts.Logger = s.addr(), clk, quiet
	done := make(chan error, 1)
	var st Stats
	go func() {
		var err error
		st, err = Send(context.Background(), opts)
		done <- err
	}()
	for k := 1; k <= bursts; k++ {
		eventually(t, fmt.Sprintf("burst %d", k), func() bool { return len(s.lines(-1)) == 10*k })
		clk.Advance(10 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSendPacesOnTheClock checks the steady rate under a manual clock: at
// 1000 records/s, a burst of 10 records every 10 ms, and nothing ahead of time.
func TestSendPacesOnTheClock(t *testing.T) {
	s := newServer(t, 0)
	st := sendPaced(t, s, Options{Generate: "tweets", Rate: 1000, Count: 100}, 10)
	if st.Records != 100 || !slices.Equal(s.lines(-1), generated("tweets", 0, 100)) {
		t.Errorf("stats %+v; the server got %d lines", st, len(s.lines(-1)))
	}
}

func TestSendStopsAfterDuration(t *testing.T) {
	s := newServer(t, 0)
	st := sendPaced(t, s, Options{Generate: "logs", Rate: 1000, Duration: 50 * time.Millisecond}, 5)
	if st.Records != 50 {
		t.Errorf("sent %d records in 50ms at 1000/s", st.Records)
	}
	eventually(t, "end of stream", func() bool { _, eofs := s.count(); return eofs == 1 })
	if got := s.lines(-1); int64(len(got)) != st.Records {
		t.Errorf("server got %d lines, stats say %d", len(got), st.Records)
	}
}

func TestSendCancelFlushesWholeRecords(t *testing.T) {
	s := newServer(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var st Stats
	go func() {
		var err error
		st, err = Send(ctx, Options{To: s.addr(), Generate: "tweets", Seed: 9, Logger: quiet})
		done <- err
	}()
	eventually(t, "records", func() bool { return len(s.lines(-1)) >= 5000 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Send after cancel = %v", err)
	}
	eventually(t, "end of stream", func() bool { _, eofs := s.count(); return eofs == 1 })
	got := s.lines(-1)
	if int64(len(got)) != st.Records || !bytes.HasSuffix(s.bytes(), []byte("\n")) {
		t.Fatalf("server got %d lines, stats say %d", len(got), st.Records)
	}
	if !slices.Equal(got, generated("tweets", 9, len(got))) {
		t.Error("the server did not get a prefix of the generator's records")
	}
}

// TestSendReconnects: the server resets the first connection; the sender
// reconnects, resends from a record boundary and finishes the file.
func TestSendReconnects(t *testing.T) {
	s := newServer(t, 10)
	path := filepath.Join(t.TempDir(), "numbers")
	var b strings.Builder
	const n = 4000
	for i := range n {
		fmt.Fprintln(&b, i)
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
	st, err := Send(context.Background(), Options{To: s.addr(), File: path, Rate: 40000, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Reconnects == 0 {
		t.Fatalf("no reconnect after the server reset the connection (stats %+v)", st)
	}
	eventually(t, "end of stream", func() bool { _, eofs := s.count(); return eofs == 1 })
	conns, _ := s.count()
	last := s.lines(conns - 1)
	if len(last) == 0 {
		t.Fatal("nothing arrived on the last connection")
	}
	// The last connection carries whole records, in order, to the end.
	first, err := strconv.Atoi(last[0])
	if err != nil {
		t.Fatalf("the last connection starts with a broken record %q", last[0])
	}
	for i, l := range last {
		if l != strconv.Itoa(first+i) {
			t.Fatalf("line %d of the last connection is %q, want %d", i, l, first+i)
		}
	}
	if first+len(last) != n {
		t.Errorf("the last connection ends at %d, want %d", first+len(last)-1, n-1)
	}
}

func TestSendRetriesUntilTheReceiverListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs syncBuffer
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	done := make(chan error, 1)
	var st Stats
	go func() {
		var err error
		st, err = Send(context.Background(), Options{To: addr, Generate: "words", Count: 5, Clock: clk,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		done <- err
	}()
	eventually(t, "a failed attempt", func() bool { return strings.Contains(logs.String(), "cannot connect") })
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	s := serve(t, ln, 0)
	clk.Advance(minBackoff)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventually(t, "records", func() bool { return len(s.lines(-1)) == 5 })
	if st.Reconnects != 0 {
		t.Errorf("stats %+v: the first connection is no reconnect", st)
	}
}

func TestSendGivesUpWhenNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	done := make(chan error, 1)
	go func() {
		_, err := Send(context.Background(), Options{To: addr, Generate: "words", Clock: clk, Logger: quiet})
		done <- err
	}()
	// Back-offs wait on the manual clock: move it until Send gives up.
	for {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "cannot connect to "+addr+" for 30s") {
				t.Errorf("err = %v", err)
			}
			if d := clk.Now().Sub(time.UnixMilli(1_700_000_000_000)); d < 30*time.Second || d > 40*time.Second {
				t.Errorf("gave up after %v on the clock, want 30s", d)
			}
			return
		case <-time.After(time.Millisecond):
			clk.Advance(250 * time.Millisecond)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{File: "x"}, "--to"},
		{Options{To: "127.0.0.1:1"}, "exactly one"},
		{Options{To: "127.0.0.1:1", File: "a", Generate: "tweets"}, "not both"},
		{Options{To: "127.0.0.1:1", Generate: "nope"}, "unknown generator kind \"nope\" (kinds: tweets, words, logs, records100)"},
		{Options{To: "127.0.0.1:1", Generate: "tweets", Rate: -1}, "--rate -1 must not be negative"},
		{Options{To: "127.0.0.1:1", Generate: "tweets", Count: -1}, "--count"},
		{Options{To: "127.0.0.1:1", Generate: "tweets", Duration: -time.Second}, "--duration"},
		{Options{To: "nohostport", Generate: "tweets"}, "HOST:PORT"},
		{Options{To: "127.0.0.1:1,nohostport", Generate: "tweets"}, `"nohostport": want HOST:PORT`},
		{Options{To: "127.0.0.1:1,", Generate: "tweets"}, "an empty address"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.o, err, c.want)
		}
	}
	for _, to := range []string{"localhost:9999", "a:9999,b:9999", " a:9999 , b:9999 "} {
		if err := (Options{To: to, Generate: "logs"}).Validate(); err != nil {
			t.Errorf("valid options (--to %q): %v", to, err)
		}
	}
	if _, err := Send(context.Background(), Options{To: "127.0.0.1:1", File: "/does/not/exist"}); err == nil || !strings.Contains(err.Error(), "/does/not/exist") {
		t.Errorf("Send of a missing file = %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
