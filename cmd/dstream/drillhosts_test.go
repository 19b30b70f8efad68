package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDrillAcrossHosts runs a short drill with every process on a host of
// its own (a network namespace with a private folder): a standalone master,
// three `dstream worker` processes, one worker SIGKILLed (and started again
// by the drill, its supervisor), the master killed and started again, one
// link cut. Every interval of every output must equal a fault-free run's;
// the figures must be there; no namespace, veth or bridge may be left.
func TestDrillAcrossHosts(t *testing.T) {
	longTest(t, "builds the dstream binary and runs a 20 s fault drill across network namespaces")
	if err := checkHostNetSupport(); err != nil {
		t.Skipf("skipped: %v (CI runs as root)", err)
	}
	dir := t.TempDir()
	bin := dstreamBinary(t)
	work := filepath.Join(dir, "work")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "drill", "--hosts", "--duration", "20s", "--batch", "500ms", "--seed", "1",
		"--kills", "1", "--master-restarts", "1", "--stalls", "0", "--cuts", "1", "--cut", "3s",
		"--json", "--keep", work)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("dstream drill --hosts ran %v; stderr:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())

	// Nothing of this drill's network is left.
	if m := regexp.MustCompile(`network namespaces (dsd[0-9]+)-\*`).FindStringSubmatch(stderr.String()); m == nil {
		t.Errorf("the drill did not name its namespaces")
	} else if left := hostNetLeftovers(t, m[1]); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	var rep drillReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("dstream drill: %v; its JSON: %v\n%s", err, jerr, stdout.String())
	}
	if err != nil || rep.Verdict != "PASS" {
		log, _ := os.ReadFile(filepath.Join(work, "job.log"))
		t.Fatalf("dstream drill --hosts: %v, verdict %s: %s\nfirst differences: %s\njob log:\n%s", err, rep.Verdict, rep.Reason, firstDiffs(rep), tail(string(log), 60))
	}
	kinds := map[string]int{}
	for _, f := range rep.Faults {
		kinds[f.Kind]++
	}
	if kinds[faultKill] != 1 || kinds[faultRestart] != 1 || kinds[faultCut] != 1 || len(rep.Faults) != 3 {
		t.Errorf("faults injected: %v; want a worker kill, a master restart and a link cut", kinds)
	}
	if !rep.Hosts || rep.MasterRuns != 2 {
		t.Errorf("hosts %v, master runs %d; want a drill across hosts with 2 master runs", rep.Hosts, rep.MasterRuns)
	}
	if rep.IntervalCount < 30 || len(rep.Outputs) != len(drillOutputs) {
		t.Errorf("%d intervals, %d outputs compared; want at least 30 intervals of %d outputs", rep.IntervalCount, len(rep.Outputs), len(drillOutputs))
	}
	for _, o := range rep.Outputs {
		if o.Identical != rep.IntervalCount || o.Lines == 0 {
			t.Errorf("output %s: %d of %d intervals identical, %d lines", o.Name, o.Identical, rep.IntervalCount, o.Lines)
		}
	}
	// Figures: detection and the first interval after each fault.
	if len(rep.WorkerKills) != 1 || rep.WorkerKills[0].DetectedAfter == nil || rep.WorkerKills[0].FirstDoneAfter == nil {
		t.Errorf("worker kill figures: %+v; want when the master declared it lost and the first interval after", rep.WorkerKills)
	}
	if len(rep.MasterRestarts) != 1 || rep.MasterRestarts[0].UpAfter <= 0 || rep.MasterRestarts[0].FirstDoneAfter == nil {
		t.Errorf("master restart figures: %+v; want the new master up and its first interval", rep.MasterRestarts)
	}
	if len(rep.Cuts) != 1 || rep.Cuts[0].FirstDoneAfter == nil || rep.Cuts[0].CutSeconds < 3 {
		t.Fatalf("link cut figures: %+v; want a 3 s cut and the first interval after it", rep.Cuts)
	}
	// A cut between the master and a worker, or a worker's host off the
	// network, outlasts the 2 s without heartbeat after which the master
	// declares the worker lost.
	c := rep.Cuts[0]
	if c.Cut == cutLinkDown || slices.Contains(c.Hosts, "master") {
		if c.DetectedAfter == nil {
			t.Errorf("link cut %s %v: the master declared no worker there lost", c.Cut, c.Hosts)
		}
	}
	// The supervisor started the killed worker again.
	again := false
	for _, r := range rep.WorkerRestarts {
		again = again || strings.Contains(r.Why, "killed by the drill")
	}
	if !again {
		t.Errorf("worker restarts %+v: the killed worker was not started again", rep.WorkerRestarts)
	}
}

// hostNetLeftovers lists the namespaces and links named with prefix.
func hostNetLeftovers(t *testing.T, prefix string) []string {
	t.Helper()
	var left []string
	for _, args := range [][]string{{"netns", "list"}, {"-o", "link"}} {
		out, err := exec.Command(ipCommand(), args...).Output()
		if err != nil {
			t.Fatalf("ip %v: %v", args, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if strings.Contains(sc.Text(), prefix) {
				left = append(left, sc.Text())
			}
		}
	}
	return left
}

// TestStaleHostNetNames: the names a drill makes carry its pid; nothing
// else matches.
func TestStaleHostNetNames(t *testing.T) {
	for _, c := range []struct {
		name, pid string
	}{
		{"dsd1234br", "1234"},
		{"dsd1234v0", "1234"},
		{"dsd1234v12", "1234"},
		{"dsd1234-master", "1234"},
		{"dsd1234-worker-3", "1234"},
		{"dsd1234-probe", "1234"},
		{"dsd-master", ""},
		{"dsdx1234br", ""},
		{"eth0", ""},
		{"dsd1234", ""},
		{"dsd1234-", ""},
	} {
		got := ""
		if m := staleName.FindStringSubmatch(c.name); m != nil {
			got = m[1]
		}
		if got != c.pid {
			t.Errorf("%s: pid %q, want %q", c.name, got, c.pid)
		}
	}
}

// TestDrillStore: the S3 server of --store s3 keeps an object it was given,
// on disk under --dir.
func TestDrillStore(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runDrillStore(ctx, []string{"--dir", dir}, pw, io.Discard) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.TrimSpace(strings.TrimPrefix(line, "drill-store: listening"))
	url := "http://" + addr + "/" + drillBucket + "/ckpt/meta/start"
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("frame"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", resp.Status)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "frame" {
		t.Fatalf("GET: %s %q; want the object put", resp.Status, b)
	}
	if on, err := os.ReadFile(filepath.Join(dir, "buckets", drillBucket, "ckpt", "meta", "start")); err != nil || string(on) != "frame" {
		t.Errorf("on disk: %q, %v; want the object as a file", on, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("drill-store: %v", err)
	}
	pw.Close()
}
