package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

var testSecret = []byte("s3cret-for-tests-only")

// testGraph is the graph every test process builds: a socket source, a map,
// a windowed reduce and an output.
func testGraph() []graphspec.Node {
	return []graphspec.Node{
		{ID: 1, Kind: "stream", Name: "socketTextStream", Type: "string", Slide: time.Second},
		{ID: 2, Kind: "stream", Name: "map", Type: "kv.Pair[string,int]", Slide: time.Second, Parents: []int32{1}},
		{ID: 3, Kind: "stream", Name: "reduceByKeyAndWindow", Type: "kv.Pair[string,int]", Slide: 2 * time.Second, Parents: []int32{2}, State: true},
		{ID: 4, Kind: "output", Name: "print", Type: "kv.Pair[string,int]", Parents: []int32{3}},
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testMaster struct {
	*Master
	addr   string
	events chan Event
	log    *syncBuffer
}

// startMaster serves a master on a loopback port until the test ends.
// Fields of cfg left zero get test defaults (secret, graph); events are
// buffered generously so OnEvent never blocks in tests.
func startMaster(t *testing.T, cfg MasterConfig) *testMaster {
	t.Helper()
	if cfg.Secret == nil && !cfg.Insecure {
		cfg.Secret = testSecret
	}
	if cfg.Graph == nil {
		cfg.Graph = testGraph()
	}
	tm := &testMaster{events: make(chan Event, 100), log: &syncBuffer{}}
	cfg.Logger = slog.New(slog.NewTextHandler(tm.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.OnEvent = func(ev Event) { tm.events <- ev }
	m, err := NewMaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tm.Master = m
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm.addr = lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return tm
}

// next returns the next event, failing the test after a generous timeout.
func (tm *testMaster) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-tm.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return Event{}
	}
}

// noEvent fails the test if an event is pending.
func (tm *testMaster) noEvent(t *testing.T) {
	t.Helper()
	select {
	case ev := <-tm.events:
		t.Fatalf("unexpected event %v %+v", ev.Kind, ev.Worker)
	default:
	}
}

// rawClient dials addr and sends token (unless empty) with every call.
func rawClient(t *testing.T, addr, token string) clusterpb.ClusterClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, authKey, token)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return clusterpb.NewClusterClient(conn)
}

func registerRequest(id string, g []graphspec.Node) *clusterpb.RegisterRequest {
	return &clusterpb.RegisterRequest{WorkerId: id, Address: "127.0.0.1:7000", Pid: 42, Slots: 4, MemoryBytes: 1 << 30,
		Graph: graphToProto(g), GraphFingerprint: graphspec.Fingerprint(g)}
}

// workerRun is a worker running in a goroutine until the test ends.
type workerRun struct {
	*Worker
	done chan struct{} // closed when Run returns
	err  error         // Run's result, once done is closed
}

// result waits up to d for Run to return and returns its error.
func (r *workerRun) result(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("worker still running after %v", d)
		return nil
	}
}

// runWorker runs a worker until the test ends; zero Graph and Slots get
// test defaults.
func runWorker(t *testing.T, cfg WorkerConfig) *workerRun {
	t.Helper()
	if cfg.Graph == nil {
		cfg.Graph = testGraph()
	}
	if cfg.Slots == 0 {
		cfg.Slots = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&syncBuffer{}, nil))
	}
	w, err := NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &workerRun{Worker: w, done: make(chan struct{})}
	go func() {
		r.err = w.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop within 10s")
		}
	})
	return r
}

// waitRegistered waits for the worker's first accepted registration.
func (r *workerRun) waitRegistered(t *testing.T) {
	t.Helper()
	select {
	case <-r.Registered():
	case <-r.done:
		t.Fatalf("worker stopped before registering: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not register within 10s")
	}
}

// clusterHeartbeat abbreviates the generated heartbeat request.
type clusterHeartbeat = clusterpb.HeartbeatRequest

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
