package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dstream/dstream/ui"
)

// The drill across hosts (--hosts): its processes, their supervisor, and
// link cuts. The job is the drill job under a standalone master (`--master
// cluster`) on host "master-1", with a standby master running the same
// command on host "master-2" (drillstandby.go; with --standby=false or
// --store folder, one master on host "master"), checkpointing into
// s3://drill/ckpt and
// writing its outputs to s3://drill/out on host "store" (--store s3, the
// default), or checkpointing into its private folder and writing its
// outputs to the work folder's out/, which every host sees (--store
// folder); each worker is `dstream worker --master ADDR[,ADDR]` (both
// masters' addresses) on host "node-N"
// (the master names its workers worker-N, an id per registration). The
// drill reads the outputs back where they are. The job's input is
// generated (drillWords: a function of the seed and the interval), so
// there is no client to place on a host. A supervisor (the drill) starts a
// worker again on its host when it exits: o.respawn after the drill killed
// it, at 500 ms when it exited by itself, as Kubernetes would (workers
// follow a restarted master; before they did, each exited then).

// Ports on the hosts' addresses.
const (
	drillClusterPort = "7077"
	drillWorkerPort  = "7078"
	drillStorePort   = "9000"
)

// drillExitedRespawn is how long the supervisor waits before it starts
// again a worker that exited by itself.
const drillExitedRespawn = 500 * time.Millisecond

// hostsRun is the part of a drill that runs across hosts.
type hostsRun struct {
	net         *hostNet
	master      *netHost   // the first master's host
	masterHosts []*netHost // with a standby, both masters' hosts; else master's
	standby     *jobProc   // the master waiting as a standby (guarded by drill.mu)
	store       *netHost   // --store s3; nil otherwise
	storeProc   *exec.Cmd
	workerHosts []*netHost
	logDir      string // the drill's own: one log per host
	clusterAddr string
	supervisors sync.WaitGroup

	// Guarded by drill.mu.
	onHost   map[string]*workerProc // by host: its current process
	stopping bool                   // no more respawns
	respawns []drillRespawn
	losses   []drillLoss
	lostNow  map[string]bool   // "epoch/worker id" -> lost in the last look
	full     map[int]time.Time // master run -> when it first had every worker alive
	hostOfID map[string]string // "epoch/worker id" -> host
}

// workerProc is one worker process on its host.
type workerProc struct {
	host    *netHost
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	err     error
	killed  bool // by the drill (guarded by drill.mu)
}

// drillRespawn is a worker the supervisor started again; the pids are its
// host processes' (drill-host, the worker's parent).
type drillRespawn struct {
	Host     string    `json:"host"`
	OldPID   int       `json:"oldPid"`
	NewPID   int       `json:"newPid"`
	Why      string    `json:"why"`
	ExitedAt time.Time `json:"exitedAt"`
	Started  time.Time `json:"startedAt"`
}

// drillLoss is a worker a master declared lost, as the drill saw it (its
// UI, read every drillPoll).
type drillLoss struct {
	Epoch  int
	Worker string
	Host   string
	At     time.Time
}

// setupHosts makes the hosts, starts the store (--store s3) and writes the
// master's command line. Its error says what is missing.
func (d *drill) setupHosts() error {
	o := d.o
	if err := checkHostNetSupport(); err != nil {
		return err
	}
	names := []string{"master"}
	if o.standby {
		names = []string{"master-1", "master-2"}
	}
	for i := range o.workers {
		names = append(names, fmt.Sprintf("node-%d", i+1))
	}
	if o.store == "s3" {
		names = append(names, "store")
	}
	// Every host sees none of the work folder but its own private folder
	// (and, with --store folder, the output folder).
	hostsDir, out := filepath.Join(d.dir, "hosts"), filepath.Join(d.dir, "out")
	var shared []string
	if o.store == "folder" {
		shared = []string{out}
	}
	if rel, err := filepath.Rel(d.dir, d.exe); err == nil && filepath.IsLocal(rel) {
		return fmt.Errorf("this program %s is inside the work folder %s, which the drill hides from its hosts; run it from elsewhere or choose another --keep", d.exe, d.dir)
	}
	n, err := newHostNet(names, hostsDir, d.dir, shared)
	if err != nil {
		return err
	}
	h := &hostsRun{net: n, master: n.host(names[0]), store: n.host("store"), logDir: filepath.Join(d.dir, "logs"),
		onHost: map[string]*workerProc{}, lostNow: map[string]bool{}, full: map[int]time.Time{}, hostOfID: map[string]string{}}
	d.hostsRun = h
	masters := 1
	if o.standby {
		masters = 2
	}
	var addrs []string
	for _, name := range names[:masters] {
		h.masterHosts = append(h.masterHosts, n.host(name))
		addrs = append(addrs, n.host(name).addr+":"+drillClusterPort)
	}
	for _, name := range names[masters : masters+o.workers] {
		h.workerHosts = append(h.workerHosts, n.host(name))
	}
	if len(n.removed) > 0 {
		d.note("removed what dead drills left: %s", strings.Join(n.removed, ", "))
	}
	if err := os.MkdirAll(h.logDir, 0o755); err != nil {
		return err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	d.env = append(os.Environ(), "DSTREAM_SECRET="+hex.EncodeToString(secret))
	h.clusterAddr = strings.Join(addrs, ",") // every worker's --master
	d.ckLoc, d.out = filepath.Join(h.master.home, "checkpoint"), out
	if h.store != nil {
		if err := d.startStore(); err != nil {
			return err
		}
		d.ckLoc, d.out = "s3://"+drillBucket+"/ckpt", "s3://"+drillBucket+"/out"
		// The job's processes, and the drill itself when it reads the
		// checkpoint's start and the outputs back (checkpoint.Open), reach
		// the store through the AWS environment.
		for _, kv := range storeEnv("http://" + h.store.addr + ":" + drillStorePort) {
			k, v, _ := strings.Cut(kv, "=")
			if err := os.Setenv(k, v); err != nil {
				return err
			}
			d.env = append(d.env, kv)
		}
	}
	d.parallelism = 2 * o.workers
	// Every master runs this command, with its host's address for
	// --cluster-listen and --ui-listen (masterCommand).
	d.args = []string{"drill-job", "--master", "cluster",
		"--batch", o.batch.String(), "--parallelism", strconv.Itoa(d.parallelism),
		"--checkpoint", d.ckLoc, "--out", d.out,
		"--seed", strconv.FormatUint(o.seed, 10), "--words", strconv.Itoa(o.words),
		"--watch-stdin", "--linger", (4 * drillPoll).String(), "-v"}
	if o.leaseTTL > 0 {
		d.args = append(d.args, "--lease-ttl", o.leaseTTL.String())
	}
	return nil
}

// storeEnv is the AWS environment that points S3 clients at the drill's
// store, at endpoint: its variables that take precedence over
// AWS_ENDPOINT_URL emptied, so a user's own cannot send the drill
// elsewhere.
func storeEnv(endpoint string) []string {
	return []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_ENDPOINT_URL_S3=", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=drill", "AWS_SECRET_ACCESS_KEY=drill", "AWS_SESSION_TOKEN=", "AWS_PROFILE="}
}

// hostLog opens host's log file for appending.
func (h *hostsRun) hostLog(host string) (*os.File, error) {
	return os.OpenFile(filepath.Join(h.logDir, host+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// startStore starts the S3 server on its host and waits until it serves.
func (d *drill) startStore() error {
	h := d.hostsRun
	logf, err := h.hostLog("store")
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := h.net.command(h.store, true, d.exe, "drill-store", "--listen", h.store.addr+":"+drillStorePort, "--dir", filepath.Join(h.store.home, "s3"))
	cmd.Stderr = logf
	if _, err := cmd.StdinPipe(); err != nil { // open until the drill exits
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	h.storeProc = cmd
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "drill-store: listening") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			return fmt.Errorf("the S3 store exited before it served (log %s)", logf.Name())
		}
	case <-time.After(drillStartWait):
		return fmt.Errorf("the S3 store did not serve within %v", drillStartWait)
	}
	d.logf("S3 store up on host store, %s:%s", h.store.addr, drillStorePort)
	return nil
}

// masterCommand is the command of a run of the job's master: across
// hosts, on host h, listening on its address.
func (d *drill) masterCommand(h *netHost) *exec.Cmd {
	if d.hostsRun == nil {
		return exec.Command(d.exe, d.args...)
	}
	args := append(slices.Clone(d.args), "--cluster-listen", h.addr+":"+drillClusterPort, "--ui-listen", h.addr+":0")
	cmd := d.net.command(h, false, d.exe, args...) // it watches its stdin itself
	cmd.Env = d.env
	return cmd
}

// startWorkers starts a worker on every worker host.
func (d *drill) startWorkers() error {
	for _, h := range d.workerHosts {
		if _, err := d.startWorker(h); err != nil {
			return err
		}
	}
	return nil
}

// startWorker starts `dstream worker` on host h, and its supervisor.
func (d *drill) startWorker(h *netHost) (*workerProc, error) {
	logf, err := d.hostLog(h.name)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	addr := h.addr + ":" + drillWorkerPort
	cmd := d.net.command(h, true, d.exe, "worker", "--master", d.clusterAddr, "--listen", addr, "--advertise", addr, "--slots", "2")
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if _, err := cmd.StdinPipe(); err != nil { // open until the drill exits
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return nil, nil
	}
	fmt.Fprintf(logf, "=== drill: worker starts on host %s at %s\n", h.name, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &workerProc{host: h, cmd: cmd, started: time.Now(), exited: make(chan struct{})}
	d.onHost[h.name] = w
	d.supervisors.Add(1)
	go d.supervise(w)
	return w, nil
}

// supervise waits for w to exit and, unless the drill is stopping, starts
// a worker on its host again.
func (d *drill) supervise(w *workerProc) {
	defer d.supervisors.Done()
	w.err = w.cmd.Wait()
	close(w.exited)
	exitedAt := time.Now()
	d.mu.Lock()
	stopping, killed := d.stopping, w.killed
	d.mu.Unlock()
	if stopping {
		return
	}
	why, wait := "killed by the drill", d.o.respawn
	if !killed {
		why, wait = fmt.Sprintf("exited by itself (%v): %s", w.err, lastLogLine(filepath.Join(d.logDir, w.host.name+".log"))), drillExitedRespawn
	}
	d.logf("worker on host %s (pid %d) %s; starting it again in %v", w.host.name, w.cmd.Process.Pid, why, wait)
	time.Sleep(wait)
	nw, err := d.startWorker(w.host)
	if err != nil {
		d.fail("starting the worker on host %s again: %v", w.host.name, err)
		return
	}
	if nw == nil {
		return // stopping
	}
	d.mu.Lock()
	d.respawns = append(d.respawns, drillRespawn{Host: w.host.name, OldPID: w.cmd.Process.Pid, NewPID: nw.cmd.Process.Pid, Why: why, ExitedAt: exitedAt, Started: nw.started})
	d.mu.Unlock()
}

// lastLogLine is the last line of a worker's log worth quoting: one that
// names an error.
func lastLogLine(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	b = b[max(0, len(b)-8192):]
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := lines[i]; strings.Contains(l, "err") || strings.Contains(l, "must restart") {
			return strings.TrimSpace(l)
		}
	}
	return lines[len(lines)-1]
}

// killWorker marks the worker w (pid, at an address of a host) as killed
// by the drill (so its supervisor starts it again after o.respawn) and
// SIGKILLs it; it returns its host.
func (d *drill) killWorker(w ui.Worker) (string, error) {
	var h *netHost
	if w.Address != nil {
		h = d.net.hostOf(*w.Address)
	}
	if h == nil {
		return "", fmt.Errorf("worker %s is on no host of the drill's", w.ID)
	}
	d.mu.Lock()
	if p := d.onHost[h.name]; p != nil {
		p.killed = true
	}
	d.mu.Unlock()
	return h.name, syscall.Kill(w.PID, syscall.SIGKILL)
}

// endWorkers stops respawning, SIGTERMs every worker process (a worker
// of a standalone master outlives it, waiting for the next: a supervisor
// stops it) and waits up to wait for it to exit, then kills it.
func (d *drill) endWorkers(wait time.Duration, when string) {
	d.mu.Lock()
	d.stopping = true
	var ws []*workerProc
	for _, w := range d.onHost {
		ws = append(ws, w)
	}
	d.mu.Unlock()
	for _, w := range ws {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGCONT) // its process group
		_ = w.cmd.Process.Signal(syscall.SIGTERM)             // drill-host passes it on
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for _, w := range ws {
		select {
		case <-w.exited:
			continue
		case <-deadline.C:
			deadline.Reset(0)
		}
		select {
		case <-w.exited:
		default:
			d.note("the worker on host %s (pid %d) did not stop within %v of SIGTERM %s; the drill killed it", w.host.name, w.cmd.Process.Pid, wait, when)
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
			<-w.exited
		}
	}
	d.supervisors.Wait()
}

// closeHosts stops the store and takes the network down. Every worker and
// master process has exited by then.
func (d *drill) closeHosts() {
	if d.hostsRun == nil {
		return
	}
	d.endWorkers(0, "at the end") // all gone already, unless the drill failed
	if p := d.storeProc; p != nil {
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if err := d.net.Close(); err != nil {
		fmt.Fprintf(d.stderr, "dstream drill: cleaning up the hosts: %v\n", err)
	}
}

// noteWorkers records, from a master's registry, which workers it declared
// lost (and when the drill first saw it) and when it first had every
// worker alive.
func (d *drill) noteWorkers(epoch int, ws []ui.Worker, now time.Time) {
	if d.hostsRun == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	alive := 0
	for _, w := range ws {
		if w.ID == "master" {
			continue
		}
		key := fmt.Sprintf("%d/%s", epoch, w.ID)
		host := ""
		if w.Address != nil {
			if h := d.net.hostOf(*w.Address); h != nil {
				host = h.name
			}
		}
		d.hostOfID[key] = host
		switch w.State {
		case "lost":
			if !d.lostNow[key] {
				d.losses = append(d.losses, drillLoss{Epoch: epoch, Worker: w.ID, Host: host, At: now})
			}
			d.lostNow[key] = true
		case "alive":
			d.lostNow[key] = false
			if w.PID > 0 && procAlive(w.PID) {
				alive++
			}
		}
	}
	if _, ok := d.full[epoch]; !ok && alive >= d.o.workers {
		d.full[epoch] = now
	}
}

// detected returns the first loss the drill saw in master run epoch after
// at: of worker, or (worker "") of a worker on one of hosts.
func (d *drill) detected(at, within time.Time, epoch int, worker string, hosts []string) *time.Time {
	if d.hostsRun == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.losses {
		if l.At.Before(at) || l.At.After(within) || l.Epoch != epoch {
			continue
		}
		if (worker != "" && l.Worker == worker) || (worker == "" && containsString(hosts, l.Host)) {
			t := l.At
			return &t
		}
	}
	return nil
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// injectCut cuts a link for o.cut, then heals it: between two hosts with
// blackhole or prohibit routes, or a worker's host off the network (its
// link down); the seed chooses.
func (d *drill) injectCut(ctx context.Context, f *drillFault, ws []ui.Worker) error {
	n := d.net
	peers := []*netHost{d.current().host}
	peers = append(peers, d.workerHosts...)
	if d.store != nil {
		peers = append(peers, d.store)
	}
	var heal func() error
	switch kind := []string{cutBlackhole, cutProhibit, cutLinkDown}[d.rng.IntN(3)]; kind {
	case cutLinkDown:
		h := d.workerHosts[d.rng.IntN(len(d.workerHosts))]
		f.Cut, f.Hosts = kind, []string{h.name}
		f.At = time.Now()
		if err := n.isolate(h); err != nil {
			return err
		}
		heal = func() error { return n.rejoin(h) }
	default:
		i := d.rng.IntN(len(peers))
		j := d.rng.IntN(len(peers) - 1)
		if j >= i {
			j++
		}
		a, b := peers[min(i, j)], peers[max(i, j)]
		if d.store != nil && a == peers[0] && b == d.store {
			// The active master cut off from the store is a fault of its
			// own (--store-cuts: the master stops, and the standby takes
			// over); a random cut takes the master and a worker instead.
			b = peers[1]
		}
		f.Cut, f.Hosts = kind, []string{a.name, b.name}
		f.At = time.Now()
		if err := n.cutPair(a, b, kind); err != nil {
			return err
		}
		heal = func() error { return n.healPair(a, b, kind) }
	}
	for _, w := range ws {
		if w.Address != nil {
			if h := n.hostOf(*w.Address); h != nil && containsString(f.Hosts, h.name) {
				f.Affected = append(f.Affected, w.ID)
			}
		}
	}
	d.logf("cut (%s): %s, for %v", f.Cut, strings.Join(f.Hosts, " - "), d.o.cut)
	return d.holdCut(ctx, f, heal)
}

// holdCut keeps a cut for --cut (or until ctx is done), then heals it and
// notes when in f.
func (d *drill) holdCut(ctx context.Context, f *drillFault, heal func() error) error {
	select {
	case <-ctx.Done():
	case <-time.After(d.o.cut):
	}
	if err := heal(); err != nil {
		return fmt.Errorf("healing the cut: %w", err)
	}
	until := time.Now()
	f.Until = &until
	d.logf("healed: %s", strings.Join(f.Hosts, " - "))
	return nil
}

// printHostsSetup says where every host is.
func (d *drill) printHostsSetup(w io.Writer) {
	var b bytes.Buffer
	for _, h := range d.net.hosts {
		fmt.Fprintf(&b, " %s=%s", h.name, h.addr)
	}
	fmt.Fprintf(w, "dstream drill: hosts (network namespaces %s-*, bridge %s %s):%s\n", d.net.prefix, d.net.bridge, d.net.gw, b.String())
}
