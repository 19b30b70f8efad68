package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/bench"
	"github.com/dstream/dstream/program"
)

// runBench is `dstream bench`: the paper's workloads against a hand-written
// single-threaded baseline.
func runBench(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	workload := fs.String("workload", "all", "workload: "+strings.Join(bench.Names(), ", ")+" or all")
	batch := fs.Duration("batch", time.Second, "batch interval")
	var masters []string
	fs.Func("master", "where tasks run: local[N] or local-cluster[N] (N worker processes); repeat it to measure each workload under each, in turn (default local[2])", func(s string) error {
		if err := (dstream.Config{Master: s}).Validate(); err != nil {
			return err
		}
		masters = append(masters, s)
		return nil
	})
	duration := fs.Duration("duration", 60*time.Second, "bounds each workload's whole run, search included")
	fixed := fs.Float64("rate", 0, "records/s: no baseline and no search, one real-time run at this rate for --duration, for latency at a given rate (0: search for the sustained rate)")
	src := fs.String("source", "memory", "input: memory (the engine alone) or socket (through the client and a socket receiver)")
	window := fs.Duration("window", bench.Window, "window of wordcount and topk")
	memory := dstream.MemoryFlag(fs)
	ckpt := fs.String("checkpoint", "", "a `folder` under which every context of a run checkpoints in a new folder of its own (what checkpointing, or the lease, costs; local[N] only)")
	leaseTTL := fs.Duration("lease-ttl", 0, "with --checkpoint, the master's lease TTL (default "+dstream.DefaultLeaseTTL.String()+"; negative: no lease)")
	asJSON := fs.Bool("json", false, "print one JSON object per workload")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile (pprof) at the end of the run to this file")
	burst := fs.Int("burst", -1, "`records` an interval: no search and no wall clock, only intervals of this many records back to back on a manual clock, each --master in turn for --rounds rounds, timed (0: empty intervals, the fixed cost); for profiles and paired comparisons")
	intervals := fs.Int("intervals", 20, "with --burst, the intervals measured a round (after filling the window)")
	rounds := fs.Int("rounds", 3, "with --burst, the rounds (each --master once a round, in turn)")
	if err := parseFlags(fs, "[flags]", args, stdout); err != nil {
		return err
	}
	// Every flag is checked before anything is printed or created.
	if *fixed < 0 || math.IsNaN(*fixed) || math.IsInf(*fixed, 0) {
		return program.Usagef("--rate %v: want records per second, 0 or more", *fixed)
	}
	names := []string{*workload}
	if *workload == "all" {
		names = bench.Names()
	} else if _, ok := bench.Workloads[*workload]; !ok {
		return program.Usagef("--workload %q: want %s or all", *workload, strings.Join(bench.Names(), ", "))
	}
	switch {
	case *batch <= 0:
		return program.Usagef("--batch %v must be positive", *batch)
	case *duration <= 0:
		return program.Usagef("--duration %v must be positive", *duration)
	case *window <= 0 || *window%*batch != 0:
		return program.Usagef("--window %v must be a positive multiple of --batch %v", *window, *batch)
	case *src != "memory" && *src != "socket":
		return program.Usagef("--source %q: want memory or socket", *src)
	case *burst >= 0 && *src != "memory":
		return program.Usagef("--burst runs the memory source only")
	case *burst >= 0 && (*intervals < 1 || *rounds < 1):
		return program.Usagef("--intervals %d and --rounds %d must be positive", *intervals, *rounds)
	}
	if len(masters) == 0 {
		masters = []string{"local[2]"}
	}
	if *ckpt != "" {
		for _, m := range masters {
			if strings.HasPrefix(m, "local-cluster") {
				return program.Usagef("--checkpoint: only local[N], not %s", m)
			}
		}
	} else if *leaseTTL != 0 {
		return program.Usagef("--lease-ttl needs --checkpoint")
	}
	if err := (dstream.Config{BatchInterval: *batch}).Validate(); err != nil {
		return program.UsageError{Err: err}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	workerArgs := func(name string, master string) func(n int, source, rates string) []string {
		return func(n int, source, rates string) []string {
			args := []string{"bench-worker", "--workload", name, "--batch", batch.String(), "--window", window.String(),
				"--memory", strconv.FormatInt(*memory, 10), "--master", master, "--source", source, "--records", strconv.Itoa(n)}
			if rates != "" {
				args = append(args, "--rates", rates)
			}
			return args
		}
	}
	if *burst >= 0 {
		for _, name := range names {
			if err := runBurst(stdout, name, masters, *burst, *intervals, *rounds, func(master string) bench.Config {
				return bench.Config{Workload: name, Batch: *batch, Master: master, Window: *window, Memory: *memory, WorkerArgs: workerArgs(name, master)}
			}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range names {
		for _, master := range masters {
			cfg := bench.Config{Workload: name, Batch: *batch, Master: master, Duration: *duration, Source: *src, Window: *window, Memory: *memory, Checkpoint: *ckpt, LeaseTTL: *leaseTTL, Rate: *fixed}
			cfg.WorkerArgs = workerArgs(name, master)
			// Progress goes to stdout, or to stderr when stdout is for JSON.
			progress := stdout
			if *asJSON {
				progress = stderr
			}
			cfg.Progress = progress
			fmt.Fprintf(progress, "== %s, batch %v, %s, source %s\n", name, *batch, master, *src)
			res, err := bench.Run(cfg)
			if err != nil {
				return err
			}
			if *asJSON {
				b, _ := json.Marshal(res)
				fmt.Fprintln(stdout, string(b))
				continue
			}
			fmt.Fprintf(stdout, "%s on %s: %.0f records/s (%.0f per core on %d cores), p50 %.0f ms, p99 %.0f ms; baseline (1 thread) %.0f records/s; engine/baseline %.2f\n\n",
				name, master, res.RecordsPerSec, res.RecordsPerSecPerCore, res.Cores, res.P50LatencyMs, res.P99LatencyMs, res.BaselineRecordsPer, res.Ratio)
		}
	}
	return nil
}

// runBenchWorker is `dstream bench-worker`, not for people: a local-cluster
// benchmark's master starts its workers with it, and they build the graph
// of the run being measured (bench.Serve).
func runBenchWorker(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("bench-worker", flag.ContinueOnError)
	workload := fs.String("workload", "", "")
	batch := fs.Duration("batch", time.Second, "")
	window := fs.Duration("window", bench.Window, "")
	master := fs.String("master", "", "")
	src := fs.String("source", "memory", "")
	records := fs.Int("records", 0, "")
	rates := fs.String("rates", "", "")
	memory := dstream.MemoryFlag(fs)
	if err := parseFlags(fs, "[flags]", args, stdout); err != nil {
		return err
	}
	return bench.Serve(ctx, bench.Config{Workload: *workload, Batch: *batch, Window: *window, Master: *master, Source: *src, Memory: *memory, Rates: *rates}, *records)
}

// runBurst is `dstream bench --burst N`: rounds of each master in turn, n
// records an interval back to back on a manual clock (bench.Burst), the
// window filled first; it prints each round's median and 90th percentile
// interval per master and, for every master after the first, the median over
// rounds of the first's median divided by its own: its speed against the
// first's, pair by pair (a noisy machine moves both of a pair alike).
func runBurst(out io.Writer, name string, masters []string, n, intervals, rounds int, config func(master string) bench.Config) error {
	ratios := make([][]float64, len(masters))
	for r := range rounds {
		var first time.Duration
		for i, master := range masters {
			cfg := config(master)
			fill := int(cfg.Window / cfg.Batch)
			if name == "grep" {
				fill = 2
			}
			res, err := bench.Burst(cfg, n, fill, intervals)
			if err != nil {
				return fmt.Errorf("%s on %s: %w", name, master, err)
			}
			med := res.Median()
			ph := res.Phases
			us := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
			line := fmt.Sprintf("%s round %d %-18s %d records an interval: median %v, p90 %v (medians: before the first job %v, tasks running %v, between tasks %v, after the last job %v; %d jobs, %d stages, %d tasks; CPU an interval: master %v, workers %v)",
				name, r+1, master, n, us(med), us(res.P90()), us(ph.Before), us(ph.Tasks), us(ph.Between), us(ph.After), ph.Jobs, ph.Stages, ph.TasksRun, us(res.MasterCPU), us(res.WorkersCPU))
			if i == 0 {
				first = med
			} else {
				ratio := float64(first) / float64(med)
				ratios[i] = append(ratios[i], ratio)
				line += fmt.Sprintf(", speed against %s %.3f", masters[0], ratio)
			}
			fmt.Fprintln(out, line)
		}
	}
	for i := 1; i < len(masters); i++ {
		rs := slices.Clone(ratios[i])
		slices.Sort(rs)
		fmt.Fprintf(out, "%s: %s / %s, median of %d pairs: %.3f (%.3f-%.3f)\n", name, masters[i], masters[0], len(rs), rs[len(rs)/2], rs[0], rs[len(rs)-1])
	}
	return nil
}
