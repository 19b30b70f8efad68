package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
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
// its own (a network namespace with a private folder) and nothing shared
// but the network (--store s3: checkpoints and outputs in the S3 server on
// a host of its own): a standalone master and a standby (the same command
// and checkpoint location, on a host of its own), three `dstream worker`
// processes that know both, one worker SIGKILLed (and started again by the
// drill, its supervisor), the active master killed (the standby takes
// over; the killed one comes back as the standby), the active master
// paused past its lease (it must stop itself, saying it lost the lease),
// the links between the active master and the workers cut, one random link
// cut. (Not --store-cuts: a marker the master cut off from the store sent
// before its lease lapsed can land after the new master cleaned the
// interval up, leaving a marker without parts; see BENCHMARKS.md, "Standby
// master".) Every
// interval of every output, read back from the store, must equal a
// fault-free run's; no output may be written anywhere else; the figures
// must be there; no namespace, veth or bridge may be left.
func TestDrillAcrossHosts(t *testing.T) {
	longTest(t, "builds the dstream binary and runs a 30 s fault drill across network namespaces")
	if err := checkHostNetSupport(); err != nil {
		t.Skipf("skipped: %v (CI runs as root)", err)
	}
	dir := t.TempDir()
	bin := dstreamBinary(t)
	work := filepath.Join(dir, "work")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "drill", "--hosts", "--store", "s3", "--duration", "30s", "--batch", "500ms", "--seed", "1",
		"--kills", "1", "--master-restarts", "1", "--pauses", "1", "--master-cuts", "1", "--stalls", "0", "--cuts", "1", "--cut", "3s",
		"--lease-ttl", "1s", "--json", "--keep", work)
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
	// Nothing shared but the network: the outputs were read back from the
	// store, and no interval folder is anywhere but in the store's disk
	// and the fault-free run's.
	if rep.Store != "s3" || rep.Output != "s3://"+drillBucket+"/out" {
		t.Errorf("store %q, outputs in %q; want s3 and s3://%s/out", rep.Store, rep.Output, drillBucket)
	}
	if _, err := os.Stat(filepath.Join(work, "out")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the work folder has an output folder out/ (%v); want none with --store s3", err)
	}
	if stray := outputFoldersOutside(t, work, filepath.Join(work, "reference"), filepath.Join(work, "hosts", "store", "s3")); len(stray) > 0 {
		t.Errorf("output folders outside the store: %v", stray)
	}
	kinds := map[string]int{}
	for _, f := range rep.Faults {
		kinds[f.Kind]++
	}
	// A link cut between the active master and the store outlasts its
	// lease: it stops itself and the standby takes over (lease-lost).
	if kinds[faultKill] != 1 || kinds[faultRestart] != 1 || kinds[faultPause] != 1 || kinds[faultMasterCut] != 1 || kinds[faultCut] != 1 ||
		len(rep.Faults) != 5+kinds[faultLeaseLost] {
		t.Errorf("faults injected: %v; want a worker kill, an active-master kill, a pause, a master cut and a link cut", kinds)
	}
	if !rep.Hosts || !rep.Standby || rep.MasterRuns != 3+kinds[faultLeaseLost] {
		t.Errorf("hosts %v, standby %v, master runs %d; want a drill across hosts with a standby, and %d master runs", rep.Hosts, rep.Standby, rep.MasterRuns, 3+kinds[faultLeaseLost])
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
	// Each failover: detection (the standby took the lease), takeover to
	// its first interval, and the fault to it; the hosts alternate.
	if len(rep.Failovers) != 2+kinds[faultLeaseLost] || len(rep.MasterRestarts) != 0 {
		t.Errorf("failovers %+v, restarts in place %+v; want %d failovers and no restart in place", rep.Failovers, rep.MasterRestarts, 2+kinds[faultLeaseLost])
	}
	for _, r := range rep.Failovers {
		if r.DetectedAfter == nil || r.TakeoverToFirst == nil || r.FirstDoneAfter == nil || r.Host == r.NewHost || r.NewHost == "" {
			t.Errorf("failover figures: %+v; want detection, takeover to first interval, fault to first interval, from one master host to the other", r)
		}
	}
	for _, f := range rep.Faults {
		if (f.Kind == faultPause || f.Kind == faultStoreCut) && (!f.SaidLeaseLost || f.OldExit == "" || f.OldExit == "exit status 0") {
			t.Errorf("%s: the old master: %q, said it lost the lease: %v; want a non-zero exit, saying so", f.Kind, f.OldExit, f.SaidLeaseLost)
		}
	}
	// Cut off from its workers but not from the store, the active master
	// keeps its lease (no failover) and declares them lost; they rejoin.
	if len(rep.MasterCuts) != 1 || rep.MasterCuts[0].DetectedAfter == nil || rep.MasterCuts[0].FirstDoneAfter == nil {
		t.Errorf("master cut figures: %+v; want the workers declared lost and the first interval after", rep.MasterCuts)
	}
	if len(rep.Cuts) != 1 || rep.Cuts[0].FirstDoneAfter == nil || rep.Cuts[0].CutSeconds < 3 {
		t.Fatalf("link cut figures: %+v; want a 3 s cut and the first interval after it", rep.Cuts)
	}
	// A cut between the master and a worker, or a worker's host off the
	// network, outlasts the 2 s without heartbeat after which the master
	// declares the worker lost.
	c := rep.Cuts[0]
	if c.Cut == cutLinkDown || slices.ContainsFunc(c.Hosts, func(h string) bool { return strings.HasPrefix(h, "master") }) && !slices.Contains(c.Hosts, "store") {
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

// outputFoldersOutside lists the interval folders of the drill's outputs
// (NAME-<ms>) under root, but for those under allowed.
func outputFoldersOutside(t *testing.T, root string, allowed ...string) []string {
	t.Helper()
	interval := regexp.MustCompile(`^(` + strings.Join(drillOutputs, "|") + `)-[0-9]+$`)
	var found []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(allowed, path) {
			return filepath.SkipDir
		}
		if e.IsDir() && interval.MatchString(e.Name()) {
			found = append(found, path)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestDrillHostHides: drill-host hides the work folder from its command
// but for the host's own folder and the shared ones, which it writes
// through to.
func TestDrillHostHides(t *testing.T) {
	longTest(t, "builds the dstream binary")
	if os.Geteuid() != 0 {
		t.Skip("skipped: drill-host mounts a tmpfs, which needs root (CI runs as root)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("skipped: no unshare (util-linux): %v", err)
	}
	bin := dstreamBinary(t)
	for _, c := range []struct {
		name   string
		shared []string
		want   string
	}{
		{"alone", nil, ". ./hosts ./hosts/a ./hosts/a/mine ./hosts/a/tmp"},
		{"out shared", []string{"out"}, ". ./hosts ./hosts/a ./hosts/a/mine ./hosts/a/tmp ./out ./out/counts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			for _, d := range []string{"hosts/a/tmp", "hosts/b", "out/counts"} {
				if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"hosts/a/mine", "hosts/b/theirs", "job.log"} {
				if err := os.WriteFile(filepath.Join(work, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"--mount", "--propagation", "private", bin, "drill-host", "--hide", work, "--home", filepath.Join(work, "hosts", "a")}
			for _, s := range c.shared {
				args = append(args, "--share", filepath.Join(work, s))
			}
			args = append(args, "--", "sh", "-c", `cd "$1" && find . | sort | tr '\n' ' ' && touch hosts/a/written`, "sh", work)
			out, err := exec.Command(unshare, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("drill-host: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != c.want {
				t.Errorf("the host sees %q; want %q", got, c.want)
			}
			if _, err := os.Stat(filepath.Join(work, "hosts", "a", "written")); err != nil {
				t.Errorf("what the host wrote in its folder is not there: %v", err)
			}
		})
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
	// A listing without a delimiter walks only its prefix's folder, and
	// still finds every key under the prefix, at any depth.
	base := "http://" + addr + "/" + drillBucket
	for _, key := range []string{"ckpt/meta/log-1", "ckpt/meta/log-2", "ckpt/meta/logs/3", "ckpt/state/1", "out/x"} {
		req, _ := http.NewRequest(http.MethodPut, base+"/"+key, strings.NewReader(key))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, c := range []struct{ prefix, want string }{
		{"ckpt/meta/log", "ckpt/meta/log-1 ckpt/meta/log-2 ckpt/meta/logs/3"},
		{"ckpt/meta/", "ckpt/meta/log-1 ckpt/meta/log-2 ckpt/meta/logs/3 ckpt/meta/start"},
		{"ckpt/s", "ckpt/state/1"},
		{"o", "out/x"},
		{"nothing/here", ""},
	} {
		resp, err := http.Get(base + "?list-type=2&prefix=" + c.prefix)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var keys []string
		for _, m := range regexp.MustCompile(`<Key>([^<]*)</Key>`).FindAllSubmatch(b, -1) {
			keys = append(keys, string(m[1]))
		}
		slices.Sort(keys)
		if got := strings.Join(keys, " "); resp.StatusCode != http.StatusOK || got != c.want {
			t.Errorf("list %q: %s %q; want %q", c.prefix, resp.Status, got, c.want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("drill-store: %v", err)
	}
	pw.Close()
}
