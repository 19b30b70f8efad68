package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
)

// The fault-free run and the comparison.

// readJobZero reads the job's zero (the time before its first interval)
// and batch interval from meta/start at its checkpoint location: a folder,
// or s3://... (the drill across hosts, --store s3).
func readJobZero(ctx context.Context, location string) (zero time.Time, batch time.Duration, err error) {
	store, err := checkpoint.Open(ctx, location)
	if err != nil {
		return zero, 0, err
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	b, err := store.Get(ctx, "meta/start")
	if err != nil {
		return zero, 0, err
	}
	kind, _, payload, err := checkpoint.Unframe(b)
	if err != nil {
		return zero, 0, fmt.Errorf("meta/start: %w", err)
	}
	if kind != "dstream.start" {
		return zero, 0, fmt.Errorf("meta/start holds a %q record", kind)
	}
	var st struct {
		Zero  int64         `json:"zero"`
		Batch time.Duration `json:"batch"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return zero, 0, fmt.Errorf("meta/start: %w", err)
	}
	return time.UnixMilli(st.Zero), st.Batch, nil
}

// runReference runs the job's graph in this process, on a manual clock
// that starts at zero, through interval last, writing its outputs under
// out: the fault-free run. parallelism is the job's (local-cluster[N]: N),
// so it is the same program partitioned the same way.
func runReference(cfg drillJobConfig, parallelism int, zero, last time.Time, out string, logw io.Writer) error {
	clk := clock.NewManual(zero)
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sctx, err := dstream.NewContext(dstream.Config{Master: "local[2]", BatchInterval: cfg.Batch, Clock: clk,
		Parallelism: parallelism, Logger: logger, Out: io.Discard})
	if err != nil {
		return err
	}
	buildDrillGraph(sctx, cfg, out)
	if err := sctx.Start(); err != nil {
		return err
	}
	if got := sctx.StartTime(); !got.Equal(zero) {
		_ = sctx.Stop(false)
		return fmt.Errorf("the reference run's zero is %d, not the job's %d", got.UnixMilli(), zero.UnixMilli())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for t := zero.Add(cfg.Batch); !t.After(last); t = t.Add(cfg.Batch) {
		clk.Set(t)
		if err := sctx.AwaitBatch(ctx, t); err != nil {
			serr := sctx.Stop(false)
			return fmt.Errorf("reference interval %d: %w", t.UnixMilli(), errors.Join(err, serr))
		}
	}
	return sctx.Stop(true)
}

// outputResult is the comparison of one output.
type outputResult struct {
	Name       string  `json:"name"`
	Intervals  int     `json:"intervals"` // expected: first..last
	Identical  int     `json:"identical"`
	Missing    []int64 `json:"missing,omitempty"`    // no committed folder in the job's output
	Incomplete []int64 `json:"incomplete,omitempty"` // a folder without _SUCCESS: parts, but not output
	Extra      []int64 `json:"extra,omitempty"`      // a folder the fault-free run has not
	Different  []int64 `json:"different,omitempty"`
	// FirstDifference says what differs first, in interval order.
	FirstDifference string   `json:"firstDifference,omitempty"`
	Leftovers       []string `json:"leftovers,omitempty"` // temporary folders, stray objects, unmarked folders outside the intervals
	Lines           int      `json:"lines"`               // lines compared
}

func (r *outputResult) ok() bool {
	return len(r.Missing)+len(r.Incomplete)+len(r.Extra)+len(r.Different) == 0
}

// jobOutput is a job's outputs, read back: output NAME's interval folders
// NAME/NAME-<interval ms>, each holding part-NNNNN files and, once whole,
// _SUCCESS; in a folder (folderOutput) or a store (storeOutput). Only a
// folder with _SUCCESS is an interval output.
type jobOutput interface {
	// intervals returns output name's interval folders, each with whether
	// it holds _SUCCESS, and what else is there (a folder's temporaries, a
	// store's other objects), named from the outputs' root.
	intervals(ctx context.Context, name string) (marked map[int64]bool, strays []string, err error)
	// lines returns the lines of the parts of output name's folder of
	// interval t, sorted; call it after intervals(name), which found the
	// folder.
	lines(ctx context.Context, name string, t int64) ([]string, error)
}

// folderOutput is the outputs under a local folder (SaveAsTextFiles to a
// path).
type folderOutput string

func (f folderOutput) intervals(_ context.Context, name string) (map[int64]bool, []string, error) {
	folders, temps, err := scanOutput(string(f), name)
	if err != nil {
		return nil, nil, err
	}
	marked := make(map[int64]bool, len(folders))
	for t, dir := range folders {
		_, err := os.Stat(filepath.Join(dir, "_SUCCESS"))
		marked[t] = err == nil
	}
	return marked, temps, nil
}

func (f folderOutput) lines(_ context.Context, name string, t int64) ([]string, error) {
	return readLines(filepath.Join(string(f), name, fmt.Sprintf("%s-%d", name, t)))
}

// storeOutput is the outputs in a store (SaveAsTextFiles to
// s3://BUCKET/PATH/NAME/NAME: the store at s3://BUCKET/PATH holds the
// objects NAME/NAME-<ms>/part-NNNNN and, written last, .../_SUCCESS). It
// remembers the parts of each folder intervals last listed.
type storeOutput struct {
	store checkpoint.Store
	parts map[string]map[int64][]string // output -> interval -> its parts' objects
}

// openStoreOutput opens the outputs at location with checkpoint.Open (for
// s3://, configured from the AWS environment). Close it when done.
func openStoreOutput(ctx context.Context, location string) (*storeOutput, error) {
	store, err := checkpoint.Open(ctx, location)
	if err != nil {
		return nil, err
	}
	return &storeOutput{store: store, parts: map[string]map[int64][]string{}}, nil
}

// Close closes the store.
func (s *storeOutput) Close() error {
	if c, ok := s.store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (s *storeOutput) intervals(ctx context.Context, name string) (map[int64]bool, []string, error) {
	objects, err := s.store.List(ctx, name+"/")
	if err != nil {
		return nil, nil, err
	}
	marked, parts := map[int64]bool{}, map[int64][]string{}
	var strays []string
	for _, o := range objects {
		folder, file, ok := strings.Cut(strings.TrimPrefix(o, name+"/"), "/")
		ms, isInterval := strings.CutPrefix(folder, name+"-")
		t, err := strconv.ParseInt(ms, 10, 64)
		switch {
		case !ok || !isInterval || err != nil || strings.Contains(file, "/"):
			strays = append(strays, o)
		case file == "_SUCCESS":
			marked[t] = true
		case strings.HasPrefix(file, "part-"):
			if _, seen := marked[t]; !seen {
				marked[t] = false
			}
			parts[t] = append(parts[t], o)
		default:
			strays = append(strays, o) // such as a write check a killed master left
		}
	}
	s.parts[name] = parts
	return marked, strays, nil
}

func (s *storeOutput) lines(ctx context.Context, name string, t int64) ([]string, error) {
	var lines []string
	for _, p := range s.parts[name][t] {
		b, err := s.store.Get(ctx, p)
		if err != nil {
			return nil, err
		}
		lines = appendLines(lines, b)
	}
	slices.Sort(lines)
	return lines, nil
}

// scanOutput lists output name's interval folders under dir (dir/name/name-<ms>).
func scanOutput(dir, name string) (folders map[int64]string, temps []string, err error) {
	folders = map[int64]string{}
	entries, err := os.ReadDir(filepath.Join(dir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return folders, nil, nil
		}
		return nil, nil, err
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			temps = append(temps, filepath.Join(name, n))
			continue
		}
		ms, ok := strings.CutPrefix(n, name+"-")
		if !ok || !e.IsDir() {
			continue
		}
		t, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			continue
		}
		folders[t] = filepath.Join(dir, name, n)
	}
	return folders, temps, nil
}

// lastInterval is the latest interval any output of the job output (with
// its _SUCCESS).
func lastInterval(ctx context.Context, out jobOutput) (int64, error) {
	var last int64
	for _, name := range drillOutputs {
		marked, _, err := out.intervals(ctx, name)
		if err != nil {
			return 0, err
		}
		for t, ok := range marked {
			if ok {
				last = max(last, t)
			}
		}
	}
	return last, nil
}

// readLines returns the lines of an interval folder's part files, sorted.
func readLines(folder string) ([]string, error) {
	parts, err := filepath.Glob(filepath.Join(folder, "part-*"))
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, p := range parts {
		if strings.Contains(filepath.Base(p), ".attempt-") {
			return nil, fmt.Errorf("%s: an attempt file in a committed folder", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		lines = appendLines(lines, b)
	}
	slices.Sort(lines)
	return lines, nil
}

// appendLines appends the non-empty lines of b.
func appendLines(lines []string, b []byte) []string {
	for l := range strings.SplitSeq(string(b), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// compareOutputs compares every output's intervals first..last of the job
// with the fault-free run's (ref): the multiset of lines of each interval
// (part files may split differently). An interval counts only with its
// _SUCCESS: a folder without one is incomplete in the range, a leftover
// outside it.
func compareOutputs(ctx context.Context, job, ref jobOutput, first, last int64, batch time.Duration, zero int64) ([]outputResult, error) {
	var results []outputResult
	step := batch.Milliseconds()
	for _, name := range drillOutputs {
		r := outputResult{Name: name}
		got, strays, err := job.intervals(ctx, name)
		if err != nil {
			return nil, err
		}
		r.Leftovers = strays
		want, _, err := ref.intervals(ctx, name)
		if err != nil {
			return nil, err
		}
		diff := func(t int64, format string, args ...any) {
			if r.FirstDifference == "" {
				r.FirstDifference = fmt.Sprintf("%s, interval %d (+%.1fs after the zero): %s", name, t, float64(t-zero)/1000, fmt.Sprintf(format, args...))
			}
		}
		for t, marked := range got {
			if t >= first && t <= last && (t-first)%step == 0 {
				continue
			}
			if marked {
				r.Extra = append(r.Extra, t)
			} else {
				r.Leftovers = append(r.Leftovers, fmt.Sprintf("%s/%s-%d (parts without _SUCCESS: not output)", name, name, t))
			}
		}
		slices.Sort(r.Extra)
		slices.Sort(r.Leftovers)
		for t := first; t <= last; t += step {
			r.Intervals++
			marked, ok := got[t]
			if !ok {
				r.Missing = append(r.Missing, t)
				diff(t, "missing from the job's output")
				continue
			}
			if !marked {
				r.Incomplete = append(r.Incomplete, t)
				diff(t, "the job's folder has no _SUCCESS: not output")
				continue
			}
			if !want[t] {
				return nil, fmt.Errorf("the fault-free run wrote no %s folder for interval %d", name, t)
			}
			gl, err := job.lines(ctx, name, t)
			if err != nil {
				return nil, err
			}
			wl, err := ref.lines(ctx, name, t)
			if err != nil {
				return nil, err
			}
			r.Lines += len(wl)
			if slices.Equal(gl, wl) {
				r.Identical++
				continue
			}
			r.Different = append(r.Different, t)
			i := 0
			for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
				i++
			}
			switch {
			case i < len(gl) && i < len(wl):
				diff(t, "sorted line %d is %q in the job's output, %q in the fault-free run's (%d lines vs %d)", i+1, gl[i], wl[i], len(gl), len(wl))
			case i < len(gl):
				diff(t, "the job's output has %d lines, the fault-free run's %d; the first extra is %q", len(gl), len(wl), gl[i])
			default:
				diff(t, "the job's output has %d lines, the fault-free run's %d; the first missing is %q", len(gl), len(wl), wl[i])
			}
		}
		if len(r.Extra) > 0 && r.FirstDifference == "" {
			r.FirstDifference = fmt.Sprintf("%s: interval folder %d is not an interval from %d to %d", name, r.Extra[0], first, last)
		}
		results = append(results, r)
	}
	return results, nil
}
