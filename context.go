// Package dstream is a Go implementation of Discretized Streams (Zaharia et
// al., SOSP 2013), the model behind Spark Streaming: a stream is cut into
// short intervals by arrival time; each interval's data is an immutable,
// partitioned dataset with lineage (package rdd); each interval runs as a
// small deterministic batch job; windows and per-key state are datasets too,
// carried from interval to interval.
//
// A program builds its stream graph on a Context with the typed operators of
// this package (Map, ReduceByKeyAndWindow, UpdateStateByKey, ...), registers
// outputs (Print, SaveAsTextFiles, ForeachRDD) and calls Run.
package dstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
)

// Config configures a Context. The zero value of every field has a default.
type Config struct {
	// Master says where tasks run: "local[N]" (N task slots in this process;
	// "local[*]" uses every CPU) or "local" (one slot). Default "local[2]".
	Master string
	// BatchInterval is the length of an interval (50 ms .. 10 s). Default 1 s.
	BatchInterval time.Duration
	// BlockInterval is how often receivers cut received records into blocks.
	// Default 200 ms, or the batch interval if that is shorter.
	BlockInterval time.Duration
	// Slack delays each interval's job so blocks cut at the interval's end
	// but still being stored make it into the interval. Default 0.
	Slack time.Duration
	// Clock drives intervals and block cutting. Default the wall clock;
	// tests pass a *clock.Manual.
	Clock clock.Clock
	// MaxTaskAttempts bounds the attempts of a task before its interval
	// fails. Default 4, as in Spark.
	MaxTaskAttempts int
	// MemoryBytes is the engine's memory budget, shared by received input,
	// state and execution (shuffle outputs, cached partitions) as described
	// in docs/ARCHITECTURE.md ("Memory"). Default 1 GiB.
	MemoryBytes int64
	// LimitProcessMemory makes Start set the Go runtime's soft memory limit
	// (debug.SetMemoryLimit) to MemoryBytes plus a fixed overhead, unless
	// the GOMEMLIMIT environment variable is set, so the garbage collector
	// keeps the whole process near the budget. Applications that own their
	// process (the demo, the examples) set it; a library embedding several
	// contexts in one process leaves it off.
	LimitProcessMemory bool
	// OnBatchError is called, on the interval runner, when an interval has
	// failed after its retries. Returning nil lets the job carry on with the
	// next interval; returning an error stops the context with that error,
	// which Run, RunUntil and Stop return. Nil (the default) stops the
	// context with the interval's *BatchError: no interval runs silently
	// without the one before it.
	OnBatchError func(err *BatchError) error
	// MaxPendingBatches bounds the intervals cut but not yet processed; when
	// it is reached the generator waits, and receivers feel backpressure.
	// Default 1000.
	MaxPendingBatches int
	// CheckpointDir is where state streams write their durable checkpoints
	// and the master its metadata log (docs/ARCHITECTURE.md, "Recovery"):
	// a folder every process of the job reaches at the same path (on one
	// machine, any folder; across machines, a shared file system). Starting
	// again with the same folder resumes the job where it stopped. Default
	// "": in local[N] state is checkpointed in memory only; local-cluster
	// uses a temporary folder, deleted at Stop.
	CheckpointDir string
	// WriteAheadLog writes every block a receiver stores to the checkpoint
	// folder before it is acknowledged, and logs its addition in the
	// master's metadata log (Spark's
	// spark.streaming.receiver.writeAheadLog.enable): a master that
	// restarts reads back the blocks received but not yet processed, so
	// acknowledged records are neither lost nor counted twice. It requires
	// CheckpointDir (the graph reports an error otherwise) and costs two
	// synced writes per block (docs/ARCHITECTURE.md, "Write-ahead log").
	// Default off.
	WriteAheadLog bool
	// CheckpointInterval is how often state streams write a durable
	// checkpoint, unless Stream.Checkpoint says otherwise. Default: the
	// larger of DefaultCheckpointInterval (10 s) and five slides.
	CheckpointInterval time.Duration
	// Speculation configures speculative copies of straggling tasks in a
	// cluster (local[N] never speculates: there is no other worker): once
	// Quantile of a stage's tasks have finished, a task running Multiplier
	// times their median (and at least MinRuntime) gets a copy on another
	// worker; the first to finish wins. Nil: on, with Spark's defaults
	// (0.75, 1.5, 100 ms); &sched.Speculation{} turns it off.
	Speculation *sched.Speculation
	// Backpressure adapts every receiver's rate to what the job processes
	// (Spark's spark.streaming.backpressure.enabled): a PID controller fed
	// by each completed interval's processing time and scheduling delay
	// sets the rate, so the delay stays bounded under any offered load.
	// Default off.
	Backpressure bool
	// MaxRate caps the records per second each receiver takes in (0: no
	// cap), with or without Backpressure.
	MaxRate int
	// InitialRate is the rate receivers start at under Backpressure, until
	// the first estimate (two completed intervals). Default 0: no limit
	// until then (MaxRate, if set).
	InitialRate int
	// WorkDir is a folder for this process's files: shuffle outputs the
	// block store must evict are spilled there (in a subfolder of its own,
	// deleted at Stop) instead of dropped and recomputed. Default "": no
	// spilling.
	WorkDir string
	// ClusterListen is where a cluster's master listens for its workers
	// (Master "cluster"). Default 127.0.0.1:7077; use an address other
	// machines reach (and a Secret) to take workers from them.
	ClusterListen string
	// ClusterAdvertise is the address workers reach the master at, when
	// not ClusterListen's (a listener on 0.0.0.0, behind a Service, ...).
	// Default: ClusterListen, with this host's name for an unspecified host.
	ClusterAdvertise string
	// Secret is the shared secret of a standalone cluster (Master
	// "cluster"): workers must present it. Required unless Insecure.
	// (local-cluster generates one per run.)
	Secret []byte
	// Insecure lets a standalone master run without a secret: any process
	// that reaches ClusterListen may join, fetch blocks and run tasks.
	Insecure bool
	// TLSCert, TLSKey and TLSCA make every cluster connection mutual TLS:
	// this process's certificate and key, and the CA that signs every
	// process of the cluster (all three, PEM files). local-cluster workers
	// use the same files.
	TLSCert, TLSKey, TLSCA string
	// Parallelism is the default number of partitions of shuffles and
	// queue inputs. Default: every task slot of the deployment (local[N]:
	// N; local-cluster[N,S]: N*S); a standalone cluster, whose workers come
	// and go, defaults to 8.
	Parallelism int
	// QueryTimeout bounds a named query's run (RunQuery). Default
	// DefaultQueryTimeout (10 s).
	QueryTimeout time.Duration
	// WorkerArgs are the arguments local-cluster workers are started with:
	// copies of this program, which must build the same graph. Default:
	// this process's own arguments. (Tests set it to run the same test.)
	WorkerArgs []string
	// Out receives Print's output. Default os.Stdout.
	Out io.Writer
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger

	// sim makes the process one of a simulated cluster's, all in one
	// process over an in-memory network (sim_test.go); nil in every real
	// deployment.
	sim *simProcess
}

var (
	masterRE  = regexp.MustCompile(`^local(?:\[(\*|[0-9]+)\])?$`)
	clusterRE = regexp.MustCompile(`^local-cluster\[([0-9]+)(?:, *([0-9]+))?\]$`)
)

// deployment is where Master says tasks run.
type deployment struct {
	workers    int  // local-cluster: the worker processes; 0: this process alone
	slots      int  // task slots of this process, or of each worker
	standalone bool // Master "cluster": workers join by hand
}

// standaloneParallelism is a standalone cluster's default parallelism.
const standaloneParallelism = 8

// deployment parses Master.
func (c Config) deployment() (deployment, error) {
	if c.Master == "cluster" {
		return deployment{standalone: true, slots: 2}, nil
	}
	if m := clusterRE.FindStringSubmatch(c.Master); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 || n > 64 {
			return deployment{}, fmt.Errorf("master %q: the number of workers must be between 1 and 64", c.Master)
		}
		slots := 1
		if m[2] != "" {
			slots, err = strconv.Atoi(m[2])
			if err != nil || slots < 1 || slots > 1024 {
				return deployment{}, fmt.Errorf("master %q: slots per worker must be between 1 and 1024", c.Master)
			}
		}
		return deployment{workers: n, slots: slots}, nil
	}
	m := masterRE.FindStringSubmatch(c.Master)
	if m == nil {
		return deployment{}, fmt.Errorf("master %q: want local, local[N], local[*], local-cluster[N], local-cluster[N,SLOTS] or cluster", c.Master)
	}
	switch m[1] {
	case "":
		return deployment{slots: 1}, nil
	case "*":
		return deployment{slots: runtime.NumCPU()}, nil
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 || n > 1024 {
		return deployment{}, fmt.Errorf("master %q: N must be between 1 and 1024", c.Master)
	}
	return deployment{slots: n}, nil
}

// slots is the number of task slots of the whole deployment (the default
// parallelism).
func (c Config) slots() (int, error) {
	d, err := c.deployment()
	if c.Parallelism > 0 {
		return c.Parallelism, err
	}
	if d.standalone {
		return standaloneParallelism, err
	}
	return d.slots * max(1, d.workers), err
}

func (c Config) withDefaults() Config {
	if c.Master == "" {
		c.Master = "local[2]"
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = time.Second
	}
	if c.BlockInterval == 0 {
		c.BlockInterval = min(200*time.Millisecond, c.BatchInterval)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.MaxTaskAttempts == 0 {
		c.MaxTaskAttempts = 4
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = 1 << 30
	}
	if c.MaxPendingBatches == 0 {
		c.MaxPendingBatches = 1000
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid setting, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := c.slots(); err != nil {
		return err
	}
	switch {
	case c.BatchInterval < time.Millisecond:
		return fmt.Errorf("batch interval %v is too short (minimum 1ms; 50ms and up is sensible)", c.BatchInterval)
	case c.BlockInterval <= 0 || c.BlockInterval > c.BatchInterval:
		return fmt.Errorf("block interval %v must be positive and at most the batch interval %v", c.BlockInterval, c.BatchInterval)
	case c.Slack < 0 || c.Slack >= c.BatchInterval:
		return fmt.Errorf("slack %v must be at least 0 and less than the batch interval %v", c.Slack, c.BatchInterval)
	case c.MaxTaskAttempts < 1:
		return fmt.Errorf("max task attempts %d must be at least 1", c.MaxTaskAttempts)
	case c.MemoryBytes < 1<<20:
		return fmt.Errorf("memory %d bytes is too small (minimum 1 MiB)", c.MemoryBytes)
	case c.Parallelism < 0 || c.Parallelism > 1<<16:
		return fmt.Errorf("parallelism %d must be between 1 and 65536 (0: the default)", c.Parallelism)
	case c.QueryTimeout < 0:
		return fmt.Errorf("query timeout %v must not be negative", c.QueryTimeout)
	case c.MaxPendingBatches < 1:
		return fmt.Errorf("max pending batches %d must be at least 1", c.MaxPendingBatches)
	case c.WriteAheadLog && c.CheckpointDir == "":
		return errors.New("the write-ahead log needs a checkpoint folder (CheckpointDir): it is written there")
	}
	return nil
}

// Context is a streaming application: its stream graph, the engine that runs
// it, and its lifecycle. Build the graph, then Start (or Run).
type Context struct {
	cfg      Config
	rctx     *rdd.Context
	blocks   *block.Store
	shuffles *shuffle.Store
	runner   rdd.JobRunner
	shell    *sched.Shell // the runner's scheduler
	cluster  *clusterRole // set on a local-cluster master (deploy.go)
	worker   *workerRole  // set in a worker process (deploy.go)
	bus      *listener.Bus
	log      *slog.Logger

	mu       sync.Mutex
	state    int // stateNew, stateRunning, stateStopped
	graphErr error
	nodes    []node
	inputs   []input
	cutters  []cutter // inputs fed at each cut (queues)

	materialized bool // intervals come from Materialize: never started
	outputs      []*outputOp
	nextOp       int32
	nextFunc     int               // partition functions registered (query_builtin.go)
	queries      map[string]*query // named queries (query.go)
	querySlots   chan struct{}     // queries running
	queryWaiting atomic.Int64      // queries running or waiting

	tracker    *received.Tracker
	manifests  manifest.Log
	inputWaits atomic.Int64                  // times a receiver waited for input memory
	admission  admission                     // sizes the input share; the runner's only
	zero       time.Time                     // interval times are zero + k*BatchInterval
	first      time.Time                     // the first interval the generator cuts
	curOutput  atomic.Pointer[runningOutput] // the output the runner runs (observe.go)

	ckOnce  sync.Once
	ckStore checkpoint.Store // opened on first use (checkpointStore)
	ckErr   error
	ckTemp  string         // a local-cluster master's temporary checkpoint folder
	ckWG    sync.WaitGroup // durable checkpoints in flight
	// protecting counts the master's copies of lost workers' input blocks
	// being made (reprotect); Stop cancels and waits for them.
	protecting sync.WaitGroup
	ckFailed   atomic.Int64 // durable checkpoints that failed
	meta       *metaLog     // the master's metadata log (metalog.go)
	run        *running
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// NewContext returns a Context for cfg.
func NewContext(cfg Config) (*Context, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dstream: %w", err)
	}
	cfg = cfg.withDefaults()
	slots, _ := cfg.slots()
	if env, ok, _ := cfg.workerEnv(); ok {
		if env.Memory > 0 {
			cfg.MemoryBytes = env.Memory // a worker's own budget
		}
		if env.WorkDir != "" {
			cfg.WorkDir = env.WorkDir
		}
		if env.Checkpoint != "" {
			cfg.CheckpointDir = env.Checkpoint
		}
	}
	c := &Context{cfg: cfg, log: cfg.Logger, bus: listener.NewBus(0), querySlots: make(chan struct{}, maxRunningQueries)}
	opts := block.Options{MaxBytes: storeBytes(cfg.MemoryBytes)}
	if cfg.WorkDir != "" {
		opts.SpillDir = filepath.Join(cfg.WorkDir, fmt.Sprintf("dstream-%d-%d", os.Getpid(), spillDirs.Add(1)))
		opts.Encode = rdd.EncodeBlock
	}
	c.blocks = block.New(opts)
	c.blocks.SetMaxInputBytes(c.admission.inputShare(storeBytes(cfg.MemoryBytes), 0))
	c.shuffles = shuffle.New(c.blocks)
	parallelism, err := c.deploy(slots)
	if err != nil {
		return nil, fmt.Errorf("dstream: %w", err)
	}
	c.observeScheduler()
	rctx, err := rdd.NewContext(rdd.Config{Runner: c.runner, Blocks: c.blocks, Shuffles: c.shuffles, Parallelism: parallelism, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.rctx = rctx
	c.tracker = received.NewTracker()
	return c, nil
}

// spillDirs numbers the contexts of this process, for their spill folders.
var spillDirs atomic.Int64

// storeFraction is the share of the memory budget the block store holds
// (Spark's spark.memory.fraction); the rest is for what tasks hold while they
// run (a map task's buckets before they are stored, a reduce task's
// combiner), the receivers' blocks not yet admitted, and the runtime.
const storeFraction = 0.6

// storeBytes is the block store's capacity under a memory budget.
func storeBytes(budget int64) int64 { return int64(float64(budget) * storeFraction) }

// processOverhead is what the Go runtime and the process hold beyond the
// heap the budget covers (goroutine stacks, the runtime's own structures,
// the binary); the soft memory limit is the budget plus this.
const processOverhead = 64 << 20

// limitProcessMemory applies the budget as the Go runtime's soft memory limit
// unless GOMEMLIMIT is set, and says so.
func (c *Context) limitProcessMemory() {
	if !c.cfg.LimitProcessMemory {
		return
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		c.log.Info("memory budget: GOMEMLIMIT is set and takes precedence", "GOMEMLIMIT", v, "budget", c.cfg.MemoryBytes)
		return
	}
	debug.SetMemoryLimit(c.cfg.MemoryBytes + processOverhead)
}

// Datasets returns the batch side of the context: static datasets built on it
// (rdd.Parallelize, rdd.TextFile) run on the same engine, and streams join
// with them through Transform.
func (c *Context) Datasets() *rdd.Context { return c.rctx }

// BatchInterval returns the configured interval.
func (c *Context) BatchInterval() time.Duration { return c.cfg.BatchInterval }

// Clock returns the context's clock.
func (c *Context) Clock() clock.Clock { return c.cfg.Clock }

// AddListener registers l for the engine's events (listener.BatchCompleted, ...).
func (c *Context) AddListener(l listener.Listener) { c.bus.Add(l) }

// DroppedEvents returns how many events the listener bus dropped because a
// listener fell behind (the bus never blocks the engine).
func (c *Context) DroppedEvents() int64 { return c.bus.Dropped() }

// BlockStats reports the block store's occupancy.
func (c *Context) BlockStats() block.Stats { return c.blocks.Stats() }

// Err returns the first error found while the graph was built (for example a
// window that is not a multiple of the batch interval). Start returns it too.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.graphErr
}

func (c *Context) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.graphErr == nil {
		c.graphErr = err
	}
}

// Run starts the context and blocks until it stops: on SIGINT or SIGTERM it
// stops gracefully (every record already received is processed and output),
// and it returns when Stop is called from elsewhere.
func (c *Context) Run() error {
	sig, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return c.RunUntil(sig)
}

// RunUntil starts the context, waits until ctx is done (or the context is
// stopped elsewhere), then stops gracefully.
func (c *Context) RunUntil(ctx context.Context) error {
	if err := c.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return c.Stop(true)
	case <-c.run.stopped:
		return c.run.stopErr()
	}
}

// ErrStopped is returned when starting a context that has been stopped.
var ErrStopped = errors.New("dstream: context already stopped")
