package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseMasters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "a:7077", want: []string{"a:7077"}},
		{in: "a:7077,b:7077", want: []string{"a:7077", "b:7077"}},
		{in: " a:7077 , [::1]:7077 ", want: []string{"a:7077", "[::1]:7077"}},
		{in: "", err: "no master address"},
		{in: "a:7077,", err: "an empty address"},
		{in: "a:7077,b", err: `"b": want HOST:PORT`},
	} {
		got, err := ParseMasters(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMasters(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseMasters(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestIsStandby(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{StandbyError(), true},
		{status.Error(codes.FailedPrecondition, "graph differs"), false},
		{status.Error(codes.Unavailable, StandbyMessage), false},
		{errors.New(StandbyMessage), false},
		{nil, false},
	} {
		if got := IsStandby(tc.err); got != tc.want {
			t.Errorf("IsStandby(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// standbyServer serves, until the test ends, a Cluster service that
// answers every call as a standby master does.
type standbyServer struct {
	clusterpb.UnimplementedClusterServer
}

func (standbyServer) Register(context.Context, *clusterpb.RegisterRequest) (*clusterpb.RegisterResponse, error) {
	return nil, StandbyError()
}

func (standbyServer) Heartbeat(context.Context, *clusterpb.HeartbeatRequest) (*clusterpb.HeartbeatResponse, error) {
	return nil, StandbyError()
}

func (standbyServer) Program(context.Context, *clusterpb.ProgramRequest) (*clusterpb.ProgramResponse, error) {
	return nil, StandbyError()
}

func startStandby(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	clusterpb.RegisterClusterServer(srv, standbyServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// A worker given [an address nothing listens on, a live master] registers
// with the live one, at once (an address that never answered is left at
// its first failure).
func TestWorkerSkipsUnreachableMaster(t *testing.T) {
	tm := startMaster(t, MasterConfig{})
	w := runWorker(t, WorkerConfig{Master: deadAddr(t) + "," + tm.addr, ID: "w1", Secret: testSecret, MaxBackoff: 100 * time.Millisecond})
	w.waitRegistered(t)
	if ev := tm.next(t); ev.Kind != WorkerAdded || ev.Worker.ID != "w1" {
		t.Fatalf("event %v %+v, want w1 added", ev.Kind, ev.Worker)
	}
	if got := w.Master(); got != tm.addr {
		t.Errorf("Master() = %s, want the live one %s", got, tm.addr)
	}
}

// A master that answers as a standby is passed over, for registration and
// for AskProgram.
func TestWorkerPassesOverStandby(t *testing.T) {
	tm := startMaster(t, MasterConfig{Program: ProgramInfo{Args: []string{"--master", "cluster"}, Parallelism: 3}})
	list := startStandby(t) + "," + tm.addr
	w := runWorker(t, WorkerConfig{Master: list, ID: "w1", Secret: testSecret, MaxBackoff: 100 * time.Millisecond})
	w.waitRegistered(t)
	if got := w.Master(); got != tm.addr {
		t.Errorf("Master() = %s, want the active one %s", got, tm.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := AskProgram(ctx, list, testSecret, nil, nil)
	if err != nil || !slices.Equal(info.Args, []string{"--master", "cluster"}) || info.Parallelism != 3 {
		t.Fatalf("AskProgram(%s) = %+v, %v", list, info, err)
	}
}

func TestAskProgramSkipsUnreachableMaster(t *testing.T) {
	tm := startMaster(t, MasterConfig{Program: ProgramInfo{Args: []string{"x"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var retries atomic.Int32
	info, err := AskProgram(ctx, deadAddr(t)+","+tm.addr, testSecret, nil, func(error) { retries.Add(1) })
	if err != nil || !slices.Equal(info.Args, []string{"x"}) {
		t.Fatalf("AskProgram = %+v, %v", info, err)
	}
	if _, err := AskProgram(ctx, tm.addr+",", testSecret, nil, nil); err == nil || !strings.Contains(err.Error(), "empty address") {
		t.Errorf("AskProgram of a malformed list: %v, want an error naming the empty address", err)
	}
}

// rejoinProgram is figuresProgram that can follow its master (Rejoiner).
type rejoinProgram struct {
	*figuresProgram
	resets atomic.Int32
}

func (p *rejoinProgram) Reset() ([]string, error) { p.resets.Add(1); return []string{"input_1"}, nil }
func (p *rejoinProgram) Drop([]string)            {}

// serveStoppable serves a master on lis, serving store as its checkpoint
// store; stop stops it (as a crash does, for its workers).
func serveStoppable(t *testing.T, lis net.Listener, store checkpoint.Store) (tm *testMaster, stop func()) {
	t.Helper()
	tm = &testMaster{events: make(chan Event, 100), addr: lis.Addr().String()}
	m, err := NewMaster(MasterConfig{Secret: testSecret, Graph: testGraph(), Logger: discardLogger(),
		OnEvent: func(ev Event) { tm.events <- ev }, Peer: NewPeerServer(Stores{Checkpoint: store}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	tm.Master = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Serve(ctx, lis) }()
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return tm, stop
}

// A worker host given [A, B] joins A; when A dies, it moves to B (the same
// program) and rejoins it: its program forgets A's run, and what it reads
// from "the master" (MasterStore here) is B's.
func TestHostMovesToNextMaster(t *testing.T) {
	var tms [2]*testMaster
	var stops [2]func()
	for i, who := range []string{"A", "B"} {
		dir, err := checkpoint.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.Put(context.Background(), "who", []byte(who)); err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tms[i], stops[i] = serveStoppable(t, lis, dir)
	}
	rc := newDatasets(t, sched.NewLocal(sched.LocalConfig{}))
	prog := &rejoinProgram{figuresProgram: &figuresProgram{rc: rc, lin: rdd.IndexLineage(figuresJob(rc, 10).Node())}}
	log := &syncBuffer{}
	h, err := NewHost(HostConfig{Master: tms[0].addr + "," + tms[1].addr, Slots: 1, Secret: testSecret, Program: prog,
		Logger: slog.New(slog.NewTextHandler(log, nil)), Failover: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the worker's log:\n%s", log)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the host did not stop within 10s")
		}
	})
	who := func() string {
		t.Helper()
		gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
		defer gcancel()
		b, err := h.MasterStore().Get(gctx, "who")
		if err != nil {
			t.Fatalf("MasterStore().Get: %v", err)
		}
		return string(b)
	}

	if ev := tms[0].next(t); ev.Kind != WorkerAdded {
		t.Fatalf("A: event %v, want added", ev.Kind)
	}
	// A delivers the event before its answer: wait for the worker to have
	// it, or A's stop may lose it (and the worker would join B afresh).
	w := h.worker.Load() // set before it registers
	if w == nil {
		t.Fatal("the host runs no worker")
	}
	select {
	case <-w.Registered():
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not see its registration with A")
	}
	if got := h.Master(); got != tms[0].addr {
		t.Fatalf("Master() = %s, want A %s", got, tms[0].addr)
	}
	if got := who(); got != "A" {
		t.Fatalf("the master's store is %s's, want A's", got)
	}
	store := h.MasterStore() // taken before the move: it follows too

	stops[0]()
	if ev := tms[1].next(t); ev.Kind != WorkerAdded {
		t.Fatalf("B: event %v, want added", ev.Kind)
	}
	if got := h.Master(); got != tms[1].addr {
		t.Fatalf("Master() = %s, want B %s", got, tms[1].addr)
	}
	if n := prog.resets.Load(); n != 1 {
		t.Errorf("the program was reset %d times, want once (the rejoin of B)", n)
	}
	if got := who(); got != "B" {
		t.Errorf("the master's store is %s's, want B's", got)
	}
	if b, err := store.Get(ctx, "who"); err != nil || string(b) != "B" {
		t.Errorf("a store taken before the move reads %q, %v; want B's", b, err)
	}
	select {
	case err := <-done:
		t.Fatalf("the host stopped: %v", err)
	default:
	}
}

// The rule of moving on, on a manual clock: a single address is never
// left; an address that never answered is left at its first failure; one
// that answered is left once silent for Failover, or at once when it is a
// standby; the list is walked round robin.
func TestFailoverRule(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		list     string
		answered bool
		silent   time.Duration
		standby  bool
		moved    bool
	}{
		{name: "single address", list: "a:1", silent: time.Hour, standby: true},
		{name: "never answered", list: "a:1,b:1", moved: true},
		{name: "answered, within failover", list: "a:1,b:1", answered: true, silent: time.Second},
		{name: "answered, silent for failover", list: "a:1,b:1", answered: true, silent: 2 * time.Second, moved: true},
		{name: "answered, a standby", list: "a:1,b:1", answered: true, standby: true, moved: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewManual(start)
			w, err := NewWorker(WorkerConfig{Master: tc.list, Slots: 1, Clock: clk, Failover: 2 * time.Second, Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			w.contact(clk.Now())
			w.answered = tc.answered
			clk.Advance(tc.silent)
			first := w.Master()
			if got := w.failover(tc.standby); got != tc.moved {
				t.Fatalf("failover = %v, want %v", got, tc.moved)
			}
			if moved := w.Master() != first; moved != tc.moved {
				t.Fatalf("Master() %s -> %s, moved %v, want %v", first, w.Master(), moved, tc.moved)
			}
			if tc.moved {
				w.failover(true)
				if w.Master() != first {
					t.Errorf("round robin: back to %s, want %s", w.Master(), first)
				}
			}
		})
	}
	if _, err := NewWorker(WorkerConfig{Master: "a:1,,b:1", Slots: 1}); err == nil || !strings.Contains(err.Error(), "empty address") {
		t.Errorf("NewWorker with a malformed list: %v", err)
	}
}

// The worker's environment carries the list; a malformed one is an error
// naming the variable.
func TestWorkerEnvMasterList(t *testing.T) {
	env := func(master string) func(string) string {
		return func(k string) string {
			if k == EnvWorkerOf {
				return master
			}
			return ""
		}
	}
	if e, ok, err := WorkerEnvFrom(env("a:1,b:1")); err != nil || !ok || e.Master != "a:1,b:1" {
		t.Errorf("WorkerEnvFrom(a:1,b:1) = %+v, %v, %v", e, ok, err)
	}
	if _, ok, err := WorkerEnvFrom(env("a:1,b")); !ok || err == nil || !strings.Contains(err.Error(), EnvWorkerOf) {
		t.Errorf("WorkerEnvFrom(a:1,b) = %v, %v; want an error naming %s", ok, err, EnvWorkerOf)
	}
}

// A release with a handover: the worker waits for the next master instead
// of exiting. Joined to A (of [A, B], with a failover wait far longer than
// the test), it is released with a handover; A stops, and the worker moves
// to B at once and keeps serving past the handover wait. Alone with A, the
// same release ends its Run with ErrReleased once the wait has passed.
func TestHostHandover(t *testing.T) {
	for _, withB := range []bool{true, false} {
		t.Run(fmt.Sprintf("standby %v", withB), func(t *testing.T) {
			var tms []*testMaster
			var stops []func()
			for range 2 {
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				tm, stop := serveStoppable(t, lis, nil)
				tms, stops = append(tms, tm), append(stops, stop)
			}
			masters := tms[0].addr
			if withB {
				masters += "," + tms[1].addr
			}
			rc := newDatasets(t, sched.NewLocal(sched.LocalConfig{}))
			prog := &rejoinProgram{figuresProgram: &figuresProgram{rc: rc, lin: rdd.IndexLineage(figuresJob(rc, 10).Node())}}
			log := &syncBuffer{}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the worker's log:\n%s", log)
				}
			})
			h, err := NewHost(HostConfig{Master: masters, Slots: 1, Secret: testSecret, Program: prog,
				Logger: slog.New(slog.NewTextHandler(log, nil)), Failover: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- h.Run(ctx) }()
			if ev := tms[0].next(t); ev.Kind != WorkerAdded {
				t.Fatalf("A: event %v, want added", ev.Kind)
			}
			const wait = 2 * time.Second
			peers := NewPeers(testSecret, nil, nil)
			defer peers.Close()
			// Sent as soon as A accepted the worker: the worker may not
			// know A's session yet (its registration's answer is on its
			// way), so the release names it, and the worker joining A again
			// while A still serves does not end the handover.
			if err := peers.Release(ctx, h.addr, "handing over", tms[0].Session(), wait, 5*time.Second); err != nil {
				t.Fatalf("Release: %v", err)
			}
			stops[0]()
			if !withB {
				select {
				case err := <-done:
					if !errors.Is(err, ErrReleased) {
						t.Fatalf("Run = %v, want ErrReleased", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no master took the worker over, and it was not released")
				}
				return
			}
			if ev := tms[1].next(t); ev.Kind != WorkerAdded {
				t.Fatalf("B: event %v, want added", ev.Kind)
			}
			select {
			case err := <-done:
				t.Fatalf("the worker stopped (%v) though B took it over", err)
			case <-time.After(wait + time.Second):
			}
		})
	}
}
