// Command dstream is the dstream tool: the trending-topics demo, the data
// injector that feeds socket sources, and (later) benchmarks and workers.
//
//	dstream demo [--duration D] [--batch 1s] [--window 10s]
//	dstream send --to HOST:PORT (--file F | --generate KIND) [--rate N] [--duration D]
//	dstream bench --workload grep|wordcount|topk [--batch 1s] [--json]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `dstream: discretized streams in Go

Usage:
  dstream demo [--duration D] [--batch 1s] [--window 10s]
      trending hashtags over a sliding window, from generated tweets
  dstream send --to HOST:PORT (--file F | --generate KIND) [--rate N] [--duration D]
      inject newline-delimited records into a socket source
  dstream bench [--workload grep|wordcount|topk|all] [--batch 1s] [--master local[N]] [--duration D] [--source memory|socket] [--json]
      the paper's workloads: highest sustained rate, latency, and a hand-written baseline

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
		fmt.Fprintf(stderr, "dstream %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "dstream %s: %v\n", args[0], err)
		return 1
	}
}

// usageError marks an error in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parseFlags parses args into fs and rejects positional arguments; a
// malformed command line is a usageError (exit 2), -h is flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}
