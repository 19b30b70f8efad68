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
// cannot be created) exits 2 (package program maps each outcome). A line
// longer than --max-record (default 16MiB) is not a record: it is dropped
// with a warning on stderr, and the lines around it are counted.
//
// With --kafka-brokers ADDR[,ADDR...] --topic NAME it reads the topic
// instead of a socket, directly (dstream.KafkaStream: each record's value
// is a line), from --kafka-start (earliest by default); --kafka-group G
// commits each completed interval's offsets to group G, and
// --max-rate-per-partition caps the records an interval takes from each
// partition, per second. Every deployment reads it the same way: the
// workers fetch the ranges the master fixed.
//
//	/tmp/wordcount --kafka-brokers 127.0.0.1:9092 --topic lines --out /tmp/wc
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/program"
	"github.com/dstream/dstream/source"
	"github.com/dstream/dstream/ui"
)

func main() {
	sig, stop := program.Signals(context.Background())
	code := run(sig, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs wordcount until sig is done or the context stops by itself, and
// returns the exit status (program.Exit): 0 after a graceful stop, 1 on an
// error while running, 2 on a usage error or a failure to start.
func run(sig context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "worker" {
		return dstream.WorkerMain(args[1:], stderr)
	}
	return program.Exit("wordcount", wordcount(sig, args, stdout, stderr), stderr)
}

// wordcount is the job: it returns a program.UsageError for a bad command
// line, a *program.StartError when it cannot start, and the error it
// stopped with otherwise.
func wordcount(sig context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9999", "`address` the socket source listens on (port 0 picks a free port)")
	batch := fs.Duration("batch", time.Second, "batch interval")
	out := fs.String("out", "", "output `location`: a folder, or s3://BUCKET/PREFIX (required; across machines, object storage or a folder every machine shares)")
	master := fs.String("master", "local[2]", "where tasks run: local[N] (this process, N task slots), local-cluster[N] (N worker processes this one starts) or cluster (workers join with: wordcount worker --master ADDR)")
	clusterFlags := dstream.ClusterFlags(fs)
	jobFlags := dstream.JobFlags(fs)
	logJSON := fs.Bool("log-json", false, "write log lines as JSON objects (slog's JSON handler) instead of text")
	uiListen := fs.String("ui-listen", ui.DefaultListen, "`address` the UI's JSON API listens on (port 0 picks a free port; \"\" turns it off)")
	memory := dstream.MemoryFlag(fs)
	maxRecord := dstream.Bytes(source.DefaultMaxRecordBytes)
	fs.Var(&maxRecord, "max-record", "longest line the socket source takes as a record, a `size`; a longer one is dropped with a warning")
	kafkaBrokers := fs.String("kafka-brokers", "", "read Kafka instead of a socket: the `brokers`, host:port[,host:port...] (with --topic)")
	topic := fs.String("topic", "", "with --kafka-brokers: the topic to read, each record's value a line")
	kafkaStart := fs.String("kafka-start", "earliest", "with --kafka-brokers: where a fresh job starts reading: earliest, latest or committed (the group's offsets)")
	kafkaGroup := fs.String("kafka-group", "", "with --kafka-brokers: commit each completed interval's offsets to this consumer `group` (for lag tools)")
	running := fs.Bool("running", false, "write running totals: every interval writes every word's count since the start (per-key state, checkpointed), not the interval's counts")
	maxRatePerPartition := fs.Int64("max-rate-per-partition", 0, "with --kafka-brokers: most records per second an interval takes from each partition (0: no cap)")
	if err := program.ParseFlags(fs, "wordcount --out FOLDER [flags]", args, stdout); err != nil {
		return err
	}
	start, startErr := kafka.ParseStartAt(*kafkaStart)
	switch {
	case *out == "":
		return program.Usagef("--out is required")
	case (*kafkaBrokers == "") != (*topic == ""):
		return program.Usagef("--kafka-brokers and --topic go together")
	case startErr != nil:
		return program.Usagef("--kafka-start: %v", startErr)
	case start == kafka.Committed && *kafkaGroup == "":
		return program.Usagef("--kafka-start committed needs --kafka-group")
	case *maxRatePerPartition < 0:
		return program.Usagef("--max-rate-per-partition must not be negative")
	case *batch <= 0:
		return program.Usagef("--batch %v must be positive", *batch)
	case maxRecord > source.MaxRecordBytesLimit:
		return program.Usagef("--max-record %v is over the limit of %v", maxRecord, dstream.Bytes(source.MaxRecordBytesLimit))
	}
	if *uiListen != "" {
		if _, _, err := net.SplitHostPort(*uiListen); err != nil {
			return program.Usagef("--ui-listen %q: want HOST:PORT, or \"\" to turn the UI off", *uiListen)
		}
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	if *logJSON {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	logger := slog.New(handler)
	// wordcount owns its process: the Go runtime's memory limit follows the
	// engine's budget.
	cfg := dstream.Config{Master: *master, BatchInterval: *batch, MemoryBytes: *memory, LimitProcessMemory: true, Logger: logger}
	if err := cfg.Validate(); err != nil {
		return program.UsageError{Err: err}
	}
	if err := clusterFlags(&cfg); err != nil {
		return program.UsageError{Err: err}
	}
	if err := jobFlags(&cfg); err != nil {
		return program.UsageError{Err: err}
	}
	prefix := strings.TrimSuffix(*out, "/") + "/words" // a folder, or object storage (s3://BUCKET/PREFIX)
	if !strings.Contains(*out, "://") {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return &program.StartError{Err: fmt.Errorf("cannot create output folder %s: %w", *out, err)}
		}
		prefix = filepath.Join(*out, "words")
	}
	ctx, err := dstream.NewContext(cfg)
	if err != nil {
		return &program.StartError{Err: err}
	}
	var (
		sock  *source.Socket
		lines *dstream.Stream[string]
	)
	if *kafkaBrokers != "" {
		recs := dstream.KafkaStream(ctx, dstream.KafkaOptions{Options: kafka.Options{
			Brokers: strings.Split(*kafkaBrokers, ","), Topics: []string{*topic}, Start: start,
			Group: *kafkaGroup, CommitOffsets: *kafkaGroup != "", Logger: logger,
		}, MaxRatePerPartition: *maxRatePerPartition})
		lines = dstream.Map(recs, func(r dstream.KafkaRecord) string { return string(r.Value) })
	} else {
		sock = source.NewSocket(*listen, source.SocketOptions{MaxRecordBytes: int(maxRecord), Logger: logger})
		lines = dstream.ReceiverStream(ctx, sock)
	}
	words := dstream.FlatMap(lines, strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 0)
	if *running {
		counts = dstream.UpdateStateByKey(counts, func(ns []int64, total dstream.Opt[int64]) dstream.Opt[int64] {
			for _, n := range ns {
				total.Value += n
			}
			return dstream.Some(total.Value)
		}, 0)
	}
	text := dstream.Map(counts, func(p dstream.Pair[string, int64]) string {
		return p.Key + "\t" + strconv.FormatInt(p.Value, 10)
	})
	text.SaveAsTextFiles(prefix, "")

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
			return &program.StartError{Err: fmt.Errorf("%w (--ui-listen ADDR moves the UI, --ui-listen \"\" turns it off)", err)}
		}
		defer endpoint.Close()
	}

	// Lines to stdout come from this goroutine and the listener bus's: a
	// log.Logger serialises them, and the address comes first.
	say := log.New(stdout, "wordcount: ", 0)
	started := make(chan struct{})
	var read atomic.Int64 // records read from Kafka
	ctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			<-started
			b := c.Batch
			read.Add(b.Records)
			status := "ok"
			if b.Err != nil {
				status = "FAILED: " + b.Err.Error()
			}
			say.Printf("interval %d: %d records in, processing %v, scheduling delay %v, total delay %v, %s",
				b.Time.UnixMilli(), b.Records, b.ProcessingTime.Round(time.Millisecond),
				b.SchedulingDelay.Round(time.Millisecond), b.TotalDelay.Round(time.Millisecond), status)
		}
	}))
	// A worker (started by a local-cluster master, or by `wordcount
	// worker`) serves the master's tasks until it is released; the lines
	// below are the master's. By default a failed interval stops the job
	// by itself.
	var asMaster bool
	err = program.Run(sig, ctx, program.Master{
		Started: func(context.Context) {
			asMaster = true
			if sock != nil {
				say.Printf("listening on %s, writing to %s", sock.Addr(), *out)
			} else {
				say.Printf("reading topic %s at %s, writing to %s", *topic, *kafkaBrokers, *out)
			}
			if addr := ctx.ClusterAddr(); addr != "" && *master == "cluster" {
				say.Printf("cluster master at %s: join with `wordcount worker --master %s`", addr, addr)
			}
			if endpoint != nil {
				say.Printf("UI at %s (JSON API: /api/v1/batches, /api/v1/statistics)", endpoint.URL())
			}
			close(started)
		},
		Stopping: func(why program.Reason) {
			if why == program.Interrupted {
				say.Print("stopping gracefully")
			}
		},
	})
	switch {
	case asMaster && sock != nil:
		say.Printf("stopped: received %d records", ctx.ReceivedRecords())
	case asMaster:
		say.Printf("stopped: read %d records", read.Load())
	}
	return err
}
