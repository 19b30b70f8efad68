// Package engine runs a stream graph: the interval loop (generator and
// runner), the deployments (local[N], local-cluster[N], a standalone
// cluster's master and workers), receivers, the sinks that store and
// replicate their blocks, backpressure, recovery (the metadata log, the
// write-ahead log, file selections, checkpoint restore) and memory
// admission.
//
// Package dstream, the API, builds the graph of typed streams and hands the
// engine their untyped faces: a Node per stream, an Output per output
// operation. The engine never sees a record's type but through them and a
// few generic helpers its caller instantiates (BlocksDataset, AddQueue); it
// does not import the API (it cannot: the API imports it). It is internal so
// that users write against the API only, and the runtime can change.
//
// The engine owns the timeline (package timeline): it fixes the job's zero
// at Start (keeps the logged one when a master resumes from its metadata
// log, or learns it from a manifest in a worker), and every part of it, and
// the streams, ask it.
//
// Files: engine.go (Node, Output, Config, Engine, the graph), generator.go
// (the interval loop, Start and Stop), interval.go (manifests), input.go
// (receivers' blocks and queues), deploy.go and receivers.go (the master's
// and the worker's roles), checkpoints.go, metalog.go, wal.go and
// filestream.go (recovery), backpressure.go, memory.go, workers.go and
// observe.go (what the UI sees).
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/internal/admission"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
	"github.com/dstream/dstream/timeline"
)

// Node is the untyped face of a stream in the graph: what the engine asks of
// a stream of any record type.
type Node interface {
	OpID() int32
	SlideDuration() time.Duration
	// RememberAtLeast asks the stream to keep the datasets it generated for
	// at least d before the latest interval (windows and state need history).
	RememberAtLeast(d time.Duration)
	// Forget drops generated datasets older than the remember duration as of t.
	Forget(t time.Time)
	// FinishInterval runs after interval t's jobs: state streams checkpoint.
	FinishInterval(t time.Time) error
	// RememberDuration is how long the stream keeps what it generated.
	RememberDuration() time.Duration
	// ParentNodes are the streams whose datasets the stream's are computed
	// from (not itself: a state stream's own previous state is not a parent).
	ParentNodes() []Node
	// Checkpoints reports whether the stream checkpoints every interval's
	// dataset, which cuts its lineage to its parents.
	Checkpoints() bool
	// CheckpointInterval is how often a state stream writes a durable
	// checkpoint; 0 for other streams.
	CheckpointInterval() time.Duration
	// LoseHolder forgets that process addr holds any partition of the
	// stream's kept datasets: it is gone.
	LoseHolder(addr string)
	// LastCheckpoints returns what a state stream's interval t starts from.
	LastCheckpoints(t time.Time) []manifest.Checkpoint
	// Adopt applies a manifest's checkpoint entry.
	Adopt(cp manifest.Checkpoint) error
	// Describe says what the stream is, for the graph's fingerprint.
	Describe() graphspec.Node
	// NodeAt is At's untyped face: a worker finds a task's dataset by it.
	NodeAt(t time.Time) (*rdd.Node, error)
	// Reset forgets every dataset generated and every checkpoint adopted,
	// as in a stream never run: a worker whose master restarted learns
	// the new master's intervals from scratch.
	Reset()
}

// Output is an output operation: it runs one job per interval of its stream.
type Output struct {
	ID   int32 // from the same sequence as stream operators (AddOutput sets it)
	Name string
	Run  func(t time.Time) error
	// Open, when set, runs once in Start before any receiver opens; its
	// error fails Start (an output folder that cannot be written).
	Open func() error
	From int32  // the stream it reads
	Elem string // that stream's element type
}

// Config configures an Engine: package dstream's Config, defaults applied
// and validated, plus the hooks through which the engine reports to the API.
type Config struct {
	Master             string
	BatchInterval      time.Duration
	BlockInterval      time.Duration
	Slack              time.Duration
	Clock              clock.Clock
	MaxTaskAttempts    int
	MemoryBytes        int64
	LimitProcessMemory bool
	MaxPendingBatches  int
	CheckpointDir      string
	WriteAheadLog      bool
	AllowDroppedState  bool // a restart may leave a named state of the checkpoint behind (recovery.go)
	LeaseTTL           time.Duration
	CheckpointInterval time.Duration
	Speculation        *sched.Speculation
	Backpressure       bool
	MaxRate            int
	InitialRate        int
	WorkDir            string
	ClusterListen      string
	ClusterAdvertise   string
	Secret             []byte
	Insecure           bool
	TLSCert            string
	TLSKey             string
	TLSCA              string
	Parallelism        int
	WorkerArgs         []string
	Logger             *slog.Logger

	// NewBatchError makes the error of interval t failed in output op
	// (named output; op -1 when it failed elsewhere): the API's BatchError.
	NewBatchError func(t time.Time, op int, output string, err error) error
	// OnBatchError is told of a failed interval (an error NewBatchError
	// made) and returns what to stop with: nil carries on. Nil stops with
	// the interval's error.
	OnBatchError func(err error) error
	// Sim makes the process one of a simulated cluster's (the root
	// package's sim_test.go); nil in every real deployment.
	Sim *Sim
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

// WithDefaults returns c with the default of every setting left zero
// (package dstream's Config documents them).
func (c Config) WithDefaults() Config {
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Slots is the number of task slots of the whole deployment (the default
// parallelism); its error says what is wrong with Master.
func (c Config) Slots() (int, error) {
	d, err := c.deployment()
	if c.Parallelism > 0 {
		return c.Parallelism, err
	}
	if d.standalone {
		return standaloneParallelism, err
	}
	return d.slots * max(1, d.workers), err
}

// Engine runs one stream graph. Build the graph (AddNode, AddInput,
// AddCutter, AddOutput), then Start.
type Engine struct {
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

	stopHeapProfile func() // writes the last heap profile, if they are written (heapprofile.go)

	mu       sync.Mutex
	state    int // stateNew, stateStandby, stateRunning, stateStopped
	graphErr error
	nextOp   int32
	nextFunc int // partition functions registered (PartitionFunc)
	nodes    []Node
	inputs   []input
	cutters  []cutter // inputs fed at each cut (queues)

	materialized bool // intervals come from Materialize: never started
	outputs      []*Output

	tracker    *received.Tracker
	manifests  manifest.Log
	inputWaits atomic.Int64                  // times a receiver waited for input memory
	admission  admission.Admission           // sizes the input share; the runner's only
	tl         timeline.Timeline             // the job's intervals; set under mu at Start or Materialize
	curOutput  atomic.Pointer[runningOutput] // the output the runner runs (observe.go)

	ckOnce  sync.Once
	ckStore checkpoint.Store                    // opened on first use (checkpointStore)
	scratch atomic.Pointer[checkpoint.Spilling] // ckStore, when it is the temporary folder's
	ckErr   error
	ckTemp  string         // a local-cluster master's temporary checkpoint folder
	ckWG    sync.WaitGroup // durable checkpoints in flight
	// protecting counts the master's copies of lost workers' input blocks
	// being made (reprotect); Stop cancels and waits for them.
	protecting sync.WaitGroup
	ckFailed   atomic.Int64   // durable checkpoints that failed
	stores     storeSet       // file streams' and text outputs' stores by location (stores.go)
	meta       *metaLog       // the master's metadata log (metalog.go)
	fresh      map[int32]bool // inputs a changed graph starts afresh (upgrade.go)
	lease      *masterLease   // the master's lease of its checkpoint location (leader.go); set before it runs
	crashed    atomic.Bool    // the simulation killed this process (Crash)
	run        *running
	progressAt atomic.Int64 // when the interval loop last moved, Unix ns on the clock (health.go)
	et         eventTimes   // event-time streams' progress and late records (eventtime.go)
}

const (
	stateNew = iota
	stateRunning
	stateStopped
	// stateStandby: Start waits for the lease another master holds
	// (leader.go); Stop ends the wait.
	stateStandby
)

// ErrStopped is returned when starting an engine that has been stopped.
var ErrStopped = errors.New("dstream: context already stopped")

// New returns an Engine for cfg, which must be valid with defaults applied.
// In a worker process (its environment, or cfg.Sim, says so) it takes the
// worker's memory budget, work and checkpoint folders from there.
func New(cfg Config) (*Engine, error) {
	slots, _ := cfg.Slots()
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
	if cfg.NewBatchError == nil {
		cfg.NewBatchError = func(t time.Time, op int, output string, err error) error {
			return fmt.Errorf("interval %d failed in %s: %w", t.UnixMilli(), output, err)
		}
	}
	c := &Engine{cfg: cfg, log: cfg.Logger, bus: listener.NewBus(0), tl: timeline.New(cfg.BatchInterval)}
	opts := block.Options{MaxBytes: storeBytes(cfg.MemoryBytes), Series: rdd.BlockSeries}
	if cfg.WorkDir != "" {
		opts.SpillDir = filepath.Join(cfg.WorkDir, fmt.Sprintf("dstream-%d-%d", os.Getpid(), spillDirs.Add(1)))
		opts.Encode = rdd.EncodeBlock
	}
	c.blocks = block.New(opts)
	c.blocks.SetMaxInputBytes(c.admission.InputShare(storeBytes(cfg.MemoryBytes), 0))
	c.shuffles = shuffle.New(c.blocks)
	parallelism, err := c.deploy(slots)
	if err != nil {
		return nil, err
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

// spillDirs numbers the engines of this process, for their spill folders.
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
func (c *Engine) limitProcessMemory() {
	if !c.cfg.LimitProcessMemory {
		return
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		c.log.Info("memory budget: GOMEMLIMIT is set and takes precedence", "GOMEMLIMIT", v, "budget", c.cfg.MemoryBytes)
		return
	}
	debug.SetMemoryLimit(c.cfg.MemoryBytes + processOverhead)
}

// Datasets is the batch side of the engine: the rdd.Context every stream's
// datasets are built on.
func (c *Engine) Datasets() *rdd.Context { return c.rctx }

// Blocks is the engine's block store.
func (c *Engine) Blocks() *block.Store { return c.blocks }

// Bus is the engine's listener bus.
func (c *Engine) Bus() *listener.Bus { return c.bus }

// Timeline returns the job's timeline: not Started before Start (or, in a
// worker, the first Materialize).
func (c *Engine) Timeline() timeline.Timeline {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tl
}

// Err returns the first error found while the graph was built.
func (c *Engine) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.graphErr
}

// SetErr records a graph error (the first is kept); Start returns it.
func (c *Engine) SetErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.graphErr == nil {
		c.graphErr = err
	}
}

// CheckBuilding records a graph error naming what unless the graph may
// still grow (the engine has not started): a stream made after Start.
func (c *Engine) CheckBuilding(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateNew && c.graphErr == nil {
		c.graphErr = fmt.Errorf("%s: streams must be created before the context starts", what)
	}
}

// NextID assigns the next operator ID: streams and outputs draw from one
// sequence in creation order, so every process that builds the same graph
// agrees on them.
func (c *Engine) NextID() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextOp++
	return c.nextOp
}

// AddNode adds a stream to the graph (after its parents).
func (c *Engine) AddNode(n Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, n)
}

// AddOutput adds an output operation, assigning its ID.
func (c *Engine) AddOutput(op *Output) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateNew {
		if c.graphErr == nil {
			c.graphErr = fmt.Errorf("%s: outputs must be registered before the context starts", op.Name)
		}
		return
	}
	c.nextOp++
	op.ID = c.nextOp
	c.outputs = append(c.outputs, op)
}

// KeepsLineage reports whether state datasets keep their lineage between
// checkpoints: in a cluster, where a holder can be lost.
func (c *Engine) KeepsLineage() bool { return c.cluster != nil || c.worker != nil }

// CheckpointFailures returns how many durable state checkpoints have failed.
func (c *Engine) CheckpointFailures() int64 { return c.ckFailed.Load() }

// ReceiverWaits returns how many times a receiver's block found the input
// memory full and waited for processed intervals to free it.
func (c *Engine) ReceiverWaits() int64 { return c.inputWaits.Load() }

// ReceivedRecords returns how many records the receivers have taken in.
func (c *Engine) ReceivedRecords() int64 {
	var n int64
	for _, in := range c.inputs {
		if r, ok := in.(*ReceiverInput); ok {
			n += r.written.Load()
		}
	}
	return n
}

// Graph describes the graph's streams and outputs, by ID.
func (c *Engine) Graph() []graphspec.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := make([]graphspec.Node, 0, len(c.nodes)+len(c.outputs))
	for _, n := range c.nodes {
		g = append(g, n.Describe())
	}
	for _, op := range c.outputs {
		g = append(g, graphspec.Node{ID: op.ID, Kind: "output", Name: op.Name, Type: op.Elem, Parents: []int32{op.From}})
	}
	slices.SortStableFunc(g, func(a, b graphspec.Node) int { return int(a.ID) - int(b.ID) })
	return g
}

// Background runs f beside the intervals (a state stream's durable
// checkpoint); a graceful Stop waits for it, after the last interval.
func (c *Engine) Background(f func()) {
	c.ckWG.Add(1)
	go func() {
		defer c.ckWG.Done()
		f()
	}()
}

// CheckpointFailed counts a durable state checkpoint that failed.
func (c *Engine) CheckpointFailed() { c.ckFailed.Add(1) }

// Started reports whether the engine has started (or stopped, or
// materialized a manifest): the graph is complete.
func (c *Engine) Started() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state != stateNew || c.materialized
}

// Nodes returns the graph's streams, in creation order.
func (c *Engine) Nodes() []Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Node(nil), c.nodes...)
}
