package simnet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// pair dials b from a and returns both ends.
func pair(t *testing.T, n *Network, a, b string) (client, server net.Conn) {
	t.Helper()
	l, err := n.Host(b).Listen(b + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := n.Host(a).Dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return c, <-accepted
}

func TestBytesArriveInOrderAfterTheirLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The second write is "faster" than the first: it still arrives
		// after it, as on TCP.
		lat := []time.Duration{30 * time.Millisecond, 5 * time.Millisecond}
		n := New(Config{Latency: func(from, to string, k, size int) time.Duration {
			if from != "a" || to != "b" || size != 3 {
				t.Errorf("latency asked for %s->%s, %d bytes", from, to, size)
			}
			return lat[k]
		}})
		c, s := pair(t, n, "a", "b")
		start := time.Now()
		c.Write([]byte("one"))
		c.Write([]byte("two"))
		buf := make([]byte, 6)
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != "onetwo" || time.Since(start) != 30*time.Millisecond {
			t.Fatalf("read %q after %v, want onetwo after 30ms", buf, time.Since(start))
		}
		c.Close()
		if _, err := s.Read(buf); err != io.EOF {
			t.Fatalf("read after the peer closed: %v, want EOF", err)
		}
		if _, err := s.Write(buf); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write to a closed peer: %v, want EPIPE", err)
		}
		s.Close()
		if k := n.Conns(); k != 0 {
			t.Fatalf("%d connections open after both ends closed", k)
		}
	})
}

func TestCrashResetsConnectionsAndRefusesDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		c, s := pair(t, n, "a", "b")
		readErr := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		n.Crash("a")
		if err := <-readErr; !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read on a crashed peer's connection: %v, want ECONNRESET", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write from a crashed host: %v, want EPIPE", err)
		}
		l, err := n.Host("b").Listen("b:7000")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := n.Host("a").Dial(context.Background(), "b:7000"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial from a crashed host: %v, want refused", err)
		}
		if _, err := n.Host("a").Listen("a:7000"); err == nil {
			t.Fatal("a crashed host listened")
		}
		n.Restart("a")
		c2, err := n.Host("a").Dial(context.Background(), "b:7000")
		if err != nil {
			t.Fatalf("dial after a restart: %v", err)
		}
		c2.Close()
		if _, err := n.Host("a").Dial(context.Background(), "b:7001"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial where nothing listens: %v, want refused", err)
		}
	})
}

func TestPartitionStallsTrafficUntilItHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		c, s := pair(t, n, "a", "b")
		n.Partition("b", "a")
		if _, err := c.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 4)
			io.ReadFull(s, buf)
			got <- string(buf)
		}()
		l, _ := n.Host("b").Listen("b:7000")
		defer l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := n.Host("a").Dial(ctx, "b:7000"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("dial across a partition: %v after %v, want the context's deadline after 1s", err, time.Since(start))
		}
		synctest.Wait()
		select {
		case v := <-got:
			t.Fatalf("%q crossed a partition", v)
		default:
		}
		time.Sleep(time.Minute)
		n.Heal("a", "b")
		if v := <-got; v != "held" || time.Since(start) != time.Minute+time.Second {
			t.Fatalf("after healing read %q at %v", v, time.Since(start))
		}
	})
}

func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		c, _ := pair(t, n, "a", "b")
		start := time.Now()
		c.SetReadDeadline(start.Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Fatalf("read past its deadline: %v after %v", err, time.Since(start))
		}
		// A deadline moved earlier wakes a waiting reader.
		c.SetReadDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			done <- err
		}()
		synctest.Wait()
		c.SetReadDeadline(time.Now())
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after its deadline moved: %v", err)
		}
		c.Close()
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed conn: %v", err)
		}
	})
}

func TestListenerCloseRefusesItsBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		l, err := n.Host("b").Listen(":0")
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Addr().String(); got != "b:10001" {
			t.Fatalf("listened at %s", got)
		}
		if _, err := n.Host("b").Listen("b:10001"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("second listen at one address: %v", err)
		}
		if _, err := n.Host("b").Listen("c:1"); err == nil {
			t.Fatal("b listened at c's address")
		}
		c, err := n.Host("a").Dial(context.Background(), "b:10001")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read from a connection never accepted: %v, want EOF", err)
		}
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after close: %v", err)
		}
	})
}

func TestClosedDuringAPartitionDeliversAfterHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, s := closedInPartition(t, "last words")
		got := make(chan string, 1)
		go func() {
			b, err := io.ReadAll(s)
			if err != nil {
				t.Error(err)
			}
			got <- string(b)
		}()
		synctest.Wait()
		select {
		case v := <-got:
			t.Fatalf("read %q (and EOF) across a partition", v)
		default:
		}
		n.Heal("a", "b")
		if v := <-got; v != "last words" {
			t.Fatalf("after healing read %q", v)
		}
		s.Close()
		if k := n.Conns(); k != 0 {
			t.Fatalf("%d connections open", k)
		}
	})
}

func TestCrashBreaksWhatAClosedEndLeftInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, s := closedInPartition(t, "lost")
		readErr := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 8))
			readErr <- err
		}()
		synctest.Wait()
		n.Crash("a")
		if err := <-readErr; !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after the closed end's host crashed: %v, want ECONNRESET", err)
		}
	})
}

// closedInPartition connects a to b, partitions them, writes msg from a and
// closes a's end: msg and the close wait in the partition. It returns the
// network and b's end.
func closedInPartition(t *testing.T, msg string) (*Network, net.Conn) {
	t.Helper()
	n := New(Config{})
	c, s := pair(t, n, "a", "b")
	n.Partition("a", "b")
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return n, s
}

func TestTrafficCountsEveryWriteByHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		c, s := pair(t, n, "a", "b")
		c.Write([]byte("hello"))
		c.Write([]byte("!"))
		s.Write([]byte("ok"))
		want := map[string]Traffic{
			"a": {WritesSent: 2, BytesSent: 6, WritesReceived: 1, BytesReceived: 2},
			"b": {WritesSent: 1, BytesSent: 2, WritesReceived: 2, BytesReceived: 6},
			"c": {},
		}
		for h, w := range want {
			if got := n.Traffic(h); got != w {
				t.Errorf("Traffic(%s) = %+v, want %+v", h, got, w)
			}
		}
	})
}
