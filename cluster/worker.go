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
	// DefaultGiveUp is how long a worker keeps trying to reach a master
	// that went away without releasing it (a crash, a network partition, a
	// master being restarted) before it exits with ErrMasterGone: long
	// enough for a supervisor to restart the master, short enough that a
	// worker of a job that is gone for good does not linger. Spark's
	// standalone workers retry for about as long (16 attempts, the last
	// ones a minute apart).
	DefaultGiveUp = 5 * time.Minute
	// failureLogEvery bounds how often a worker that cannot reach its
	// master says so: the first failure, then one line per period.
	failureLogEvery = 30 * time.Second
)

// WorkerConfig configures a Worker. Master, Slots and Graph are required.
type WorkerConfig struct {
	// Master is the master's host:port, or a comma-separated list of
	// them (ParseMasters): the worker follows the first that answers as
	// the active master, and moves to the next, round robin, when the one
	// it follows is gone or a standby (see DefaultFailover).
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
	// attempts, and between heartbeats, while the master is unreachable.
	MinBackoff, MaxBackoff time.Duration
	// GiveUp is how long the worker tries to reach an unreachable master
	// (one that never answered, or stopped answering) before Run returns
	// ErrMasterGone; zero means DefaultGiveUp. A master that stops
	// gracefully releases its workers instead (Peer.Release).
	GiveUp time.Duration
	// Failover is how long a master of a list that answered before may
	// stay unreachable before the worker tries the next address; zero
	// means DefaultFailover. Unused with a single address.
	Failover time.Duration
	// Rejoin, if set, is called before the worker registers with a master
	// process other than the one it served (the master restarted with the
	// same program): it must forget everything it learned from the old
	// one, and returns the input blocks it still holds, which it offers
	// the new master. Kept is then called with the offered blocks the new
	// master needs (the others may go). Moving to another master of the
	// list is rejoining it the same way. It is given the new master's
	// session and address. Without Rejoin, Run returns
	// ErrMasterRestarted instead.
	Rejoin func(session, master string) (held []string, err error)
	Kept   func(offered, kept []string)
	// Registered, if set, is called after every accepted registration,
	// with the session and the address of the master that accepted it.
	Registered func(session, master string)
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
	masters    []string // ParseMasters(cfg.Master)
	registered chan struct{}
	once       sync.Once

	mu          sync.Mutex
	cur         int  // the index in masters of the master followed
	handedOver  bool // the master followed hands the job over (HandOver)
	answered    bool // whether it answered since the worker moved to it
	id          string
	incarnation uint64
	session     string // the master process it serves
	lastContact time.Time
	failures    int       // calls the master did not answer since lastContact
	lastLogged  time.Time // when the last of them was logged
}

// ErrMasterRestarted is Run's error when the worker found a master that is
// not the one it joined first (it restarted) and has no WorkerConfig.Rejoin
// to forget the old master's run.
var ErrMasterRestarted = errors.New("cluster: the master restarted; this worker must restart to join it")

// ErrMasterGone is Run's error when the master stayed unreachable for
// WorkerConfig.GiveUp without having released the worker.
var ErrMasterGone = errors.New("cluster: the master is gone")

// ErrProgramChanged is Run's error when the master restarted with another
// program (its graph differs from this worker's): a worker runs its
// master's program, so it must be started again to run the new one.
var ErrProgramChanged = errors.New("cluster: the master restarted with a different program")

// NewWorker validates cfg and returns a worker; Run starts it.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Master == "" {
		return nil, errors.New("cluster: worker needs the master's address")
	}
	masters, err := ParseMasters(cfg.Master)
	if err != nil {
		return nil, fmt.Errorf("cluster: worker: %w", err)
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
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = DefaultGiveUp
	}
	if cfg.Failover <= 0 {
		cfg.Failover = DefaultFailover
	}
	cfg.Graph = slices.Clone(cfg.Graph)
	return &Worker{cfg: cfg, masters: masters, registered: make(chan struct{}), id: cfg.ID}, nil
}

// Master returns the address of the master the worker follows now: the
// first of its list until it moves on (see WorkerConfig.Master).
func (w *Worker) Master() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.masters[w.cur]
}

// errFailover is heartbeat's error when the worker moved to the next
// master of its list: it must register there.
var errFailover = errors.New("cluster: moved to the next master")

// failover moves to the next master of the list when there is one and the
// current one is given up on: it is a standby, it never answered, or it
// has not answered for Failover. It reports whether the worker moved.
func (w *Worker) failover(standby bool) bool {
	now := w.cfg.Clock.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.masters) < 2 || (!standby && !w.handedOver && w.answered && now.Sub(w.lastContact) < w.cfg.Failover) {
		return false
	}
	w.handedOver = false
	from := w.masters[w.cur]
	w.cur = (w.cur + 1) % len(w.masters)
	w.answered = false
	why := "unreachable"
	if standby {
		why = "a standby"
	}
	w.cfg.Logger.Warn("cluster: master "+why+"; trying the next one", "from", from, "to", w.masters[w.cur])
	return true
}

// HandOver says the master followed now is handing the job over to
// another (it released this worker with a handover): at its first
// unanswered call the worker moves to the next master of its list at
// once, rather than after Failover.
func (w *Worker) HandOver() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handedOver = true
}

// Session returns the session of the master that accepted the worker's
// latest registration ("" before the first).
func (w *Worker) Session() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.session
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
// longer knows this worker (it declared the worker lost, or restarted:
// then Rejoin first). It returns nil when ctx is done (closing its
// connection), and an error when the master refuses the worker for good
// (bad secret, different graph, invalid request), ErrProgramChanged,
// ErrMasterRestarted (no Rejoin) or ErrMasterGone (unreachable for
// GiveUp).
func (w *Worker) Run(ctx context.Context) error {
	clients := make(map[string]clusterpb.ClusterClient, len(w.masters))
	for _, addr := range w.masters {
		conn, err := newClient(addr, w.cfg.Network, dialOptions(w.cfg.Secret, w.cfg.TLS))
		if err != nil {
			return fmt.Errorf("cluster: worker: %w", err)
		}
		defer conn.Close()
		clients[addr] = clusterpb.NewClusterClient(conn)
	}
	client := func() clusterpb.ClusterClient { return clients[w.Master()] }
	w.contact(w.cfg.Clock.Now())
	w.mu.Lock()
	w.answered = false // none has answered yet
	w.mu.Unlock()
	for {
		interval, err := w.register(ctx, client)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := w.heartbeat(ctx, client(), interval); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errFailover) {
				continue // register with the next master (a rejoin)
			}
			if status.Code(err) != codes.NotFound {
				return err
			}
			w.cfg.Logger.Warn("cluster: master no longer knows this worker; registering again", "worker", w.ID())
		}
	}
}

// register registers, retrying with backoff on errors that may pass
// (master unreachable, id still held by a previous incarnation). A worker
// that served a master before asks the master's session first (Program):
// a new master is a restarted one, whose program must be this worker's,
// and the worker rejoins it (Rejoin) before it registers, so no task of
// the new master reaches what the old one taught it. The same goes for
// another master of the list: clientOf returns the current one's client.
func (w *Worker) register(ctx context.Context, clientOf func() clusterpb.ClusterClient) (time.Duration, error) {
	fp := graphspec.Fingerprint(w.cfg.Graph)
	backoff := w.cfg.MinBackoff
	for {
		req := &clusterpb.RegisterRequest{
			WorkerId: w.ID(), Address: w.cfg.Address, Pid: w.cfg.PID, Slots: int32(w.cfg.Slots),
			MemoryBytes: w.cfg.MemoryBytes, Graph: graphToProto(w.cfg.Graph), GraphFingerprint: fp,
		}
		addr := w.Master() // the master clientOf's client calls
		client := clientOf()
		w.mu.Lock()
		served := w.session
		w.mu.Unlock()
		err := error(nil)
		var offered []string
		var want string // the session the worker rejoined (empty: the one it serves)
		if served != "" {
			var info *clusterpb.ProgramResponse
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err = client.Program(cctx, &clusterpb.ProgramRequest{})
			cancel()
			if err == nil && info.GetSession() != served {
				if info.GetGraphFingerprint() != fp {
					return 0, fmt.Errorf("%w (graph fingerprint %s, this worker's %s): start this worker again to join it", ErrProgramChanged, info.GetGraphFingerprint(), fp)
				}
				if w.cfg.Rejoin == nil {
					return 0, ErrMasterRestarted
				}
				w.cfg.Logger.Info("cluster: a new master session; rejoining it", "master", w.Master())
				if offered, err = w.cfg.Rejoin(info.GetSession(), addr); err != nil {
					return 0, fmt.Errorf("cluster: rejoining the restarted master: %w", err)
				}
				want = info.GetSession()
				req.PreviousSession, req.HeldBlocks = served, offered
			}
		}
		var resp *clusterpb.RegisterResponse
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err = client.Register(cctx, req)
			cancel()
		}
		if err == nil {
			w.contact(w.cfg.Clock.Now())
			interval := resp.GetHeartbeatInterval().AsDuration()
			if interval <= 0 {
				interval = DefaultHeartbeatInterval
			}
			if want == "" {
				want = served
			}
			if want != "" && resp.GetSession() != want {
				// The master restarted (again) between the two calls: ask
				// again, and rejoin the one that answered. (This
				// registration expires unused.)
				continue
			}
			w.mu.Lock()
			w.id, w.incarnation, w.session = resp.GetWorkerId(), resp.GetIncarnation(), resp.GetSession()
			w.mu.Unlock()
			if req.PreviousSession != "" && w.cfg.Kept != nil {
				w.cfg.Kept(offered, resp.GetKeptBlocks())
			}
			w.once.Do(func() { close(w.registered) })
			if w.cfg.Registered != nil {
				w.cfg.Registered(resp.GetSession(), addr)
			}
			w.cfg.Logger.Info("cluster: registered with master", "worker", resp.GetWorkerId(), "master", w.Master())
			return interval, nil
		}
		standby := IsStandby(err)
		if !standby {
			switch status.Code(err) {
			case codes.Unauthenticated, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument:
				return 0, fmt.Errorf("cluster: master %s refused this worker: %w", w.Master(), err)
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := w.unreachable(err); err != nil {
			return 0, err
		}
		w.failover(standby)
		jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		if err := w.cfg.Clock.WaitUntil(ctx, w.cfg.Clock.Now().Add(backoff+jitter)); err != nil {
			return 0, err
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// contact notes that the master answered at now.
func (w *Worker) contact(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures > 0 {
		w.cfg.Logger.Info("cluster: the master answers again", "master", w.masters[w.cur], "failed_calls", w.failures)
	}
	w.lastContact, w.failures, w.lastLogged, w.answered = now, 0, time.Time{}, true
}

// unreachable notes a call the master did not answer (err): it logs the
// first, then at most one line per failureLogEvery, and returns
// ErrMasterGone once the master has not answered for GiveUp.
func (w *Worker) unreachable(err error) error {
	now := w.cfg.Clock.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failures++
	silent := now.Sub(w.lastContact)
	if silent >= w.cfg.GiveUp {
		return fmt.Errorf("%w: %s has not answered for %v (the worker gives up after %v): %v", ErrMasterGone, JoinMasters(w.masters), silent.Round(time.Second), w.cfg.GiveUp, err)
	}
	if w.lastLogged.IsZero() || now.Sub(w.lastLogged) >= failureLogEvery {
		w.lastLogged = now
		w.cfg.Logger.Warn("cluster: master not reachable; retrying", "master", w.masters[w.cur], "failed_calls", w.failures,
			"silent_for", silent.Round(time.Millisecond), "gives_up_in", (w.cfg.GiveUp - silent).Round(time.Second), "err", err)
	}
	return nil
}

// heartbeat sends a heartbeat every interval until ctx is done or the
// master answers NOT_FOUND or UNAUTHENTICATED; other failures are logged
// (at a bounded rate) and the next heartbeat is tried after a growing
// backoff, until the master has not answered for GiveUp (ErrMasterGone),
// or, with a list of masters, until the worker moves to the next one
// (errFailover: it answered as a standby, or not for Failover).
func (w *Worker) heartbeat(ctx context.Context, client clusterpb.ClusterClient, interval time.Duration) error {
	w.mu.Lock()
	req := &clusterpb.HeartbeatRequest{WorkerId: w.id, Incarnation: w.incarnation}
	w.mu.Unlock()
	next := w.cfg.Clock.Now()
	var backoff time.Duration
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
			w.contact(w.cfg.Clock.Now())
			backoff = 0
			if t := resp.GetLatestInterval(); t > 0 && w.cfg.OnLatest != nil {
				w.cfg.OnLatest(t)
			}
		case codes.NotFound, codes.Unauthenticated, codes.PermissionDenied:
			return err
		default:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := w.unreachable(err); err != nil {
				return err
			}
			if w.failover(IsStandby(err)) {
				return errFailover
			}
			// Back off while the master does not answer, up to MaxBackoff
			// between attempts (the heartbeat interval at least).
			backoff = min(max(2*backoff, w.cfg.MinBackoff), w.cfg.MaxBackoff)
			next = next.Add(max(backoff-interval, 0))
		}
		if now := w.cfg.Clock.Now(); next.Before(now.Add(-interval)) {
			next = now // fell behind (slow master): do not burst
		}
	}
}
