package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
)

// Stops and restarts with real processes: the built dstream binary runs
// `dstream drill-job` (a deterministic job whose every interval the
// fault-free reference run reproduces) as a local-cluster or standalone
// master, and `dstream worker` joins the standalone one. Every wait is on a
// condition (output folders, log lines, exits), with a generous deadline.

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads.
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

// proc is a started process, in a process group of its own (pid = pgid).
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error
}

func start(t *testing.T, name string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, tail(p.stderr.String(), 40))
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v", p.name, within)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

// signal signals the process's group (as a terminal's Ctrl-C does).
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// waitUntil polls cond until it holds, or fails the test after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		for _, p := range procs {
			if !p.running() {
				t.Fatalf("waiting for %s: %s exited (%v)", what, p.name, p.err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// committed returns the interval times of out's committed counts folders.
func committed(t *testing.T, out string) []int64 {
	t.Helper()
	folders, _, err := scanOutput(out, "counts")
	if err != nil {
		t.Fatal(err)
	}
	var ts []int64
	for ms, dir := range folders {
		if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err == nil {
			ts = append(ts, ms)
		}
	}
	return ts
}

var zeroLine = regexp.MustCompile(`drill-job: pid \d+ ui \S* zero (\d+)`)

// checkExact compares every interval the job output, from its first to
// its last, with the fault-free reference run's.
func checkExact(t *testing.T, stdout, out string, cfg drillJobConfig, parallelism int) {
	t.Helper()
	m := zeroLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no zero in the job's output:\n%s", stdout)
	}
	zero, _ := strconv.ParseInt(m[1], 10, 64)
	var last int64
	for _, ms := range committed(t, out) {
		last = max(last, ms)
	}
	first := zero + cfg.Batch.Milliseconds()
	if last < first {
		t.Fatalf("no interval committed")
	}
	ref := t.TempDir()
	if err := runReference(cfg, parallelism, time.UnixMilli(zero), time.UnixMilli(last), ref, io.Discard); err != nil {
		t.Fatal(err)
	}
	res, err := compareOutputs(context.Background(), folderOutput(out), folderOutput(ref), first, last, cfg.Batch, zero)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Identical != r.Intervals || len(r.Missing)+len(r.Extra)+len(r.Different)+len(r.Incomplete) > 0 {
			t.Errorf("output %s: %d of %d intervals identical; missing %v, extra %v, different %v, incomplete %v: %s",
				r.Name, r.Identical, r.Intervals, r.Missing, r.Extra, r.Different, r.Incomplete, r.FirstDifference)
		}
	}
	t.Logf("%d intervals exact, %d to %d", (last-first)/cfg.Batch.Milliseconds()+1, first, last)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

const stopsBatch = 200 * time.Millisecond

func drillArgs(master, ck, out string, extra ...string) []string {
	return append([]string{"drill-job", "--master", master, "--checkpoint", ck, "--out", out,
		"--batch", stopsBatch.String(), "--words", "300", "--ui-listen", ""}, extra...)
}

var stopsCfg = drillJobConfig{Batch: stopsBatch, Seed: 1, Words: 300, Window: 4 * stopsBatch}

// TestCtrlCStopsALocalClusterExactly: SIGINT to a local-cluster job's
// whole process group (Ctrl-C in a terminal) stops it gracefully: its
// workers leave their stop to the master, which finishes what it cut;
// exit 0 and every interval exact.
func TestCtrlCStopsALocalClusterExactly(t *testing.T) {
	longTest(t, "builds the dstream binary and runs real processes")
	bin := dstreamBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	job := start(t, "local-cluster master", bin, drillArgs("local-cluster[2]", filepath.Join(dir, "ck"), out)...)
	waitUntil(t, 30*time.Second, "three intervals", func() bool { return len(committed(t, out)) >= 3 }, job)
	job.signal(t, syscall.SIGINT)
	if code := job.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit status %d after Ctrl-C, want 0", code)
	}
	checkExact(t, job.stdout.String(), out, stopsCfg, 2)
}

// TestWorkersFollowARestartedMaster: a standalone master is killed and
// started again on its checkpoint folder (it waits for its old lease to
// lapse); its two workers (the same processes) rejoin it and the job goes
// on exactly. Every process then stops with exit status 0.
func TestWorkersFollowARestartedMaster(t *testing.T) {
	longTest(t, "builds the dstream binary and runs real processes")
	bin := dstreamBinary(t)
	dir := t.TempDir()
	out, ck, addr := filepath.Join(dir, "out"), filepath.Join(dir, "ck"), freeAddr(t)
	args := drillArgs("cluster", ck, out, "--cluster-listen", addr, "--insecure")
	master := start(t, "master", bin, args...)
	w1 := start(t, "worker 1", bin, "worker", "--master", addr, "--insecure", "--slots", "1")
	w2 := start(t, "worker 2", bin, "worker", "--master", addr, "--insecure", "--slots", "1")
	waitUntil(t, 30*time.Second, "three intervals", func() bool { return len(committed(t, out)) >= 3 }, master, w1, w2)

	t0 := time.Now()
	t.Logf("three intervals")
	master.signal(t, syscall.SIGKILL)
	master.wait(t, 10*time.Second)
	before := len(committed(t, out))
	master = start(t, "restarted master", bin, args...)
	waitUntil(t, 30*time.Second, "four intervals after the restart", func() bool { return len(committed(t, out)) >= before+4 }, master, w1, w2)

	t.Logf("four intervals after the restart: %v", time.Since(t0))
	// With its checkpoint folder the master holds a lease, so its graceful
	// stop hands the workers over rather than releases them (that wait is
	// TestUpgradeByHandover's): stop them too.
	stopAll(t, master, []*proc{w1, w2})
	t.Logf("stopped: %v", time.Since(t0))
	checkExact(t, master.stdout.String(), out, stopsCfg, 8)
	t.Logf("checked: %v", time.Since(t0))
}

// TestMasterWithoutWorkersStops: a standalone master whose intervals wait
// for workers that never come stops on SIGTERM, saying what it waited
// for, and a second signal stops it at once; both exit non-zero (intervals
// were abandoned).
func TestMasterWithoutWorkersStops(t *testing.T) {
	longTest(t, "builds the dstream binary and runs real processes")
	bin := dstreamBinary(t)
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprintf("second signal %v", second), func(t *testing.T) {
			dir := t.TempDir()
			out, ck := filepath.Join(dir, "out"), filepath.Join(dir, "ck")
			master := start(t, "master", bin, drillArgs("cluster", ck, out, "--cluster-listen", freeAddr(t), "--insecure")...)
			// Two intervals cut and waiting for a worker.
			waitUntil(t, 10*time.Second, "the job's start", func() bool { return zeroLine.MatchString(master.stdout.String()) }, master)
			m := zeroLine.FindStringSubmatch(master.stdout.String())
			zero, _ := strconv.ParseInt(m[1], 10, 64)
			waitUntil(t, 10*time.Second, "two intervals due", func() bool {
				return time.Now().After(time.UnixMilli(zero).Add(3 * stopsBatch))
			}, master)
			started := time.Now()
			master.signal(t, syscall.SIGTERM)
			want := "no worker alive"
			if second {
				waitUntil(t, 10*time.Second, "the stop saying what it waits for", func() bool {
					return strings.Contains(master.stderr.String(), "no worker is alive; waiting for one to join")
				}, master)
				master.signal(t, syscall.SIGTERM)
				want = "stop forced by a second signal"
			}
			if code := master.wait(t, 15*time.Second); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if !strings.Contains(master.stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, tail(master.stderr.String(), 20))
			}
			t.Logf("stopped in %v", time.Since(started).Round(time.Millisecond))
		})
	}
}
