package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/ui"
)

// The drill across hosts with a standby master (--hosts --store s3, the
// default): a second master runs the same command with the same s3://
// checkpoint location on a host of its own and waits as a standby (it
// contends for the location's lease); every worker is given both
// addresses (`worker --master A,B`). Faults of the active master:
//
//   - master-restart: SIGKILL. The standby takes the lease over (about the
//     TTL and a fifth after the last renewal), resumes from the metadata log
//     and runs the missed intervals; the drill then starts the killed
//     master again on its host, where it becomes the standby, so kills
//     alternate hosts.
//   - master-pause: SIGSTOP until the standby has taken over, then
//     SIGCONT. The old master must find its lease lapsed and exit non-zero
//     saying so ("no longer holds the lease"); it is started again as the
//     standby.
//   - store-cut: the link between the active master's host and the
//     store's cut for --cut. Longer than the lease, the master must stop
//     itself (non-zero, saying it lost the lease) once its lease lapses,
//     and the standby, which reaches the store, takes over.
//   - master-cut: the links between the active master's host and every
//     worker's host cut (blackhole or prohibit routes) for --cut, not those
//     to the store's or the standby's host: the master keeps its lease, its
//     workers cannot reach it and are declared lost; after the heal they
//     rejoin it.
//
// An active master that stops itself having lost its lease (a link cut
// between it and the store that outlasts the lease) is a failover too,
// recorded as a lease-lost fault when the drill sees it.
//
// The figures of a failover: detection (from the fault to the new master's
// log line "holding the lease of the checkpoint location", with its own
// time stamp), takeover to its first completed interval, and fault to
// first completed interval.

// leaseTTLDefault is a master's lease TTL unless --lease-ttl says.
const leaseTTLDefault = dstream.DefaultLeaseTTL

// Log lines of a master about its lease (internal/engine/leader.go).
const (
	logHoldsLease = "holding the lease of the checkpoint location"
	logStandby    = "standby: another master holds the lease"
	logLostLease  = "no longer holds the lease"
)

// ttl is the masters' lease TTL.
func (o *drillOptions) ttl() time.Duration {
	if o.leaseTTL > 0 {
		return o.leaseTTL
	}
	return leaseTTLDefault
}

// lineWriter hands each whole line written to it to line.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// masterLogLine writes a line of p's log to the job log, with its host,
// and notes what it says of the lease.
func (d *drill) masterLogLine(p *jobProc, line string) {
	fmt.Fprintf(d.logFile, "[%s] %s\n", p.host.name, line)
	var at *time.Time
	switch {
	case strings.Contains(line, logHoldsLease):
		at = &p.leaseAt
	case strings.Contains(line, logStandby):
		at = &p.standbyAt
	case strings.Contains(line, logLostLease):
		at = &p.leaseLostAt
	default:
		return
	}
	t := logTime(line)
	d.mu.Lock()
	defer d.mu.Unlock()
	if at.IsZero() {
		*at = t
	}
}

// logTime is the time stamp of a log line (slog's text: time=...), or now.
func logTime(line string) time.Time {
	if rest, ok := strings.CutPrefix(line, "time="); ok {
		stamp, _, _ := strings.Cut(rest, " ")
		if t, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
			return t
		}
	}
	return time.Now()
}

// startStandby starts a master on host h, where it waits as the standby.
func (d *drill) startStandby(h *netHost) error {
	p, err := d.launchMaster(h)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.standby = p
	d.mu.Unlock()
	d.logf("standby master started on host %s (pid %d)", h.name, p.cmd.Process.Pid)
	return nil
}

// standbyWaiting waits until the standby says it waits as one.
func (d *drill) standbyWaiting(ctx context.Context) (*jobProc, error) {
	deadline := time.Now().Add(drillEventWait)
	for {
		d.mu.Lock()
		sb := d.standby
		waiting := sb != nil && !sb.standbyAt.IsZero()
		d.mu.Unlock()
		if sb == nil {
			return nil, errors.New("no standby master")
		}
		select {
		case <-sb.exited:
			return nil, fmt.Errorf("the standby master on host %s (pid %d) exited: %v", sb.host.name, sb.cmd.Process.Pid, sb.err)
		default:
		}
		if waiting {
			return sb, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the standby master on host %s did not say it waits as one within %v", sb.host.name, drillEventWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// takeOver waits until the standby has taken over (it holds the lease, has
// resumed and serves its UI) and makes it the current master; f gets the
// figures. The caller has made the old master go (or pause).
func (d *drill) takeOver(f *drillFault) error {
	d.mu.Lock()
	sb := d.standby
	d.mu.Unlock()
	if sb == nil {
		return errors.New("no standby master to take over")
	}
	if err := d.awaitUp(sb, drillStartWait); err != nil {
		return fmt.Errorf("the standby on host %s did not take over: %w", sb.host.name, err)
	}
	if err := d.promote(sb); err != nil {
		return err
	}
	d.mu.Lock()
	d.standby = nil
	if !sb.leaseAt.IsZero() {
		t := sb.leaseAt
		f.Takeover = &t
	}
	d.mu.Unlock()
	f.NewPID, f.Ready, f.NewHost = sb.cmd.Process.Pid, &sb.readyAt, sb.host.name
	d.logf("the standby on host %s (pid %d) took over: lease %s after the fault, up (UI %s) %v after it",
		sb.host.name, f.NewPID, secs(sinceFault(f.Takeover, f.At)), sb.ui, sb.readyAt.Sub(f.At).Round(time.Millisecond))
	return nil
}

func sinceFault(t *time.Time, at time.Time) *float64 {
	if t == nil {
		return nil
	}
	s := t.Sub(at).Seconds()
	return &s
}

// killActive is a master-restart with a standby: SIGKILL the active master
// p, wait for the standby to take over, and start the killed one again on
// its host as the new standby.
func (d *drill) killActive(ctx context.Context, f *drillFault, p *jobProc) error {
	if _, err := d.standbyWaiting(ctx); err != nil {
		return err
	}
	d.pollOnce(p) // what it completed so far: its UI dies with it
	f.PID, f.Host = p.cmd.Process.Pid, p.host.name
	d.mu.Lock()
	p.killed = true
	d.mu.Unlock()
	f.At = time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("SIGKILL master pid %d: %w", f.PID, err)
	}
	<-p.exited
	d.logf("SIGKILL the active master on host %s (pid %d)", p.host.name, f.PID)
	if err := d.takeOver(f); err != nil {
		return err
	}
	return d.startStandby(p.host)
}

// pauseActive is a master-pause: SIGSTOP the active master p until the
// standby has taken over, then SIGCONT it: it must stop itself, non-zero,
// saying it lost the lease. Then it is started again as the standby.
func (d *drill) pauseActive(ctx context.Context, f *drillFault, p *jobProc) error {
	if _, err := d.standbyWaiting(ctx); err != nil {
		return err
	}
	d.pollOnce(p)
	f.PID, f.Host = p.cmd.Process.Pid, p.host.name
	d.mu.Lock()
	p.killed = true // its exit is expected
	d.stopped[f.PID] = true
	d.mu.Unlock()
	f.At = time.Now()
	if err := syscall.Kill(f.PID, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("SIGSTOP master pid %d: %w", f.PID, err)
	}
	d.logf("SIGSTOP the active master on host %s (pid %d) until the standby takes over", p.host.name, f.PID)
	err := d.takeOver(f)
	d.continueStopped()
	until := time.Now()
	f.Until = &until
	if err != nil {
		return err
	}
	d.logf("SIGCONT the old master (pid %d)", f.PID)
	select {
	case <-p.exited:
	case <-time.After(drillStopWait):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("the paused master (pid %d) still ran %v after SIGCONT, though it lost its lease (killed)", f.PID, drillStopWait)
	}
	f.OldExit = "exit status 0"
	if p.err != nil {
		f.OldExit = p.err.Error()
	}
	d.mu.Lock()
	f.SaidLeaseLost = !p.leaseLostAt.IsZero()
	d.mu.Unlock()
	d.logf("the old master (pid %d) stopped: %s; it said it lost the lease: %v", f.PID, f.OldExit, f.SaidLeaseLost)
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.ExitCode() == 0 || !f.SaidLeaseLost {
		return fmt.Errorf("the paused master (pid %d) ended with %s and said it lost the lease: %v; want a non-zero exit status, saying so", f.PID, f.OldExit, f.SaidLeaseLost)
	}
	return d.startStandby(p.host)
}

// cutActive is a master-cut: the links between the active master p's host
// and every worker's host cut for o.cut, then healed. The store's host and
// the standby's stay reachable.
func (d *drill) cutActive(ctx context.Context, f *drillFault, p *jobProc, ws []ui.Worker) error {
	n := d.net
	kind := []string{cutBlackhole, cutProhibit}[d.rng.IntN(2)]
	f.Cut, f.Host, f.PID = kind, p.host.name, p.cmd.Process.Pid
	f.Hosts = []string{p.host.name}
	for _, h := range d.workerHosts {
		f.Hosts = append(f.Hosts, h.name)
	}
	for _, w := range ws {
		f.Affected = append(f.Affected, w.ID)
	}
	f.At = time.Now()
	var cut []*netHost
	heal := func() error {
		var errs []error
		for _, h := range cut {
			errs = append(errs, n.healPair(p.host, h, kind))
		}
		return errors.Join(errs...)
	}
	for _, h := range d.workerHosts {
		if err := n.cutPair(p.host, h, kind); err != nil {
			return errors.Join(err, heal())
		}
		cut = append(cut, h)
	}
	d.logf("cut (%s): the active master's host %s - every worker's host, for %v", kind, p.host.name, d.o.cut)
	return d.holdCut(ctx, f, heal)
}

// cutStore is a store-cut: the link between the active master p's host
// and the store's cut for o.cut, then healed. Cut off longer than its
// lease, p must stop itself (non-zero, saying it lost the lease) and the
// standby take over; p is then started again as the standby. A shorter cut
// leaves it the holder.
func (d *drill) cutStore(ctx context.Context, f *drillFault, p *jobProc) error {
	if _, err := d.standbyWaiting(ctx); err != nil {
		return err
	}
	kind := []string{cutBlackhole, cutProhibit}[d.rng.IntN(2)]
	f.Cut, f.Host, f.PID, f.Hosts = kind, p.host.name, p.cmd.Process.Pid, []string{p.host.name, d.store.name}
	d.pollOnce(p)
	f.At = time.Now()
	if err := d.net.cutPair(p.host, d.store, kind); err != nil {
		return err
	}
	d.logf("cut (%s): the active master's host %s - the store, for %v", kind, p.host.name, d.o.cut)
	select {
	case <-ctx.Done():
	case <-p.exited:
		d.mu.Lock()
		p.killed = true // it stopped itself, as it must
		d.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(f.At.Add(d.o.cut))):
		}
	case <-time.After(d.o.cut):
	}
	if err := d.net.healPair(p.host, d.store, kind); err != nil {
		return fmt.Errorf("healing the cut: %w", err)
	}
	until := time.Now()
	f.Until = &until
	d.logf("healed: %s - %s", p.host.name, d.store.name)
	// It stops once its lease lapses, by its own clock; a cut shorter than
	// the lease may leave it the holder.
	select {
	case <-p.exited:
	case <-time.After(d.o.ttl() + 5*time.Second):
		if d.o.cut > d.o.ttl() {
			return fmt.Errorf("the master (pid %d) cut off from the store for %v, longer than its lease (%v), still runs %v after the heal", f.PID, d.o.cut, d.o.ttl(), d.o.ttl()+5*time.Second)
		}
		f.Note = "the master kept its lease"
		return nil
	}
	d.mu.Lock()
	p.killed = true
	f.SaidLeaseLost = !p.leaseLostAt.IsZero()
	d.mu.Unlock()
	f.OldExit = "exit status 0"
	if p.err != nil {
		f.OldExit = p.err.Error()
	}
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.ExitCode() == 0 || !f.SaidLeaseLost {
		return fmt.Errorf("the master (pid %d) cut off from the store ended with %s and said it lost the lease: %v; want a non-zero exit status, saying so", f.PID, f.OldExit, f.SaidLeaseLost)
	}
	if err := d.takeOver(f); err != nil {
		return err
	}
	return d.startStandby(p.host)
}

// leaseLost handles an active master p that exited on its own: if it said
// it lost its lease and a standby waits, the standby takes over (a
// lease-lost fault) and p is started again as the standby; it returns
// false otherwise (the drill fails).
func (d *drill) leaseLost(p *jobProc) bool {
	d.mu.Lock()
	lostAt, sb := p.leaseLostAt, d.standby
	d.mu.Unlock()
	if d.hostsRun == nil || !d.o.standby || lostAt.IsZero() || sb == nil {
		return false
	}
	f := drillFault{Kind: faultLeaseLost, At: lostAt, Epoch: p.epoch, PID: p.cmd.Process.Pid, Host: p.host.name,
		OldExit: fmt.Sprint(p.err), SaidLeaseLost: true}
	d.mu.Lock()
	p.killed = true
	d.mu.Unlock()
	d.logf("the active master on host %s (pid %d) stopped itself: it lost its lease (%v)", p.host.name, f.PID, p.err)
	err := d.takeOver(&f)
	if err == nil {
		err = d.startStandby(p.host)
	}
	f.Offset = d.since(f.At)
	d.recordFault(f)
	if err != nil {
		d.fail("after the active master lost its lease at %+.1fs: %v", f.Offset, err)
		return false
	}
	return true
}

// stopStandby stops the standby (SIGTERM ends its wait), before the active
// master's graceful stop releases the lease, so it does not take over; it
// is killed if it has not exited within wait.
func (d *drill) stopStandby(wait time.Duration) {
	if d.hostsRun == nil {
		return
	}
	d.mu.Lock()
	sb := d.standby
	d.standby = nil
	if sb != nil {
		sb.killed = true
	}
	d.mu.Unlock()
	if sb == nil {
		return
	}
	_ = sb.cmd.Process.Signal(syscall.SIGCONT)
	_ = sb.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sb.exited:
	case <-time.After(wait):
		d.note("the standby master on host %s (pid %d) did not stop within %v of SIGTERM; the drill killed it", sb.host.name, sb.cmd.Process.Pid, wait)
		_ = sb.cmd.Process.Kill()
		<-sb.exited
	}
	sb.stdin.Close()
	select {
	case <-sb.ready:
		d.fail("the standby master on host %s (pid %d) took over while the drill stopped it", sb.host.name, sb.cmd.Process.Pid)
	default:
	}
	d.logf("standby master on host %s stopped: %v", sb.host.name, sb.err)
}
