// Command dstream is the dstream tool: the trending-topics demo, the data
// injector that feeds socket sources, and the benchmarks (later, workers).
//
//	dstream demo [--duration D] [--batch 1s] [--window 10s] [--memory 1GiB]
//	dstream send --to HOST:PORT (--file F | --generate KIND) [--rate N] [--duration D]
//	dstream bench --workload grep|wordcount|topk [--batch 1s] [--json]
//	dstream drill [--duration 20s] [--kills K] [--master-restarts R] [--stalls S] [--json] [--plot FILE.svg]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dstream/dstream"
)

const usage = `dstream: discretized streams in Go

Usage:
  dstream demo [--duration D] [--batch 1s] [--window 10s] [--memory 1GiB] [--ui-listen 127.0.0.1:4040]
      trending hashtags over a sliding window, from generated tweets
  dstream send --to HOST:PORT (--file F | --generate KIND) [--rate N] [--duration D]
      inject newline-delimited records into a socket source
  dstream query [--interval latest|MS] ADDR [NAME [param=value ...]]
      ask a running job's named query (its UI's address; no NAME lists them)
  dstream worker --master HOST:PORT [--slots K] [--memory M] [--listen ADDR] [--advertise ADDR] [--secret-file F | --insecure]
      join a standalone master (dstream demo --master cluster) as a worker
  dstream bench [--workload grep|wordcount|topk|all] [--batch 1s] [--master local[N]|local-cluster[N] ...] [--duration D] [--source memory|socket] [--memory 1GiB] [--json]
      the paper's workloads: highest sustained rate, latency, and a hand-written baseline
  dstream drill [--duration 20s] [--batch 500ms] [--workers 3] [--seed N] [--kills K] [--master-restarts R] [--stalls S] [--stall D] [--long] [--json] [--plot FILE.svg] [--keep DIR]
      fault drill: kill, stop and restart the processes of a running job; compare its output with a fault-free run

Run 'dstream COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 on success,
// 2 on a usage error, 1 on any other error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "send":
		err = runSend(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "worker":
		return dstream.WorkerMain(args[1:], stderr)
	case "query":
		err = runQuery(ctx, args[1:], stdout, stderr)
	case "bench-worker":
		err = runBenchWorker(ctx, args[1:], stdout, stderr)
	case "drill":
		err = runDrill(ctx, args[1:], stdout, stderr)
	case "drill-job":
		err = runDrillJob(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "dstream: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "dstream %s: %v\nRun 'dstream %s --help' for its flags.\n", args[0], err, args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "dstream %s: %v\n", args[0], err)
		return 1
	}
}

// usageError marks an error in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parseFlags parses args into fs and rejects positional arguments. The flag
// package prints nothing: a malformed command line comes back as a
// usageError, which run prints once (exit 2); -h or --help prints the
// command's synopsis and flags to stdout and returns flag.ErrHelp (exit 0).
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "Usage: dstream %s %s\n\nFlags:\n", fs.Name(), synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return flag.ErrHelp
	case err != nil:
		return usageError{err}
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// logFlag defines --log-json on fs and returns a function that makes the
// command's logger: slog text lines on w by default, JSON objects with it.
func logFlag(fs *flag.FlagSet) func(w io.Writer, level slog.Level) *slog.Logger {
	asJSON := fs.Bool("log-json", false, "write log lines as JSON objects (slog's JSON handler) instead of text")
	return func(w io.Writer, level slog.Level) *slog.Logger {
		opts := &slog.HandlerOptions{Level: level}
		if *asJSON {
			return slog.New(slog.NewJSONHandler(w, opts))
		}
		return slog.New(slog.NewTextHandler(w, opts))
	}
}

// uiPortTries is how many ports after --ui-listen's a command tries when
// that one is taken: 16 for the default address (Spark's UI moves from 4040
// the same way), none for an address the user chose.
func uiPortTries(fs *flag.FlagSet) int {
	tries := 16
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ui-listen" {
			tries = 0
		}
	})
	return tries
}

// memoryFlag defines --memory on fs, the engine's memory budget parsed by
// dstream.ParseBytes, and returns where it is stored (default 1 GiB).
func memoryFlag(fs *flag.FlagSet) *int64 {
	n := int64(1 << 30)
	fs.Func("memory", "engine memory budget shared by input, state and execution: a `size` such as 512MiB or 2G (default 1GiB)", func(s string) error {
		v, err := dstream.ParseBytes(s)
		if err != nil {
			return err
		}
		if v <= 0 {
			return fmt.Errorf("size %q must be positive", s)
		}
		n = v
		return nil
	})
	return &n
}

// untilStopped blocks until ctx is done or sctx stops by itself (by default
// a failed interval stops it).
func untilStopped(ctx context.Context, sctx *dstream.Context) {
	select {
	case <-ctx.Done():
	case <-sctx.Done():
	}
}
