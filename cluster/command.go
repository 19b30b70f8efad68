package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dstream/dstream/bytesize"
	"github.com/dstream/dstream/health"
)

// WorkerCommand is `APP worker [flags]` (dstream.WorkerMain): it joins the
// master named by --master (one address, or a comma-separated list of
// them: the worker joins whichever answers as the active master, and moves
// to the next when the one it follows is gone or a standby) and becomes
// the master's program in the worker role (the same binary with the
// master's arguments, by exec), so it does not return unless it fails;
// then it returns the exit status (2 for a usage error, 1 otherwise) after
// printing the error to stderr. memory is --memory's default.
func WorkerCommand(args []string, stderr io.Writer, memory int64) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	master := fs.String("master", "", "the master's cluster `address` HOST:PORT, or a comma-separated list of them: the worker joins the one that answers as the active master, and moves to the next when it is gone (required)")
	slots := fs.Int("slots", runtime.NumCPU(), "task `slots` of this worker")
	listen := fs.String("listen", "127.0.0.1:0", "`address` this worker serves its peers on (port 0 picks a free port)")
	advertise := fs.String("advertise", "", "`address` peers reach this worker at (default: --listen's, with this host's name for 0.0.0.0)")
	secretFile := fs.String("secret-file", "", "`file` holding the cluster's shared secret (default: $"+SecretEnv+")")
	insecure := fs.Bool("insecure", false, "join a master that runs without a secret")
	workDir := fs.String("work-dir", "", "`folder` this worker spills shuffle outputs to when its memory is full (default: none; they are recomputed)")
	healthListen := fs.String("health-listen", "", "`address` HOST:PORT to serve /healthz and /readyz on, for Kubernetes' probes (default: none)")
	tlsFiles := TLSFlags(fs)
	mem := bytesize.MemoryFlag(fs, memory)
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
	case *mem < 1<<20:
		return usage(fmt.Errorf("--memory %v is under 1 MiB", bytesize.Bytes(*mem)))
	case *slots < 1 || *slots > 4096:
		return usage(fmt.Errorf("--slots %d must be between 1 and 4096", *slots))
	}
	masters, err := ParseMasters(*master)
	if err != nil {
		return usage(fmt.Errorf("--master: %w", err))
	}
	*master = JoinMasters(masters)
	secret, err := LoadSecret(*secretFile, *insecure)
	if err != nil {
		return usage(err)
	}
	var tlsID *TLS
	tlsCert, tlsKey, tlsCA := tlsFiles()
	if tlsCert != "" || tlsKey != "" || tlsCA != "" {
		if tlsID, err = LoadTLS(tlsCert, tlsKey, tlsCA); err != nil {
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
	info, err := AskProgram(ctx, *master, secret, tlsID, func(err error) {
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
		EnvWorkerOf+"="+*master, EnvWorkerSlots+"="+strconv.Itoa(*slots),
		EnvParallelism+"="+strconv.Itoa(info.Parallelism), EnvListen+"="+*listen,
		EnvAdvertise+"="+*advertise, EnvMemory+"="+strconv.FormatInt(*mem, 10),
		SecretEnv+"="+string(secret), EnvWorkDir+"="+abs(*workDir),
		EnvTLSCert+"="+tlsCert, EnvTLSKey+"="+tlsKey, EnvTLSCA+"="+tlsCA,
		EnvHealthListen+"="+*healthListen)
	err = syscall.Exec(exe, append([]string{exe}, info.Args...), env)
	fmt.Fprintln(stderr, "worker: cannot start the master's program:", err)
	return 1
}

// TLSFlags registers --tls-cert, --tls-key and --tls-ca on fs and returns
// what reads them, as absolute file names (a worker started elsewhere finds
// them).
func TLSFlags(fs *flag.FlagSet) func() (cert, key, ca string) {
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
