package dstream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/health"
)

// Standalone clusters. A program started with Master "cluster" is a master
// that listens on Config.ClusterListen; `APP worker --master HOST:PORT`
// on any machine joins it. The worker asks the master how its program was
// started and becomes that program (same binary, same arguments, so the
// same graph) in the worker role.

// WorkerMain is `APP worker [flags]`: it joins the master named by
// --master (one address, or a comma-separated list of them: the worker
// joins whichever answers as the active master, and moves to the next
// when the one it follows is gone or a standby), and does not return unless it fails (the process becomes the
// master's program, as a worker); then it returns the exit status (2 for a
// usage error, 1 otherwise) after printing the error to stderr.
func WorkerMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	master := fs.String("master", "", "the master's cluster `address` HOST:PORT, or a comma-separated list of them: the worker joins the one that answers as the active master, and moves to the next when it is gone (required)")
	slots := fs.Int("slots", runtime.NumCPU(), "task `slots` of this worker")
	listen := fs.String("listen", "127.0.0.1:0", "`address` this worker serves its peers on (port 0 picks a free port)")
	advertise := fs.String("advertise", "", "`address` peers reach this worker at (default: --listen's, with this host's name for 0.0.0.0)")
	secretFile := fs.String("secret-file", "", "`file` holding the cluster's shared secret (default: $"+cluster.SecretEnv+")")
	insecure := fs.Bool("insecure", false, "join a master that runs without a secret")
	workDir := fs.String("work-dir", "", "`folder` this worker spills shuffle outputs to when its memory is full (default: none; they are recomputed)")
	healthListen := fs.String("health-listen", "", "`address` HOST:PORT to serve /healthz and /readyz on, for Kubernetes' probes (default: none)")
	tlsFiles := tlsFlags(fs)
	memory := MemoryFlag(fs)
	usage := func(err error) int {
		fmt.Fprintf(stderr, "worker: %v\nUsage: APP worker --master HOST:PORT[,HOST:PORT...] [--slots K] [--memory M] [--work-dir D] [--listen ADDR] [--advertise ADDR] [--health-listen ADDR] [--secret-file F | --insecure] [--tls-cert F --tls-key F --tls-ca F]\n", err)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return 0
		}
		return usage(err)
	}
	switch {
	case *master == "":
		return usage(errors.New("--master is required"))
	case fs.NArg() > 0:
		return usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	case *memory < 1<<20:
		return usage(fmt.Errorf("--memory %v is under 1 MiB", Bytes(*memory)))
	case *slots < 1 || *slots > 4096:
		return usage(fmt.Errorf("--slots %d must be between 1 and 4096", *slots))
	}
	masters, err := cluster.ParseMasters(*master)
	if err != nil {
		return usage(fmt.Errorf("--master: %w", err))
	}
	*master = cluster.JoinMasters(masters)
	secret, err := cluster.LoadSecret(*secretFile, *insecure)
	if err != nil {
		return usage(err)
	}
	var tlsID *cluster.TLS
	tlsCert, tlsKey, tlsCA := tlsFiles()
	if tlsCert != "" || tlsKey != "" || tlsCA != "" {
		if tlsID, err = cluster.LoadTLS(tlsCert, tlsKey, tlsCA); err != nil {
			return usage(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *healthListen != "" {
		// Until it becomes the master's program (which serves the probes
		// from then on, at the same address), the worker is live but not
		// ready. The listener is closed on exec.
		ep, err := health.Listen(*healthListen, health.Funcs{ReadyFunc: func() error {
			return fmt.Errorf("asking master %s for its program", *master)
		}}, nil)
		if err != nil {
			return usage(err)
		}
		defer ep.Close()
	}
	info, err := cluster.AskProgram(ctx, *master, secret, tlsID, func(err error) {
		fmt.Fprintf(stderr, "worker: master %s not reachable yet (retrying): %v\n", *master, err)
	})
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	// The flags win over the environment this command was started with:
	// the program reads the first occurrence of a variable.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DSTREAM_")
	})
	env = append(env,
		cluster.EnvWorkerOf+"="+*master, cluster.EnvWorkerSlots+"="+strconv.Itoa(*slots),
		cluster.EnvParallelism+"="+strconv.Itoa(info.Parallelism), cluster.EnvListen+"="+*listen,
		cluster.EnvAdvertise+"="+*advertise, cluster.EnvMemory+"="+strconv.FormatInt(*memory, 10),
		cluster.SecretEnv+"="+string(secret), cluster.EnvWorkDir+"="+abs(*workDir),
		cluster.EnvTLSCert+"="+tlsCert, cluster.EnvTLSKey+"="+tlsKey, cluster.EnvTLSCA+"="+tlsCA,
		cluster.EnvHealthListen+"="+*healthListen)
	err = syscall.Exec(exe, append([]string{exe}, info.Args...), env)
	fmt.Fprintln(stderr, "worker: cannot start the master's program:", err)
	return 1
}

// ClusterFlags registers the flags of a standalone master on fs
// (--cluster-listen, --cluster-advertise, --secret-file, --insecure, the
// --tls-* files) and returns the function that applies them to a Config
// (loading the secret); it leaves a Config whose Master is not "cluster"
// unchanged but for the TLS files and --health-listen
// (Config.HealthListen), which apply to every deployment.
func ClusterFlags(fs *flag.FlagSet) func(*Config) error {
	listen := fs.String("cluster-listen", DefaultClusterListen, "with --master cluster: `address` workers join at")
	advertise := fs.String("cluster-advertise", "", "with --master cluster: `address` workers reach the master at (default: --cluster-listen's)")
	secretFile := fs.String("secret-file", "", "with --master cluster: `file` holding the shared secret workers must present (default: $"+cluster.SecretEnv+")")
	insecure := fs.Bool("insecure", false, "with --master cluster: run without a secret (anyone reaching the port may join)")
	tlsFiles := tlsFlags(fs)
	healthListen := fs.String("health-listen", "", "`address` HOST:PORT to serve /healthz and /readyz on, for Kubernetes' probes (default: none)")
	return func(c *Config) error {
		if _, worker, _ := cluster.WorkerEnvFrom(os.Getenv); worker {
			return nil // a worker takes its secret, TLS files and health address from its environment
		}
		if *healthListen != "" {
			if _, _, err := net.SplitHostPort(*healthListen); err != nil {
				return fmt.Errorf("--health-listen %q: want HOST:PORT", *healthListen)
			}
		}
		c.TLSCert, c.TLSKey, c.TLSCA = tlsFiles()
		c.HealthListen = *healthListen
		if c.Master != "cluster" {
			return nil
		}
		secret, err := cluster.LoadSecret(*secretFile, *insecure)
		if err != nil {
			return err
		}
		c.ClusterListen, c.ClusterAdvertise, c.Secret, c.Insecure = *listen, *advertise, secret, *insecure
		return nil
	}
}

// tlsFlags registers --tls-cert, --tls-key and --tls-ca on fs and returns
// what reads them, as absolute file names (a worker started elsewhere finds
// them).
func tlsFlags(fs *flag.FlagSet) func() (cert, key, ca string) {
	cert := fs.String("tls-cert", "", "mutual TLS on cluster connections: this process's certificate `file` (PEM; with --tls-key and --tls-ca)")
	key := fs.String("tls-key", "", "mutual TLS: its key `file`")
	ca := fs.String("tls-ca", "", "mutual TLS: the `file` of the CA that signs the cluster's processes")
	return func() (string, string, string) { return abs(*cert), abs(*key), abs(*ca) }
}

// abs makes a file name absolute, so a worker started elsewhere finds it
// ("" stays "").
func abs(name string) string {
	if name == "" {
		return ""
	}
	if a, err := filepath.Abs(name); err == nil {
		return a
	}
	return name
}

// absLocation makes a checkpoint location that is a folder absolute (a path
// or a file:// URL), so a worker started elsewhere finds it; a URL of
// object storage names the same store from anywhere and stays as it is.
func absLocation(location string) string {
	if path, ok := strings.CutPrefix(location, "file://"); ok {
		return "file://" + abs(path)
	}
	if strings.Contains(location, "://") {
		return location
	}
	return abs(location)
}

// JobFlags registers the flags of a job's recovery and rate control on fs
// (--checkpoint, --checkpoint-interval, --write-ahead-log, --backpressure,
// --max-rate, --initial-rate) and returns what applies them to a Config
// after parsing. The checkpoint location is checked (a malformed one is an
// error naming --checkpoint), and a folder is made absolute, so a worker
// started elsewhere (in a standalone cluster, the same program with the
// same arguments) writes to the same shared folder.
func JobFlags(fs *flag.FlagSet) func(*Config) error {
	dir := fs.String("checkpoint", "", "`location` for state checkpoints and the master's metadata log: a folder, or s3://BUCKET/PREFIX (configured by AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for an S3-compatible server, AWS_ENDPOINT_URL); running again with the same location resumes the job (a folder is the master's, which it serves to its workers)")
	every := fs.Duration("checkpoint-interval", 0, "how often state streams write a checkpoint (default: the larger of 10s and five slides)")
	bp := fs.Bool("backpressure", false, "adapt every receiver's rate to what the job processes (a PID controller, as Spark's spark.streaming.backpressure)")
	maxRate := fs.Int("max-rate", 0, "records per second each receiver takes in at most (0: no cap)")
	initial := fs.Int("initial-rate", 0, "with --backpressure: the rate receivers start at, until the first estimate (0: no limit until then)")
	leaseTTL := fs.Duration("lease-ttl", 0, "with --checkpoint: how long the master holds the location's lease without renewing it; a second master started with the same location waits as a standby and takes over within about this once the active one is gone (default "+DefaultLeaseTTL.String()+"; -1s: no lease)")
	wal := fs.Bool("write-ahead-log", false, "with --checkpoint: write every received block there before acknowledging it, so a restarted master loses no acknowledged record (as Spark's spark.streaming.receiver.writeAheadLog.enable)")
	return func(c *Config) error {
		switch {
		case *every < 0:
			return fmt.Errorf("--checkpoint-interval %v must not be negative", *every)
		case *maxRate < 0 || *initial < 0:
			return fmt.Errorf("--max-rate and --initial-rate must not be negative")
		case *wal && *dir == "":
			return fmt.Errorf("--write-ahead-log needs --checkpoint: the log is written in the checkpoint folder")
		}
		if *dir != "" {
			if err := checkpoint.CheckLocation(*dir); err != nil {
				return fmt.Errorf("--checkpoint: %w", err)
			}
		}
		c.CheckpointDir, c.CheckpointInterval = absLocation(*dir), *every
		c.Backpressure, c.MaxRate, c.InitialRate = *bp, *maxRate, *initial
		c.WriteAheadLog, c.LeaseTTL = *wal, *leaseTTL
		return nil
	}
}
