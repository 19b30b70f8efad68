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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/health"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/internal/queries"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// DefaultQueryTimeout bounds a query's run unless Config.QueryTimeout says
// otherwise.
const DefaultQueryTimeout = 10 * time.Second

// Config configures a Context. The zero value of every field has a default.
type Config struct {
	// Master says where tasks run. Default "local[2]".
	//   - "local": this process, one task slot; "local[N]": N slots
	//     (1..1024); "local[*]": one slot per CPU.
	//   - "local-cluster[N]": this process is the master of N worker
	//     processes (1..64) it starts on this machine: its own program
	//     with its arguments (or WorkerArgs), one slot each, stopped when
	//     it stops; "local-cluster[N,SLOTS]": SLOTS slots each (1..1024).
	//   - "cluster": a standalone master listening on ClusterListen,
	//     with a Secret (or Insecure); workers join from any machine, at
	//     any time, with `APP worker --master HOST:PORT` (WorkerMain);
	//     tasks wait until one has joined.
	// Anything else makes NewContext fail, naming the accepted forms.
	Master string
	// BatchInterval is the length of an interval. Default 1 s. Validate
	// enforces at least 1 ms, at least BlockInterval, and more than Slack;
	// there is no upper bound. Sensible values are a whole number of
	// milliseconds (intervals are named by their end in Unix ms) from about
	// 50 ms to 10 s: shorter intervals spend most of their time on each
	// job's fixed costs (BENCHMARKS.md), longer ones delay every output and
	// hold more input in memory.
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
	// and the master its metadata log (docs/ARCHITECTURE.md, "Recovery"),
	// and, with WriteAheadLog, the received blocks: either a folder every
	// process of the job reaches at the same path (on one machine, any
	// folder; across machines, a shared file system), or object storage,
	// s3://BUCKET/PREFIX (S3 or an S3-compatible server, configured as
	// every S3 tool is: AWS_REGION, AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL; see package
	// checkpoint/s3store). Starting again with the same location resumes
	// the job where it stopped. A malformed location is an error of
	// Validate. Default "": in local[N] state is checkpointed in memory
	// only; local-cluster uses a temporary folder, deleted at Stop.
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
	// AllowDroppedState lets a master restarted on a checkpoint folder run
	// a graph that lacks a named state (Stream.Name) of the checkpoint:
	// that state is not restored, and its checkpoints stay in the folder
	// until a state of the same name starts afresh. Without it such a
	// restart is refused, naming the state. Default off.
	AllowDroppedState bool
	// LeaseTTL is how long a master holds the lease of its checkpoint
	// location without renewing it (it renews every third of it). With a
	// CheckpointDir, a master acts only while it holds the lease, object
	// "meta/lease" written with conditional writes: the same program
	// started a second time with the same location (on another machine,
	// or a newer build of it) waits as a standby and takes over from the
	// metadata log when the active master is gone: at most LeaseTTL plus a
	// fifth after it last renewed, at once after a clean stop (it releases
	// the lease). Every record of the metadata log and every commit of
	// SaveAsTextFiles is fenced: a master that lost the lease (it was
	// paused, or cut off from the store) writes nothing more and stops
	// with an error. Default DefaultLeaseTTL; negative: no lease (two
	// masters on one location are then not kept apart).
	LeaseTTL time.Duration
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
	// A Kafka stream's intervals are capped by the same estimate, shared
	// among its partitions by lag. Default off.
	Backpressure bool
	// MaxRate caps the records per second each receiver takes in (0: no
	// cap), with or without Backpressure.
	MaxRate int
	// InitialRate is the rate receivers (and each Kafka stream, in all)
	// start at under Backpressure, until the first estimate (two
	// completed intervals). Default 0: no limit
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
	// HealthListen is where the context serves GET /healthz and /readyz
	// (package health; Live and Ready answer them), from Start until it
	// stops: a HOST:PORT, port 0 for a free one (HealthAddr). Default "":
	// nowhere. A worker process ignores it (the program's arguments are its
	// master's) and serves where its environment says: `APP worker
	// --health-listen ADDR`.
	HealthListen string
	// Out receives Print's output. Default os.Stdout.
	Out io.Writer
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger

	// sim makes the process one of a simulated cluster's, all in one
	// process over an in-memory network (sim_test.go); nil in every real
	// deployment.
	sim *engine.Sim
}

func (c Config) withDefaults() Config {
	// The engine's settings take the engine's defaults.
	ec := c.engineConfig().WithDefaults()
	c.Master, c.BatchInterval, c.BlockInterval, c.Clock = ec.Master, ec.BatchInterval, ec.BlockInterval, ec.Clock
	c.MaxTaskAttempts, c.MemoryBytes, c.MaxPendingBatches, c.Logger = ec.MaxTaskAttempts, ec.MemoryBytes, ec.MaxPendingBatches, ec.Logger
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	return c
}

// Validate reports the first invalid setting, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := c.engineConfig().Slots(); err != nil {
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
	if c.CheckpointDir != "" {
		if err := checkpoint.CheckLocation(c.CheckpointDir); err != nil {
			return fmt.Errorf("checkpoint location (CheckpointDir): %w", err)
		}
	}
	if c.HealthListen != "" {
		if _, _, err := net.SplitHostPort(c.HealthListen); err != nil {
			return fmt.Errorf("health listen address %q: want HOST:PORT", c.HealthListen)
		}
	}
	return nil
}

// engineConfig is c, with defaults applied, as the engine takes it: the
// API's BatchError made and handed to OnBatchError through its hooks.
func (c Config) engineConfig() engine.Config {
	ec := engine.Config{
		Master: c.Master, BatchInterval: c.BatchInterval, BlockInterval: c.BlockInterval, Slack: c.Slack, Clock: c.Clock,
		MaxTaskAttempts: c.MaxTaskAttempts, MemoryBytes: c.MemoryBytes, LimitProcessMemory: c.LimitProcessMemory,
		MaxPendingBatches: c.MaxPendingBatches, CheckpointDir: c.CheckpointDir, WriteAheadLog: c.WriteAheadLog, AllowDroppedState: c.AllowDroppedState, LeaseTTL: c.LeaseTTL,
		CheckpointInterval: c.CheckpointInterval, Speculation: c.Speculation, Backpressure: c.Backpressure,
		MaxRate: c.MaxRate, InitialRate: c.InitialRate, WorkDir: c.WorkDir, ClusterListen: c.ClusterListen,
		ClusterAdvertise: c.ClusterAdvertise, Secret: c.Secret, Insecure: c.Insecure, TLSCert: c.TLSCert, TLSKey: c.TLSKey,
		TLSCA: c.TLSCA, Parallelism: c.Parallelism, WorkerArgs: c.WorkerArgs, Logger: c.Logger, Sim: c.sim,
		NewBatchError: func(t time.Time, op int, output string, err error) error {
			return &BatchError{Time: t, OutputOp: op, Output: output, Err: err}
		},
	}
	if h := c.OnBatchError; h != nil {
		ec.OnBatchError = func(err error) error {
			var be *BatchError
			if !errors.As(err, &be) {
				be = &BatchError{OutputOp: -1, Output: "interval", Err: err}
			}
			return h(be)
		}
	}
	return ec
}

// Context is a streaming application: its stream graph, the engine that runs
// it (package internal/engine), and its lifecycle. Build the graph, then
// Start (or Run).
type Context struct {
	cfg Config
	e   *engine.Engine
	log *slog.Logger

	mu          sync.Mutex
	health      *health.Endpoint      // serving the probes, from Start (health.go)
	queries     *queries.Registry     // named queries (query.go)
	kafkaInputs map[int32]*kafkaInput // the Kafka streams, by operator (kafkastream.go)
	eventOps    []eventOp             // the event-time window operators (eventwindow.go)
}

// The context's registries of the graph's Kafka inputs and event-time
// window operators, which event time reads (eventtime.go, eventwindow.go).

// kafkaInput is what an event-time stream read from a Kafka stream needs
// to tell its records' partitions apart (kafkastream.go).
type kafkaInput struct {
	id    int32
	oi    *engine.OffsetInput
	split int64
}

// eventOp is an event-time window operator, as Watermarks lists it.
type eventOp struct {
	id      int32 // its state stream's
	name    string
	sources []int32
}

// NewContext returns a Context for cfg.
func NewContext(cfg Config) (*Context, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dstream: %w", err)
	}
	cfg = cfg.withDefaults()
	e, err := engine.New(cfg.engineConfig())
	if err != nil {
		return nil, fmt.Errorf("dstream: %w", err)
	}
	return &Context{cfg: cfg, e: e, log: cfg.Logger, queries: queries.New(cfg.QueryTimeout)}, nil
}

// rctx is the engine's dataset context.
func (c *Context) rctx() *rdd.Context { return c.e.Datasets() }

// Datasets returns the batch side of the context: static datasets built on it
// (rdd.Parallelize, rdd.TextFile) run on the same engine, and streams join
// with them through Transform.
func (c *Context) Datasets() *rdd.Context { return c.e.Datasets() }

// BatchInterval returns the configured interval.
func (c *Context) BatchInterval() time.Duration { return c.cfg.BatchInterval }

// Clock returns the context's clock.
func (c *Context) Clock() clock.Clock { return c.cfg.Clock }

// AddListener registers l for the engine's events (listener.BatchCompleted, ...).
func (c *Context) AddListener(l listener.Listener) { c.e.Bus().Add(l) }

// DroppedEvents returns how many events the listener bus dropped because a
// listener fell behind (the bus never blocks the engine).
func (c *Context) DroppedEvents() int64 { return c.e.Bus().Dropped() }

// BlockStats reports the block store's occupancy.
func (c *Context) BlockStats() block.Stats { return c.e.Blocks().Stats() }

// Err returns the first error found while the graph was built (for example a
// window that is not a multiple of the batch interval). Start returns it too.
func (c *Context) Err() error { return c.e.Err() }

func (c *Context) setErr(err error) { c.e.SetErr(err) }

// ErrStopped is returned when starting a context that has been stopped.
var ErrStopped = engine.ErrStopped
