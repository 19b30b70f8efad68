package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/sched"
)

// Deployments. local[N] runs every task in this process. local-cluster[N]
// makes this process the master of N worker processes it starts on this
// machine: copies of its own program, told by their environment
// (cluster.WorkerEnv) to be workers. Every process builds the same graph;
// the master runs the intervals and sends each worker named tasks, which the
// worker computes in its own copy of the graph from the interval manifests
// it learns from the master. Input blocks are replicated to two workers
// before they are acknowledged; shuffle buckets, blocks and results are
// encoded only where they cross processes.

// clusterRole is a local-cluster master's side of the deployment.
type clusterRole struct {
	dep    deployment
	lis    net.Listener
	self   string // the master's cluster address
	secret []byte
	tls    *cluster.TLS
	peers  *cluster.Peers
	runner *cluster.Runner
	procs  WorkerProcs
	master atomic.Pointer[cluster.Master]
	cancel context.CancelFunc
	served chan struct{}

	mu     sync.Mutex
	alive  []string                // worker addresses, in the order they joined, each once
	at     map[string]registration // the registration holding each address
	next   int                     // where replica placement starts next
	joined chan struct{}
	ops    map[int32]bool // the graph's stream operators

	placeMu sync.Mutex // serialises placing receivers again after losses
}

// isAlive reports whether addr is the master or a worker in the cluster now.
func (cr *clusterRole) isAlive(addr string) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return addr == cr.self || slices.Contains(cr.alive, addr)
}

// workerRole is a worker process's side.
type workerRole struct {
	env         cluster.WorkerEnv
	stopProfile func() // ends the CPU profile, if one is written
	// gen serialises building datasets: generation names datasets in a
	// scope that is the context's one current scope (rdd.Context.InScope),
	// and a worker's tasks arrive concurrently. Learning intervals (adopting
	// checkpoints, forgetting) changes the streams too, under it.
	gen sync.Mutex

	recvMu    sync.Mutex
	receivers map[int32]*runningReceiver // what it runs for its master (receivers.go)

	remote lateRemote // the host's, for the worker's own jobs
	// masterStore is the checkpoint store its master serves: the worker's
	// checkpoint store unless the location is object storage
	// (CheckpointStore). Set once the host exists.
	masterStore atomic.Pointer[cluster.RemoteStore]

	hostDone chan struct{} // closed when the host has stopped serving
	beat     atomic.Int64  // when the host last heartbeated, Unix ns (health.go)
}

// lateRemote is an rdd.Remote set once the worker's host exists.
type lateRemote struct{ r atomic.Pointer[rdd.Remote] }

func (l *lateRemote) get() (rdd.Remote, error) {
	if r := l.r.Load(); r != nil {
		return *r, nil
	}
	return nil, fmt.Errorf("%w: the worker is not serving yet", rdd.ErrNotHeld)
}

func (l *lateRemote) Bucket(ctx context.Context, s rdd.ID, m, r int) ([]byte, error) {
	rem, err := l.get()
	if err != nil {
		return nil, err
	}
	return rem.Bucket(ctx, s, m, r)
}

func (l *lateRemote) Block(ctx context.Context, key string, locations []string) ([]byte, error) {
	rem, err := l.get()
	if err != nil {
		return nil, err
	}
	return rem.Block(ctx, key, locations)
}

// DefaultClusterListen is where a standalone master listens for workers.
const DefaultClusterListen = "127.0.0.1:7077"

// startTimeout bounds how long Start waits for local workers to join.
const startTimeout = 60 * time.Second

// deploy sets up the runner Master asks for (or, in a worker process, the
// worker's) and returns the default parallelism.
func (c *Engine) deploy(slots int) (int, error) {
	env, isWorker, err := c.cfg.workerEnv()
	if err != nil {
		return 0, err
	}
	if isWorker {
		c.worker = &workerRole{env: env}
		// Jobs a worker runs by itself (a sort samples its input while the
		// worker builds an interval's datasets) read the blocks they need
		// from their holders, once the host is up.
		c.shell = sched.NewShell(sched.ShellConfig{MaxAttempts: c.cfg.MaxTaskAttempts, Executor: sched.GoExecutor{Remote: &c.worker.remote}})
		c.shell.AddWorker(sched.LocalWorker, env.Slots)
		c.runner = c.shell
		if env.Parallelism > 0 {
			return env.Parallelism, nil
		}
		return slots, nil
	}
	d, _ := c.cfg.deployment()
	if d.workers == 0 && !d.standalone {
		c.shell = sched.NewLocal(sched.LocalConfig{Slots: slots, MaxAttempts: c.cfg.MaxTaskAttempts})
		c.runner = c.shell
		return slots, nil
	}
	addr, secret := "127.0.0.1:0", c.cfg.Secret
	if d.standalone {
		addr = cmp.Or(c.cfg.ClusterListen, DefaultClusterListen)
		if len(secret) == 0 && !c.cfg.Insecure {
			return 0, cluster.ErrNoSecret
		}
	} else {
		var err error
		if secret, err = cluster.GenerateSecret(); err != nil {
			return 0, err
		}
	}
	var tlsID *cluster.TLS
	if c.cfg.TLSCert != "" || c.cfg.TLSKey != "" || c.cfg.TLSCA != "" {
		var err error
		if tlsID, err = cluster.LoadTLS(c.cfg.TLSCert, c.cfg.TLSKey, c.cfg.TLSCA); err != nil {
			return 0, err
		}
	}
	lis, err := cluster.Listen(c.cfg.network(), addr)
	if err != nil {
		return 0, fmt.Errorf("cluster port: %w", err)
	}
	self := lis.Addr().String()
	if d.standalone {
		self = cluster.Advertised(c.cfg.ClusterAdvertise, lis.Addr())
	}
	cr := &clusterRole{dep: d, lis: lis, self: self, secret: secret, tls: tlsID, peers: cluster.NewPeers(secret, tlsID, c.cfg.network()), joined: make(chan struct{}, 1)}
	cr.runner = cluster.NewRunner(cluster.RunnerConfig{
		Self: cr.self, LocalSlots: d.slots, MaxAttempts: c.cfg.MaxTaskAttempts, Peers: cr.peers, Speculation: c.cfg.Speculation,
		Rebuildable: cr.rebuildable, Logger: c.log,
		Manifests: c.manifestFrames,
		Session: func() string {
			if m := cr.master.Load(); m != nil {
				return m.Session()
			}
			return ""
		},
		Unreachable: func(addr string, err error) {
			if m := cr.master.Load(); m != nil {
				m.Drop(addr, "unreachable: "+err.Error())
			}
		},
	})
	c.cluster, c.shell, c.runner = cr, cr.runner.Shell, cr.runner
	return slots, nil
}

// rebuildable reports whether a worker can build dataset id: a stream's
// dataset of an interval.
func (cr *clusterRole) rebuildable(id rdd.ID) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return id.Time > 0 && cr.ops[id.Op]
}

// startCluster serves the cluster port, starts the local workers and waits
// until every one has joined.
func (c *Engine) startCluster() error {
	cr := c.cluster
	cr.mu.Lock()
	cr.ops = map[int32]bool{}
	for _, n := range c.nodes {
		cr.ops[n.OpID()] = true
	}
	cr.mu.Unlock()
	args := os.Args[1:]
	if c.cfg.WorkerArgs != nil {
		args = c.cfg.WorkerArgs
	}
	// The master serves its checkpoint store to its workers unless that is
	// object storage they reach themselves: a folder of the master's, or,
	// for a job with state streams and no checkpoint location, a temporary
	// one (deleted at Stop). Nothing but the network is shared.
	var served checkpoint.Store
	if c.cfg.CheckpointDir == "" && c.hasState() {
		var err error
		if c.ckTemp, err = os.MkdirTemp(c.cfg.WorkDir, "dstream-checkpoint-"); err != nil {
			c.stopCluster()
			return fmt.Errorf("checkpoint folder: %w", err)
		}
	}
	if loc := c.checkpointFolder(); loc != "" && !isObjectStorage(loc) {
		var err error
		if served, err = c.CheckpointStore(); err != nil {
			c.stopCluster()
			return err
		}
	}
	m, err := cluster.NewMaster(cluster.MasterConfig{
		Secret: cr.secret, Insecure: len(cr.secret) == 0, TLS: cr.tls, Graph: c.Graph(), Logger: c.log,
		Program:   cluster.ProgramInfo{Args: args, Parallelism: c.rctx.Parallelism()},
		Peer:      cluster.NewPeerServer(cluster.Stores{Blocks: c.blocks, Shuffles: c.shuffles, Checkpoint: served}, nil),
		Manifests: c.manifestFrames,
		AddBlock:  c.addRemoteBlock,
		Rejoined:  c.rejoined,
		Latest:    c.manifests.Latest,
		OnEvent:   func(ev cluster.Event) { cr.onEvent(c, ev) },
	})
	if err != nil {
		c.stopCluster()
		return err
	}
	cr.master.Store(m)
	ctx, cancel := context.WithCancel(context.Background())
	cr.cancel, cr.served = cancel, make(chan struct{})
	go func() {
		defer close(cr.served)
		if err := m.Serve(ctx, cr.lis); err != nil {
			c.log.Error("cluster port failed", "addr", cr.self, "err", err)
		}
	}()
	sc := cluster.SpawnConfig{N: cr.dep.workers, Master: cr.self, Secret: cr.secret,
		Slots: cr.dep.slots, Parallelism: c.rctx.Parallelism(), Logger: c.log}
	if cr.tls != nil {
		sc.TLSFiles = [3]string{c.cfg.TLSCert, c.cfg.TLSKey, c.cfg.TLSCA}
	}
	if c.cfg.WorkerArgs != nil {
		exe, err := os.Executable()
		if err != nil {
			c.stopCluster()
			return err
		}
		sc.Executable, sc.Args = exe, c.cfg.WorkerArgs
	}
	if cr.dep.standalone {
		c.log.Info("cluster: master waiting for workers", "cluster_listen", cr.self, "secret", len(cr.secret) > 0)
		return nil
	}
	if c.cfg.Sim != nil && c.cfg.Sim.Spawn != nil {
		cr.procs, err = c.cfg.Sim.Spawn(sc)
	} else {
		cr.procs, err = cluster.Spawn(sc)
	}
	if err != nil {
		c.stopCluster()
		return err
	}
	exited, why := cr.procs.Exited()
	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	for {
		cr.mu.Lock()
		n := len(cr.alive)
		cr.mu.Unlock()
		if n >= cr.dep.workers {
			c.log.Info("cluster: local workers joined", "master", cr.self, "workers", n, "pids", cr.procs.PIDs())
			return nil
		}
		select {
		case <-cr.joined:
		case <-exited:
			c.stopCluster()
			return fmt.Errorf("local-cluster: %w before it joined (its log is above)", why())
		case <-timeout.C:
			c.stopCluster()
			return fmt.Errorf("local-cluster: %d of %d workers joined within %v", n, cr.dep.workers, startTimeout)
		}
	}
}

// onEvent feeds a membership change to the scheduler.
func (cr *clusterRole) onEvent(c *Engine, ev cluster.Event) {
	// The scheduler knows workers by address; the registry by id and
	// incarnation. A process that restarts at the same address registers
	// anew before its old registration expires: the new one replaces the
	// old in the scheduler (what the old one held is gone), and the old
	// one's expiry later changes nothing.
	addr, id := ev.Worker.Address, registration{ev.Worker.ID, ev.Worker.Incarnation}
	switch ev.Kind {
	case cluster.WorkerAdded:
		cr.mu.Lock()
		_, restarted := cr.at[addr]
		if cr.at == nil {
			cr.at = map[string]registration{}
		}
		cr.at[addr] = id
		if !restarted {
			cr.alive = append(cr.alive, addr)
		}
		cr.mu.Unlock()
		if restarted {
			cr.runner.LoseWorker(addr)
			cr.peers.Drop(addr)
			c.loseHolder(addr)
			c.reprotect(addr)
		}
		cr.runner.AddWorker(addr, ev.Worker.Slots)
		c.noteProgress() // the intervals waiting for a worker can move now
		select {
		case cr.joined <- struct{}{}:
		default:
		}
		c.log.Info("cluster: worker joined", "worker", ev.Worker.ID, "addr", addr, "pid", ev.Worker.PID, "slots", ev.Worker.Slots)
	case cluster.WorkerLost:
		cr.mu.Lock()
		if cr.at[addr] != id {
			cr.mu.Unlock()
			return // an earlier registration at an address a newer one holds
		}
		delete(cr.at, addr)
		cr.alive = slices.DeleteFunc(cr.alive, func(a string) bool { return a == addr })
		cr.mu.Unlock()
		c.loseHolder(addr)
		cr.runner.LoseWorker(addr)
		cr.peers.Drop(addr)
		c.log.Warn("cluster: worker lost", "worker", ev.Worker.ID, "addr", addr)
		c.reprotect(addr)
		if !cr.dep.standalone {
			go c.replaceReceivers(addr)
		}
	}
}

// Sim is what makes a process one of a simulated cluster's (the root
// package's sim_test.go): the in-memory network it listens and dials on
// and, for a master, how its local workers start (as contexts in this
// process); for a worker, the environment a worker process would read.
type Sim struct {
	Net    cluster.Network
	Spawn  func(cluster.SpawnConfig) (WorkerProcs, error)
	Worker *cluster.WorkerEnv
	// OpenStore, if set, opens the checkpoint store in folder dir (the
	// simulation's storage faults).
	OpenStore func(dir string) (checkpoint.Store, error)
}

// WorkerProcs are a local-cluster master's workers (cluster.Procs).
type WorkerProcs interface {
	PIDs() []int
	Exited() (<-chan struct{}, func() error)
	Stop()
}

// workerEnv is the worker environment of this process: the simulation's,
// or the process's own (ok is false for a master or local[N]).
func (cfg Config) workerEnv() (env cluster.WorkerEnv, ok bool, err error) {
	if cfg.Sim != nil {
		if cfg.Sim.Worker == nil {
			return env, false, nil
		}
		return *cfg.Sim.Worker, true, nil
	}
	return cluster.WorkerEnvFrom(os.Getenv)
}

// network is what the cluster listens and dials on: nil (TCP) but in a
// simulation.
func (cfg Config) network() cluster.Network {
	if cfg.Sim == nil {
		return nil
	}
	return cfg.Sim.Net
}

// reprotect keeps on the master a copy of every input block the lost
// worker at addr held (fetched from a surviving holder), in the
// background: each block had two copies, and now the cluster survives
// another loss before the block is forgotten. Workers read a block from
// the master when its named holders fail (cluster's remote); the master
// drops the copy with the block. A copy that does not fit the master's
// input share is not kept (a warning).
func (c *Engine) reprotect(addr string) {
	cr := c.cluster
	c.mu.Lock()
	r := c.run
	if r == nil || r.ctx.Err() != nil {
		c.mu.Unlock()
		return // not started (nothing received yet), or stopping
	}
	blocks := c.tracker.HeldBy(addr)
	if len(blocks) == 0 {
		c.mu.Unlock()
		return
	}
	ctx := r.ctx
	c.protecting.Add(1) // under c.mu: Stop waits after a barrier on it
	c.mu.Unlock()
	go func() {
		defer c.protecting.Done()
		rem := cr.peers.Remote(cr.self)
		kept := 0
		// Two passes: a block whose copy reached the worker just before it
		// was lost may join the tracker only after the first one's list.
		seen := map[string]bool{}
		for pass := range 2 {
			if pass == 1 {
				blocks = slices.DeleteFunc(c.tracker.HeldBy(addr), func(b received.Block) bool { return seen[b.Key] })
			}
			for _, b := range blocks {
				seen[b.Key] = true
				if c.keepCopy(ctx, rem, b, addr) {
					kept++
				}
			}
		}
		if kept > 0 {
			c.log.Info("cluster: the master keeps a copy of the input blocks a lost worker held", "worker", addr, "blocks", kept)
		}
	}()
}

// keepCopy fetches input block b from its holders other than lost and keeps
// it in the master's store; it reports whether it did.
func (c *Engine) keepCopy(ctx context.Context, rem rdd.Remote, b received.Block, lost string) bool {
	cr := c.cluster
	if ctx.Err() != nil {
		return false
	}
	if _, ok := c.blocks.Get(b.Key); ok {
		return false // the master holds it already
	}
	others := slices.DeleteFunc(slices.Clone(b.Locations), func(a string) bool { return a == lost || a == cr.self })
	data, err := rem.Block(ctx, b.Key, others)
	if err == nil {
		err = c.blocks.Put(b.Key, rdd.Encoded(data), int64(len(data)), block.Input)
	}
	if err != nil {
		if c.tracker.Holds(b.Key) {
			c.log.Warn("cluster: input block left with one copy", "block", b.Key, "lost", lost, "err", err)
		}
		return false
	}
	if !c.tracker.Holds(b.Key) {
		// Forgotten meanwhile (the tracker forgets before the store
		// removes): nothing would remove this copy.
		c.blocks.Remove(b.Key)
		return false
	}
	return true
}

// rejoined takes the input blocks a worker of the previous master process
// still holds (this master restarted): those this master runs intervals
// of again (restored from the write-ahead log) name the worker as a
// holder, so their tasks read them there; it returns them.
func (c *Engine) rejoined(addr string, held []string) []string {
	return c.tracker.AddHolder(held, addr)
}

// releaseWorkers tells every alive worker of a standalone master that it
// stops gracefully: they exit cleanly instead of waiting for it to come
// back (each is given a second to answer).
func (cr *clusterRole) releaseWorkers(log *slog.Logger, handover time.Duration) {
	if !cr.dep.standalone {
		return // local workers stop when their stdin closes
	}
	cr.mu.Lock()
	alive := slices.Clone(cr.alive)
	cr.mu.Unlock()
	session := ""
	if m := cr.master.Load(); m != nil {
		session = m.Session()
	}
	var wg sync.WaitGroup
	for _, addr := range alive {
		wg.Go(func() {
			if err := cr.peers.Release(context.Background(), addr, "the master stopped gracefully", session, handover, time.Second); err != nil {
				log.Warn("cluster: a worker was not told the master stops (it gives up on its own)", "worker", addr, "err", err)
			}
		})
	}
	wg.Wait()
	if len(alive) > 0 {
		log.Info("cluster: workers released", "workers", len(alive))
	}
}

// registration names one registration of a worker.
type registration struct {
	id          string
	incarnation uint64
}

// stopCluster stops the local workers and the cluster port.
func (c *Engine) stopCluster() {
	cr := c.cluster
	if cr.procs != nil {
		cr.procs.Stop()
	}
	if cr.cancel != nil {
		cr.cancel()
		<-cr.served
	} else {
		cr.lis.Close()
	}
	cr.peers.Close()
}

// replicaTargets returns up to n workers for a block's replicas, rotating
// over the alive ones.
func (cr *clusterRole) replicaTargets(n int) []string {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	n = min(n, len(cr.alive))
	out := make([]string, n)
	for i := range out {
		out[i] = cr.alive[(cr.next+i)%len(cr.alive)]
	}
	cr.next++
	return out
}

// inputReplicas is how many workers hold a copy of each input block.
const inputReplicas = 2

// replicate stores copies of input block key (records recs, stored in this
// process's block store) on two workers
// before the block is acknowledged, and returns where the block is. Once
// the copies are stored the master drops its own: it relays input, and its
// memory is not where input waits (the workers' input shares are, and
// their backpressure reaches the receiver through the replication). With
// fewer copies than two on workers (one worker alive, or a copy failed),
// the master keeps its copy and is among the locations, so a block has two
// copies whenever a worker took one. Nil in local[N].
func replicate[T any](c *Engine, ctx context.Context, key string, recs []T) []string {
	cr := c.cluster
	if cr == nil {
		return nil
	}
	targets := cr.replicaTargets(inputReplicas)
	data, err := rdd.Encode(recs)
	if err != nil {
		c.log.Warn("input block stays on the master only", "block", key, "err", err)
		return []string{cr.self}
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, addr := range targets {
		wg.Go(func() { errs[i] = cr.peers.Put(ctx, addr, key, "input", data) })
	}
	wg.Wait()
	locs := make([]string, 0, len(targets)+1)
	for i, addr := range targets {
		if errs[i] == nil && !cr.isAlive(addr) {
			// Lost while the copy was sent: what it held is gone.
			errs[i] = fmt.Errorf("worker %s was lost", addr)
		}
		if errs[i] != nil {
			c.log.Warn("input block not replicated", "block", key, "worker", addr, "err", errs[i])
			continue
		}
		locs = append(locs, addr)
	}
	if len(locs) >= inputReplicas {
		c.blocks.Remove(key)
		return locs
	}
	return append(locs, cr.self)
}

// manifestFrames serves the manifests of the intervals in (q.After,
// q.UpTo] the master remembers, in time order: full frames, or deltas when
// the worker reads them (manifest.Log.Frames). Each manifest is marshaled
// once, and its delta relative to the interval before it once, however
// many workers ask.
func (c *Engine) manifestFrames(q cluster.ManifestQuery) ([][]byte, error) {
	return c.manifests.Frames(q.After, q.UpTo, q.Deltas, q.Base)
}

// startWorker runs this process as a worker: it serves the master's tasks
// until the master is gone (its stdin closes, for a local worker), the
// master refuses it, or Stop.
func (c *Engine) startWorker() error {
	env := c.worker.env
	host, err := cluster.NewHost(cluster.HostConfig{Master: env.Master, ID: env.ID, Slots: env.Slots, Listen: env.Listen, Advertise: env.Advertise,
		MemoryBytes: c.cfg.MemoryBytes, Secret: env.Secret, TLS: env.TLS, Program: workerProgram{c}, Logger: c.log, TaskDelay: env.TaskDelay,
		Network: c.cfg.network()})
	if env.TaskDelay > 0 {
		c.log.Warn("worker: every task waits first (an injected fault)", "worker", env.ID, "delay", env.TaskDelay)
	}
	if err != nil {
		return err
	}
	c.limitProcessMemory()
	rem := host.Remote()
	c.worker.remote.r.Store(&rem)
	c.worker.masterStore.Store(host.MasterStore())
	c.worker.stopProfile = profileWorker(env.ID, c.log)
	c.stopHeapProfile = profileHeap(env.ID, c.log)
	r := &running{genDone: make(chan struct{}), runnerDone: make(chan struct{}), stopped: make(chan struct{})}
	close(r.genDone)
	close(r.runnerDone)
	r.doneCond = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.recvCancel, r.genCancel = func() {}, func() {}
	r.batches = make(chan batch)
	c.mu.Lock()
	c.run = r
	c.state = stateRunning
	c.mu.Unlock()
	c.worker.hostDone = make(chan struct{})
	go func() {
		err := host.Run(r.ctx)
		close(c.worker.hostDone)
		if errors.Is(err, cluster.ErrReleased) {
			c.log.Info("worker: the master stopped and released this worker; stopping", "worker", env.ID)
			err = nil
		}
		if err != nil && r.ctx.Err() == nil {
			c.stopWith(err)
			return
		}
		go c.Stop(false)
	}()
	if env.WatchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			c.log.Info("worker: the master is gone; stopping", "worker", env.ID)
			c.Stop(false)
		}()
	}
	c.log.Info("dstream worker started", "master", env.Master, "worker", env.ID, "addr", host.Addr(), "slots", env.Slots)
	return nil
}

// IsWorker reports whether this process is a worker of a cluster: its
// Context serves the master's tasks and runs no intervals of its own (no
// receiver listens, no output runs here but per-partition ones).
func (c *Engine) IsWorker() bool { return c.worker != nil }

// workerProgram is the context as a worker host sees it.
type workerProgram struct{ c *Engine }

func (p workerProgram) Graph() []graphspec.Node { return p.c.Graph() }
func (p workerProgram) Datasets() *rdd.Context  { return p.c.rctx }

// BlockStats is what the worker's heartbeats report.
// It is called before each heartbeat, so it also times them (health.go).
func (p workerProgram) BlockStats() (used, blocks int64) {
	p.c.worker.beat.Store(time.Now().UnixNano())
	st := p.c.blocks.Stats()
	return st.Bytes, int64(st.Blocks)
}

func (p workerProgram) Learn(m *manifest.Interval) error {
	return p.learn(m, m.Checkpoints)
}

// LearnChanged implements cluster.DeltaLearner: the entries that did not
// change were adopted with the manifest before, so learning an interval
// costs what changed, not what a window remembers.
func (p workerProgram) LearnChanged(m *manifest.Interval, changed []manifest.Checkpoint) error {
	return p.learn(m, changed)
}

func (p workerProgram) learn(m *manifest.Interval, adopt []manifest.Checkpoint) error {
	c := p.c
	c.worker.gen.Lock()
	defer c.worker.gen.Unlock()
	if err := c.materialize(m, adopt); err != nil {
		return err
	}
	// The master runs one interval at a time: when it sends interval t's
	// tasks, the one before is done, and what it no longer needs may go.
	if tl := c.Timeline(); tl.Prev(time.UnixMilli(m.Time)).After(tl.Zero()) {
		prev := tl.Prev(time.UnixMilli(m.Time))
		c.clearOld(prev)
	}
	return nil
}

// Reset implements cluster.Rejoiner: the master restarted (with this
// program), so what the worker learned from the old one goes (intervals,
// manifests, datasets, map outputs, state); the input blocks it holds stay,
// offered to the new master, which may run their intervals again.
func (p workerProgram) Reset() ([]string, error) {
	c := p.c
	c.worker.gen.Lock()
	defer c.worker.gen.Unlock()
	c.worker.stopReceivers()
	for _, n := range c.nodes {
		n.Reset()
	}
	rules := make([]rdd.ForgetRule, 0, len(c.outputs))
	for _, op := range c.outputs {
		rules = append(rules, rdd.ForgetRule{Op: op.ID, UpTo: math.MaxInt64})
	}
	c.rctx.Forget(rules...)
	for _, in := range c.blockInputs() {
		c.tracker.Forget(in.OpID(), time.UnixMilli(math.MaxInt64))
	}
	c.manifests.Forget(math.MaxInt64)
	c.mu.Lock()
	c.materialized = false // the new master's zero is learned again
	c.mu.Unlock()
	return c.blocks.Keys(block.Input), nil
}

// Drop implements cluster.Rejoiner: input blocks the new master does not
// need.
func (p workerProgram) Drop(keys []string) {
	for _, k := range keys {
		p.c.blocks.Remove(k)
	}
	if len(keys) > 0 {
		p.c.log.Info("worker: input blocks the restarted master does not need dropped", "blocks", len(keys))
	}
}

func (p workerProgram) Lineage(spec rdd.TaskSpec) (*rdd.Lineage, error) {
	c := p.c
	id := spec.Dataset
	if spec.Shuffle != nil {
		id = *spec.Shuffle
	}
	var n Node
	for _, s := range c.nodes {
		if s.OpID() == id.Op {
			n = s
			break
		}
	}
	if n == nil || id.Time <= 0 {
		return nil, fmt.Errorf("task %s: dataset %s is not a stream's interval dataset; a worker cannot build it", spec, id)
	}
	c.worker.gen.Lock()
	root, err := n.NodeAt(time.UnixMilli(id.Time))
	c.worker.gen.Unlock()
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("task %s: stream %d has no dataset at %d", spec, id.Op, id.Time)
	}
	return rdd.IndexLineage(root), nil
}

// ClusterAddr returns the address of the master's cluster port (where
// workers register and peers fetch), or "" when the deployment is local[N].
func (c *Engine) ClusterAddr() string {
	if c.cluster == nil {
		return ""
	}
	return c.cluster.self
}

// EnvWorkerCPUProfile names a file prefix: each worker writes a CPU profile
// of its whole run to PREFIX-ID (pprof), to see what crossing processes
// costs where the work is.
const EnvWorkerCPUProfile = "DSTREAM_WORKER_CPUPROFILE"

// profileWorker starts the worker's CPU profile when asked and returns what
// stops it.
func profileWorker(id string, log *slog.Logger) func() {
	prefix := os.Getenv(EnvWorkerCPUProfile)
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(prefix + "-" + cmp.Or(id, strconv.Itoa(os.Getpid())))
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		log.Warn("worker: no CPU profile", "err", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
