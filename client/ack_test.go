package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/source"
)

// storeSink keeps stored records; while gate is set, StoreBlock waits for it
// to be closed.
type storeSink struct {
	mu   sync.Mutex
	recs []string
	gate chan struct{}
}

func (s *storeSink) StoreBlock(ctx context.Context, b source.Block) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.recs = append(s.recs, b.Records...)
	s.mu.Unlock()
	return nil
}

func (s *storeSink) records() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.recs...)
}

// counting counts the records a socket hands over.
type counting struct {
	*source.BlockGenerator
	n atomic.Int64
}

func (c *counting) WriteTagged(rec string, t *source.Tag) error {
	c.n.Add(1)
	return c.BlockGenerator.WriteTagged(rec, t)
}

// receiver is a socket source on addr into a generator cutting every 5 ms
// (wall clock). kill stops it abruptly: the generator is aborted, so blocks
// not yet stored are lost, and the connections are closed.
type receiver struct {
	sock *source.Socket
	gen  *counting
	sink *storeSink
	kill func()
}

func startReceiver(t *testing.T, addr string, sink *storeSink) *receiver {
	t.Helper()
	sock := source.NewSocket(addr, source.SocketOptions{Logger: quiet})
	if err := sock.Open(); err != nil {
		t.Fatal(err)
	}
	gctx, abort := context.WithCancel(context.Background())
	gen := source.NewBlockGenerator(source.GeneratorConfig{Interval: 5 * time.Millisecond, Sink: sink, Logger: quiet})
	gen.Start(gctx)
	w := &counting{BlockGenerator: gen}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sock.Receive(rctx, w) }()
	var once sync.Once
	r := &receiver{sock: sock, gen: w, sink: sink}
	r.kill = func() {
		once.Do(func() {
			abort() // blocks not stored are dropped; Writes fail, which stops Receive
			stop()
			<-done
			gen.Stop()
		})
	}
	t.Cleanup(r.kill)
	return r
}

func writeLines(t *testing.T, n int) (string, []string) {
	t.Helper()
	var b strings.Builder
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("record %07d", i)
		b.WriteString(want[i] + "\n")
	}
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestSendAckDrainsAndStoresEverything(t *testing.T) {
	sink := &storeSink{}
	r := startReceiver(t, "127.0.0.1:0", sink)
	path, want := writeLines(t, 20000)
	st, err := Send(context.Background(), Options{To: r.sock.Addr().String(), File: path, Ack: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 20000 || st.Acked != 20000 || st.Resent != 0 {
		t.Fatalf("stats %+v, want 20000 sent and acknowledged, none resent", st)
	}
	// Send returned nil: everything is stored already.
	got := sink.records()
	if len(got) != len(want) {
		t.Fatalf("stored %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestSendAckResendsToANewReceiver(t *testing.T) {
	sink1, sink2 := &storeSink{}, &storeSink{}
	r1 := startReceiver(t, "127.0.0.1:0", sink1)
	addr := r1.sock.Addr().String()
	const n = 200000
	path, want := writeLines(t, n)
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Send(context.Background(), Options{To: addr, File: path, Ack: true, MaxUnacked: 20000, Logger: quiet})
		done <- result{st, err}
	}()
	eventually(t, "some records stored", func() bool { return len(sink1.records()) > n/20 })
	r1.kill() // mid-stream: records in flight and in unstored blocks are lost
	if len(sink1.records()) >= n {
		t.Fatal("the receiver got everything before it was killed; make the test longer")
	}
	startReceiver(t, addr, sink2)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.st.Records != n || res.st.Acked < n || res.st.Reconnects < 1 {
		t.Fatalf("stats %+v", res.st)
	}
	seen := map[string]int{}
	for _, r := range append(sink1.records(), sink2.records()...) {
		seen[r]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records stored, want %d", len(seen), n)
	}
	dups := 0
	for _, w := range want {
		if seen[w] == 0 {
			t.Fatalf("record %q lost", w)
		}
		dups += seen[w] - 1
	}
	t.Logf("stored %d + %d, %d duplicates, %d resent", len(sink1.records()), len(sink2.records()), dups, res.st.Resent)
}

func TestSendAckWaitsWhenTooManyAreUnacknowledged(t *testing.T) {
	gate := make(chan struct{})
	sink := &storeSink{gate: gate}
	r := startReceiver(t, "127.0.0.1:0", sink)
	done := make(chan error, 1)
	var st Stats
	go func() {
		var err error
		st, err = Send(context.Background(), Options{To: r.sock.Addr().String(), Generate: "words", Count: 1000, Ack: true, MaxUnacked: 100,
			Clock: clock.NewManual(time.Unix(0, 0)), Logger: quiet})
		done <- err
	}()
	eventually(t, "100 records received", func() bool { return r.gen.n.Load() == 100 })
	select {
	case err := <-done:
		t.Fatalf("Send returned (%v) with nothing acknowledged", err)
	case <-time.After(50 * time.Millisecond):
	}
	if got := r.gen.n.Load(); got != 100 {
		t.Fatalf("the receiver got %d records, more than MaxUnacked", got)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.Acked != 1000 || len(sink.records()) != 1000 {
		t.Fatalf("acked %d, stored %d; want 1000", st.Acked, len(sink.records()))
	}
}

// fakeReceiver accepts connections, reads lines, and answers with reply(n),
// called after each line with how many it read (the header included).
func fakeReceiver(t *testing.T, reply func(n int) string) (addr string, lines func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var count atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					if _, err := br.ReadString('\n'); err != nil {
						return
					}
					count.Add(1)
					if s := reply(n); s != "" {
						c.Write([]byte(s))
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() int { return int(count.Load()) }
}

// sendUntil runs Send with a manual clock, advancing it a second at a time
// until Send returns.
func sendUntil(t *testing.T, o Options) (Stats, error) {
	t.Helper()
	clk := clock.NewManual(time.Unix(0, 0))
	o.Clock, o.Logger, o.Ack = clk, quiet, true
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Send(context.Background(), o)
		done <- result{st, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case r := <-done:
			return r.st, r.err
		case <-time.After(time.Millisecond):
			clk.Advance(time.Second)
		}
	}
	t.Fatal("Send did not return")
	return Stats{}, nil
}

func TestSendAckTimesOutAtTheEnd(t *testing.T) {
	addr, lines := fakeReceiver(t, func(int) string { return "" }) // nc-like: never answers
	_, err := sendUntil(t, Options{To: addr, Generate: "words", Count: 10, AckTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "10 of the records sent to "+addr+" not acknowledged within 5s") ||
		!strings.Contains(err.Error(), "never answered the acknowledgement header") {
		t.Fatalf("err = %v", err)
	}
	if got := lines(); got != 11 {
		t.Fatalf("receiver read %d lines, want the header and 10 records", got)
	}
}

func TestSendAckTimesOutWhenFull(t *testing.T) {
	addr, _ := fakeReceiver(t, func(n int) string {
		if n == 1 {
			return "DSTREAM-ACK 1\n"
		}
		return ""
	})
	_, err := sendUntil(t, Options{To: addr, Generate: "words", Count: 100, MaxUnacked: 10, AckTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "10 records sent to "+addr+" (MaxUnacked, --max-unacked) not acknowledged for 5s") {
		t.Fatalf("err = %v", err)
	}
}

// The end of Duration ends the attempts to connect with acknowledgements
// too, as without: nothing was sent, so there is nothing to wait for, and
// Send returns then, without an error, not after ConnectTimeout (30 s).
func TestSendAckDurationEndsTheAttemptsToConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Unix(0, 0)
	clk := clock.NewManual(start)
	done := make(chan error, 1)
	go func() {
		_, err := Send(context.Background(), Options{To: addr, Generate: "words", Duration: 2 * time.Second, Ack: true, Clock: clk, Logger: quiet})
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("err = %v, want none", err)
			}
			if d := clk.Now().Sub(start); d > 3*time.Second {
				t.Errorf("Send returned after %v on the clock; want at the end of its 2s", d)
			}
			return
		case <-time.After(time.Millisecond):
			clk.Advance(250 * time.Millisecond)
		}
	}
}

func TestSendAckProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(n int) string
		want  string
	}{
		{"garbage answer", func(n int) string { return "hello\n" }, `"hello": not an answer to the acknowledgement header`},
		{"more than sent", func(n int) string {
			if n == 1 {
				return "DSTREAM-ACK 1\nACK 99\n"
			}
			return ""
		}, "acknowledged 99 records on a connection that carried"},
		{"bad count", func(n int) string {
			if n == 1 {
				return "DSTREAM-ACK 1\nACK x\n"
			}
			return ""
		}, "bad count"},
		{"count going back", func(n int) string {
			if n == 3 {
				return "DSTREAM-ACK 1\nACK 2\nACK 1\n"
			}
			return ""
		}, "went back from 2"},
		{"endless line", func(n int) string { return strings.Repeat("x", 100000) }, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := fakeReceiver(t, tc.reply)
			_, err := sendUntil(t, Options{To: addr, Generate: "words", Count: 5, AckTimeout: time.Hour})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A receiver that cannot acknowledge says so; the sender goes on without.
func TestSendAckRefused(t *testing.T) {
	c := &plainWriter{}
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: quiet})
	if err := sock.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sock.Receive(ctx, c) }()
	defer func() { cancel(); <-done }()
	st, err := Send(context.Background(), Options{To: sock.Addr().String(), Generate: "words", Count: 500, Ack: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 500 || st.Acked != 0 {
		t.Fatalf("stats %+v", st)
	}
	eventually(t, "500 records", func() bool { return c.n.Load() == 500 })
}

type plainWriter struct{ n atomic.Int64 }

func (w *plainWriter) Write(string) error { w.n.Add(1); return nil }

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// checkAll fails the test unless every record of want was stored (at least
// once) in sinks.
func checkAll(t *testing.T, want []string, sinks ...*storeSink) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range sinks {
		for _, r := range s.records() {
			seen[r] = true
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Fatalf("record %q lost", w)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d distinct records stored, want %d", len(seen), len(want))
	}
}

// Given [a closed port, a live receiver], the sender sends everything to
// the live one.
func TestSendToAListSkipsAClosedAddress(t *testing.T) {
	sink := &storeSink{}
	r := startReceiver(t, "127.0.0.1:0", sink)
	path, want := writeLines(t, 5000)
	to := closedAddr(t) + "," + r.sock.Addr().String()
	st, err := Send(context.Background(), Options{To: to, File: path, Ack: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 5000 || st.Acked != 5000 || st.Reconnects != 0 {
		t.Fatalf("stats %+v, want 5000 sent and acknowledged on the first connection", st)
	}
	checkAll(t, want, sink)
}

// Given [A, B], a sender whose receiver A dies mid-stream moves to B and
// resends there what A did not acknowledge: nothing is lost.
func TestSendAckMovesToTheNextAddress(t *testing.T) {
	sinkA, sinkB := &storeSink{}, &storeSink{}
	a := startReceiver(t, "127.0.0.1:0", sinkA)
	b := startReceiver(t, "127.0.0.1:0", sinkB)
	const n = 200000
	path, want := writeLines(t, n)
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Send(context.Background(), Options{To: a.sock.Addr().String() + "," + b.sock.Addr().String(),
			File: path, Ack: true, MaxUnacked: 10000, Logger: quiet})
		done <- result{st, err}
	}()
	eventually(t, "some records stored by A", func() bool { return len(sinkA.records()) > n/20 })
	a.kill()
	if len(sinkA.records()) >= n {
		t.Fatal("A got everything before it was killed; make the test longer")
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.st.Records != n || res.st.Acked < n || res.st.Reconnects < 1 || len(sinkB.records()) == 0 {
		t.Fatalf("stats %+v, %d stored by B", res.st, len(sinkB.records()))
	}
	checkAll(t, want, sinkA, sinkB)
}
