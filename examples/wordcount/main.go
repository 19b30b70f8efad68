// Command wordcount counts the words (fields split on white space, as
// strings.Fields does) of every interval received on a socket and saves each
// interval as lines "word<TAB>count" under DIR/words-<interval ms>/part-NNNNN.
//
//	go build -o /tmp/wordcount ./examples/wordcount
//	/tmp/wordcount --listen 127.0.0.1:9999 --batch 1s --out /tmp/wc &
//	go run ./cmd/dstream send --to 127.0.0.1:9999 --file input.txt
//
// It prints one line per interval: records in, processing time, scheduling
// delay, total delay and status. --ui-listen ADDR (default 127.0.0.1:4040;
// port 0 picks a free port, "" turns it off) serves the JSON API of package
// ui there (/api/v1/batches, /api/v1/statistics); the URL is printed after
// the listening line. SIGTERM or Ctrl-C stops it gracefully: it
// stops receiving, finishes every record already received, writes those
// intervals and exits 0. A failed interval stops it with exit status 1; a
// usage error or a failure to start (the port in use, an output folder that
// cannot be created) exits 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/source"
	"github.com/dstream/dstream/ui"
)

func main() {
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(sig, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs wordcount until sig is done or the context stops by itself, and
// returns the exit status: 0 after a graceful stop, 1 on an error while
// running, 2 on a usage error or a failure to start.
func run(sig context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "worker" {
		return dstream.WorkerMain(args[1:], stderr)
	}
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, below
	fs.Usage = func() {}
	listen := fs.String("listen", "127.0.0.1:9999", "address the socket source listens on (port 0 picks a free port)")
	batch := fs.Duration("batch", time.Second, "batch interval")
	out := fs.String("out", "", "output `folder` (required)")
	master := fs.String("master", "local[2]", "where tasks run: local[N] (this process, N task slots), local-cluster[N] (N worker processes this one starts) or cluster (workers join with `wordcount worker --master ADDR`)")
	clusterFlags := dstream.ClusterFlags(fs)
	jobFlags := dstream.JobFlags(fs)
	logJSON := fs.Bool("log-json", false, "write log lines as JSON objects (slog's JSON handler) instead of text")
	uiListen := fs.String("ui-listen", ui.DefaultListen, "`address` the UI's JSON API listens on (port 0 picks a free port; \"\" turns it off)")
	memory := int64(1 << 30)
	fs.Func("memory", "engine memory budget shared by input, state and execution: a `size` such as 512MiB or 2G (default 1GiB)", func(s string) error {
		n, err := dstream.ParseBytes(s)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("size %q must be positive", s)
		}
		memory = n
		return nil
	})
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "wordcount: %v\nRun 'wordcount --help' for its flags.\n", err)
		return 2
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "Usage: wordcount --out FOLDER [flags]\n\nFlags:\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	case err != nil:
		return usageErr(err)
	case fs.NArg() > 0:
		return usageErr(fmt.Errorf("unexpected arguments %q", fs.Args()))
	case *out == "":
		return usageErr(errors.New("--out is required"))
	case *batch <= 0:
		return usageErr(fmt.Errorf("--batch %v must be positive", *batch))
	}
	if *uiListen != "" {
		if _, _, err := net.SplitHostPort(*uiListen); err != nil {
			return usageErr(fmt.Errorf("--ui-listen %q: want HOST:PORT, or \"\" to turn the UI off", *uiListen))
		}
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	if *logJSON {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	logger := slog.New(handler)
	// wordcount owns its process: the Go runtime's memory limit follows the
	// engine's budget.
	cfg := dstream.Config{Master: *master, BatchInterval: *batch, MemoryBytes: memory, LimitProcessMemory: true, Logger: logger}
	if err := cfg.Validate(); err != nil {
		return usageErr(err)
	}
	if err := clusterFlags(&cfg); err != nil {
		return usageErr(err)
	}
	if err := jobFlags(&cfg); err != nil {
		return usageErr(err)
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "wordcount:", err)
		return code
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(2, fmt.Errorf("cannot create output folder %s: %w", *out, err))
	}
	ctx, err := dstream.NewContext(cfg)
	if err != nil {
		return fail(2, err)
	}
	sock := source.NewSocket(*listen, source.SocketOptions{Logger: logger})
	lines := dstream.ReceiverStream(ctx, sock)
	words := dstream.FlatMap(lines, strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 0)
	text := dstream.Map(counts, func(p dstream.Pair[string, int64]) string {
		return p.Key + "\t" + strconv.FormatInt(p.Value, 10)
	})
	text.SaveAsTextFiles(filepath.Join(*out, "words"), "")

	// The UI's listener is registered before the line printer's, so an
	// interval is in the API by the time its line is printed. It serves
	// until run returns, through the graceful stop.
	var endpoint *ui.Endpoint
	if *uiListen != "" {
		// The default port moves on when taken (as Spark's UI does); a
		// port the user chose does not.
		tries := 16
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "ui-listen" {
				tries = 0
			}
		})
		endpoint, err = ui.NewServer(ctx, ui.Options{Logger: logger}).ListenNear(context.Background(), *uiListen, tries)
		if err != nil {
			return fail(2, fmt.Errorf("%w (--ui-listen ADDR moves the UI, --ui-listen \"\" turns it off)", err))
		}
		defer endpoint.Close()
	}

	// Lines to stdout come from this goroutine and the listener bus's: a
	// log.Logger serialises them, and the address comes first.
	say := log.New(stdout, "wordcount: ", 0)
	started := make(chan struct{})
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			<-started
			b := c.Batch
			status := "ok"
			if b.Err != nil {
				status = "FAILED: " + b.Err.Error()
			}
			say.Printf("interval %d: %d records in, processing %v, scheduling delay %v, total delay %v, %s",
				b.Time.UnixMilli(), b.Records, b.ProcessingTime.Round(time.Millisecond),
				b.SchedulingDelay.Round(time.Millisecond), b.TotalDelay.Round(time.Millisecond), status)
		}
	}))
	if err := ctx.Start(); err != nil {
		return fail(2, err)
	}
	if ctx.IsWorker() {
		// A worker (started by a local-cluster master, or by `wordcount
		// worker`): it serves the master's tasks until stopped.
		select {
		case <-sig.Done():
		case <-ctx.Done():
		}
		if err := ctx.Stop(false); err != nil {
			return fail(1, err)
		}
		return 0
	}
	say.Printf("listening on %s, writing to %s", sock.Addr(), *out)
	if addr := ctx.ClusterAddr(); addr != "" && *master == "cluster" {
		say.Printf("cluster master at %s: join with `wordcount worker --master %s`", addr, addr)
	}
	if endpoint != nil {
		say.Printf("UI at %s (JSON API: /api/v1/batches, /api/v1/statistics)", endpoint.URL())
	}
	close(started)
	// Wait for a signal, or for the context to stop by itself (by default a
	// failed interval stops it).
	select {
	case <-sig.Done():
		say.Print("stopping gracefully")
	case <-ctx.Done():
	}
	err = ctx.Stop(true)
	say.Printf("stopped: received %d records", ctx.ReceivedRecords())
	if err != nil {
		return fail(1, err)
	}
	return 0
}
