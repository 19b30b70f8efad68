// Command dstream is the dstream tool: the trending-topics demo, the data
// injector that feeds socket sources, and the benchmarks (later, workers).
//
//	dstream demo [--duration D] [--batch 1s] [--window 10s] [--memory 1GiB]
//	dstream send --to HOST:PORT[,HOST:PORT...] (--file F | --generate KIND) [--rate N] [--duration D]
//	dstream bench --workload grep|wordcount|topk [--batch 1s] [--json]
//	dstream drill [--duration 20s] [--kills K] [--master-restarts R] [--stalls S] [--json] [--plot FILE.svg]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/program"
)

const usage = `dstream: discretized streams in Go

Usage:
  dstream demo [--duration D] [--batch 1s] [--window 10s] [--memory 1GiB] [--ui-listen 127.0.0.1:4040]
      trending hashtags over a sliding window, from generated tweets
  dstream send --to HOST:PORT[,HOST:PORT...] (--file F | --generate KIND) [--rate N] [--duration D]
      inject newline-delimited records into a socket source
  dstream query [--interval latest|MS] ADDR [NAME [param=value ...]]
      ask a running job's named query (its UI's address; no NAME lists them)
  dstream worker --master HOST:PORT[,HOST:PORT...] [--slots K] [--memory M] [--listen ADDR] [--advertise ADDR] [--health-listen ADDR] [--secret-file F | --insecure]
      join a standalone master (dstream demo --master cluster) as a worker
  dstream bench [--workload grep|wordcount|topk|all] [--batch 1s] [--master local[N]|local-cluster[N] ...] [--duration D] [--source memory|socket] [--memory 1GiB] [--json]
      the paper's workloads: highest sustained rate, latency, and a hand-written baseline
  dstream drill [--duration 20s] [--batch 500ms] [--workers 3] [--seed N] [--kills K] [--master-restarts R] [--stalls S] [--stall D] [--long] [--json] [--plot FILE.svg] [--keep DIR]
                [--hosts [--cuts C] [--cut 3s] [--respawn 2s] [--store folder|s3]]
      fault drill: kill, stop and restart the processes of a running job (--hosts: each on a host of its own, links cut); compare its output with a fault-free run

  dstream version
      the build's version (set at link time: go build -ldflags "-X main.version=V")

Run 'dstream COMMAND --help' for a command's flags.
`

// version names the build; set at link time (-ldflags "-X main.version=V").
// An upgrade runs a newer build as a standby master (README, "Upgrades").
var version = "devel"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit status
// (program.Exit): 0 on success or --help, 2 on a usage error or when a job
// fails to start, 1 on any other error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return program.ExitUsage
	}
	ctx, cancel := program.Signals(context.Background())
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
	case "drill-host":
		err = runDrillHost(args[1:], stdout)
	case "drill-store":
		err = runDrillStore(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "dstream", version)
		return program.ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return program.ExitOK
	default:
		fmt.Fprintf(stderr, "dstream: unknown command %q\n\n%s", args[0], usage)
		return program.ExitUsage
	}
	return program.Exit("dstream "+args[0], err, stderr)
}

// parseFlags parses the command line of the command fs names
// (program.ParseFlags): synopsis follows "dstream NAME" in its --help.
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout io.Writer) error {
	return program.ParseFlags(fs, "dstream "+fs.Name()+" "+synopsis, args, stdout)
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
