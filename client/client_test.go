package client

import (
	"bufio"
	"context"
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
)

// server accepts connections and collects their lines; closeFirst makes it
// drop the first connection after n lines.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	conns int
	wg    sync.WaitGroup
}

func newServer(t *testing.T, dropFirstAfter int) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			first := s.conns == 1
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				n := 0
				for sc.Scan() {
					s.mu.Lock()
					s.lines = append(s.lines, sc.Text())
					s.mu.Unlock()
					n++
					if first && dropFirstAfter > 0 && n == dropFirstAfter {
						c.(*net.TCPConn).SetLinger(0)
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *server) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}

func TestSendFileExactlyOnce(t *testing.T) {
	s := newServer(t, 0)
	path := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(path, []byte("a\n\nb c\r\nlast"), 0o644)
	st, err := Send(context.Background(), Options{To: s.ln.Addr().String(), File: path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "", "b c", "last"} // the test server's Scanner strips "\r"
	waitFor(t, func() bool { return len(s.got()) >= len(want) })
	if got := s.got(); !slices.Equal(got, want) || st.Records != 4 {
		t.Errorf("server got %q (stats %+v), want %q", got, st, want)
	}
}

func TestSendGeneratedCountAtRate(t *testing.T) {
	s := newServer(t, 0)
	st, err := Send(context.Background(), Options{To: s.ln.Addr().String(), Generate: "tweets", Count: 300, Rate: 100000, Logger: quiet})
	if err != nil || st.Records != 300 {
		t.Fatalf("Send = %+v, %v", st, err)
	}
	waitFor(t, func() bool { return len(s.got()) == 300 })
}

func TestSendReconnects(t *testing.T) {
	s := newServer(t, 10)
	st, err := Send(context.Background(), Options{To: s.ln.Addr().String(), Generate: "words", Count: 5000, Rate: 20000, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Reconnects == 0 {
		t.Fatalf("no reconnect after the server dropped the connection (stats %+v)", st)
	}
	// Records after the reconnect arrive on the second connection.
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conns >= 2 && len(s.lines) > 10
	})
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{File: "x"}, "--to"},
		{Options{To: "127.0.0.1:1"}, "exactly one"},
		{Options{To: "127.0.0.1:1", File: "a", Generate: "tweets"}, "exactly one"},
		{Options{To: "127.0.0.1:1", Generate: "nope"}, "unknown generator"},
		{Options{To: "127.0.0.1:1", Generate: "tweets", Rate: -1}, "negative"},
		{Options{To: "nohostport", Generate: "tweets"}, "--to"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.o, err, c.want)
		}
	}
	if _, err := Send(context.Background(), Options{To: "127.0.0.1:1", File: "/does/not/exist"}); err == nil {
		t.Error("Send of a missing file succeeded")
	}
}

func TestGivesUpWhenNothingListens(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := Send(context.Background(), Options{To: addr, Generate: "words", ConnectTimeout: 300 * time.Millisecond, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Errorf("err = %v", err)
	}
}
