package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The environment that makes a process of a dstream program a worker. A
// local-cluster master starts its workers as copies of its own executable,
// with its own arguments (so they build the same graph) and these
// variables; the program's Context sees them and serves tasks instead of
// running intervals.
const (
	EnvWorkerOf    = "DSTREAM_WORKER_OF"        // the master's host:port, or a comma-separated list of them
	EnvWorkerID    = "DSTREAM_WORKER_ID"        // the worker's id
	EnvWorkerSlots = "DSTREAM_WORKER_SLOTS"     // its task slots
	EnvParallelism = "DSTREAM_PARALLELISM"      // the master's default partitions (the graph depends on it)
	EnvWatchStdin  = "DSTREAM_WORKER_STDIN"     // "1": stop when stdin closes (the master died)
	EnvListen      = "DSTREAM_WORKER_LISTEN"    // where the worker serves its peers
	EnvAdvertise   = "DSTREAM_WORKER_ADVERTISE" // the address peers dial
	EnvMemory      = "DSTREAM_WORKER_MEMORY"    // its memory budget in bytes (overrides the program's)
	EnvWorkDir     = "DSTREAM_WORKER_WORKDIR"   // its work folder (overrides the program's)
	EnvCheckpoint  = "DSTREAM_CHECKPOINT_DIR"   // the checkpoint folder the master chose (when the program names none)
	// EnvSlowWorker injects a fault for drills: "ID=DURATION" makes worker
	// ID wait DURATION before every task (a straggler). Local workers
	// inherit it from their master's environment.
	EnvSlowWorker = "DSTREAM_SLOW_WORKER"
	EnvTLSCert    = "DSTREAM_TLS_CERT" // mutual TLS: the process's certificate file
	EnvTLSKey     = "DSTREAM_TLS_KEY"  // and its key
	EnvTLSCA      = "DSTREAM_TLS_CA"   // and the cluster's CA
	// EnvHealthListen is where a worker serves /healthz and /readyz
	// (`APP worker --health-listen`; unset: nowhere).
	EnvHealthListen = "DSTREAM_WORKER_HEALTH_LISTEN"
)

// WorkerEnv is what the environment tells a worker process.
type WorkerEnv struct {
	Master      string
	ID          string
	Slots       int
	Parallelism int
	WatchStdin  bool
	Secret      []byte
	Listen      string
	Advertise   string
	Memory      int64
	WorkDir     string
	Checkpoint  string        // the checkpoint folder, when the master chose it
	TaskDelay   time.Duration // an injected fault: wait before every task (EnvSlowWorker)
	TLS         *TLS          // set when the TLS variables are
	// HealthListen is where to serve /healthz and /readyz; "" for nowhere.
	HealthListen string
}

// WorkerEnvFrom reads the worker environment through getenv; ok is false
// when the process is not a worker. A malformed value is an error naming
// the variable.
func WorkerEnvFrom(getenv func(string) string) (env WorkerEnv, ok bool, err error) {
	env.Master = getenv(EnvWorkerOf)
	if env.Master == "" {
		return env, false, nil
	}
	if _, err := ParseMasters(env.Master); err != nil {
		return env, true, fmt.Errorf("cluster: %s=%q: %w", EnvWorkerOf, env.Master, err)
	}
	env.ID = getenv(EnvWorkerID)
	num := func(name string, def int) (int, error) {
		v := getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return 0, fmt.Errorf("cluster: %s=%q: want a number from 1 to 4096", name, v)
		}
		return n, nil
	}
	if env.Slots, err = num(EnvWorkerSlots, 1); err != nil {
		return env, true, err
	}
	if env.Parallelism, err = num(EnvParallelism, 0); err != nil {
		return env, true, err
	}
	env.WatchStdin = getenv(EnvWatchStdin) == "1"
	env.Listen, env.Advertise, env.WorkDir = getenv(EnvListen), getenv(EnvAdvertise), getenv(EnvWorkDir)
	env.Checkpoint = getenv(EnvCheckpoint)
	env.HealthListen = getenv(EnvHealthListen)
	if v := getenv(EnvSlowWorker); v != "" {
		id, d, ok := strings.Cut(v, "=")
		delay, err := time.ParseDuration(d)
		if !ok || err != nil || delay < 0 {
			return env, true, fmt.Errorf("cluster: %s=%q: want WORKER_ID=DURATION", EnvSlowWorker, v)
		}
		if id == env.ID {
			env.TaskDelay = delay
		}
	}
	if cert, key, ca := getenv(EnvTLSCert), getenv(EnvTLSKey), getenv(EnvTLSCA); cert != "" || key != "" || ca != "" {
		if env.TLS, err = LoadTLS(cert, key, ca); err != nil {
			return env, true, err
		}
	}
	if v := getenv(EnvMemory); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1<<20 {
			return env, true, fmt.Errorf("cluster: %s=%q: want a number of bytes, at least 1 MiB", EnvMemory, v)
		}
		env.Memory = n
	}
	if s := getenv(SecretEnv); s != "" {
		env.Secret = []byte(s)
	}
	return env, true, nil
}

// Procs are worker processes a local-cluster master started.
type Procs struct {
	log   *slog.Logger
	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	id    string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error
}

// SpawnConfig says how to start local workers.
type SpawnConfig struct {
	N           int
	Master      string // the master's cluster address
	Secret      []byte
	Slots       int // per worker
	Parallelism int
	// Checkpoint is the checkpoint folder the workers use, when the
	// program's arguments name none (the master chose it).
	Checkpoint string
	// TLSFiles, if set, are the certificate, key and CA files the workers
	// use for mutual TLS.
	TLSFiles [3]string
	// Executable and Args are the program to run (default: this process's
	// executable and arguments).
	Executable string
	Args       []string
	// Stderr receives the workers' logs (default os.Stderr); their stdout
	// is discarded (it would repeat the program's own output).
	Stderr io.Writer
	Logger *slog.Logger
}

// Spawn starts cfg.N worker processes. Each stops when its stdin closes:
// when this process exits, however it exits, its workers follow. Each runs
// in a process group of its own (where there are process groups): Ctrl-C
// in a terminal signals the master only, whose graceful stop still needs
// its workers, and which stops them once it is done.
func Spawn(cfg SpawnConfig) (*Procs, error) {
	if cfg.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("cluster: cannot find this program to start workers: %w", err)
		}
		cfg.Executable, cfg.Args = exe, os.Args[1:]
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ps := &Procs{log: cfg.Logger}
	for i := range cfg.N {
		id := fmt.Sprintf("local-%d", i+1)
		cmd := exec.Command(cfg.Executable, cfg.Args...)
		cmd.Env = append(os.Environ(),
			EnvWorkerOf+"="+cfg.Master, EnvWorkerID+"="+id, EnvWorkerSlots+"="+strconv.Itoa(max(1, cfg.Slots)),
			EnvParallelism+"="+strconv.Itoa(cfg.Parallelism), EnvWatchStdin+"=1", SecretEnv+"="+string(cfg.Secret),
			"GOMAXPROCS=") // each worker sees the whole machine, as separate machines would
		if cfg.Checkpoint != "" {
			cmd.Env = append(cmd.Env, EnvCheckpoint+"="+cfg.Checkpoint)
		}
		if cfg.TLSFiles[0] != "" {
			cmd.Env = append(cmd.Env, EnvTLSCert+"="+cfg.TLSFiles[0], EnvTLSKey+"="+cfg.TLSFiles[1], EnvTLSCA+"="+cfg.TLSFiles[2])
		}
		cmd.Stdout = io.Discard
		cmd.Stderr = cfg.Stderr
		ownGroup(cmd)
		stdin, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			ps.Stop()
			return nil, fmt.Errorf("cluster: starting worker %s: %w", id, err)
		}
		p := &proc{id: id, cmd: cmd, stdin: stdin, done: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			close(p.done)
		}()
		ps.mu.Lock()
		ps.procs = append(ps.procs, p)
		ps.mu.Unlock()
	}
	return ps, nil
}

// PIDs returns the workers' process ids, in start order.
func (ps *Procs) PIDs() []int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]int, len(ps.procs))
	for i, p := range ps.procs {
		out[i] = p.cmd.Process.Pid
	}
	return out
}

// Exited returns a channel closed when any worker has exited, and that
// worker's error.
func (ps *Procs) Exited() (<-chan struct{}, func() error) {
	ch := make(chan struct{})
	var first *proc
	var once sync.Once
	ps.mu.Lock()
	procs := append([]*proc(nil), ps.procs...)
	ps.mu.Unlock()
	for _, p := range procs {
		go func() {
			<-p.done
			once.Do(func() { first = p; close(ch) })
		}()
	}
	return ch, func() error {
		if first == nil {
			return nil
		}
		if first.err != nil {
			return fmt.Errorf("worker %s exited: %w", first.id, first.err)
		}
		return fmt.Errorf("worker %s exited", first.id)
	}
}

// Stop closes every worker's stdin (they stop) and waits for them; one that
// has not exited after its stop is killed.
func (ps *Procs) Stop() {
	ps.mu.Lock()
	procs := ps.procs
	ps.procs = nil
	ps.mu.Unlock()
	for _, p := range procs {
		p.stdin.Close()
	}
	deadline := time.After(stopGrace)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			ps.log.Warn("cluster: local worker did not stop; killing it", "worker", p.id, "pid", p.cmd.Process.Pid)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if len(procs) > 0 {
		ps.log.Info("cluster: local workers stopped", "workers", len(procs))
	}
}

// stopGrace is how long stopped workers have to exit before they are killed.
const stopGrace = 10 * time.Second
