package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
)

// TestDrill runs a short fault drill with the real binary: the drill job in
// local-cluster[3] loses a worker (SIGKILL), has another stopped for 1.5 s
// (SIGSTOP, SIGCONT) and its master killed and started again; every
// interval of its three outputs must equal a fault-free run's.
func TestDrill(t *testing.T) {
	longTest(t, "builds the dstream binary and runs a 15 s fault drill with real processes")
	dir := t.TempDir()
	bin := dstreamBinary(t)
	work, plot := filepath.Join(dir, "work"), filepath.Join(dir, "drill.svg")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "drill", "--duration", "15s", "--batch", "500ms", "--seed", "1",
		"--kills", "1", "--master-restarts", "1", "--stalls", "1", "--stall", "1.5s",
		"--json", "--keep", work, "--plot", plot)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("dstream drill ran %v; stderr:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	var rep drillReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("dstream drill: %v; its JSON: %v\n%s", err, jerr, stdout.String())
	}
	if err != nil || rep.Verdict != "PASS" {
		log, _ := os.ReadFile(filepath.Join(work, "job.log"))
		t.Fatalf("dstream drill: %v, verdict %s: %s\nfirst differences: %s\njob log:\n%s", err, rep.Verdict, rep.Reason, firstDiffs(rep), tail(string(log), 60))
	}
	kinds := map[string]int{}
	for _, f := range rep.Faults {
		kinds[f.Kind]++
	}
	if kinds[faultKill] != 1 || kinds[faultRestart] != 1 || kinds[faultStall] != 1 {
		t.Errorf("faults injected: %v; want one of each", kinds)
	}
	if rep.MasterRuns != 2 {
		t.Errorf("master runs: %d, want 2", rep.MasterRuns)
	}
	if rep.IntervalCount < 20 || len(rep.Outputs) != len(drillOutputs) {
		t.Errorf("%d intervals, %d outputs compared; want at least 20 intervals of %d outputs", rep.IntervalCount, len(rep.Outputs), len(drillOutputs))
	}
	for _, o := range rep.Outputs {
		if o.Identical != rep.IntervalCount || o.Lines == 0 {
			t.Errorf("output %s: %d of %d intervals identical, %d lines", o.Name, o.Identical, rep.IntervalCount, o.Lines)
		}
	}
	if len(rep.MasterRestarts) != 1 || rep.MasterRestarts[0].FirstDoneAfter == nil {
		t.Errorf("master restart figures: %+v; want the new master's first interval", rep.MasterRestarts)
	}
	if svg, err := os.ReadFile(plot); err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("master restart")) {
		t.Errorf("plot %s: %v; want an SVG marking the faults", plot, err)
	}
}

func firstDiffs(rep drillReport) string {
	var out []string
	for _, o := range rep.Outputs {
		if o.FirstDifference != "" {
			out = append(out, o.FirstDifference)
		}
	}
	return strings.Join(out, "; ")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestDrillUsage: bad flags are usage errors (exit 2) naming the problem.
func TestDrillUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"drill", "--kills", "5"}, "at most 4 kills"},
		{[]string{"drill", "--workers", "1", "--kills", "1"}, "at most 0 kills"},
		{[]string{"drill", "--duration", "5s"}, "too short"},
		{[]string{"drill", "--batch", "10ms"}, "--batch"},
		{[]string{"drill", "--stalls", "1", "--stall", "0s"}, "positive --stall"},
		{[]string{"drill", "--kills", "-1"}, "negative"},
		{[]string{"drill", "--frobnicate"}, "frobnicate"},
		{[]string{"drill", "extra"}, "unexpected"},
		{[]string{"drill", "--pauses", "1"}, "need a standby master"},
		{[]string{"drill", "--hosts", "--store", "folder", "--master-cuts", "1"}, "need a standby master"},
		{[]string{"drill", "--hosts", "--standby=false", "--store-cuts", "1"}, "need a standby master"},
		{[]string{"drill", "--hosts", "--lease-ttl", "-1s"}, "--lease-ttl"},
		{[]string{"drill-job", "--checkpoint", "x"}, "--out"},
		{[]string{"drill-job", "--out", "x", "--window", "700ms"}, "--window"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("dstream %v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errb.String(), c.want)
		}
	}
}

// TestPlanFaults: a schedule never kills a master run's last worker, puts
// every fault in its slot, and depends on the seed only.
func TestPlanFaults(t *testing.T) {
	o := &drillOptions{duration: 5 * time.Minute, batch: 500 * time.Millisecond, workers: 3, kills: 20, restarts: 9, stalls: 10, stall: 1500 * time.Millisecond}
	for seed := range uint64(50) {
		plan := planFaults(rand.New(rand.NewPCG(seed, 1)), o)
		again := planFaults(rand.New(rand.NewPCG(seed, 1)), o)
		if fmt.Sprint(plan) != fmt.Sprint(again) {
			t.Fatalf("seed %d: two schedules differ", seed)
		}
		n := map[string]int{}
		kills := 0
		var last time.Duration
		for _, f := range plan {
			n[f.kind]++
			switch f.kind {
			case faultKill:
				if kills++; kills > o.workers-1 {
					t.Fatalf("seed %d: %d kills in one master run of %d workers: %v", seed, kills, o.workers, plan)
				}
			case faultRestart:
				kills = 0
			}
			if f.at <= last || f.at > o.duration {
				t.Fatalf("seed %d: fault at %v after one at %v (duration %v)", seed, f.at, last, o.duration)
			}
			last = f.at
		}
		if n[faultKill] != o.kills || n[faultRestart] != o.restarts || n[faultStall] != o.stalls {
			t.Fatalf("seed %d: %v", seed, n)
		}
	}
}

// TestMasterLogLines: a master's log lines, written in pieces, are read
// whole, and what they say of the lease is noted with their own time.
func TestMasterLogLines(t *testing.T) {
	var lines []string
	w := &lineWriter{line: func(l string) { lines = append(lines, l) }}
	for _, piece := range []string{"time=2026-12-06T07:52:38.474Z level=INFO msg=\"holding the lease", " of the checkpoint location\"\nplain line\n", "partial"} {
		if _, err := w.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], logHoldsLease) || lines[1] != "plain line" {
		t.Fatalf("lines %q; want the two whole lines", lines)
	}
	if got, want := logTime(lines[0]), time.Date(2026, 12, 6, 7, 52, 38, 474e6, time.UTC); !got.Equal(want) {
		t.Errorf("logTime: %v, want %v", got, want)
	}
	if got := logTime("no stamp"); time.Since(got) > time.Minute {
		t.Errorf("logTime of a line without a stamp: %v, want now", got)
	}
}

// TestCompareOutputs: the comparison finds a missing, an incomplete, an
// extra and a different interval, and takes part files split differently
// as equal.
func TestCompareOutputs(t *testing.T) {
	job, ref := t.TempDir(), t.TempDir()
	write := func(root, name string, ms int64, parts []string, success bool) {
		dir := filepath.Join(root, name, fmt.Sprintf("%s-%d", name, ms))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, p := range parts {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%05d", i)), []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if success {
			if err := os.WriteFile(filepath.Join(dir, "_SUCCESS"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	const first, batch = 1000, 500
	for _, name := range drillOutputs {
		for ms := int64(first); ms <= 3000; ms += batch {
			write(ref, name, ms, []string{"(a,1)\n(b,2)\n", "(c,3)\n"}, true)
			if name == "counts" {
				write(job, name, ms, []string{"(c,3)\n(b,2)\n", "", "(a,1)\n"}, true) // split differently
			}
		}
	}
	for ms := int64(first); ms <= 3000; ms += batch {
		switch ms {
		case 1500: // missing from totals
			write(job, "window", ms, []string{"(a,1)\n(b,2)\n(c,3)\n"}, true)
		case 2000:
			write(job, "totals", ms, []string{"(a,1)\n(b,2)\n(c,3)\n"}, false)
			write(job, "window", ms, []string{"(a,1)\n(b,2)\n(c,3)\n"}, true)
		case 2500:
			write(job, "totals", ms, []string{"(a,1)\n(b,2)\n(c,3)\n"}, true)
			write(job, "window", ms, []string{"(a,1)\n(b,2)\n(c,4)\n"}, true)
		default:
			write(job, "totals", ms, []string{"(a,1)\n(b,2)\n(c,3)\n"}, true)
			write(job, "window", ms, []string{"(a,1)\n(b,2)\n(c,3)\n"}, true)
		}
	}
	write(job, "window", 3200, []string{"(a,1)\n"}, true) // off the grid
	res, err := compareOutputs(context.Background(), folderOutput(job), folderOutput(ref), first, 3000, batch*time.Millisecond, 500)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]outputResult{}
	for _, r := range res {
		got[r.Name] = r
	}
	if c := got["counts"]; !c.ok() || c.Identical != 5 {
		t.Errorf("counts: %+v; want 5 identical intervals", c)
	}
	if r := got["totals"]; fmt.Sprint(r.Missing, r.Incomplete) != "[1500] [2000]" || r.ok() {
		t.Errorf("totals: %+v; want 1500 missing and 2000 incomplete", r)
	}
	if r := got["window"]; fmt.Sprint(r.Different, r.Extra) != "[2500] [3200]" || !strings.Contains(r.FirstDifference, `"(c,4)"`) {
		t.Errorf("window: %+v; want 2500 different (naming the line) and 3200 extra", r)
	}
}

// TestCompareOutputsInStore: read from a store (as the drill across hosts
// reads s3://drill/out), an interval counts only with its _SUCCESS: parts
// without it are an interval not output (incomplete within the run, a
// leftover after it, never extra); other objects are leftovers.
func TestCompareOutputsInStore(t *testing.T) {
	ctx := context.Background()
	root, ref := t.TempDir(), t.TempDir()
	store, err := checkpoint.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	put := func(name string, data string) {
		if err := store.Put(ctx, name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	const first, last, batch = 1000, 2000, 500
	for _, name := range drillOutputs {
		for ms := int64(first); ms <= last; ms += batch {
			dir := filepath.Join(ref, name, fmt.Sprintf("%s-%d", name, ms))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for f, data := range map[string]string{"part-00000": "(a,1)\n(b,2)\n", "_SUCCESS": ""} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			folder := fmt.Sprintf("%s/%s-%d/", name, name, ms)
			put(folder+"part-00000", "(b,2)\n")
			put(folder+"part-00001", "(a,1)\n")
			if name != "totals" || ms != 1500 {
				put(folder+"_SUCCESS", "")
			}
		}
	}
	put("window/window-2500/part-00000", "(a,1)\n") // after the last, without a marker
	put("window/window-0/_write-check", "")
	out, err := openStoreOutput(ctx, "file://"+root)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if got, err := lastInterval(ctx, out); err != nil || got != last {
		t.Fatalf("last interval %d, %v; want %d: an interval without _SUCCESS is not output", got, err, last)
	}
	res, err := compareOutputs(ctx, out, folderOutput(ref), first, last, batch*time.Millisecond, 500)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]outputResult{}
	for _, r := range res {
		got[r.Name] = r
	}
	if c := got["counts"]; !c.ok() || c.Identical != 3 || c.Lines != 6 {
		t.Errorf("counts: %+v; want 3 identical intervals of 2 lines", c)
	}
	if r := got["totals"]; fmt.Sprint(r.Incomplete) != "[1500]" || r.Identical != 2 || r.ok() {
		t.Errorf("totals: %+v; want 1500 incomplete, the others identical", r)
	}
	want := "[window/window-0/_write-check window/window-2500 (parts without _SUCCESS: not output)]"
	if r := got["window"]; !r.ok() || r.Identical != 3 || fmt.Sprint(r.Leftovers) != want {
		t.Errorf("window: %+v; want 3 identical intervals, no extra, leftovers %s", r, want)
	}
}

// TestDrillPlot: the plot of a long drill is well-formed SVG with a mark
// per fault.
func TestDrillPlot(t *testing.T) {
	rep := &drillReport{Verdict: "PASS", Seed: 7, BatchMs: 500, Workers: 3, Zero: 1_000_000, FirstInterval: 1_000_500, byTime: map[int64]*drillInterval{}}
	start := time.UnixMilli(rep.Zero)
	for i := range 600 {
		t := rep.FirstInterval + int64(i)*rep.BatchMs
		if i%97 == 5 {
			continue // unknown
		}
		iv := drillInterval{Time: t, ProcessingMs: int64(60 + i%7*10), TotalMs: 80, end: time.UnixMilli(t + 80)}
		rep.Intervals = append(rep.Intervals, iv)
		rep.byTime[t] = &iv
		rep.LastInterval = t
	}
	rep.IntervalCount = 600
	kinds := []string{faultKill, faultStall, faultRestart}
	for i := range 40 {
		at := start.Add(time.Duration(5+i*7) * time.Second)
		f := drillFault{Kind: kinds[i%3], At: at, Worker: "local-1"}
		if f.Kind == faultStall {
			until := at.Add(1500 * time.Millisecond)
			f.Until = &until
		}
		rep.Faults = append(rep.Faults, f)
	}
	rep.events = rep.Faults
	name := filepath.Join(t.TempDir(), "plot.svg")
	if err := writeDrillPlot(name, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	lines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plot is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "line" {
			for _, a := range se.Attr {
				if a.Name.Local == "stroke-dasharray" {
					lines++
				}
			}
		}
	}
	if lines != 40 {
		t.Errorf("plot marks %d faults, want 40", lines)
	}
	if strings.Count(string(b), "<polyline") < 2 {
		t.Errorf("plot draws the processing times in one piece; unknown intervals should break it")
	}
}
