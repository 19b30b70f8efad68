package main

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// standbyLease is the lease TTL of the standby tests: the default, short
// enough for a quick takeover, long enough for a loaded machine's renewals.
const standbyLease = "2s"

// standbyPair starts two standalone masters with the same checkpoint
// folder and command line but their own ports, and two workers that know
// both: the first master takes the lease and runs; the second waits as a
// standby. It returns them once three intervals are committed.
func standbyPair(t *testing.T) (active, standby *proc, workers []*proc, out string, standbyHealth string) {
	t.Helper()
	bin := dstreamBinary(t)
	dir := t.TempDir()
	out, ck := filepath.Join(dir, "out"), filepath.Join(dir, "ck")
	a, b := freeAddr(t), freeAddr(t)
	standbyHealth = freeAddr(t)
	active = start(t, "master A", bin, drillArgs("cluster", ck, out, "--cluster-listen", a, "--insecure", "--lease-ttl", standbyLease)...)
	waitUntil(t, 20*time.Second, "master A's start", func() bool { return zeroLine.MatchString(active.stdout.String()) }, active)
	standby = start(t, "master B", bin, drillArgs("cluster", ck, out, "--cluster-listen", b, "--insecure", "--lease-ttl", standbyLease, "--health-listen", standbyHealth)...)
	for i := range 2 {
		workers = append(workers, start(t, "worker "+string(rune('1'+i)), bin, "worker", "--master", a+","+b, "--insecure", "--slots", "1"))
	}
	all := append([]*proc{active, standby}, workers...)
	waitUntil(t, 30*time.Second, "three intervals", func() bool { return len(committed(t, out)) >= 3 }, all...)
	return active, standby, workers, out, standbyHealth
}

// readyz returns the status and body of a process's /readyz.
func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStandbyTakesOverAKilledMaster: two masters share a checkpoint
// folder; the second waits as a standby (its readiness says so) and
// prints nothing of the job. The active one is killed (SIGKILL): the
// standby takes the lease over, resumes from the metadata log, the
// workers (given both addresses) move to it, and the job goes on, every
// interval identical to a fault-free run's. A graceful stop then
// releases the workers.
func TestStandbyTakesOverAKilledMaster(t *testing.T) {
	longTest(t, "builds the dstream binary and runs real processes")
	active, standby, workers, out, health := standbyPair(t)
	if code, body := readyz(t, health); code == http.StatusOK || !strings.Contains(body, "standby") {
		t.Fatalf("the standby's /readyz: %d %q, want not ready, saying standby", code, body)
	}
	if zeroLine.MatchString(standby.stdout.String()) {
		t.Fatalf("the standby started the job beside the active master:\n%s", standby.stdout.String())
	}
	before := len(committed(t, out))
	killed := time.Now()
	active.signal(t, syscall.SIGKILL)
	active.wait(t, 10*time.Second)
	all := append([]*proc{standby}, workers...)
	waitUntil(t, 30*time.Second, "an interval after the takeover", func() bool { return len(committed(t, out)) > before }, all...)
	t.Logf("kill to the next committed interval: %v", time.Since(killed).Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "four intervals after the takeover", func() bool { return len(committed(t, out)) >= before+4 }, all...)
	if code, body := readyz(t, health); code != http.StatusOK {
		t.Errorf("the new active master's /readyz: %d %q, want ready", code, body)
	}
	stopAll(t, standby, workers)
	checkExact(t, standby.stdout.String(), out, stopsCfg, 8)
}

// TestPausedMasterStopsItself: the active master is paused (SIGSTOP) past
// its lease; the standby takes over and runs. When the old master is let
// go on (SIGCONT), it finds its lease lapsed, writes nothing more and
// exits non-zero, saying so; the job's output stays identical to a
// fault-free run's.
func TestPausedMasterStopsItself(t *testing.T) {
	longTest(t, "builds the dstream binary and runs real processes")
	active, standby, workers, out, _ := standbyPair(t)
	before := len(committed(t, out))
	active.signal(t, syscall.SIGSTOP)
	all := append([]*proc{standby}, workers...)
	waitUntil(t, 30*time.Second, "three intervals after the takeover", func() bool { return len(committed(t, out)) >= before+3 }, all...)
	active.signal(t, syscall.SIGCONT)
	if code := active.wait(t, 20*time.Second); code == 0 {
		t.Errorf("the paused master exited 0 after it lost its lease; want non-zero")
	}
	stderr := active.stderr.String()
	if !strings.Contains(stderr, "no longer holds the lease") {
		t.Errorf("the paused master's stderr does not say it lost the lease:\n%s", tail(stderr, 20))
	}
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, "no longer holds the lease") {
			t.Logf("the paused master: %s", strings.TrimSpace(line))
			break
		}
	}
	waitUntil(t, 30*time.Second, "two more intervals", func() bool { return len(committed(t, out)) >= before+5 }, all...)
	stopAll(t, standby, workers)
	checkExact(t, standby.stdout.String(), out, stopsCfg, 8)
}

// TestUpgradeByHandover: an upgrade without stopping the stream. The
// standby runs another build of the program (a binary of its own, with the
// same graph); the active master is stopped gracefully (SIGTERM): it
// finishes what it cut, exits 0 and releases the lease, handing its
// workers over instead of releasing them. The standby takes over at once,
// the same workers join it, and the job goes on exactly. Stopping the new
// master then ends the job: with no master left to take over, the workers
// exit 0 once the handover wait has passed.
func TestUpgradeByHandover(t *testing.T) {
	longTest(t, "builds the dstream binary and runs real processes")
	newer := filepath.Join(t.TempDir(), "dstream-newer")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=test-newer", "-o", newer, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(newer, "version").Output(); err != nil || !strings.Contains(string(out), "test-newer") {
		t.Fatalf("%s version = %q, %v; want the newer build", newer, out, err)
	}
	bin := dstreamBinary(t)
	dir := t.TempDir()
	out, ck := filepath.Join(dir, "out"), filepath.Join(dir, "ck")
	a, b := freeAddr(t), freeAddr(t)
	old := start(t, "master A (old build)", bin, drillArgs("cluster", ck, out, "--cluster-listen", a, "--insecure", "--lease-ttl", standbyLease)...)
	waitUntil(t, 20*time.Second, "master A's start", func() bool { return zeroLine.MatchString(old.stdout.String()) }, old)
	next := start(t, "master B (newer build)", newer, drillArgs("cluster", ck, out, "--cluster-listen", b, "--insecure", "--lease-ttl", standbyLease)...)
	var workers []*proc
	for i := range 2 {
		workers = append(workers, start(t, "worker "+string(rune('1'+i)), bin, "worker", "--master", a+","+b, "--insecure", "--slots", "1"))
	}
	all := append([]*proc{next}, workers...)
	waitUntil(t, 30*time.Second, "three intervals", func() bool { return len(committed(t, out)) >= 3 }, append(all, old)...)
	stopped := time.Now()
	old.signal(t, syscall.SIGTERM)
	if code := old.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("the old master: exit status %d after SIGTERM, want 0", code)
	}
	before := len(committed(t, out))
	waitUntil(t, 30*time.Second, "an interval after the handover", func() bool { return len(committed(t, out)) > before }, all...)
	t.Logf("SIGTERM to the next committed interval: %v", time.Since(stopped).Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "four intervals after the handover", func() bool { return len(committed(t, out)) >= before+4 }, all...)
	next.signal(t, syscall.SIGTERM)
	if code := next.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("the new master: exit status %d after SIGTERM, want 0", code)
	}
	for _, w := range workers {
		if code := w.wait(t, 20*time.Second); code != 0 {
			t.Errorf("%s: exit status %d once released, want 0", w.name, code)
		}
	}
	checkExact(t, next.stdout.String(), out, stopsCfg, 8)
}

// stopAll stops a master gracefully, then its workers (which a master with
// a lease hands over rather than releases: TestUpgradeByHandover waits for
// that); every one must exit 0.
func stopAll(t *testing.T, master *proc, workers []*proc) {
	t.Helper()
	master.signal(t, syscall.SIGTERM)
	if code := master.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("%s: exit status %d after SIGTERM, want 0", master.name, code)
	}
	for _, w := range workers {
		w.signal(t, syscall.SIGTERM)
		if code := w.wait(t, 20*time.Second); code != 0 {
			t.Errorf("%s: exit status %d after SIGTERM, want 0", w.name, code)
		}
	}
}
