package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/cluster/clustertest"
)

// The binaries, built once for every test of the package by
// buildBinaries, into a folder that TestMain removes.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wordcount-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries compiles wordcount and the dstream CLI, once for all the
// tests (in one go build, which compiles what they share once), and
// returns their paths.
func buildBinaries(t *testing.T) (wordcount, dstream string) {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), ".", "../../cmd/dstream")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build . ../../cmd/dstream: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "wordcount"), filepath.Join(binDir, "dstream")
}

// startWordcount starts the wordcount binary with args and reads its first
// line, which must say where it listens; the process is killed when the test
// ends (a test that stops it first waits for it itself). The UI is off
// unless args turn it on (a later flag wins), so tests running at once do
// not compete for its default port.
func startWordcount(t *testing.T, bin string, args ...string) (wc *exec.Cmd, lines *bufio.Scanner, stderr *bytes.Buffer, addr string) {
	t.Helper()
	wc = exec.Command(bin, append([]string{"--ui-listen", ""}, args...)...)
	stdout, err := wc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &bytes.Buffer{}
	wc.Stderr = stderr
	if err := wc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wc.Process.Kill() })
	lines = bufio.NewScanner(stdout)
	if lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) >= 4 && f[1] == "listening" {
			addr = strings.TrimSuffix(f[3], ",")
		}
	}
	if addr == "" {
		t.Fatalf("wordcount did not report its address: %q\n%s", lines.Text(), stderr.String())
	}
	return wc, lines, stderr, addr
}

// stopWordcount sends wordcount SIGTERM and waits (a minute at most) for
// its graceful exit, which must be status 0.
func stopWordcount(t *testing.T, wc *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	if err := wc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- wc.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wordcount exited with %v after SIGTERM\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("wordcount did not stop within 60s of SIGTERM\n%s", stderr.String())
	}
}

// TestEndToEnd runs the client, the socket source and wordcount as real
// processes over a real socket, stops wordcount with SIGTERM, and checks that
// the counts summed over every interval equal the input's counts exactly:
// in one process, and as a master with three worker processes.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Parallel()
	wcBin, dsBin := buildBinaries(t)
	for _, master := range []string{"local[2]", "local-cluster[3]"} {
		t.Run(master, func(t *testing.T) { endToEnd(t, wcBin, dsBin, master, filepath.Join(t.TempDir(), "out")) })
	}
}

// TestEndToEndOnS3: the same with --out on object storage (an S3 server
// in the test process, which the processes reach through the usual AWS
// environment): every interval's objects, each counted once it has its
// _SUCCESS object.
func TestEndToEndOnS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	wcBin, dsBin := buildBinaries(t)
	s3test.NewServer(t, "counts").Env(t)
	endToEnd(t, wcBin, dsBin, "local-cluster[3]", "s3://counts/out")
}

func endToEnd(t *testing.T, wcBin, dsBin, master, out string) {
	dir := t.TempDir()

	// Input: many lines, including empty lines, runs of spaces and tabs,
	// and invalid UTF-8, which must be counted as bytes, not lost.
	rng := rand.New(rand.NewPCG(42, 42))
	var in bytes.Buffer
	for i := range 30000 {
		switch i % 997 {
		case 0:
			in.WriteString("\n")
			continue
		case 1:
			in.WriteString("bad\xff\xfeutf8 \t  word\n")
			continue
		}
		for j := range 1 + rng.IntN(8) {
			if j > 0 {
				in.WriteString(" ")
			}
			fmt.Fprintf(&in, "w%d", rng.IntN(500))
		}
		in.WriteString("\n")
	}
	input := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, w := range strings.Fields(in.String()) {
		want[w]++
	}

	wc, lines, stderr, addr := startWordcount(t, wcBin, "--listen", "127.0.0.1:0", "--batch", "200ms", "--out", out, "--master", master)
	go func() {
		for lines.Scan() {
		}
	}()

	send := exec.Command(dsBin, "send", "--to", addr, "--file", input)
	if b, err := send.CombinedOutput(); err != nil {
		t.Fatalf("dstream send: %v\n%s", err, b)
	}
	stopWordcount(t, wc, stderr)

	var got map[string]int64
	if strings.HasPrefix(out, "s3://") {
		got = readStoreCounts(t, out)
	} else {
		got = readCounts(t, out)
	}
	if len(got) == 0 {
		t.Fatalf("no output\n%s", stderr.String())
	}
	if len(got) != len(want) {
		t.Errorf("got %d distinct words, want %d", len(got), len(want))
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("word %q: counted %d, want %d", w, got[w], n)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "words-*"))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "_SUCCESS")); err != nil {
			t.Errorf("%s has no _SUCCESS marker", d)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(out, ".words-*")); len(leftovers) > 0 {
		t.Errorf("temporary folders left behind: %v", leftovers)
	}
}

// TestExitCodes runs the binary: a usage error or a failure to start exits 2
// with one message on stderr, --help exits 0 with the flags on stdout.
func TestExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Parallel()
	wcBin, _ := buildBinaries(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	underFile := filepath.Join(file, "out")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout for exit 0
	}{
		{[]string{"--listen", "127.0.0.1:0", "--out", underFile}, 2, "output folder " + underFile},
		{[]string{"--listen", busy.Addr().String(), "--out", out, "--ui-listen", ""}, 2, busy.Addr().String()},
		{[]string{"--listen", "127.0.0.1:0", "--out", out, "--ui-listen", busy.Addr().String()}, 2, "cannot listen on " + busy.Addr().String()},
		{[]string{"--listen", "127.0.0.1:0", "--out", out, "--ui-listen", "4040"}, 2, `--ui-listen "4040": want HOST:PORT`},
		{[]string{"--listen", "127.0.0.1:0"}, 2, "--out is required"},
		{[]string{"--out", out, "--bogus"}, 2, "-bogus"},
		{[]string{"--out", out, "--batch", "0s"}, 2, "--batch 0s must be positive"},
		{[]string{"--out", out, "--batch", "-1s"}, 2, "--batch -1s must be positive"},
		{[]string{"--out", out, "--memory", "lots"}, 2, "-memory"},
		{[]string{"--out", out, "--memory", "0"}, 2, "positive"},
		{[]string{"--out", out, "--max-record", "2GiB"}, 2, "--max-record 2GiB is over the limit of 1GiB"},
		{[]string{"--out", out, "--max-record", "0"}, 2, "positive"},
		{[]string{"--out", out, "--master", "yarn"}, 2, "yarn"},
		{[]string{"--out", out, "extra"}, 2, "unexpected arguments"},
		{[]string{"--help"}, 0, "-memory size"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, wcBin, c.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		code := cmd.ProcessState.ExitCode()
		msgs := strings.Count(stderr.String(), "wordcount: ")
		text := stderr.String()
		if c.code == 0 {
			msgs, text = 1, stdout.String()
		}
		if code != c.code || msgs != 1 || !strings.Contains(text, c.want) {
			t.Errorf("wordcount %v: exit %d (%v)\nstdout %q\nstderr %q\nwant exit %d and one message mentioning %q",
				c.args, code, err, stdout.String(), stderr.String(), c.code, c.want)
		}
	}
}

// TestStopsOnFailedInterval: when an interval fails (its output folder has
// become a file), wordcount stops by itself, without a signal, and exits 1
// naming the interval.
func TestStopsOnFailedInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Parallel()
	wcBin, _ := buildBinaries(t)
	dir := t.TempDir()
	real, file, out := filepath.Join(dir, "real"), filepath.Join(dir, "file"), filepath.Join(dir, "out")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, out); err != nil {
		t.Fatal(err)
	}
	wc, lines, stderr, _ := startWordcount(t, wcBin, "--listen", "127.0.0.1:0", "--batch", "100ms", "--out", out)
	var stdoutText strings.Builder
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for lines.Scan() {
			stdoutText.WriteString(lines.Text() + "\n")
		}
	}()
	// Swap the folder for a file atomically: every interval from now on
	// fails to save.
	if err := os.Symlink(file, out+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(out+".new", out); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- wc.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("wordcount did not stop within 60s of a failed interval\n%s", stderr.String())
	}
	<-drained
	if code := wc.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d (%v), want 1", code, err)
	}
	errLines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if last := errLines[len(errLines)-1]; !strings.HasPrefix(last, "wordcount: ") || !strings.Contains(last, "interval") {
		t.Errorf("stderr does not end with the failed interval:\n%s", stderr.String())
	}
	if !strings.Contains(stdoutText.String(), "FAILED") {
		t.Errorf("no interval reported FAILED on stdout:\n%s", stdoutText.String())
	}
}

// TestUI: with --ui-listen, wordcount prints the UI's URL after its address,
// and GET /api/v1/batches/{batchTime} describes an interval it has printed.
func TestUI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Parallel()
	wcBin, _ := buildBinaries(t)
	wc, lines, stderr, addr := startWordcount(t, wcBin, "--listen", "127.0.0.1:0", "--batch", "100ms", "--out", t.TempDir(), "--ui-listen", "127.0.0.1:0")
	var url string
	if lines.Scan() {
		if m := regexp.MustCompile(`^wordcount: UI at (http://127\.0\.0\.1:[0-9]+) `).FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("wordcount did not print the UI's URL second: %q\n%s", lines.Text(), stderr.String())
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("a b\nc\n")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// The first interval with records, as printed: the UI has it by then.
	intervalRE := regexp.MustCompile(`^wordcount: interval ([0-9]+): ([1-9][0-9]*) records in, .*, ok$`)
	var m []string
	for m == nil && lines.Scan() {
		m = intervalRE.FindStringSubmatch(lines.Text())
	}
	if m == nil {
		t.Fatalf("no interval with records printed\n%s", stderr.String())
	}
	go func() {
		for lines.Scan() {
		}
	}()
	resp, err := http.Get(url + "/api/v1/batches/" + m[1])
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		BatchID   int64  `json:"batchId"`
		Status    string `json:"status"`
		InputSize int64  `json:"inputSize"`
	}
	err = json.NewDecoder(resp.Body).Decode(&b)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || strconv.FormatInt(b.BatchID, 10) != m[1] || strconv.FormatInt(b.InputSize, 10) != m[2] || b.Status != "completed" {
		t.Errorf("GET /api/v1/batches/%s: %d %+v %v; want interval %s completed with %s records", m[1], resp.StatusCode, b, err, m[1], m[2])
	}
	stopWordcount(t, wc, stderr)
}

// TestStandaloneCluster runs wordcount as a standalone master
// (--master cluster) and joins a worker started by hand (`wordcount worker
// --master ADDR`) after the job is running: the worker receives the tasks
// (the master runs none of them), and the totals are exact. A worker with
// the wrong secret is refused with a clear error. It runs with the shared
// secret alone, and with mutual TLS as well.
func TestStandaloneCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Parallel()
	wcBin, dsBin := buildBinaries(t)
	t.Run("secret", func(t *testing.T) { standalone(t, wcBin, dsBin, false) })
	t.Run("secret+mTLS", func(t *testing.T) { standalone(t, wcBin, dsBin, true) })
}

func standalone(t *testing.T, wcBin, dsBin string, mTLS bool) {
	dir := t.TempDir()
	var masterTLS, workerTLS []string
	if mTLS {
		ca := clustertest.NewCA(t, dir, "cluster")
		cert, key := ca.Issue(t, dir, "master")
		masterTLS = []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca.File}
		cert, key = ca.Issue(t, dir, "worker")
		workerTLS = []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca.File}
	}
	out := filepath.Join(dir, "out")
	secret := filepath.Join(dir, "secret")
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(secret, []byte("s3cret-for-the-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte("not-the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	want := map[string]int64{}
	for i := range 5000 {
		w := fmt.Sprintf("w%d", i%97)
		fmt.Fprintf(&in, "%s x%d\n", w, i%7)
		want[w]++
		want[fmt.Sprintf("x%d", i%7)]++
	}
	input := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	wc, lines, stderr, addr := startWordcount(t, wcBin, append([]string{"--listen", "127.0.0.1:0", "--batch", "200ms", "--out", out,
		"--master", "cluster", "--cluster-listen", "127.0.0.1:0", "--secret-file", secret}, masterTLS...)...)
	var master string
	if lines.Scan() {
		if m := regexp.MustCompile("--master ([^`\\s]+)`").FindStringSubmatch(lines.Text()); m != nil {
			master = m[1]
		}
	}
	if master == "" {
		t.Fatalf("wordcount did not say where its cluster port is: %q\n%s", lines.Text(), stderr.String())
	}
	go func() {
		for lines.Scan() {
		}
	}()

	// The wrong secret: refused, exit status 1, a message naming why.
	bad := exec.Command(wcBin, append([]string{"worker", "--master", master, "--secret-file", wrong}, workerTLS...)...)
	if b, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(b), "refused") {
		t.Fatalf("a worker with the wrong secret: err %v, output %q; want it refused", err, b)
	}

	// The job runs before any worker has joined: its tasks wait.
	first := exec.Command(dsBin, "send", "--to", addr, "--file", input)
	if b, err := first.CombinedOutput(); err != nil {
		t.Fatalf("dstream send: %v\n%s", err, b)
	}
	for w := range want {
		want[w] *= 2
	}
	worker := exec.Command(wcBin, append([]string{"worker", "--master", master, "--secret-file", secret, "--slots", "2",
		"--health-listen", "127.0.0.1:0"}, workerTLS...)...)
	var workerErr syncBuffer
	worker.Stderr = &workerErr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Process.Kill(); _ = worker.Wait() })
	// The worker, now the master's program, serves its probes where it logs
	// (port 0: a free one) and is ready once registered and heartbeating.
	probes := regexp.MustCompile(`probes served" addr=(\S+)`)
	waitFor(t, "the worker's probes to be ready", func() (bool, string) {
		m := probes.FindStringSubmatch(workerErr.String())
		if m == nil {
			return false, "no probes logged\n" + workerErr.String()
		}
		code, body := probe("http://" + m[1] + "/readyz")
		if code != 200 {
			return false, fmt.Sprintf("/readyz: %d %s", code, body)
		}
		if code, body := probe("http://" + m[1] + "/healthz"); code != 200 {
			t.Errorf("worker /healthz: %d %s, want 200", code, body)
		}
		return true, ""
	})
	second := exec.Command(dsBin, "send", "--to", addr, "--file", input)
	if b, err := second.CombinedOutput(); err != nil {
		t.Fatalf("dstream send: %v\n%s", err, b)
	}
	stopWordcount(t, wc, stderr)
	if !strings.Contains(stderr.String(), "worker joined") {
		t.Errorf("the master never saw the worker join\nmaster:\n%s\nworker:\n%s", stderr.String(), workerErr.String())
	}
	got := readCounts(t, out)
	if len(got) != len(want) {
		t.Errorf("got %d distinct words, want %d\nmaster:\n%s\nworker:\n%s", len(got), len(want), stderr.String(), workerErr.String())
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("word %q: counted %d, want %d", w, got[w], n)
		}
	}
}

// syncBuffer is a bytes.Buffer a process writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// probe GETs url: its status and body, 0 when nothing answers.
func probe(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds, failing the test after a minute (a
// hang guard for a process's progress, not a timing assumption) with cond's
// last explanation.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s: %s", what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readCounts sums the word counts of every interval wordcount wrote under out.
func readCounts(t *testing.T, out string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	parts, _ := filepath.Glob(filepath.Join(out, "words-*", "part-*"))
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if line == "" {
				continue
			}
			w, c, ok := strings.Cut(line, "\t")
			n, err := strconv.ParseInt(c, 10, 64)
			if !ok || err != nil {
				t.Fatalf("%s: malformed line %q", p, line)
			}
			got[w] += n
		}
	}
	return got
}

// readStoreCounts sums the counts of every committed interval (a folder
// with its _SUCCESS object) under the object store location out.
func readStoreCounts(t *testing.T, out string) map[string]int64 {
	t.Helper()
	st, err := checkpoint.Open(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	names, err := st.List(t.Context(), "words-")
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	for _, n := range names {
		if d, ok := strings.CutSuffix(n, "/_SUCCESS"); ok {
			done[d] = true
		}
	}
	got := map[string]int64{}
	for _, n := range names {
		d, part, _ := strings.Cut(n, "/")
		if !strings.HasPrefix(part, "part-") {
			continue
		}
		if !done[d] {
			t.Errorf("%s: no _SUCCESS object in its interval's folder", n)
			continue
		}
		b, err := st.Get(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if w, c, ok := strings.Cut(line, "\t"); ok {
				k, err := strconv.ParseInt(c, 10, 64)
				if err != nil {
					t.Fatalf("%s: malformed line %q", n, line)
				}
				got[w] += k
			}
		}
	}
	return got
}

// TestHelpPlaceholders renders wordcount's --help and its worker's: every
// flag's placeholder is one word (a back-quoted command in a usage text
// would garble it: "-master wordcount worker --master ADDR").
func TestHelpPlaceholders(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"worker", "--help"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Errorf("wordcount %v: exit %d\n%s", args, code, errb.String())
			continue
		}
		help := out.String() + errb.String() // the worker's flags go to stderr
		flagLine := regexp.MustCompile(`^  -[a-z-]+( [a-z]+)?(\t|$)`)
		n := 0
		for line := range strings.SplitSeq(help, "\n") {
			if strings.HasPrefix(line, "  -") {
				n++
				if !flagLine.MatchString(line) {
					t.Errorf("wordcount %v: garbled flag line %q", args, line)
				}
			}
		}
		if n == 0 {
			t.Errorf("wordcount %v printed no flags:\n%s", args, help)
		}
	}
}
