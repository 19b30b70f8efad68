package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Defaults for MasterConfig's zero fields.
const (
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultWorkerTimeout     = 2 * time.Second
	DefaultMaxWorkers        = 1024
	DefaultHandshakeTimeout  = 5 * time.Second
	maxRecvMsgSize           = 4 << 20
	// maxResultSize bounds a task result or fetched chunk a client accepts.
	maxResultSize = 1 << 30
)

// MasterConfig configures a Master. Graph is required; zero values of the
// other fields take the defaults above.
type MasterConfig struct {
	// Secret is the shared secret every worker must present. It must not be
	// empty unless Insecure is true.
	Secret []byte
	// Insecure allows an empty Secret: every call is then accepted.
	Insecure bool
	// TLS, if set, makes every connection mutual TLS (LoadTLS).
	TLS *TLS
	// Graph is the master's graph description (dstream.Context.Graph).
	Graph []graphspec.Node
	// HeartbeatInterval is how often workers are told to send heartbeats.
	HeartbeatInterval time.Duration
	// WorkerTimeout is how long a worker may go without a heartbeat before it
	// is declared lost.
	WorkerTimeout time.Duration
	// MaxWorkers bounds the registry (alive and lost entries); when it is
	// full, the oldest lost entry is forgotten, and if none is lost a new
	// worker is refused with RESOURCE_EXHAUSTED.
	MaxWorkers int
	// HandshakeTimeout bounds how long a connection may take to start
	// speaking HTTP/2, so idle or half-open connections are closed.
	HandshakeTimeout time.Duration
	// Clock drives heartbeat timeouts; nil means clock.Real.
	Clock clock.Clock
	// Logger receives refused connections and membership changes; nil means
	// slog.Default.
	Logger *slog.Logger
	// Peer, if set, is served beside the Cluster service on the same
	// listener: the master's side of the data plane.
	Peer clusterpb.PeerServer
	// Manifests, if set, answers the Manifests call: the frames of the
	// interval manifests with times in (after, upTo].
	Manifests func(after, upTo int64) ([][]byte, error)
	// Latest, if set, returns the latest interval started (Unix ms), which
	// heartbeats tell workers. It is called with the registry locked: it
	// must not call the Master.
	Latest func() int64
	// AddBlock, if set, takes the blocks receivers on workers report.
	AddBlock func(b BlockReport) error
	// Program is how the master's program was started, for workers that
	// join by hand (the Program call).
	Program ProgramInfo
	// OnEvent, if set, is called for every membership change, one call at a
	// time, in the order the changes happened. It must not block for long
	// (the RPC or timeout check that caused the change waits for it) and
	// must not call the Master (Workers, Drop, Serve): the registry's lock
	// waits for it.
	OnEvent func(Event)
}

// WorkerState is a worker's state in the master's view.
type WorkerState int

const (
	// Alive: registered and heartbeating.
	Alive WorkerState = iota
	// Lost: no heartbeat within the timeout, or replaced by a new
	// registration under the same id.
	Lost
)

func (s WorkerState) String() string {
	switch s {
	case Alive:
		return "alive"
	case Lost:
		return "lost"
	}
	return "WorkerState(" + strconv.Itoa(int(s)) + ")"
}

// WorkerInfo is the master's view of one worker.
type WorkerInfo struct {
	ID            string
	Incarnation   uint64 // distinguishes registrations under the same id
	Address       string // where the worker serves its peers
	Peer          string // the address its connection came from
	PID           int64
	Slots         int
	MemoryBytes   int64
	MemoryUsed    int64 // last reported by a heartbeat
	Blocks        int64 // last reported by a heartbeat
	Registered    time.Time
	LastHeartbeat time.Time
	State         WorkerState
}

// EventKind says what happened to a worker.
type EventKind int

const (
	// WorkerAdded: a worker registered; feed sched.Core.AddWorker.
	WorkerAdded EventKind = iota
	// WorkerLost: a worker was declared lost; feed sched.Core.LoseWorker.
	WorkerLost
)

func (k EventKind) String() string {
	switch k {
	case WorkerAdded:
		return "added"
	case WorkerLost:
		return "lost"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a membership change, with the worker as it was then.
type Event struct {
	Kind   EventKind
	Worker WorkerInfo
}

// Master serves the Cluster service: it authenticates every call, admits
// workers whose graph equals its own, and tracks their liveness.
type Master struct {
	clusterpb.UnimplementedClusterServer

	cfg     MasterConfig
	session string // identifies this master process to its workers
	guard   guard
	log     *slog.Logger
	clk     clock.Clock

	mu      sync.Mutex
	workers map[string]*WorkerInfo
	order   []string // registry ids, oldest registration first
	nextID  uint64   // for master-assigned ids
	nextInc uint64

	evMu sync.Mutex // held while OnEvent runs, taken before mu is released
}

// NewMaster validates cfg and returns a master. It refuses an empty secret
// unless cfg.Insecure is set.
func NewMaster(cfg MasterConfig) (*Master, error) {
	if len(cfg.Secret) == 0 && !cfg.Insecure {
		return nil, ErrNoSecret
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.WorkerTimeout <= 0 {
		cfg.WorkerTimeout = DefaultWorkerTimeout
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = DefaultMaxWorkers
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Graph = slices.Clone(cfg.Graph)
	session, err := GenerateSecret()
	if err != nil {
		return nil, err
	}
	return &Master{
		session: string(session[:16]),
		cfg:     cfg,
		guard:   guard{token: authToken(cfg.Secret), log: cfg.Logger},
		log:     cfg.Logger,
		clk:     cfg.Clock,
		workers: make(map[string]*WorkerInfo),
	}, nil
}

// Serve serves the Cluster service on lis until ctx is done, then stops the
// server (closing every connection) and returns nil; it returns an error if
// serving fails otherwise. lis is closed on return. Serve may be called once.
func (m *Master) Serve(ctx context.Context, lis net.Listener) error {
	srv := m.guard.server(m.cfg.HandshakeTimeout, m.cfg.HeartbeatInterval, m.cfg.TLS)
	clusterpb.RegisterClusterServer(srv, m)
	if m.cfg.Peer != nil {
		clusterpb.RegisterPeerServer(srv, m.cfg.Peer)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.watch(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	var err error
	select {
	case <-ctx.Done():
		srv.Stop()
		<-errc
	case err = <-errc:
		srv.Stop()
		cancel()
	}
	<-done
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

// Workers returns a snapshot of the registry, alive and lost workers, in
// registration order.
func (m *Master) Workers() []WorkerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]WorkerInfo, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, *m.workers[id])
	}
	return out
}

// Register implements clusterpb.ClusterServer. A registration under an id
// that an alive worker with another pid or address holds is refused with
// ALREADY_EXISTS (the Worker client retries until the holder is lost); one
// from the same pid and address replaces the old registration, reporting
// it lost and the new one added.
func (m *Master) Register(ctx context.Context, req *clusterpb.RegisterRequest) (*clusterpb.RegisterResponse, error) {
	if req.GetSlots() <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "slots must be positive, got %d", req.GetSlots())
	}
	if len(req.GetWorkerId()) > 256 || len(req.GetAddress()) > 1024 {
		return nil, status.Error(codes.InvalidArgument, "worker id or address too long")
	}
	theirs := graphFromProto(req.GetGraph())
	if err := graphspec.Diff(m.cfg.Graph, theirs); err != nil {
		m.log.Warn("cluster: worker refused: different graph", "worker", req.GetWorkerId(), "peer", peerAddr(ctx), "err", err)
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if want := graphspec.Fingerprint(m.cfg.Graph); req.GetGraphFingerprint() != want {
		msg := fmt.Sprintf("graph fingerprints differ: this side has %s, the other %s", want, req.GetGraphFingerprint())
		m.log.Warn("cluster: worker refused: "+msg, "worker", req.GetWorkerId(), "peer", peerAddr(ctx))
		return nil, status.Error(codes.FailedPrecondition, msg)
	}

	now := m.clk.Now()
	m.mu.Lock()
	id := req.GetWorkerId()
	if id == "" {
		for {
			m.nextID++
			id = "worker-" + strconv.FormatUint(m.nextID, 10)
			if _, taken := m.workers[id]; !taken {
				break
			}
		}
	}
	var events []Event
	if old, ok := m.workers[id]; ok {
		// Another live process holds this id: refuse until it is lost, so
		// two workers sharing an id cannot take turns replacing each other.
		if old.State == Alive && (old.PID != req.GetPid() || old.Address != req.GetAddress()) {
			m.mu.Unlock()
			return nil, status.Errorf(codes.AlreadyExists, "worker id %q is held by an alive worker (pid %d at %s)", id, old.PID, old.Address)
		}
		// Otherwise the registration replaces the old one: the same
		// process registering again, or a lost worker coming back.
		if old.State == Alive {
			old.State = Lost
			events = append(events, Event{WorkerLost, *old})
		}
		delete(m.workers, id)
		m.order = slices.DeleteFunc(m.order, func(s string) bool { return s == id })
	}
	if !m.makeRoomLocked() {
		m.mu.Unlock()
		m.emit(events) // evMu not held: emit takes it
		return nil, status.Errorf(codes.ResourceExhausted, "registry full: %d workers alive", len(m.order))
	}
	m.nextInc++
	w := &WorkerInfo{
		ID: id, Incarnation: m.nextInc, Address: req.GetAddress(), Peer: peerAddr(ctx),
		PID: req.GetPid(), Slots: int(req.GetSlots()), MemoryBytes: req.GetMemoryBytes(),
		Registered: now, LastHeartbeat: now, State: Alive,
	}
	m.workers[id] = w
	m.order = append(m.order, id)
	events = append(events, Event{WorkerAdded, *w})
	m.handOff(events)
	m.log.Info("cluster: worker registered", "worker", id, "address", w.Address, "peer", w.Peer, "pid", w.PID, "slots", w.Slots)
	return &clusterpb.RegisterResponse{
		WorkerId:          id,
		Incarnation:       w.Incarnation,
		HeartbeatInterval: durationpb.New(m.cfg.HeartbeatInterval),
		Session:           m.session,
	}, nil
}

// makeRoomLocked makes room for one more registry entry by forgetting the
// oldest lost worker if needed; it reports whether there is room.
func (m *Master) makeRoomLocked() bool {
	if len(m.order) < m.cfg.MaxWorkers {
		return true
	}
	for i, id := range m.order {
		if m.workers[id].State == Lost {
			delete(m.workers, id)
			m.order = slices.Delete(m.order, i, i+1)
			return true
		}
	}
	return false
}

// Heartbeat implements clusterpb.ClusterServer.
func (m *Master) Heartbeat(ctx context.Context, req *clusterpb.HeartbeatRequest) (*clusterpb.HeartbeatResponse, error) {
	now := m.clk.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[req.GetWorkerId()]
	if !ok || w.Incarnation != req.GetIncarnation() || w.State != Alive {
		return nil, status.Errorf(codes.NotFound, "worker %q (incarnation %d) is not registered; register again", req.GetWorkerId(), req.GetIncarnation())
	}
	if now.After(w.LastHeartbeat) {
		w.LastHeartbeat = now
	}
	w.MemoryUsed = req.GetMemoryUsedBytes()
	w.Blocks = req.GetBlocks()
	resp := &clusterpb.HeartbeatResponse{}
	if m.cfg.Latest != nil {
		resp.LatestInterval = m.cfg.Latest()
	}
	return resp, nil
}

// watch declares workers lost when their heartbeats stop, until ctx is done.
// It sleeps until the earliest deadline; a worker registered later has a
// later deadline than now+timeout, so nothing is missed while it sleeps.
func (m *Master) watch(ctx context.Context) {
	for {
		next := m.expire()
		if m.clk.WaitUntil(ctx, next) != nil {
			return
		}
	}
}

// expire declares lost every alive worker whose last heartbeat is at least
// WorkerTimeout old, reports them, and returns when the next worker could
// expire.
func (m *Master) expire() time.Time {
	now := m.clk.Now()
	next := now.Add(m.cfg.WorkerTimeout)
	m.mu.Lock()
	var events []Event
	for _, id := range m.order {
		w := m.workers[id]
		if w.State != Alive {
			continue
		}
		deadline := w.LastHeartbeat.Add(m.cfg.WorkerTimeout)
		if !now.Before(deadline) {
			w.State = Lost
			events = append(events, Event{WorkerLost, *w})
			m.log.Warn("cluster: worker lost: no heartbeat", "worker", id, "peer", w.Peer, "last_heartbeat", w.LastHeartbeat, "timeout", m.cfg.WorkerTimeout)
		} else if deadline.Before(next) {
			next = deadline
		}
	}
	m.handOff(events)
	return next
}

// handOff releases mu and delivers events in order: evMu is taken before mu
// is released, so deliveries happen in the order of the changes.
func (m *Master) handOff(events []Event) {
	if len(events) == 0 || m.cfg.OnEvent == nil {
		m.mu.Unlock()
		return
	}
	m.evMu.Lock()
	m.mu.Unlock()
	defer m.evMu.Unlock()
	m.deliver(events)
}

func (m *Master) emit(events []Event) {
	if len(events) == 0 || m.cfg.OnEvent == nil {
		return
	}
	m.evMu.Lock()
	defer m.evMu.Unlock()
	m.deliver(events)
}

// deliver calls OnEvent for each event; a panic in it is logged, not
// propagated into the RPC or the watcher.
func (m *Master) deliver(events []Event) {
	for _, ev := range events {
		func() {
			defer func() {
				if r := recover(); r != nil {
					m.log.Error("cluster: OnEvent panicked", "event", ev.Kind, "worker", ev.Worker.ID, "panic", r)
				}
			}()
			m.cfg.OnEvent(ev)
		}()
	}
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

// Manifests implements clusterpb.ClusterServer.
func (m *Master) Manifests(ctx context.Context, req *clusterpb.ManifestsRequest) (*clusterpb.ManifestsResponse, error) {
	if m.cfg.Manifests == nil {
		return nil, status.Error(codes.Unimplemented, "this master serves no manifests")
	}
	frames, err := m.cfg.Manifests(req.GetAfter(), req.GetUpTo())
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &clusterpb.ManifestsResponse{Frames: frames}, nil
}

// Drop declares lost the alive worker serving at address (a peer found it
// unreachable), and reports it. If the worker is in fact alive, its next
// heartbeat is refused and it registers again, as a new incarnation.
func (m *Master) Drop(address, reason string) {
	m.mu.Lock()
	var events []Event
	for _, id := range m.order {
		w := m.workers[id]
		if w.State == Alive && w.Address == address {
			w.State = Lost
			events = append(events, Event{WorkerLost, *w})
			m.log.Warn("cluster: worker lost: "+reason, "worker", id, "address", address)
		}
	}
	m.handOff(events)
}

// ProgramInfo is how a master's program was started.
type ProgramInfo struct {
	Args        []string // command-line arguments, without the program name
	Parallelism int
}

// Program implements clusterpb.ClusterServer.
func (m *Master) Program(ctx context.Context, _ *clusterpb.ProgramRequest) (*clusterpb.ProgramResponse, error) {
	return &clusterpb.ProgramResponse{Args: m.cfg.Program.Args, Parallelism: int32(m.cfg.Program.Parallelism),
		GraphFingerprint: graphspec.Fingerprint(m.cfg.Graph)}, nil
}

// AddBlock implements clusterpb.ClusterServer.
func (m *Master) AddBlock(ctx context.Context, req *clusterpb.AddBlockRequest) (*clusterpb.AddBlockResponse, error) {
	if m.cfg.AddBlock == nil {
		return nil, status.Error(codes.Unimplemented, "this master takes no blocks")
	}
	if req.GetKey() == "" || req.GetRecords() < 0 || req.GetBytes() < 0 {
		return nil, status.Error(codes.InvalidArgument, "a block needs a key and non-negative sizes")
	}
	err := m.cfg.AddBlock(BlockReport{Stream: req.GetStream(), Key: req.GetKey(), Records: req.GetRecords(), Bytes: req.GetBytes(), Locations: req.GetLocations()})
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &clusterpb.AddBlockResponse{}, nil
}
