package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Program is a worker's copy of the program: the same graph as the
// master's, never run by its own clock, fed the master's interval manifests.
type Program interface {
	Graph() []graphspec.Node
	Datasets() *rdd.Context
	// Learn makes interval m known (manifests arrive in time order).
	Learn(m *manifest.Interval) error
	// Lineage returns the lineage holding the dataset (or, for a map task,
	// the shuffle) spec names, built from the manifests learned.
	Lineage(spec rdd.TaskSpec) (*rdd.Lineage, error)
}

// DeltaLearner is a Program that learns an interval from what changed
// since the one it learned before (an optional capability of Program).
type DeltaLearner interface {
	// LearnChanged is Learn(m) for a manifest whose checkpoint entries
	// other than changed (those new or different) are those of the
	// manifest the program learned last, with Learn or LearnChanged. It
	// must leave the program exactly where Learn(m) would.
	LearnChanged(m *manifest.Interval, changed []manifest.Checkpoint) error
}

// Receivers is what a Program that can run receivers for its master
// implements (an optional capability of Program).
type Receivers interface {
	// StartReceiver opens the receiver of input stream and runs it until
	// StopReceiver; it returns where the receiver takes records in (a
	// socket's address; "" if nowhere in particular). Each block goes
	// through env: stored here, replicated, reported.
	StartReceiver(stream int32, env ReceiverEnv) (addr string, err error)
	// StopReceiver stops it and returns once every block it took in is
	// stored and reported, with the records it took in; with now (a hard
	// stop) blocks waiting for room are dropped instead.
	StopReceiver(stream int32, now bool) (records int64, err error)
}

// ReceiverEnv is what a receiver running in a worker needs from the cluster.
type ReceiverEnv struct {
	// Self is this worker's address; Peers are the other workers; Master
	// is the master's, which keeps a replica when no peer takes one.
	Self   string
	Peers  []string
	Master string
	// Put stores an encoded replica of an input block on the peer at addr.
	Put func(ctx context.Context, addr, key string, data []byte) error
	// Report tells the master about a stored block.
	Report func(ctx context.Context, b BlockReport) error
}

// BlockReport is a block a receiver on a worker stored.
type BlockReport struct {
	Stream         int32
	Key            string
	Records, Bytes int64
	Locations      []string
	// Failure, when set, reports no block but that the receiver cannot
	// store its blocks: the master stops the job with it.
	Failure string
}

// Rejoiner is a Program that can follow its master through a restart (an
// optional capability of Program): without it, a worker whose master
// restarted exits with ErrMasterRestarted.
type Rejoiner interface {
	// Reset forgets everything learned from the master (intervals,
	// datasets, map outputs, state), keeping only the input blocks it
	// holds, whose keys it returns.
	Reset() (held []string, err error)
	// Drop drops input blocks the new master does not need.
	Drop(keys []string)
}

// ErrReleased is Host.Run's error when the master released the worker: it
// is stopping gracefully, and the worker's work is done.
var ErrReleased = errors.New("cluster: released by the master")

// HostConfig configures a worker process's runtime.
type HostConfig struct {
	// Master is the master's host:port, or a comma-separated list of them
	// (WorkerConfig.Master): the host follows the master its Worker
	// follows, for learning intervals, reporting blocks, its fallback
	// block reads and MasterStore.
	Master string
	// ID is the worker's id; empty lets the master assign one.
	ID string
	// Listen is where the worker serves its peers (default 127.0.0.1:0);
	// Advertise is the address peers dial (default: the listener's).
	Listen, Advertise string
	Slots             int
	MemoryBytes       int64
	Secret            []byte
	TLS               *TLS // mutual TLS, if set (LoadTLS)
	Program           Program
	Logger            *slog.Logger
	// TaskDelay makes every task wait this long before it runs: a fault
	// injected to make this worker a straggler (drills, speculation
	// figures). Zero in production.
	TaskDelay time.Duration
	// Network is what the host listens and dials on (nil: TCP).
	Network Network
	// GiveUp is how long the worker tries to reach a master that went
	// away without releasing it (WorkerConfig.GiveUp; zero: DefaultGiveUp).
	GiveUp time.Duration
	// Failover is how long a master of a list may stay unreachable before
	// the worker tries the next (WorkerConfig.Failover; zero:
	// DefaultFailover).
	Failover time.Duration
}

// Host is a worker process's runtime: it serves the Peer service (tasks,
// buckets, blocks), registers with the master and heartbeats.
type Host struct {
	cfg   HostConfig
	peers *Peers
	lis   net.Listener
	addr  string

	masters []string               // ParseMasters(cfg.Master)
	worker  atomic.Pointer[Worker] // set by Run: it knows the current master
	// following is the master this host learns from, reports to and reads
	// the master's store of: the one that accepted the worker's latest
	// registration, or the one it rejoined (before registering there).
	// Session and address change together, so a task of that master reads
	// from that master even while the worker tries another of its list
	// (Worker.Master), and manifests are learned only from that session.
	following atomic.Pointer[follow]

	// learning is a lock held while learning intervals from the master (a
	// call that may wait long): a channel, so a task waiting for it gives
	// up when its context ends.
	learning chan struct{}
	known    int64 // the latest interval learned (Unix ms)
	// learned is the manifest learned last, from the master of session
	// learnedFrom: the base of the delta frames the next answer may start
	// with. Both are guarded by the learning lock.
	learned     *manifest.Interval
	learnedSum  uint64 // learned's Sum
	learnedFrom string

	// learnMu guards learnCtx, which every learning call runs under:
	// rejoin cancels it, so a call waiting for a master that is gone does
	// not hold the learning lock for its whole timeout.
	learnMu     sync.Mutex
	learnCtx    context.Context
	learnCancel context.CancelFunc

	released     chan struct{} // closed by Release
	releaseOnce  sync.Once
	releaseCause atomic.Value // string: the master's reason

	handoverMu   sync.Mutex
	handover     *time.Timer // a release handed over: fires unless a master takes the worker
	handoverFrom string      // the session of the master that handed the worker over
}

// NewHost listens and returns a host; Run serves.
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.Program == nil {
		return nil, errors.New("cluster: a worker host needs its program")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	masters, err := ParseMasters(cfg.Master)
	if err != nil {
		return nil, fmt.Errorf("cluster: worker host: %w", err)
	}
	lis, err := Listen(cfg.Network, cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: worker cannot listen: %w", err)
	}
	addr := Advertised(cfg.Advertise, lis.Addr())
	learnCtx, learnCancel := context.WithCancel(context.Background())
	return &Host{masters: masters, learnCtx: learnCtx, learnCancel: learnCancel, cfg: cfg, peers: NewPeers(cfg.Secret, cfg.TLS, cfg.Network), lis: lis, addr: addr, learning: make(chan struct{}, 1), released: make(chan struct{})}, nil
}

// follow is a master process a host follows: its session and address.
type follow struct{ session, addr string }

// Addr returns the address peers dial.
func (h *Host) Addr() string { return h.addr }

// Master returns the address of the master this worker follows: the one
// that accepted its latest registration (or that it is rejoining); before
// the first, the one its Worker tries.
func (h *Host) Master() string {
	if f := h.following.Load(); f != nil {
		return f.addr
	}
	if w := h.worker.Load(); w != nil {
		return w.Master()
	}
	return h.masters[0]
}

// session returns the session of the master this worker follows ("" before
// its first registration).
func (h *Host) session() string {
	if f := h.following.Load(); f != nil {
		return f.session
	}
	return ""
}

// Remote is what jobs the worker's program runs by itself (a sort's
// sampling job, while it builds an interval's datasets) read other
// processes' blocks with; they compute any shuffle they need themselves.
func (h *Host) Remote() rdd.Remote {
	return &remote{peers: h.peers, self: h.addr, fallback: h.Master, mapOutput: func(rdd.ID, int) string { return "" }}
}

// MasterStore is the checkpoint store the master serves (objects.go),
// reached through this worker's connections; it works while Run does, and
// follows the current master (Master).
func (h *Host) MasterStore() *RemoteStore { return NewRemoteStoreOf(h.peers, h.Master) }

// Run serves until ctx is done (nil), the master releases the worker
// (ErrReleased), or the worker gives up on its master (the errors of
// Worker.Run).
func (h *Host) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.released:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.run(ctx)
	select {
	case <-h.released:
		reason, _ := h.releaseCause.Load().(string)
		h.cfg.Logger.Info("cluster: the master released this worker", "reason", reason)
		return ErrReleased
	default:
	}
	return err
}

// Release implements Releaser: the master is stopping gracefully. A
// release with a handover (the master gave up the lease of its checkpoint
// location, so a standby may take the job over) releases the worker only
// if no new master takes it within the handover: the worker follows its
// list of masters (or its address) meanwhile, as when its master is gone,
// and a master that takes it (Rejoin) cancels the release.
func (h *Host) Release(ctx context.Context, req *clusterpb.ReleaseRequest) (*clusterpb.ReleaseResponse, error) {
	reason := req.GetReason()
	wait := req.GetHandover().AsDuration()
	if req.GetHandover() == nil || wait <= 0 {
		h.release(reason)
		return &clusterpb.ReleaseResponse{}, nil
	}
	h.handoverMu.Lock()
	defer h.handoverMu.Unlock()
	if w := h.worker.Load(); w != nil {
		w.HandOver()
		h.handoverFrom = w.Session()
	}
	if s := req.GetSession(); s != "" {
		// The master's word: the worker's own may not be known yet (the
		// master accepted its registration, whose answer is on its way).
		h.handoverFrom = s
	}
	if h.handover == nil {
		h.cfg.Logger.Info("cluster: the master hands the job over; waiting for the next master", "reason", reason, "wait", wait)
		h.handover = time.AfterFunc(wait, func() {
			h.release(fmt.Sprintf("%s; no master took the job over within %v", reason, wait))
		})
	}
	return &clusterpb.ReleaseResponse{}, nil
}

// release releases the worker: Run returns ErrReleased.
func (h *Host) release(reason string) {
	h.releaseOnce.Do(func() {
		h.releaseCause.Store(reason)
		close(h.released)
	})
}

// registered follows the master (session, at addr) that accepted the
// worker, and cancels a handed-over release when it is another than the one
// that handed the worker over.
func (h *Host) registered(session, addr string) {
	h.following.Store(&follow{session: session, addr: addr})
	h.handoverMu.Lock()
	defer h.handoverMu.Unlock()
	if h.handover == nil || session == h.handoverFrom {
		return
	}
	if h.handover.Stop() {
		h.cfg.Logger.Info("cluster: a new master took the job over")
	}
	h.handover = nil
}

// rejoin makes the program forget the old master's run (Rejoiner.Reset) and
// this host forget the intervals it learned, with no interval being learned
// meanwhile, and follows the new master (session, at addr).
func (h *Host) rejoin(ctx context.Context, session, addr string) ([]string, error) {
	rj, ok := h.cfg.Program.(Rejoiner)
	if !ok {
		return nil, ErrMasterRestarted
	}
	h.learnMu.Lock()
	h.learnCancel() // what is being learned is the old master's
	h.learnCtx, h.learnCancel = context.WithCancel(context.Background())
	h.learnMu.Unlock()
	select {
	case h.learning <- struct{}{}:
		defer func() { <-h.learning }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	held, err := rj.Reset()
	if err != nil {
		return nil, err
	}
	h.known, h.learned, h.learnedSum, h.learnedFrom = 0, nil, 0, ""
	h.following.Store(&follow{session: session, addr: addr})
	return held, nil
}

func (h *Host) run(ctx context.Context) error {
	defer h.peers.Close()
	g := guard{token: authToken(h.cfg.Secret), log: h.cfg.Logger}
	srv := g.server(DefaultHandshakeTimeout, DefaultHeartbeatInterval, h.cfg.TLS)
	rc := h.cfg.Program.Datasets()
	clusterpb.RegisterPeerServer(srv, NewPeerServer(Stores{Blocks: rc.Blocks(), Shuffles: rc.Shuffles()}, h))
	go srv.Serve(h.lis)
	defer srv.Stop()
	wc := WorkerConfig{
		Master: h.cfg.Master, ID: h.cfg.ID, Address: h.addr, Slots: h.cfg.Slots,
		MemoryBytes: h.cfg.MemoryBytes, Graph: h.cfg.Program.Graph(), Secret: h.cfg.Secret, TLS: h.cfg.TLS, Logger: h.cfg.Logger, Network: h.cfg.Network,
		GiveUp: h.cfg.GiveUp, Failover: h.cfg.Failover,
	}
	if rj, ok := h.cfg.Program.(Rejoiner); ok {
		wc.Rejoin = func(session, addr string) ([]string, error) { return h.rejoin(ctx, session, addr) }
		wc.Kept = func(offered, kept []string) {
			keep := make(map[string]bool, len(kept))
			for _, k := range kept {
				keep[k] = true
			}
			var drop []string
			for _, k := range offered {
				if !keep[k] {
					drop = append(drop, k)
				}
			}
			rj.Drop(drop)
		}
	}
	wc.Registered = h.registered
	if s, ok := h.cfg.Program.(interface{ BlockStats() (used, blocks int64) }); ok {
		wc.Stats = s.BlockStats
	}
	if d, ok := h.cfg.Program.(interface{ ReceiverDropped() map[int32]int64 }); ok {
		wc.Dropped = d.ReceiverDropped
	}
	// Between tasks, heartbeats keep the worker's intervals current, so it
	// forgets what the master's later intervals no longer need (input
	// replicas above all) even when it runs nothing for a while.
	learning := make(chan struct{}, 1)
	wc.OnLatest = func(t int64) {
		select {
		case learning <- struct{}{}:
			go func() {
				defer func() { <-learning }()
				if err := h.learnUpTo(ctx, t); err != nil && ctx.Err() == nil {
					h.cfg.Logger.Warn("cluster: worker could not learn the latest intervals", "upTo", t, "err", err)
				}
			}()
		default: // already learning
		}
	}
	w, err := NewWorker(wc)
	if err != nil {
		return err
	}
	h.worker.Store(w)
	return w.Run(ctx)
}

// RunTask implements TaskRunner.
func (h *Host) RunTask(ctx context.Context, req *clusterpb.RunTaskRequest) (*clusterpb.RunTaskResponse, error) {
	var spec rdd.TaskSpec
	if err := json.Unmarshal(req.GetSpec(), &spec); err != nil {
		return nil, fmt.Errorf("task spec: %w", err)
	}
	fail := func(err error) (*clusterpb.RunTaskResponse, error) {
		return &clusterpb.RunTaskResponse{Failure: failureOf(err)}, nil
	}
	sent := sentManifests{session: req.GetManifestsSession(), after: req.GetManifestsAfter(), frames: req.GetManifests()}
	if err := h.learn(ctx, taskTime(spec), sent); err != nil {
		return fail(err)
	}
	lin, err := h.cfg.Program.Lineage(spec)
	if err != nil {
		return fail(err)
	}
	outs := map[rdd.ID][]string{}
	empties := map[rdd.ID][][]byte{}
	for _, mo := range req.GetMapOutputs() {
		id := idFromProto(mo.GetShuffle())
		outs[id] = mo.GetAddresses()
		if e := mo.GetEmptyBuckets(); len(e) > 0 {
			empties[id] = e
		}
	}
	tc := rdd.NewTaskContext(ctx, int(req.GetJob()), int(req.GetStage()), spec.Partition, spec.Attempt)
	tc.Location = h.addr
	tc.Remote = &remote{peers: h.peers, self: h.addr, fallback: h.Master, mapOutput: func(s rdd.ID, m int) string {
		if a := outs[s]; m < len(a) {
			return a[m]
		}
		return ""
	}, empty: func(s rdd.ID, m, r int) bool {
		e := empties[s]
		return m >= 0 && m < len(e) && rdd.BucketEmpty(e[m], r)
	}}
	tc.PushTo = pushTargets(req.GetPushPeers(), req.GetPushTo())
	if d := h.cfg.TaskDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	res, err := lin.Execute(tc, spec)
	if err != nil {
		return fail(err)
	}
	b, err := lin.EncodeResult(spec, res)
	if err != nil {
		return fail(err)
	}
	return &clusterpb.RunTaskResponse{Result: b, Pinned: pinnedToProto(tc.Pinned()), EmptyBuckets: tc.EmptyBuckets()}, nil
}

// learnUpTo learns every interval up to t the master remembers and this
// worker does not know yet.
//
// It asks for delta frames (manifest.Delta): each is applied to the
// manifest learned before it (the one before it in the answer, or, for the
// first, the manifest this worker learned last from the same master
// process), and the program learns the whole manifest, as if the master
// had sent it whole. A delta relative to another manifest than the one
// known (which a master that follows the protocol never sends) is not
// applied: the worker asks again for full frames.
func (h *Host) learnUpTo(ctx context.Context, t int64) error {
	return h.learn(ctx, t, sentManifests{})
}

// sentManifests are the manifests a task carries (RunTaskRequest): the
// frames of the intervals in (after, the task's interval] that the master
// of session remembers, deltas included.
type sentManifests struct {
	session string
	after   int64
	frames  [][]byte
}

// learn is learnUpTo with the manifests a task carries: when they come from
// the master this host follows, start no later than what it knows, and fit
// what it learned (a delta's base), it learns them without asking (one
// round trip fewer before an interval's first task on this worker);
// otherwise, or for what they leave out, it asks, as learnUpTo does.
func (h *Host) learn(ctx context.Context, t int64, sent sentManifests) error {
	select {
	case h.learning <- struct{}{}:
		defer func() { <-h.learning }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if t <= h.known {
		return nil
	}
	if len(sent.frames) > 0 && sent.session != "" && sent.session == h.session() && sent.after <= h.known {
		err := h.learnFrames(sent.frames, sent.session, true)
		if err == nil {
			h.known = max(h.known, t)
			return nil
		}
		if !errors.Is(err, errDeltaBase) {
			return err
		}
		// What it learned stays learned; it asks for the rest.
	}
	conn, err := h.peers.Conn(h.Master())
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h.learnMu.Lock()
	stop := context.AfterFunc(h.learnCtx, cancel)
	h.learnMu.Unlock()
	defer stop()
	for _, deltas := range []bool{true, false} {
		err := h.learnFrom(cctx, clusterpb.NewClusterClient(conn), t, deltas)
		if !errors.Is(err, errDeltaBase) {
			return err
		}
		h.cfg.Logger.Warn("cluster: a manifest delta from the master does not fit what this worker knows; asking for full manifests", "err", err)
	}
	return fmt.Errorf("learning intervals up to %d from the master: full manifests asked for, a delta came", t)
}

// errDeltaBase is learnFrom's error for a delta frame relative to another
// manifest than the one the worker knows.
var errDeltaBase = errors.New("manifest delta relative to a manifest this worker does not know")

// learnFrom makes one Manifests call for the intervals in (known, t],
// asking for delta frames or not, and learns them; the learning lock is
// held.
func (h *Host) learnFrom(ctx context.Context, cc clusterpb.ClusterClient, t int64, deltas bool) error {
	req := &clusterpb.ManifestsRequest{After: h.known, UpTo: t, Deltas: deltas}
	if deltas && h.learned != nil {
		req.Base, req.BaseSession = h.learned.Time, h.learnedFrom
	}
	// Wait for a connection (within the timeout) rather than fail at once
	// while a reset one waits out gRPC's reconnection backoff: a worker
	// can do nothing without its master's intervals.
	resp, err := cc.Manifests(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("learning intervals up to %d from the master: %w", t, err)
	}
	if s := h.session(); s != "" && resp.GetSession() != s {
		// The master at this address is another process than the one
		// this worker follows (it restarted): its intervals are not
		// learned into the old one's; the worker rejoins it first.
		return fmt.Errorf("learning intervals up to %d: the master answering is not the one this worker follows (it restarted); rejoining it first", t)
	}
	if err := h.learnFrames(resp.GetFrames(), resp.GetSession(), deltas); err != nil {
		return err
	}
	h.known = max(h.known, t)
	return nil
}

// learnFrames learns, in order, the intervals of frames (a master's, in
// time order, from session) this host does not know yet. A delta frame is
// applied to the manifest learned last, which must be its base and come
// from session (else errDeltaBase); deltas false refuses every delta. The
// learning lock is held.
func (h *Host) learnFrames(frames [][]byte, session string, deltas bool) error {
	// The base of the first frame: what was learned last, if from the
	// master that sent the frames.
	base, baseSum := h.learned, h.learnedSum
	if h.learnedFrom != session {
		base = nil
	}
	dl, _ := h.cfg.Program.(DeltaLearner)
	for _, f := range frames {
		m, d, _, err := manifest.Decode(f)
		if err != nil {
			return fmt.Errorf("manifest from the master: %w", err)
		}
		if t := frameTime(m, d); t <= h.known {
			continue // learned already (sent with another task, or asked for meanwhile)
		}
		var sum uint64
		if d != nil {
			if !deltas || base == nil || base.Time != d.Base {
				knows := "none"
				if base != nil {
					knows = fmt.Sprint(base.Time)
				}
				return fmt.Errorf("%w: interval %d relative to interval %d, this worker knows %s", errDeltaBase, d.Time, d.Base, knows)
			}
			if m, sum, err = d.ApplySummed(base, baseSum); errors.Is(err, manifest.ErrBase) {
				return fmt.Errorf("%w: %w", errDeltaBase, err)
			} else if err != nil {
				return fmt.Errorf("manifest delta from the master: %w", err)
			}
			// base is the manifest the program learned last.
			if dl != nil {
				err = dl.LearnChanged(m, d.Checkpoints)
			} else {
				err = h.cfg.Program.Learn(m)
			}
		} else {
			sum = m.Sum()
			err = h.cfg.Program.Learn(m)
		}
		if err != nil {
			return err
		}
		h.known = max(h.known, m.Time)
		h.learned, h.learnedSum, h.learnedFrom = m, sum, session
		base, baseSum = m, sum
	}
	return nil
}

// frameTime is the interval of a decoded frame: its manifest's, or its
// delta's.
func frameTime(m *manifest.Interval, d *manifest.Delta) int64 {
	if d != nil {
		return d.Time
	}
	return m.Time
}

// taskTime is the latest interval a worker must know to run spec.
func taskTime(spec rdd.TaskSpec) int64 {
	t := spec.Dataset.Time
	if spec.Shuffle != nil {
		t = max(t, spec.Shuffle.Time)
	}
	return t
}

// Advertised is the address peers reach a listener at: adv when given, else
// the listener's own, with this host's name for an unspecified host
// (0.0.0.0 or ::).
func Advertised(adv string, a net.Addr) string {
	if adv != "" {
		return adv
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return a.String()
}

// StartReceiver implements ReceiverRunner.
func (h *Host) StartReceiver(ctx context.Context, req *clusterpb.StartReceiverRequest) (*clusterpb.StartReceiverResponse, error) {
	rs, ok := h.cfg.Program.(Receivers)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this worker's program runs no receivers")
	}
	var peers []string
	for _, p := range req.GetPeers() {
		if p != h.addr {
			peers = append(peers, p)
		}
	}
	addr, err := rs.StartReceiver(req.GetStream(), ReceiverEnv{
		Self: h.addr, Peers: peers, Master: h.Master(),
		Put: func(ctx context.Context, addr, key string, data []byte) error {
			return h.peers.Put(ctx, addr, key, "input", data)
		},
		Report: h.report,
	})
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &clusterpb.StartReceiverResponse{Address: addr}, nil
}

// RateSetter is a Program whose receivers' rates the master may change (an
// optional capability of Receivers).
type RateSetter interface {
	// SetReceiverRate sets the records per second the receiver of stream
	// takes in (0: no limit).
	SetReceiverRate(stream int32, rate int) error
}

// SetReceiverRate implements ReceiverRates.
func (h *Host) SetReceiverRate(ctx context.Context, req *clusterpb.SetReceiverRateRequest) (*clusterpb.SetReceiverRateResponse, error) {
	rs, ok := h.cfg.Program.(RateSetter)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this worker's program sets no receiver rates")
	}
	if req.GetRate() < 0 || req.GetRate() > math.MaxInt32 {
		return nil, status.Errorf(codes.InvalidArgument, "rate %d: want 0 (no limit) to %d records per second", req.GetRate(), math.MaxInt32)
	}
	if err := rs.SetReceiverRate(req.GetStream(), int(req.GetRate())); err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return &clusterpb.SetReceiverRateResponse{}, nil
}

// StopReceiver implements ReceiverRunner.
func (h *Host) StopReceiver(ctx context.Context, req *clusterpb.StopReceiverRequest) (*clusterpb.StopReceiverResponse, error) {
	rs, ok := h.cfg.Program.(Receivers)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this worker's program runs no receivers")
	}
	n, err := rs.StopReceiver(req.GetStream(), req.GetNow())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &clusterpb.StopReceiverResponse{Records: n}, nil
}

// report tells the master about a block a receiver here stored.
func (h *Host) report(ctx context.Context, b BlockReport) error {
	conn, err := h.peers.Conn(h.Master())
	if err != nil {
		return err
	}
	_, err = clusterpb.NewClusterClient(conn).AddBlock(ctx, &clusterpb.AddBlockRequest{
		Stream: b.Stream, Key: b.Key, Records: b.Records, Bytes: b.Bytes, Locations: b.Locations, Failure: b.Failure})
	return err
}
