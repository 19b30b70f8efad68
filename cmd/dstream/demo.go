package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/program"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
	"github.com/dstream/dstream/ui"
)

// runDemo is the seed's trending topics: generated tweets go through the
// client's code path into a socket source; every interval the top 10
// hashtags over the sliding window are printed, with a summary line. The
// UI's JSON API (package ui) is served on --ui-listen unless it is "".
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 30*time.Second, "run this long, then stop gracefully (0: until Ctrl-C)")
	batch := fs.Duration("batch", time.Second, "batch interval")
	window := fs.Duration("window", 10*time.Second, "sliding window over which hashtags are counted")
	rate := fs.Int("rate", 5000, "tweets per second the generator sends")
	master := fs.String("master", "local[2]", "where tasks run: local[N] (this process, N task slots), local-cluster[N] (N worker processes this one starts) or cluster (workers join with: dstream worker --master ADDR)")
	clusterFlags := dstream.ClusterFlags(fs)
	jobFlags := dstream.JobFlags(fs)
	memory := dstream.MemoryFlag(fs)
	newLogger := logFlag(fs)
	uiListen := fs.String("ui-listen", ui.DefaultListen, "`address` the UI's JSON API listens on (port 0 picks a free port; \"\" turns it off)")
	verbose := fs.Bool("v", false, "log the engine's info messages")
	sourceKind := fs.String("source", "socket", "where the tweets come from: socket (sent by the client's code path) or kafka (a topic, read directly: KafkaStream)")
	brokers := fs.String("brokers", "", "with --source kafka: the Kafka brokers, host:port[,host:port...]; default: an in-process broker the demo starts")
	topic := fs.String("topic", "dstream-demo-tweets", "with --source kafka: the topic the demo writes tweets to and reads (made with 4 partitions if missing)")
	if err := parseFlags(fs, "[flags]", args, stdout); err != nil {
		return err
	}
	if *duration < 0 || *rate < 0 {
		return program.Usagef("--duration and --rate must not be negative")
	}
	if *batch <= 0 || *window <= 0 {
		return program.Usagef("--batch and --window must be positive (batch interval too short)")
	}
	if *sourceKind != "socket" && *sourceKind != "kafka" {
		return program.Usagef("--source %q: want socket or kafka", *sourceKind)
	}
	if *sourceKind != "kafka" && *brokers != "" {
		return program.Usagef("--brokers needs --source kafka")
	}
	if *uiListen != "" {
		if _, _, err := net.SplitHostPort(*uiListen); err != nil {
			return program.Usagef("--ui-listen %q: want HOST:PORT, or \"\" to turn the UI off", *uiListen)
		}
	}
	// The ranking (from the job runner) and the summary (from the listener
	// bus) are written by different goroutines.
	stdout = &lockedWriter{w: stdout}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := newLogger(stderr, level)

	// The demo owns its process: the Go runtime's memory limit follows the
	// engine's budget.
	cfg := dstream.Config{Master: *master, BatchInterval: *batch, MemoryBytes: *memory, LimitProcessMemory: true, Out: stdout, Logger: logger}
	var kafkaIn *demoKafka
	if *sourceKind == "kafka" {
		// Without --brokers the master starts the broker; its workers
		// (this program again, with the master's arguments) are told
		// where it is.
		embedded := *brokers == ""
		var err error
		if kafkaIn, err = startDemoKafka(ctx, *brokers, *topic); err != nil {
			return err
		}
		defer kafkaIn.Close()
		if embedded {
			cfg.WorkerArgs = append(append([]string{"demo"}, args...), "--brokers", strings.Join(kafkaIn.brokers, ","))
		}
	}
	if err := cfg.Validate(); err != nil {
		return program.UsageError{Err: err}
	}
	if err := clusterFlags(&cfg); err != nil {
		return program.UsageError{Err: err}
	}
	if err := jobFlags(&cfg); err != nil {
		return program.UsageError{Err: err}
	}
	sctx, err := dstream.NewContext(cfg)
	if err != nil {
		return err
	}
	var (
		sock   *source.Socket
		tweets *dstream.Stream[string]
	)
	if kafkaIn != nil {
		recs := dstream.KafkaStream(sctx, dstream.KafkaOptions{Options: kafka.Options{Brokers: kafkaIn.brokers, Topics: []string{kafkaIn.topic}, Start: kafka.Latest}})
		tweets = dstream.Map(recs, func(r dstream.KafkaRecord) string { return string(r.Value) })
	} else {
		sock = source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: logger})
		tweets = dstream.ReceiverStream(sctx, sock)
	}
	tags := dstream.FlatMap(tweets, hashtags)
	ones := dstream.Map(tags, func(t string) dstream.Pair[string, int64] { return dstream.KV(t, int64(1)) })
	counts := dstream.ReduceByKeyAndWindowInv(ones, add, sub, *window, *batch, 0,
		func(p dstream.Pair[string, int64]) bool { return p.Value > 0 })
	// Ask it while the demo runs: dstream query 127.0.0.1:4040 top k=5
	dstream.TopQuery(counts, "top", func(a, b dstream.Pair[string, int64]) bool {
		return a.Value > b.Value || a.Value == b.Value && a.Key < b.Key
	})
	dstream.ForeachRDD(counts, func(ctx context.Context, ds *rdd.Dataset[dstream.Pair[string, int64]], t time.Time) error {
		all, err := ds.Collect(ctx)
		if err != nil {
			return err
		}
		slices.SortFunc(all, func(a, b dstream.Pair[string, int64]) int {
			if a.Value != b.Value {
				return int(b.Value - a.Value)
			}
			return strings.Compare(a.Key, b.Key)
		})
		var b strings.Builder
		fmt.Fprintf(&b, "\n== %s  top hashtags over the last %v ==\n", t.Format("15:04:05"), *window)
		for i, kv := range all[:min(10, len(all))] {
			fmt.Fprintf(&b, "%2d. %-20s %d\n", i+1, kv.Key, kv.Value)
		}
		_, err = io.WriteString(stdout, b.String())
		return err
	})
	// The UI's listener comes before the summary's, so an interval is in
	// the API once its line is printed; it serves until the demo returns.
	var endpoint *ui.Endpoint
	if *uiListen != "" {
		endpoint, err = ui.NewServer(sctx, ui.Options{Logger: logger}).ListenNear(context.Background(), *uiListen, uiPortTries(fs))
		if err != nil {
			return fmt.Errorf("%w (--ui-listen ADDR moves the UI, --ui-listen \"\" turns it off)", err)
		}
		defer endpoint.Close()
	}
	sctx.AddListener(listener.Func(func(e listener.Event) {
		if c, ok := e.(listener.BatchCompleted); ok {
			b := c.Batch
			status := "ok"
			if b.Err != nil {
				status = "FAILED: " + b.Err.Error()
			}
			fmt.Fprintf(stdout, "   interval %s: %d records in, processing %v, scheduling delay %v, total delay %v, %s\n",
				b.Time.Format("15:04:05"), b.Records, b.ProcessingTime.Round(time.Millisecond),
				b.SchedulingDelay.Round(time.Millisecond), b.TotalDelay.Round(time.Millisecond), status)
		}
	}))
	// The banner and the generator are the master's: a worker (this
	// program, started by a local-cluster master or by `dstream worker`)
	// serves tasks until its master releases it.
	sendDone := make(chan error, 1)
	return program.Run(ctx, sctx, program.Master{
		Duration: *duration,
		Started: func(run context.Context) {
			into := ""
			if kafkaIn != nil {
				where := "the in-process Kafka broker at " + strings.Join(kafkaIn.brokers, ",")
				if kafkaIn.embedded == nil {
					where = "Kafka at " + strings.Join(kafkaIn.brokers, ",")
				}
				into = fmt.Sprintf("topic %s of %s, read directly (KafkaStream)", kafkaIn.topic, where)
			} else {
				into = sock.Addr().String()
			}
			fmt.Fprintf(stdout, "dstream demo: trending hashtags over %v windows, every %v; generated tweets at %d/s into %s (Ctrl-C stops)\n",
				*window, *batch, *rate, into)
			if addr := sctx.ClusterAddr(); addr != "" && *master == "cluster" {
				fmt.Fprintf(stdout, "dstream demo: cluster master at %s: join with `dstream worker --master %s`\n", addr, addr)
			}
			if endpoint != nil {
				fmt.Fprintf(stdout, "dstream demo: UI at %s (JSON API: /api/v1/batches, /api/v1/statistics); ask the hashtag window: dstream query %s top k=5\n", endpoint.URL(), endpoint.Addr())
			}
			go func() {
				if kafkaIn != nil {
					sendDone <- kafkaIn.produce(run, *rate, logger)
					return
				}
				_, err := client.Send(run, client.Options{To: sock.Addr().String(), Generate: "tweets", Seed: 1, Rate: *rate, Logger: logger})
				sendDone <- err
			}()
		},
		Stopping: func(program.Reason) {
			if err := <-sendDone; err != nil {
				logger.Warn("generator stopped", "err", err)
			}
			fmt.Fprintln(stdout, "\nstopping: finishing the intervals in flight ...")
		},
	})
}

func add(a, b int64) int64 { return a + b }
func sub(a, b int64) int64 { return a - b }

// hashtags returns the words of a tweet that start with '#'.
func hashtags(tweet string) []string {
	var tags []string
	for _, w := range strings.Fields(tweet) {
		if len(w) > 1 && w[0] == '#' {
			tags = append(tags, w)
		}
	}
	return tags
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
