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
	// interval manifests with times in q's (After, UpTo], deltas as q asks
	// (ManifestQuery).
	Manifests func(q ManifestQuery) ([][]byte, error)
	// Latest, if set, returns the latest interval started (Unix ms), which
	// heartbeats tell workers. It is called for every accepted heartbeat,
	// outside the registry's lock, so it must be quick.
	Latest func() int64
	// AddBlock, if set, takes the blocks receivers on workers report.
	AddBlock func(b BlockReport) error
	// Rejoined, if set, is called when a worker of an earlier master
	// process (this master restarted) registers, with its address and the
	// input blocks it still holds: it returns those this master needs
	// (which the worker keeps, and this master may name it as holding).
	// It is called once the registration is admitted and delivered.
	Rejoined func(address string, held []string) (kept []string)
	// Program is how the master's program was started, for workers that
	// join by hand (the Program call).
	Program ProgramInfo
	// OnEvent, if set, is called for every membership change, one call at a
	// time, in the order the changes happened, never with the registry
	// locked. The registration, Drop or timeout check that caused a change
	// returns only once the change has been delivered, so OnEvent must not
	// block for long, and must not call Drop or wait for a registration
	// with this master: those wait for the delivery in progress. It may
	// call Workers, which may already show later changes.
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
	ID          string
	Incarnation uint64 // distinguishes registrations under the same id
	Address     string // where the worker serves its peers
	Peer        string // the address its connection came from
	PID         int64
	Slots       int
	MemoryBytes int64
	MemoryUsed  int64 // last reported by a heartbeat
	Blocks      int64 // last reported by a heartbeat
	// ReceiverDropped is, by stream, what the receivers running on the
	// worker dropped as malformed, as its last heartbeat reported (nil:
	// none). The map is never changed once reported: read it freely.
	ReceiverDropped map[int32]int64
	Registered      time.Time
	LastHeartbeat   time.Time
	State           WorkerState
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
//
// Master is the shell of a Membership core: every registration, heartbeat,
// timeout check (the watcher Serve runs) and Drop reads the clock, feeds the
// core under a mutex and carries out its decisions: the reply, the facts to
// log and the changes to deliver to OnEvent.
//
// Delivery. A call that changed the membership queues the changes while it
// holds the registry's lock, so the queue is in the order of the changes.
// After unlocking, it takes the delivery lock and delivers whatever is
// queued, its own changes and any queued before them, in order; a change
// taken by an earlier caller is delivered before that caller releases the
// delivery lock. So deliveries keep the order of the changes, one at a
// time, and every call returns once its own changes have been delivered.
// The delivery lock is never taken while the registry's lock is held (flush
// takes the registry's lock, briefly, under the delivery lock), and each
// lock is released in the function that took it.
type Master struct {
	clusterpb.UnimplementedClusterServer

	cfg     MasterConfig
	session string // identifies this master process to its workers
	guard   guard
	log     *slog.Logger
	clk     clock.Clock

	mu    sync.Mutex // the registry's lock: guards core and queue
	core  *Membership
	queue []Changes // changes not yet taken for delivery, oldest first
	// deliver is the delivery lock: a semaphore held (a value sent) while
	// queued changes are delivered. A channel rather than a sync.Mutex: a
	// delivery may wait (OnEvent takes other locks, a lost worker's
	// connection closes), and a goroutine waiting to send on a channel is
	// durably blocked for testing/synctest, whose virtual time then still
	// advances; waiting on a Mutex is not, and would stall a simulation.
	deliver chan struct{}
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
		core:    NewMembership(cfg.WorkerTimeout, cfg.MaxWorkers),
		deliver: make(chan struct{}, 1),
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
	return m.core.Workers()
}

// Register implements clusterpb.ClusterServer. A registration under an id
// that an alive worker with another pid or address holds is refused with
// ALREADY_EXISTS (the Worker client retries until the holder is lost); one
// from the same pid and address replaces the old registration, reporting
// it lost and the new one added (Membership states every rule). It returns
// once the changes have been delivered to OnEvent.
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

	r := Registration{
		ID: req.GetWorkerId(), Address: req.GetAddress(), Peer: peerAddr(ctx),
		PID: req.GetPid(), Slots: int(req.GetSlots()), MemoryBytes: req.GetMemoryBytes(),
	}
	now := m.clk.Now()
	var rep Reply
	m.change(func(c *Membership) (ch Changes) {
		rep, ch = c.Register(now, r)
		return ch
	})
	switch w := rep.Worker; rep.Refusal {
	case Admitted:
		var kept []string
		if prev := req.GetPreviousSession(); prev != "" && prev != m.session && len(req.GetHeldBlocks()) > 0 && m.cfg.Rejoined != nil {
			kept = m.cfg.Rejoined(w.Address, req.GetHeldBlocks())
			m.log.Info("cluster: a worker of the previous master rejoined", "worker", w.ID, "address", w.Address,
				"blocks_offered", len(req.GetHeldBlocks()), "blocks_kept", len(kept))
		}
		return &clusterpb.RegisterResponse{
			WorkerId:          w.ID,
			Incarnation:       w.Incarnation,
			HeartbeatInterval: durationpb.New(m.cfg.HeartbeatInterval),
			Session:           m.session,
			KeptBlocks:        kept,
		}, nil
	case RefusedHeld:
		return nil, status.Errorf(codes.AlreadyExists, "worker id %q is held by an alive worker (pid %d at %s)", w.ID, w.PID, w.Address)
	case RefusedFull:
		return nil, status.Errorf(codes.ResourceExhausted, "registry full: %d workers alive", m.cfg.MaxWorkers)
	}
	return nil, status.Errorf(codes.Internal, "registration refused: %v", rep.Refusal)
}

// Heartbeat implements clusterpb.ClusterServer.
func (m *Master) Heartbeat(ctx context.Context, req *clusterpb.HeartbeatRequest) (*clusterpb.HeartbeatResponse, error) {
	now := m.clk.Now()
	m.mu.Lock()
	rep := m.core.Heartbeat(now, req.GetWorkerId(), req.GetIncarnation(), Stats{MemoryUsed: req.GetMemoryUsedBytes(), Blocks: req.GetBlocks(), ReceiverDropped: req.GetReceiverDropped()})
	m.mu.Unlock()
	if rep.Refusal != Admitted {
		return nil, status.Errorf(codes.NotFound, "worker %q (incarnation %d) is not registered; register again", req.GetWorkerId(), req.GetIncarnation())
	}
	resp := &clusterpb.HeartbeatResponse{}
	if m.cfg.Latest != nil {
		resp.LatestInterval = m.cfg.Latest()
	}
	return resp, nil
}

// watch declares workers lost when their heartbeats stop, until ctx is done.
// It sleeps until the core's next deadline (Membership.Tick).
func (m *Master) watch(ctx context.Context) {
	for {
		next := m.expire()
		if m.clk.WaitUntil(ctx, next) != nil {
			return
		}
	}
}

// expire ticks the core at the clock's time: it declares lost every alive
// worker whose last heartbeat is at least WorkerTimeout old, delivers the
// changes, and returns when the next worker could expire.
func (m *Master) expire() time.Time {
	now := m.clk.Now()
	var next time.Time
	m.change(func(c *Membership) (ch Changes) {
		next, ch = c.Tick(now)
		return ch
	})
	return next
}

// change runs step on the core with the registry locked, queues the changes
// it returns, and, once the registry is unlocked, delivers them (see
// Master). It returns after they have been delivered.
func (m *Master) change(step func(*Membership) Changes) {
	m.mu.Lock()
	ch := step(m.core)
	if !ch.Empty() {
		m.queue = append(m.queue, ch)
	}
	m.mu.Unlock()
	if !ch.Empty() {
		m.flush()
	}
}

// flush delivers every queued change, in order, holding the delivery lock.
// A caller's own changes are either still queued when it gets the lock, and
// it delivers them, or were taken by an earlier holder, which delivered them
// before releasing the lock: so once flush returns, every change queued
// before it was called has been delivered.
func (m *Master) flush() {
	m.deliver <- struct{}{}
	defer func() { <-m.deliver }()
	m.mu.Lock()
	batch := m.queue
	m.queue = nil
	m.mu.Unlock()
	for _, ch := range batch {
		for _, f := range ch.Facts {
			m.logFact(f)
		}
		for _, ev := range ch.Events {
			m.onEvent(ev)
		}
	}
}

// logFact logs what the core found worth logging.
func (m *Master) logFact(f Fact) {
	w := f.Worker
	switch f.Kind {
	case FactRegistered:
		m.log.Info("cluster: worker registered", "worker", w.ID, "incarnation", w.Incarnation, "address", w.Address, "peer", w.Peer, "pid", w.PID, "slots", w.Slots)
	case FactReplaced:
		m.log.Info("cluster: worker registered again: its previous registration is lost", "worker", w.ID, "incarnation", w.Incarnation, "address", w.Address)
	case FactExpired:
		m.log.Warn("cluster: worker lost: no heartbeat", "worker", w.ID, "peer", w.Peer, "last_heartbeat", w.LastHeartbeat, "timeout", m.cfg.WorkerTimeout)
	case FactDropped:
		m.log.Warn("cluster: worker lost: "+f.Reason, "worker", w.ID, "address", w.Address)
	case FactForgotten:
		m.log.Debug("cluster: lost worker forgotten to make room", "worker", w.ID, "incarnation", w.Incarnation)
	}
}

// onEvent calls OnEvent, if set; a panic in it is logged, not propagated
// into the RPC or the watcher.
func (m *Master) onEvent(ev Event) {
	if m.cfg.OnEvent == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("cluster: OnEvent panicked", "event", ev.Kind, "worker", ev.Worker.ID, "panic", r)
		}
	}()
	m.cfg.OnEvent(ev)
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
	q := ManifestQuery{After: req.GetAfter(), UpTo: req.GetUpTo(), Deltas: req.GetDeltas()}
	if req.GetBaseSession() == m.session {
		// A base the worker learned from another master process names
		// that process's manifest, not this one's: the first frame is
		// whole.
		q.Base = req.GetBase()
	}
	frames, err := m.cfg.Manifests(q)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &clusterpb.ManifestsResponse{Frames: frames, Session: m.session}, nil
}

// ManifestQuery is a worker's Manifests call as the master's engine answers
// it.
type ManifestQuery struct {
	// After and UpTo bound the intervals asked for: (After, UpTo].
	After, UpTo int64
	// Deltas says frames may be deltas (manifest.Delta): each relative to
	// the manifest of the frame before it in the answer, the first
	// relative to the manifest of interval Base (0: none, the first frame
	// is whole), which the worker learned from this master process.
	Deltas bool
	Base   int64
}

// Drop declares lost the alive worker serving at address (a peer found it
// unreachable), and reports it. If the worker is in fact alive, its next
// heartbeat is refused and it registers again, as a new incarnation.
//
// Drop returns once the changes have been delivered: OnEvent must not call
// it.
func (m *Master) Drop(address, reason string) {
	m.change(func(c *Membership) Changes { return c.Drop(address, reason) })
}

// ProgramInfo is how a master's program was started.
type ProgramInfo struct {
	Args        []string // command-line arguments, without the program name
	Parallelism int
}

// Program implements clusterpb.ClusterServer.
func (m *Master) Program(ctx context.Context, _ *clusterpb.ProgramRequest) (*clusterpb.ProgramResponse, error) {
	return &clusterpb.ProgramResponse{Args: m.cfg.Program.Args, Parallelism: int32(m.cfg.Program.Parallelism),
		GraphFingerprint: graphspec.Fingerprint(m.cfg.Graph), Session: m.session}, nil
}

// AddBlock implements clusterpb.ClusterServer.
func (m *Master) AddBlock(ctx context.Context, req *clusterpb.AddBlockRequest) (*clusterpb.AddBlockResponse, error) {
	if m.cfg.AddBlock == nil {
		return nil, status.Error(codes.Unimplemented, "this master takes no blocks")
	}
	if req.GetFailure() == "" && (req.GetKey() == "" || req.GetRecords() < 0 || req.GetBytes() < 0) {
		return nil, status.Error(codes.InvalidArgument, "a block needs a key and non-negative sizes")
	}
	err := m.cfg.AddBlock(BlockReport{Stream: req.GetStream(), Key: req.GetKey(), Records: req.GetRecords(), Bytes: req.GetBytes(), Locations: req.GetLocations(), Failure: req.GetFailure()})
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &clusterpb.AddBlockResponse{}, nil
}

// Session returns the session that identifies this master process to its
// workers (RegisterResponse.session).
func (m *Master) Session() string { return m.session }
