package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults for WorkerConfig's zero fields.
const (
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
)

// WorkerConfig configures a Worker. Master, Slots and Graph are required.
type WorkerConfig struct {
	// Master is the master's host:port.
	Master string
	// ID is the worker's id; empty lets the master assign one, which the
	// worker then keeps for re-registrations.
	ID string
	// Address is the host:port where this worker serves its peers.
	Address string
	// PID is reported to the master; zero means os.Getpid().
	PID         int64
	Slots       int
	MemoryBytes int64
	// Graph is the worker's graph description (dstream.Context.Graph); the
	// master refuses the worker unless it equals the master's.
	Graph []graphspec.Node
	// Secret is the cluster's shared secret; empty only against an insecure
	// master.
	Secret []byte
	// TLS, if set, dials the master over mutual TLS.
	TLS *TLS
	// Stats, if set, is called before each heartbeat for the memory used and
	// the number of blocks held.
	Stats func() (memoryUsed, blocks int64)
	// Dropped, if set, is called before each heartbeat for what the
	// receivers running here dropped as malformed, by stream.
	Dropped func() map[int32]int64
	// OnLatest, if set, is called with the latest interval each heartbeat
	// answer names (when it is not 0); it must not block.
	OnLatest func(t int64)
	// MinBackoff and MaxBackoff bound the wait between registration
	// attempts while the master is unreachable.
	MinBackoff, MaxBackoff time.Duration
	// Clock paces heartbeats and backoff; nil means clock.Real.
	Clock clock.Clock
	// Logger; nil means slog.Default.
	Logger *slog.Logger
	// Network is what the worker dials the master over (nil: TCP).
	Network Network
}

// Worker is the worker side of the control plane: it keeps one connection
// to the master, registers, and heartbeats.
type Worker struct {
	cfg        WorkerConfig
	registered chan struct{}
	once       sync.Once

	mu          sync.Mutex
	id          string
	incarnation uint64
	session     string // the master process it first registered with
}

// ErrMasterRestarted is Run's error when the worker registered again with
// a master that is not the one it joined first (it restarted): what the
// worker learned belongs to the old master's run, so its process must
// restart too (as Kubernetes restarts an exited worker).
var ErrMasterRestarted = errors.New("cluster: the master restarted; this worker must restart to join it")

// NewWorker validates cfg and returns a worker; Run starts it.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Master == "" {
		return nil, errors.New("cluster: worker needs the master's address")
	}
	if cfg.Slots <= 0 {
		return nil, fmt.Errorf("cluster: worker slots must be positive, got %d", cfg.Slots)
	}
	if cfg.PID == 0 {
		cfg.PID = int64(os.Getpid())
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Graph = slices.Clone(cfg.Graph)
	return &Worker{cfg: cfg, registered: make(chan struct{}), id: cfg.ID}, nil
}

// Registered is closed once the worker's first registration is accepted.
func (w *Worker) Registered() <-chan struct{} { return w.registered }

// ID returns the worker's id: the configured one, or the one the master
// assigned (empty before the first registration).
func (w *Worker) ID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

// Run registers with the master, retrying with backoff while it is
// unreachable, then heartbeats, registering again whenever the master no
// longer knows this worker. It returns nil when ctx is done (closing its
// connection), and an error when the master refuses the worker for good
// (bad secret, different graph, invalid request), or ErrMasterRestarted.
func (w *Worker) Run(ctx context.Context) error {
	conn, err := newClient(w.cfg.Master, w.cfg.Network, dialOptions(w.cfg.Secret, w.cfg.TLS))
	if err != nil {
		return fmt.Errorf("cluster: worker: %w", err)
	}
	defer conn.Close()
	client := clusterpb.NewClusterClient(conn)
	for {
		interval, err := w.register(ctx, client)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := w.heartbeat(ctx, client, interval); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if status.Code(err) != codes.NotFound {
				return err
			}
			w.cfg.Logger.Warn("cluster: master no longer knows this worker; registering again", "worker", w.ID())
		}
	}
}

// register registers, retrying with backoff on errors that may pass
// (master unreachable, id still held by a previous incarnation).
func (w *Worker) register(ctx context.Context, client clusterpb.ClusterClient) (time.Duration, error) {
	req := &clusterpb.RegisterRequest{
		WorkerId: w.ID(), Address: w.cfg.Address, Pid: w.cfg.PID, Slots: int32(w.cfg.Slots),
		MemoryBytes: w.cfg.MemoryBytes, Graph: graphToProto(w.cfg.Graph),
		GraphFingerprint: graphspec.Fingerprint(w.cfg.Graph),
	}
	backoff := w.cfg.MinBackoff
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := client.Register(cctx, req)
		cancel()
		if err == nil {
			interval := resp.GetHeartbeatInterval().AsDuration()
			if interval <= 0 {
				interval = DefaultHeartbeatInterval
			}
			w.mu.Lock()
			if w.session != "" && resp.GetSession() != w.session {
				w.mu.Unlock()
				return 0, ErrMasterRestarted
			}
			w.id, w.incarnation, w.session = resp.GetWorkerId(), resp.GetIncarnation(), resp.GetSession()
			w.mu.Unlock()
			w.once.Do(func() { close(w.registered) })
			w.cfg.Logger.Info("cluster: registered with master", "worker", resp.GetWorkerId(), "master", w.cfg.Master)
			return interval, nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument:
			return 0, fmt.Errorf("cluster: master %s refused this worker: %w", w.cfg.Master, err)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		w.cfg.Logger.Debug("cluster: master not reachable yet; retrying", "master", w.cfg.Master, "err", err, "backoff", backoff)
		jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		if err := w.cfg.Clock.WaitUntil(ctx, w.cfg.Clock.Now().Add(backoff+jitter)); err != nil {
			return 0, err
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// heartbeat sends a heartbeat every interval until ctx is done or the
// master answers NOT_FOUND or UNAUTHENTICATED; other failures are logged and
// the next heartbeat is tried on time.
func (w *Worker) heartbeat(ctx context.Context, client clusterpb.ClusterClient, interval time.Duration) error {
	w.mu.Lock()
	req := &clusterpb.HeartbeatRequest{WorkerId: w.id, Incarnation: w.incarnation}
	w.mu.Unlock()
	next := w.cfg.Clock.Now()
	for {
		next = next.Add(interval)
		if err := w.cfg.Clock.WaitUntil(ctx, next); err != nil {
			return err
		}
		if w.cfg.Stats != nil {
			req.MemoryUsedBytes, req.Blocks = w.cfg.Stats()
		}
		if w.cfg.Dropped != nil {
			req.ReceiverDropped = w.cfg.Dropped()
		}
		cctx, cancel := context.WithTimeout(ctx, max(2*interval, time.Second))
		resp, err := client.Heartbeat(cctx, req)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			if t := resp.GetLatestInterval(); t > 0 && w.cfg.OnLatest != nil {
				w.cfg.OnLatest(t)
			}
		case codes.NotFound, codes.Unauthenticated, codes.PermissionDenied:
			return err
		default:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.cfg.Logger.Warn("cluster: heartbeat failed", "master", w.cfg.Master, "err", err)
		}
		if now := w.cfg.Clock.Now(); next.Before(now.Add(-interval)) {
			next = now // fell behind (slow master): do not burst
		}
	}
}
