package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// TestMain removes the binary dstreamBinary built (53 MB a run, left in
// the temporary folder otherwise).
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// dstreamBinary builds the dstream command once for the tests that run it
// as real processes, and returns its path.
func dstreamBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("process groups and signals: unix only")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dstream-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "dstream")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtBin
}

// longTest skips t unless DSTREAM_LONG is set (CI sets it).
func longTest(t *testing.T, what string) {
	t.Helper()
	if long, _ := strconv.ParseBool(os.Getenv("DSTREAM_LONG")); !long || testing.Short() {
		t.Skip(what + ": set DSTREAM_LONG=1 (CI does)")
	}
}

// TestStandaloneDemoWithoutCheckpoint runs the command the Kubernetes
// manifests run, in its default configuration: `dstream demo --master
// cluster` with no --checkpoint, and two `dstream worker` processes that
// join it. Every interval must succeed. (It failed on its first intervals:
// a state dataset cut in memory on the master, uncut on the workers, whose
// tasks then read a shuffle the master had not told them of.)
func TestStandaloneDemoWithoutCheckpoint(t *testing.T) {
	longTest(t, "builds the dstream binary and runs a standalone cluster of three processes for 5 s")
	bin := dstreamBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	master := exec.CommandContext(ctx, bin, "demo", "--master", "cluster", "--insecure", "--cluster-listen", "127.0.0.1:0",
		"--duration", "5s", "--batch", "500ms", "--window", "3s", "--rate", "4000", "--ui-listen", "")
	var stderr bytes.Buffer
	master.Stderr = &stderr
	out, err := master.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	lines := bufio.NewScanner(out)
	addr := ""
	for addr == "" && lines.Scan() {
		l := lines.Text()
		stdout.WriteString(l + "\n")
		if _, join, ok := strings.Cut(l, "join with `dstream worker --master "); ok {
			addr = strings.TrimSuffix(join, "`")
		}
	}
	if addr == "" {
		_ = master.Wait()
		t.Fatalf("the master printed no cluster address:\n%s\n%s", stdout.String(), stderr.String())
	}
	// The second worker is given a list whose first address is gone: it
	// joins the master at the next (the list reaches the program it
	// becomes, through its environment).
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	var workerLogs [2]syncBuffer // read while the workers still write
	for i := range workerLogs {
		masters := addr
		if i == 1 {
			masters = gone.Addr().String() + "," + addr
		}
		w := exec.CommandContext(ctx, bin, "worker", "--master", masters, "--insecure")
		w.Stderr = &workerLogs[i]
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = w.Process.Kill()
			_ = w.Wait()
		})
	}
	for lines.Scan() {
		stdout.WriteString(lines.Text() + "\n")
	}
	err = master.Wait()
	ok := strings.Count(stdout.String(), ", ok\n")
	if err != nil || strings.Contains(stdout.String(), "FAILED") || ok < 6 {
		t.Fatalf("standalone demo: %v, %d intervals ok\nstdout:\n%s\nstderr:\n%s\nworker 1:\n%s", err, ok, tail(stdout.String(), 40), tail(stderr.String(), 40), tail(workerLogs[0].String(), 20))
	}
	if l := workerLogs[1].String(); !strings.Contains(l, "trying the next one") || strings.Contains(l, "is gone") {
		t.Errorf("the worker given a list did not move on to the live master:\n%s", tail(l, 20))
	}
}
