package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/simnet"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func TestRegisterAndStop(t *testing.T) {
	tm := startMaster(t, MasterConfig{})
	w := runWorker(t, WorkerConfig{Master: tm.addr, ID: "w1", Address: "127.0.0.1:7001", Slots: 3, MemoryBytes: 1 << 20, Secret: testSecret})
	w.waitRegistered(t)
	ev := tm.next(t)
	if ev.Kind != WorkerAdded || ev.Worker.ID != "w1" || ev.Worker.Slots != 3 {
		t.Fatalf("event = %v %+v, want added w1 with 3 slots", ev.Kind, ev.Worker)
	}
	ws := tm.Workers()
	if len(ws) != 1 {
		t.Fatalf("Workers() = %+v, want one", ws)
	}
	got := ws[0]
	if got.ID != "w1" || got.Address != "127.0.0.1:7001" || got.PID != int64(os.Getpid()) || got.Slots != 3 || got.MemoryBytes != 1<<20 || got.State != Alive || !strings.HasPrefix(got.Peer, "127.0.0.1:") {
		t.Fatalf("Workers()[0] = %+v", got)
	}
	if w.ID() != "w1" {
		t.Fatalf("ID() = %q", w.ID())
	}
}

func TestMasterAssignsID(t *testing.T) {
	tm := startMaster(t, MasterConfig{})
	w := runWorker(t, WorkerConfig{Master: tm.addr, Secret: testSecret})
	w.waitRegistered(t)
	if ev := tm.next(t); ev.Worker.ID != "worker-1" || w.ID() != "worker-1" {
		t.Fatalf("assigned id: event %q, worker %q, want worker-1", ev.Worker.ID, w.ID())
	}
}

func TestAuthRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
		reason string
	}{
		{"wrong secret", []byte("not-the-secret"), "wrong secret"},
		{"missing secret", nil, "missing secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := startMaster(t, MasterConfig{})
			c := rawClient(t, tm.addr, authToken(tc.secret))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Register(ctx, registerRequest("intruder", testGraph()))
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Register: %v, want Unauthenticated", err)
			}
			_, err = c.Heartbeat(ctx, nil)
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Heartbeat: %v, want Unauthenticated", err)
			}
			// The Worker client gives up at once: a refusal is permanent.
			w := runWorker(t, WorkerConfig{Master: tm.addr, ID: "intruder2", Secret: tc.secret})
			if err := w.result(t, 10*time.Second); status.Code(errors.Unwrap(err)) != codes.Unauthenticated {
				t.Fatalf("Worker.Run = %v, want Unauthenticated", err)
			}
			if ws := tm.Workers(); len(ws) != 0 {
				t.Fatalf("Workers() = %+v, want none", ws)
			}
			tm.noEvent(t)
			log := tm.log.String()
			if !strings.Contains(log, "connection refused: "+tc.reason) || !strings.Contains(log, "peer=127.0.0.1:") {
				t.Fatalf("log does not record the refusal with the peer:\n%s", log)
			}
			if strings.Contains(log, string(testSecret)) || strings.Contains(log, authToken(testSecret)) || (tc.secret != nil && strings.Contains(log, authToken(tc.secret))) {
				t.Fatalf("log leaks a secret or token:\n%s", log)
			}
		})
	}
}

func TestGraphRefused(t *testing.T) {
	ours := testGraph()
	changed := testGraph()
	changed[1].Name = "filter"
	longer := append(testGraph(), graphspec.Node{ID: 5, Kind: "output", Name: "saveAsTextFiles", Type: "kv.Pair[string,int]", Parents: []int32{3}})
	retyped := testGraph()
	retyped[2].Type = "kv.Pair[string,int64]"
	for _, tc := range []struct {
		name   string
		theirs []graphspec.Node
		want   []string // in the message
	}{
		{"operator", changed, []string{"operator 2", "this side has stream 2 map", "the other stream 2 filter"}},
		{"type", retyped, []string{"operator 3", "reduceByKeyAndWindow of kv.Pair[string,int] ", "reduceByKeyAndWindow of kv.Pair[string,int64] "}},
		{"extra operator", longer, []string{"operator 5", "only the other side has output 5 saveAsTextFiles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := startMaster(t, MasterConfig{Graph: ours})
			w := runWorker(t, WorkerConfig{Master: tm.addr, ID: "w", Secret: testSecret, Graph: tc.theirs})
			err := w.result(t, 10*time.Second)
			st, _ := status.FromError(errors.Unwrap(err))
			if st.Code() != codes.FailedPrecondition {
				t.Fatalf("Run = %v, want FailedPrecondition", err)
			}
			if want := graphspec.Diff(ours, tc.theirs).Error(); st.Message() != want {
				t.Fatalf("message %q, want DiffGraphs' %q", st.Message(), want)
			}
			for _, s := range tc.want {
				if !strings.Contains(st.Message(), s) {
					t.Errorf("message %q does not contain %q", st.Message(), s)
				}
			}
			if ws := tm.Workers(); len(ws) != 0 {
				t.Fatalf("Workers() = %+v, want none", ws)
			}
		})
	}
	t.Run("fingerprint", func(t *testing.T) {
		tm := startMaster(t, MasterConfig{})
		req := registerRequest("w", testGraph())
		req.GraphFingerprint = "0123"
		_, err := rawClient(t, tm.addr, authToken(testSecret)).Register(context.Background(), req)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "fingerprints differ") {
			t.Fatalf("Register = %v, want FailedPrecondition naming the fingerprints", err)
		}
	})
}

// TestHeartbeatTimeout drives the master's clock by hand: heartbeats keep a
// worker alive past the timeout counted from its registration; silence for
// the timeout marks it lost, reports it, and refuses its heartbeats until it
// registers again.
func TestHeartbeatTimeout(t *testing.T) {
	clk := clock.NewManual(t0)
	tm := startMaster(t, MasterConfig{Clock: clk})
	c := rawClient(t, tm.addr, authToken(testSecret))
	ctx := context.Background()
	resp, err := c.Register(ctx, registerRequest("w1", testGraph()))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetHeartbeatInterval().AsDuration(); got != DefaultHeartbeatInterval {
		t.Fatalf("heartbeat interval %v, want %v", got, DefaultHeartbeatInterval)
	}
	if ev := tm.next(t); ev.Kind != WorkerAdded {
		t.Fatalf("event %v, want added", ev.Kind)
	}
	beat := func() error {
		_, err := c.Heartbeat(ctx, &clusterHeartbeat{WorkerId: "w1", Incarnation: resp.GetIncarnation(), MemoryUsedBytes: 10, Blocks: 2})
		return err
	}
	for range 3 { // 3 × 1.9 s > timeout, but never 2 s without a heartbeat
		clk.Advance(1900 * time.Millisecond)
		tm.expire()
		if err := beat(); err != nil {
			t.Fatalf("heartbeat at %v: %v", clk.Now().Sub(t0), err)
		}
	}
	tm.expire()
	tm.noEvent(t)
	if w := tm.Workers()[0]; w.State != Alive || !w.LastHeartbeat.Equal(clk.Now()) || w.MemoryUsed != 10 || w.Blocks != 2 {
		t.Fatalf("worker %+v, want alive with a heartbeat now", w)
	}

	clk.Advance(DefaultWorkerTimeout - time.Millisecond)
	tm.expire()
	tm.noEvent(t)
	clk.Advance(time.Millisecond) // exactly the timeout since the last heartbeat
	tm.expire()
	ev := tm.next(t)
	if ev.Kind != WorkerLost || ev.Worker.ID != "w1" || ev.Worker.State != Lost {
		t.Fatalf("event %v %+v, want w1 lost", ev.Kind, ev.Worker)
	}
	if w := tm.Workers()[0]; w.State != Lost {
		t.Fatalf("Workers()[0].State = %v, want lost", w.State)
	}
	if err := beat(); status.Code(err) != codes.NotFound {
		t.Fatalf("heartbeat of a lost worker: %v, want NotFound", err)
	}
	// Registering again brings it back under a new incarnation.
	resp2, err := c.Register(ctx, registerRequest("w1", testGraph()))
	if err != nil || resp2.GetIncarnation() == resp.GetIncarnation() {
		t.Fatalf("re-register: %v, incarnation %d (was %d)", err, resp2.GetIncarnation(), resp.GetIncarnation())
	}
	if ev := tm.next(t); ev.Kind != WorkerAdded {
		t.Fatalf("event %v, want added", ev.Kind)
	}
	if ws := tm.Workers(); len(ws) != 1 || ws[0].State != Alive {
		t.Fatalf("Workers() = %+v, want w1 alive, once", ws)
	}
}

// TestWatcherExpires checks the master's own watcher (not a direct expire
// call) declares a silent worker lost when the clock passes its deadline.
func TestWatcherExpires(t *testing.T) {
	clk := clock.NewManual(t0)
	tm := startMaster(t, MasterConfig{Clock: clk, WorkerTimeout: time.Second})
	if _, err := rawClient(t, tm.addr, authToken(testSecret)).Register(context.Background(), registerRequest("w1", testGraph())); err != nil {
		t.Fatal(err)
	}
	tm.next(t) // added
	clk.Advance(time.Second)
	if ev := tm.next(t); ev.Kind != WorkerLost {
		t.Fatalf("event %v, want lost", ev.Kind)
	}
}

func TestReplaceAliveRegistration(t *testing.T) {
	tm := startMaster(t, MasterConfig{Clock: clock.NewManual(t0)})
	c := rawClient(t, tm.addr, authToken(testSecret))
	first, err := c.Register(context.Background(), registerRequest("w1", testGraph()))
	if err != nil {
		t.Fatal(err)
	}
	tm.next(t)
	if _, err := c.Register(context.Background(), registerRequest("w1", testGraph())); err != nil {
		t.Fatal(err)
	}
	if a, b := tm.next(t), tm.next(t); a.Kind != WorkerLost || a.Worker.Incarnation != first.GetIncarnation() || b.Kind != WorkerAdded {
		t.Fatalf("events %v %v, want lost (old) then added", a.Kind, b.Kind)
	}
	_, err = c.Heartbeat(context.Background(), &clusterHeartbeat{WorkerId: "w1", Incarnation: first.GetIncarnation()})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("heartbeat of the replaced incarnation: %v, want NotFound", err)
	}
	other := registerRequest("w1", testGraph())
	other.Pid++
	if _, err := c.Register(context.Background(), other); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("another process registering an alive id: %v, want AlreadyExists", err)
	}
	tm.noEvent(t)
}

func TestRegistryBounded(t *testing.T) {
	clk := clock.NewManual(t0)
	tm := startMaster(t, MasterConfig{Clock: clk, MaxWorkers: 2})
	c := rawClient(t, tm.addr, authToken(testSecret))
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := c.Register(ctx, registerRequest(id, testGraph())); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Register(ctx, registerRequest("c", testGraph())); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third worker: %v, want ResourceExhausted", err)
	}
	clk.Advance(DefaultWorkerTimeout) // a and b lost
	tm.expire()
	if _, err := c.Register(ctx, registerRequest("c", testGraph())); err != nil {
		t.Fatalf("third worker after the others were lost: %v", err)
	}
	ws := tm.Workers()
	if len(ws) != 2 || ws[0].ID != "b" || ws[1].ID != "c" {
		t.Fatalf("Workers() = %+v, want b (lost) and c: the oldest lost forgotten", ws)
	}
}

// TestGarbageOnPort sends random bytes, an HTTP/1.1 request and an idle
// half-open connection to the master's port; a real worker still registers,
// and the idle connection is closed after the handshake timeout.
func TestGarbageOnPort(t *testing.T) {
	tm := startMaster(t, MasterConfig{HandshakeTimeout: 300 * time.Millisecond})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", tm.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	idle := dial() // never writes

	junk := make([]byte, 64<<10)
	rand.Read(junk)
	random := dial()
	random.Write(junk) // may fail once the master hangs up: that is the point
	http1 := dial()
	io.WriteString(http1, "GET / HTTP/1.1\r\nHost: dstream\r\nUser-Agent: test\r\n\r\n")
	preface := dial() // a valid HTTP/2 preface, then garbage frames
	io.WriteString(preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	preface.Write(junk[:4096])

	for _, c := range []net.Conn{random, http1, preface} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("garbage connection not closed by the master: %v", err)
		}
	}

	w := runWorker(t, WorkerConfig{Master: tm.addr, ID: "w1", Secret: testSecret})
	w.waitRegistered(t)
	if ev := tm.next(t); ev.Kind != WorkerAdded || ev.Worker.ID != "w1" {
		t.Fatalf("event %v %+v, want w1 added", ev.Kind, ev.Worker)
	}

	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, idle); err != nil && !isReset(err) {
		t.Fatalf("idle connection not closed by the master: %v", err)
	}
	if ws := tm.Workers(); len(ws) != 1 {
		t.Fatalf("Workers() = %+v, want only w1", ws)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestWorkerWaitsForMaster starts a worker before its master is up, then
// restarts the master: the worker registers with each, on its own.
func TestWorkerWaitsForMaster(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	rejoined := make(chan string, 2)
	kept := make(chan []string, 2)
	w := runWorker(t, WorkerConfig{Master: addr, ID: "w1", Secret: testSecret, MaxBackoff: 100 * time.Millisecond,
		Rejoin: func(session, _ string) ([]string, error) { rejoined <- session; return []string{"b1", "b2"}, nil },
		Kept:   func(offered, k []string) { kept <- k }})

	serve := func() (*testMaster, func()) {
		m, err := NewMaster(MasterConfig{Secret: testSecret, Graph: testGraph(), Logger: discardLogger(),
			Rejoined: func(addr string, held []string) []string { return held[1:] }})
		if err != nil {
			t.Fatal(err)
		}
		tm := &testMaster{Master: m, events: make(chan Event, 10)}
		m.cfg.OnEvent = func(ev Event) { tm.events <- ev }
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Serve(ctx, lis); close(done) }()
		return tm, func() { cancel(); <-done }
	}
	time.Sleep(200 * time.Millisecond) // a few refused attempts
	tm1, stop1 := serve()
	w.waitRegistered(t)
	if ev := tm1.next(t); ev.Kind != WorkerAdded {
		t.Fatalf("event %v, want added", ev.Kind)
	}
	stop1()
	tm2, stop2 := serve()
	defer stop2()
	if ev := tm2.next(t); ev.Kind != WorkerAdded || ev.Worker.ID != "w1" {
		t.Fatalf("restarted master: event %v %+v, want w1 added", ev.Kind, ev.Worker)
	}
	// It rejoined the new master (once, before registering) and keeps what
	// that master needs; it did not exit.
	if s := <-rejoined; s != tm2.session {
		t.Errorf("rejoined session %q, want the new master's %q", s, tm2.session)
	}
	if k := <-kept; !slices.Equal(k, []string{"b2"}) {
		t.Errorf("kept %q, want [b2]", k)
	}
	select {
	case <-w.done:
		t.Fatalf("the worker exited: %v", w.err)
	default:
	}
	if len(rejoined) > 0 {
		t.Errorf("rejoined again")
	}
}

// TestWorkerOfAnotherProgram: a master restarted with another graph; its
// worker exits with ErrProgramChanged, saying so, rather than retry.
func TestWorkerOfAnotherProgram(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	serve := func(lis net.Listener, g []graphspec.Node) func() {
		m, err := NewMaster(MasterConfig{Secret: testSecret, Graph: g, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Serve(ctx, lis); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := serve(lis, testGraph())
	w := runWorker(t, WorkerConfig{Master: addr, ID: "w1", Secret: testSecret, MaxBackoff: 100 * time.Millisecond,
		Rejoin: func(string, string) ([]string, error) {
			t.Error("rejoined a master of another program")
			return nil, nil
		}})
	w.waitRegistered(t)
	stop()
	other := append(testGraph(), graphspec.Node{ID: 99, Kind: "map", Name: "extra"})
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer serve(lis, other)()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not exit")
	}
	if !errors.Is(w.err, ErrProgramChanged) {
		t.Fatalf("err %v, want ErrProgramChanged", w.err)
	}
}

// TestWorkerGivesUp: a master that is gone without releasing its worker is
// retried for GiveUp, then the worker exits with ErrMasterGone.
func TestWorkerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sn := simnet.New(simnet.Config{})
		w, err := NewWorker(WorkerConfig{Master: "master:7077", ID: "w1", Slots: 1, Graph: testGraph(), Secret: testSecret,
			GiveUp: time.Minute, Network: sn.Host("w1"), Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = w.Run(t.Context())
		if !errors.Is(err, ErrMasterGone) {
			t.Fatalf("err %v, want ErrMasterGone", err)
		}
		if d := time.Since(start); d < time.Minute || d > time.Minute+5*time.Second {
			t.Errorf("gave up after %v, want about a minute", d)
		}
	})
}

func TestNewMasterNeedsSecret(t *testing.T) {
	if _, err := NewMaster(MasterConfig{Graph: testGraph()}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("NewMaster without a secret: %v, want ErrNoSecret", err)
	}
	tm := startMaster(t, MasterConfig{Insecure: true})
	w := runWorker(t, WorkerConfig{Master: tm.addr})
	w.waitRegistered(t)
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	os.WriteFile(file, []byte("  from-file\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		name, path, env string
		insecure        bool
		want            string
		err             error
	}{
		{"file", file, "from-env", false, "from-file", nil},
		{"env", "", " from-env\n", false, "from-env", nil},
		{"none", "", "", false, "", ErrNoSecret},
		{"empty file", empty, "from-env", false, "", ErrNoSecret},
		{"none insecure", "", "", true, "", nil},
		{"insecure with a secret", "", "from-env", true, "from-env", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(SecretEnv, tc.env)
			got, err := LoadSecret(tc.path, tc.insecure)
			if !errors.Is(err, tc.err) || string(got) != tc.want {
				t.Fatalf("LoadSecret = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := LoadSecret(filepath.Join(dir, "missing"), true); err == nil {
		t.Fatal("LoadSecret of a missing file: no error")
	}
	a, err1 := GenerateSecret()
	b, err2 := GenerateSecret()
	if err1 != nil || err2 != nil || len(a) != 64 || string(a) == string(b) {
		t.Fatalf("GenerateSecret: %q %v, %q %v", a, err1, b, err2)
	}
}
