package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/program"
	"github.com/dstream/dstream/ui"
)

// The job under test of `dstream drill`: word count, running totals per
// word (state), an incremental window and an event-time window count (over
// out-of-order records, some later than the watermark) over replayable
// inputs, each saved with SaveAsTextFiles. The drill runs it as a local-cluster master
// (and so as its workers: the same program with the same arguments), and
// runs the same graph in its own process on a manual clock for the
// fault-free reference.

// Output folders under --out: out/NAME/NAME-<interval ms>, in a folder or
// a store (--out s3://BUCKET/PATH).
var drillOutputs = []string{"counts", "events", "totals", "window"}

// drillJobConfig is what the job's graph depends on.
type drillJobConfig struct {
	Batch    time.Duration
	Seed     uint64
	Words    int           // records per interval, about
	Window   time.Duration // the incremental window
	StateCkp time.Duration // how often the state streams checkpoint (0: 2 batches)
}

// drillVocabulary is the number of distinct words the generator draws from.
const drillVocabulary = 400

// drillParts is how many partitions each interval's input has.
const drillParts = 4

// drillWords is the input of the interval ending at t: a deterministic
// function of the seed and the interval's Unix milliseconds, so a
// restarted master, its workers and the reference run all see the same
// records. Word frequencies are skewed (a Zipf draw) and the count varies
// per interval, so windows gain and lose words.
func drillWords(seed uint64, words int, t time.Time) [][]string {
	ms := uint64(t.UnixMilli())
	r := rand.New(rand.NewPCG(seed, ms))
	n := words/2 + r.IntN(words+1)
	z := rand.NewZipf(r, 1.1, 4, drillVocabulary-1)
	parts := make([][]string, drillParts)
	for i := range n {
		w := fmt.Sprintf("w%03d", z.Uint64())
		parts[i%drillParts] = append(parts[i%drillParts], w)
	}
	return parts
}

// outputPrefix is output name's SaveAsTextFiles prefix under out, a folder
// or a store's URL.
func outputPrefix(out, name string) string {
	if isStoreURL(out) {
		return strings.TrimSuffix(out, "/") + "/" + name + "/" + name
	}
	return filepath.Join(out, name, name)
}

// isStoreURL reports whether out is a store's URL (SCHEME://...) rather
// than a folder.
func isStoreURL(out string) bool { return strings.Contains(out, "://") }

// buildDrillGraph builds the job's graph on sctx, writing under out (a
// folder, or a store's URL).
func buildDrillGraph(sctx *dstream.Context, cfg drillJobConfig, out string) {
	words := dstream.GeneratedStream(sctx, "drill-words", func(t time.Time) [][]string {
		return drillWords(cfg.Seed, cfg.Words, t)
	})
	ones := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKey(ones, add, 0)
	counts.SaveAsTextFiles(outputPrefix(out, "counts"), "")
	every := cfg.StateCkp
	if every == 0 {
		every = 2 * cfg.Batch
	}
	totals := dstream.UpdateStateByKey(ones, func(vs []int64, st dstream.Opt[int64]) dstream.Opt[int64] {
		sum := st.Value
		for _, v := range vs {
			sum += v
		}
		return dstream.Some(sum)
	}, 0).Checkpoint(every)
	totals.SaveAsTextFiles(outputPrefix(out, "totals"), "")
	window := dstream.ReduceByKeyAndWindowInv(ones, add, sub, cfg.Window, cfg.Batch, 0,
		func(p dstream.Pair[string, int64]) bool { return p.Value > 0 })
	window.SaveAsTextFiles(outputPrefix(out, "window"), "")
	drillEventTime(sctx, cfg).SaveAsTextFiles(outputPrefix(out, "events"), "")
}

// drillEvent is a record of the event-time input: a word and when it
// happened.
type drillEvent struct {
	Word string
	At   int64 // Unix ms
}

// drillEvents is the event-time input of the interval ending at t, a tenth
// of drillWords' size: most records up to one batch behind t, one in ten
// three to four batches behind (later than the watermark, one batch behind
// the largest event time seen).
func drillEvents(seed uint64, words int, batch time.Duration, t time.Time) [][]drillEvent {
	r := rand.New(rand.NewPCG(seed+1, uint64(t.UnixMilli())))
	parts := make([][]drillEvent, drillParts)
	b := batch.Milliseconds()
	for i := range max(1, words/10) {
		behind := r.Int64N(b)
		if r.IntN(10) == 0 {
			behind = 3*b + r.Int64N(b)
		}
		parts[i%drillParts] = append(parts[i%drillParts], drillEvent{Word: fmt.Sprintf("w%02d", r.IntN(20)), At: t.UnixMilli() - behind})
	}
	return parts
}

// drillEventTime is the event-time output: each word's records in tumbling
// windows of two batches, appended as the watermark closes them ("w07
// [START,END) N", Unix ms), and the records dropped as late ("late w07
// AT").
func drillEventTime(sctx *dstream.Context, cfg drillJobConfig) *dstream.Stream[string] {
	in := dstream.GeneratedStream(sctx, "drill-events", func(t time.Time) [][]drillEvent {
		return drillEvents(cfg.Seed, cfg.Words, cfg.Batch, t)
	})
	ev := dstream.WithEventTime(in, func(e drillEvent) time.Time { return time.UnixMilli(e.At) }, cfg.Batch)
	w := dstream.CountByEventWindow(ev, func(e drillEvent) string { return e.Word }, dstream.TumblingWindows(2*cfg.Batch), dstream.AppendMode, 0)
	wins := dstream.Map(w.Stream, func(x dstream.Windowed[string, int64]) string {
		return fmt.Sprintf("%s [%d,%d) %d", x.Key, x.Start.UnixMilli(), x.End.UnixMilli(), x.Value)
	})
	late := dstream.Map(w.Late(), func(e dstream.Event[drillEvent]) string { return fmt.Sprintf("late %s %d", e.Value.Word, e.Value.At) })
	return dstream.Union(wins, late)
}

// drillJobFlags are the job's flags; the drill writes its command line
// from them.
type drillJobFlags struct {
	master, out, uiListen string
	cfg                   drillJobConfig
	verbose, watchStdin   bool
	linger                time.Duration
	parallelism           int
}

func parseDrillJobFlags(args []string, stdout io.Writer) (*drillJobFlags, func(*dstream.Config) error, error) {
	fs := flag.NewFlagSet("drill-job", flag.ContinueOnError)
	f := &drillJobFlags{}
	fs.StringVar(&f.master, "master", "local-cluster[3]", "where tasks run: local[N], local-cluster[N], cluster (a standalone master that worker processes, dstream worker, join)")
	fs.IntVar(&f.parallelism, "parallelism", 0, "partitions of the shuffles (0: the deployment's default)")
	fs.DurationVar(&f.cfg.Batch, "batch", 500*time.Millisecond, "batch interval")
	fs.StringVar(&f.out, "out", "", "output `location`, a folder or s3://BUCKET/PATH: counts/, events/, totals/ and window/ hold one folder per interval (required)")
	fs.StringVar(&f.uiListen, "ui-listen", "127.0.0.1:0", "`address` of the UI's JSON API (port 0: any free port; the job prints it)")
	fs.Uint64Var(&f.cfg.Seed, "seed", 1, "seed of the generated input")
	fs.IntVar(&f.cfg.Words, "words", 3000, "words per interval, about (between half and one and a half times this)")
	fs.DurationVar(&f.cfg.Window, "window", 0, "the incremental window (default: 4 batches)")
	fs.BoolVar(&f.verbose, "v", false, "log the engine's info messages")
	fs.BoolVar(&f.watchStdin, "watch-stdin", false, "stop (hard) when stdin closes: the drill that started this master is gone")
	fs.DurationVar(&f.linger, "linger", 0, "after a graceful stop, keep serving the UI this long (the drill reads the last intervals)")
	jobFlags := dstream.JobFlags(fs)
	clusterFlags := dstream.ClusterFlags(fs) // --master cluster: a standalone master (tests of stops and restarts)
	if err := parseFlags(fs, "--checkpoint LOCATION --out LOCATION [flags]", args, stdout); err != nil {
		return nil, nil, err
	}
	apply := func(c *dstream.Config) error {
		if err := jobFlags(c); err != nil {
			return err
		}
		return clusterFlags(c)
	}
	if f.cfg.Window == 0 {
		f.cfg.Window = 4 * f.cfg.Batch
	}
	switch {
	case f.out == "":
		return nil, nil, program.Usagef("--out is required")
	case f.cfg.Batch <= 0:
		return nil, nil, program.Usagef("--batch %v must be positive", f.cfg.Batch)
	case f.cfg.Words < 1:
		return nil, nil, program.Usagef("--words %d must be positive", f.cfg.Words)
	case f.cfg.Window < f.cfg.Batch || f.cfg.Window%f.cfg.Batch != 0:
		return nil, nil, program.Usagef("--window %v must be a positive multiple of --batch %v", f.cfg.Window, f.cfg.Batch)
	case f.parallelism < 0:
		return nil, nil, program.Usagef("--parallelism %d must not be negative", f.parallelism)
	}
	if f.uiListen != "" {
		if _, _, err := net.SplitHostPort(f.uiListen); err != nil {
			return nil, nil, program.Usagef("--ui-listen %q: want HOST:PORT, or \"\" to turn the UI off", f.uiListen)
		}
	}
	if isStoreURL(f.out) {
		if err := checkpoint.CheckLocation(f.out); err != nil {
			return nil, nil, program.Usagef("--out: %v", err)
		}
	} else if abs, err := filepath.Abs(f.out); err == nil {
		f.out = abs
	}
	return f, apply, nil
}

// runDrillJob is `dstream drill-job`, not for people: the job `dstream
// drill` runs, kills and restarts. In a worker process (the program its
// local-cluster master started, with the same arguments) it builds the same
// graph and serves tasks.
func runDrillJob(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, jobFlags, err := parseDrillJobFlags(args, stdout)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := dstream.Config{Master: f.master, BatchInterval: f.cfg.Batch, Parallelism: f.parallelism, LimitProcessMemory: true, Logger: logger, Out: stdout}
	if err := jobFlags(&cfg); err != nil {
		return program.UsageError{Err: err}
	}
	if err := cfg.Validate(); err != nil {
		return program.UsageError{Err: err}
	}
	if cfg.CheckpointDir == "" {
		return program.Usagef("--checkpoint is required: the drill restarts the master from it")
	}
	f.cfg.StateCkp = cfg.CheckpointInterval
	sctx, err := dstream.NewContext(cfg)
	if err != nil {
		return err
	}
	buildDrillGraph(sctx, f.cfg, f.out)
	var endpoint *ui.Endpoint
	if f.uiListen != "" {
		// A worker binds nothing (ListenNear): the master's UI shows the job.
		endpoint, err = ui.NewServer(sctx, ui.Options{Logger: logger}).Listen(context.Background(), f.uiListen)
		if err != nil {
			return err
		}
		defer endpoint.Close()
	}
	addr := ""
	if endpoint != nil {
		addr = endpoint.Addr()
	}
	var stdinClosed chan struct{}
	if f.watchStdin {
		stdinClosed = make(chan struct{})
	}
	// A worker (the program its local-cluster master started) serves tasks
	// until the master releases it; the rest is the master's.
	var why program.Reason
	err = program.Run(ctx, sctx, program.Master{
		Abandon: stdinClosed,
		Started: func(context.Context) {
			// The drill reads this line: where the UI is, and the job's zero.
			fmt.Fprintf(stdout, "drill-job: pid %d ui %s zero %d batch %v cluster %s\n",
				os.Getpid(), addr, sctx.StartTime().UnixMilli(), f.cfg.Batch, sctx.ClusterAddr())
			if f.watchStdin {
				go func() {
					_, _ = io.Copy(io.Discard, os.Stdin)
					close(stdinClosed)
				}()
			}
		},
		Stopping: func(r program.Reason) {
			why = r
			if r == program.Abandoned {
				logger.Warn("drill-job: stdin closed (the drill is gone); stopping hard")
			}
		},
	})
	if why == 0 || why == program.Abandoned || why == program.StoppedItself && f.watchStdin {
		// A worker, a job that did not start, or (with --watch-stdin) one
		// that stopped hard or by itself: nothing more to say.
		return err
	}
	fmt.Fprintf(stdout, "drill-job: stopped (err %v)\n", err)
	if f.linger > 0 && endpoint != nil {
		time.Sleep(f.linger)
	}
	return err
}
