// Command soak measures a word count under a flood for a while: it builds
// examples/wordcount and the dstream CLI, floods wordcount with `dstream send
// --generate words --rate 0`, samples the wordcount process's resident memory
// and its intervals every --sample, stops the sender then wordcount
// (SIGTERM: graceful), and checks that the counts written equal the counts of
// the records wordcount received, exactly. It prints a Markdown table for
// BENCHMARKS.md.
//
//	go run ./bench/soak --duration 5m --memory 1GiB --batch 500ms
//
// --master local-cluster[N] runs wordcount's workers as processes of their
// own: each sample then shows the master's RSS and the workers' (smallest,
// median, largest). --running makes the job stateful (wordcount --running:
// per-key totals since the start, checkpointed), and the check compares
// the last interval's totals with the counts of every line received.
// --rate caps the sender (lines per second; 0 floods). --heap-profile
// PREFIX makes every process write a heap profile each --sample
// (DSTREAM_HEAPPROFILE: PREFIX-master-N, PREFIX-ID-N, kept after the run
// for `go tool pprof -base`), and each sample then shows the live heaps
// (after a collection) beside the resident memory.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/generate"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

var (
	intervalRE = regexp.MustCompile(`interval \d+: (\d+) records in, processing (\S+), scheduling delay (\S+), total delay (\S+), (.*)$`)
	listenRE   = regexp.MustCompile(`listening on (\S+),`)
	receivedRE = regexp.MustCompile(`received (\d+) records`)
	sentRE     = regexp.MustCompile(`sent (\d+) records`)
	heapRE     = regexp.MustCompile(`msg="heap profile written" process=(\S+) .* live=(\d+)`)
)

// window accumulates the intervals completed between two samples.
type window struct {
	intervals, failed int
	records           int64
	maxDelay          time.Duration
	maxTotal          time.Duration
}

func run() error {
	duration := flag.Duration("duration", 5*time.Minute, "how long the sender floods")
	memory := dstream.Bytes(dstream.DefaultMemory)
	flag.Var(&memory, "memory", "wordcount's --memory, a `size`")
	batch := flag.String("batch", "500ms", "wordcount's --batch")
	sample := flag.Duration("sample", 10*time.Second, "sampling period")
	seed := flag.Int64("seed", 1, "the sender's seed")
	listen := flag.String("listen", "127.0.0.1:19876", "wordcount's --listen")
	master := flag.String("master", "local[2]", "wordcount's --master")
	running := flag.Bool("running", false, "run wordcount --running (per-key state) and check its last totals")
	rate := flag.Int("rate", 0, "lines per second the sender sends (0: as fast as it can)")
	heapProfile := flag.String("heap-profile", "", "a file `prefix`: every process writes heap profiles there each --sample, and the table shows live heaps")
	flag.Parse()

	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	wcBin, dsBin := filepath.Join(dir, "wordcount"), filepath.Join(dir, "dstream")
	for bin, pkg := range map[string]string{wcBin: "./examples/wordcount", dsBin: "./cmd/dstream"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	out := filepath.Join(dir, "out")
	args := []string{"--listen", *listen, "--batch", *batch, "--memory", memory.String(), "--out", out, "--ui-listen", "", "--master", *master}
	if *running {
		args = append(args, "--running")
	}
	wc := exec.Command(wcBin, args...)
	if *heapProfile != "" {
		// The engine's EnvHeapProfile and EnvHeapProfilePeriod; the
		// workers inherit them.
		wc.Env = append(os.Environ(), "DSTREAM_HEAPPROFILE="+*heapProfile, "DSTREAM_HEAPPROFILE_PERIOD="+sample.String())
	}
	wcOut, err := wc.StdoutPipe()
	if err != nil {
		return err
	}
	wcErr, err := wc.StderrPipe()
	if err != nil {
		return err
	}
	wcLog, err := os.Create(filepath.Join(dir, "wordcount.log"))
	if err != nil {
		return err
	}
	if err := wc.Start(); err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		cur      window
		received int64 = -1
		all      window
		live     = map[string]int64{} // the latest live heap of each process, by its ID
	)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(wcErr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			fmt.Fprintln(wcLog, sc.Text())
			if m := heapRE.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.ParseInt(m[2], 10, 64)
				mu.Lock()
				live[m[1]] = n
				mu.Unlock()
			}
		}
		_, _ = io.Copy(wcLog, wcErr) // past a line too long to scan
	}()
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(wcOut)
		for sc.Scan() {
			line := sc.Text()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			if m := receivedRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				mu.Lock()
				received = n
				mu.Unlock()
			}
			m := intervalRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n, _ := strconv.ParseInt(m[1], 10, 64)
			delay, _ := time.ParseDuration(m[3])
			total, _ := time.ParseDuration(m[4])
			mu.Lock()
			for _, w := range []*window{&cur, &all} {
				w.intervals++
				w.records += n
				w.maxDelay = max(w.maxDelay, delay)
				w.maxTotal = max(w.maxTotal, total)
				if m[5] != "ok" {
					w.failed++
				}
			}
			mu.Unlock()
		}
	}()
	var to string
	select {
	case to = <-addr:
	case <-time.After(30 * time.Second):
		_ = wc.Process.Kill()
		return errors.New("wordcount did not start listening in 30s (see its log)")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	send := exec.CommandContext(ctx, dsBin, "send", "--to", to, "--generate", "words", "--seed", strconv.FormatInt(*seed, 10),
		"--rate", strconv.Itoa(*rate), "--duration", duration.String())
	var sendOut strings.Builder
	send.Stdout = &sendOut
	send.Stderr = io.Discard
	if err := send.Start(); err != nil {
		return err
	}
	sendDone := make(chan error, 1)
	go func() { sendDone <- send.Wait() }()

	fmt.Printf("wordcount %s, sent to by `dstream send --generate words --rate %d` for %v\n\n", strings.Join(args, " "), *rate, *duration)
	heapCols, heapSep := "", ""
	if *heapProfile != "" {
		heapCols, heapSep = " master live heap (MiB) | workers' live heap (MiB): min / median / max |", "---:|---:|"
	}
	fmt.Printf("| t (s) | RSS (MiB) | workers' RSS (MiB): min / median / max (n) |%s records accepted/s | intervals | max scheduling delay | max total delay | failed |\n", heapCols)
	fmt.Printf("|---:|---:|---:|%s---:|---:|---:|---:|---:|\n", heapSep)
	start := time.Now()
	tick := time.NewTicker(*sample)
	defer tick.Stop()
	var peakRSS, peakWorker int64
	var sendErr error
loop:
	for {
		select {
		case sendErr = <-sendDone:
			break loop
		case <-tick.C:
			rss := procKiB(wc.Process.Pid, "VmRSS")
			peakRSS = max(peakRSS, rss)
			workers := "-"
			if ws := childrenRSS(wc.Process.Pid); len(ws) > 0 {
				slices.Sort(ws)
				peakWorker = max(peakWorker, ws[len(ws)-1])
				workers = fmt.Sprintf("%d / %d / %d (%d)", ws[0]>>10, ws[len(ws)/2]>>10, ws[len(ws)-1]>>10, len(ws))
			}
			mu.Lock()
			w := cur
			cur = window{}
			heaps := ""
			if *heapProfile != "" {
				heaps = " " + liveHeaps(live) + " |"
			}
			mu.Unlock()
			fmt.Printf("| %.0f | %d | %s |%s %.0f | %d | %v | %v | %d |\n", time.Since(start).Seconds(), rss>>10, workers, heaps,
				float64(w.records)/sample.Seconds(), w.intervals, w.maxDelay, w.maxTotal, w.failed)
		}
	}
	if sendErr != nil {
		return fmt.Errorf("sender: %v: %s", sendErr, sendOut.String())
	}
	hwm := procKiB(wc.Process.Pid, "VmHWM")
	m := sentRE.FindStringSubmatch(sendOut.String())
	if m == nil {
		return fmt.Errorf("sender said %q", sendOut.String())
	}
	sent, _ := strconv.ParseInt(m[1], 10, 64)
	stopAt := time.Now()
	_ = wc.Process.Signal(syscall.SIGTERM)
	<-scanned
	<-logged
	werr := wc.Wait()
	code := wc.ProcessState.ExitCode()
	stopTook := time.Since(stopAt)
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("\nsent %d lines in %v; wordcount received %d, stopped (exit %d, %v) %v after SIGTERM; %d intervals, %d failed, %d records, max scheduling delay %v; peak RSS %d MiB (VmHWM), a worker's largest sampled %d MiB\n",
		sent, *duration, received, code, werr, stopTook.Round(time.Millisecond), all.intervals, all.failed, all.records, all.maxDelay, hwm>>10, peakWorker>>10)
	if received < 0 {
		return errors.New("wordcount did not report what it received")
	}
	got, err := readCounts(out, *running)
	if err != nil {
		return err
	}
	want, err := expectedCounts(*seed, received)
	if err != nil {
		return err
	}
	gotN, wantN := sum(got), sum(want)
	if !maps.Equal(got, want) {
		return fmt.Errorf("NOT EXACT: output has %d words (%d distinct), the %d lines received have %d (%d distinct)", gotN, len(got), received, wantN, len(want))
	}
	fmt.Printf("exact: the output's %d words (%d distinct) are the counts of the %d lines received\n", gotN, len(got), received)
	return nil
}

// liveHeaps formats the latest live heaps: the master's, then the
// workers' smallest, median and largest, in MiB with one decimal.
func liveHeaps(live map[string]int64) string {
	mib := func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) }
	master := "-"
	if n, ok := live["master"]; ok {
		master = mib(n)
	}
	var ws []int64
	for id, n := range live {
		if id != "master" {
			ws = append(ws, n)
		}
	}
	if len(ws) == 0 {
		return master + " | -"
	}
	slices.Sort(ws)
	return fmt.Sprintf("%s | %s / %s / %s", master, mib(ws[0]), mib(ws[len(ws)/2]), mib(ws[len(ws)-1]))
}

// procKiB reads a "Key:  N kB" line of /proc/PID/status.
func procKiB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// childrenRSS returns the resident memory (KiB) of every process whose
// parent is pid: a local-cluster master's workers.
func childrenRSS(pid int) []int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int64
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if procKiB(child, "PPid") == int64(pid) {
			out = append(out, procKiB(child, "VmRSS"))
		}
	}
	return out
}

// readCounts sums every interval's "word<TAB>count" lines; last reads the
// last interval's only (running totals).
func readCounts(out string, last bool) (map[string]int64, error) {
	parts, err := filepath.Glob(filepath.Join(out, "words-*", "part-*"))
	if err != nil {
		return nil, err
	}
	if last {
		var lastT int64 = -1
		for _, p := range parts {
			t, _ := strconv.ParseInt(strings.TrimPrefix(filepath.Base(filepath.Dir(p)), "words-"), 10, 64)
			lastT = max(lastT, t)
		}
		parts = slices.DeleteFunc(parts, func(p string) bool { return filepath.Base(filepath.Dir(p)) != "words-"+strconv.FormatInt(lastT, 10) })
	}
	got := map[string]int64{}
	for _, p := range parts {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			w, n, ok := strings.Cut(sc.Text(), "\t")
			c, err := strconv.ParseInt(n, 10, 64)
			if !ok || err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: malformed line %q", p, sc.Text())
			}
			got[w] += c
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// expectedCounts counts the words of the first n lines the sender generates.
func expectedCounts(seed, n int64) (map[string]int64, error) {
	g, err := generate.New("words", seed)
	if err != nil {
		return nil, err
	}
	want := map[string]int64{}
	var buf []byte
	for range n {
		buf = g.Next(buf[:0])
		for _, w := range strings.Fields(string(buf)) {
			want[w]++
		}
	}
	return want, nil
}

func sum(m map[string]int64) (n int64) {
	for _, c := range m {
		n += c
	}
	return n
}
