package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The drill's verdict, figures and plot.

// drillReport is what `dstream drill` prints (--json: as JSON).
type drillReport struct {
	Verdict         string           `json:"verdict"` // PASS or FAIL
	Reason          string           `json:"reason,omitempty"`
	Seed            uint64           `json:"seed"`
	BatchMs         int64            `json:"batchMs"`
	Workers         int              `json:"workers"`
	DurationSeconds float64          `json:"durationSeconds"`
	WorkFolder      string           `json:"workFolder"`
	Output          string           `json:"output"` // where the job wrote its outputs (--out): a folder or s3://...
	JobLog          string           `json:"jobLog"`
	Plot            string           `json:"plot,omitempty"`
	Zero            int64            `json:"zero"` // Unix ms, before the first interval
	FirstInterval   int64            `json:"firstInterval"`
	LastInterval    int64            `json:"lastInterval"`
	IntervalCount   int              `json:"intervals"`
	MasterRuns      int              `json:"masterRuns"`
	Faults          []drillFault     `json:"faults"`
	WorkerKills     []recoveryFigure `json:"workerKills"`
	Stalls          []recoveryFigure `json:"stalls"`
	MasterRestarts  []restartFigure  `json:"masterRestarts"`
	// Across hosts (--hosts): where the checkpoints were, the link cuts'
	// figures, and the workers the supervisor started again.
	Hosts bool             `json:"hosts,omitempty"`
	Store string           `json:"store,omitempty"`
	Cuts  []recoveryFigure `json:"linkCuts,omitempty"`
	// With a standby master (drillstandby.go): every failover (an active
	// master killed, paused, or stopped having lost its lease) and the
	// cuts between the active master and the workers.
	Standby          bool              `json:"standby,omitempty"`
	Failovers        []restartFigure   `json:"failovers,omitempty"`
	MasterCuts       []recoveryFigure  `json:"masterCuts,omitempty"`
	WorkerRestarts   []drillRespawn    `json:"workerRestarts,omitempty"`
	Processing       processingSummary `json:"processing"`
	Intervals        []drillInterval   `json:"intervalTimes"`
	Outputs          []outputResult    `json:"outputs"`
	ReferenceSeconds float64           `json:"referenceSeconds"` // the fault-free run's wall time
	Notes            []string          `json:"notes,omitempty"`
	events           []drillFault      // faults, for the plot
	byTime           map[int64]*drillInterval
}

// recoveryFigure is how the job fared after a worker kill or stall.
type recoveryFigure struct {
	Offset         float64 `json:"offsetSeconds"`
	Worker         string  `json:"worker"`
	MedianBeforeMs int64   `json:"medianProcessingBeforeMs"` // the last (up to 10) intervals before
	AfterMs        []int64 `json:"processingAfterMs"`        // the first 4 intervals that ended after the fault
	MaxAfterMs     int64   `json:"maxProcessingAfterMs"`     // the slowest until recovered
	// RecoveredAfter: from the fault to the end of the first interval that
	// started after it (after the SIGCONT, for a stall) with a normal
	// total delay (the median before + max(100ms, batch/4)); null if none.
	RecoveredAfter *float64 `json:"recoveredAfterSeconds"`
	StallSeconds   float64  `json:"stallSeconds,omitempty"`
	DeclaredLost   *bool    `json:"declaredLost,omitempty"`
	// FirstDoneAfter: from the fault to the end of the first interval
	// completed after it.
	FirstDoneAfter *float64 `json:"firstIntervalAfterSeconds"`
	// Across hosts: DetectedAfter is from the fault until the drill saw the
	// master declare a worker lost (the killed one; for a cut, one on a cut
	// host), read from its UI every 200 ms; null if it did not. Cut and
	// Hosts say which link was cut, for how long (CutSeconds).
	DetectedAfter *float64 `json:"detectedAfterSeconds,omitempty"`
	Host          string   `json:"host,omitempty"`
	Cut           string   `json:"cut,omitempty"`
	Hosts         []string `json:"hosts,omitempty"`
	CutSeconds    float64  `json:"cutSeconds,omitempty"`
}

// restartFigure is how the job fared after a master restart.
type restartFigure struct {
	Offset float64 `json:"offsetSeconds"`
	OldPID int     `json:"oldPid"`
	NewPID int     `json:"newPid"`
	// UpAfter: from the kill to the new master's readiness (its workers
	// joined, its state restored, its UI up).
	UpAfter float64 `json:"upAfterSeconds"`
	// FirstDoneAfter: from the kill to the new master's first completed
	// interval; FirstDoneAfterStart: from the new process's start.
	FirstDoneAfter      *float64 `json:"firstIntervalAfterSeconds"`
	FirstDoneAfterStart *float64 `json:"firstIntervalAfterStartSeconds"`
	FirstInterval       int64    `json:"firstInterval"`      // the interval it completed first
	LastBefore          int64    `json:"lastIntervalBefore"` // the old master's last completed (as seen)
	CaughtUp            int      `json:"intervalsCaughtUp"`  // intervals due before it was up
	// CaughtUpAfter: from the kill to the end of the new master's first
	// interval with a normal total delay; null if none.
	CaughtUpAfter *float64 `json:"caughtUpAfterSeconds"`
	Reruns        int      `json:"reruns"` // intervals both runs completed
	// WorkersBackAfter (across hosts): from the kill until the new master
	// had every worker alive; null if never.
	WorkersBackAfter *float64 `json:"workersBackAfterSeconds,omitempty"`
	// A failover to the standby: what happened to the active master (Kind:
	// master-restart is a SIGKILL, master-pause a SIGSTOP, lease-lost its
	// own stop), on which host, and which host took over. DetectedAfter:
	// from the fault to the new master's "holding the lease" (its log's
	// time); TakeoverToFirst: from then to the end of its first completed
	// interval. FirstDoneAfter is from the fault.
	Kind            string   `json:"kind,omitempty"`
	Host            string   `json:"host,omitempty"`
	NewHost         string   `json:"newHost,omitempty"`
	DetectedAfter   *float64 `json:"detectedAfterSeconds,omitempty"`
	TakeoverToFirst *float64 `json:"takeoverToFirstIntervalSeconds,omitempty"`
	OldExit         string   `json:"oldExit,omitempty"`
}

// processingSummary sums up the processing times known.
type processingSummary struct {
	Known    int   `json:"known"`
	MedianMs int64 `json:"medianMs"`
	P95Ms    int64 `json:"p95Ms"`
	MaxMs    int64 `json:"maxMs"`
}

// report compares the outputs and computes the figures.
func (d *drill) report(progress io.Writer) *drillReport {
	o := d.o
	d.mu.Lock()
	rep := &drillReport{Verdict: "PASS", Seed: o.seed, BatchMs: o.batch.Milliseconds(), Workers: o.workers,
		DurationSeconds: o.duration.Seconds(), WorkFolder: d.dir, JobLog: d.logFile.Name(), MasterRuns: len(d.procs),
		Faults: slices.Clone(d.faults), Notes: slices.Clone(d.notes), byTime: map[int64]*drillInterval{}}
	failure := d.failure
	for t, iv := range d.intervals {
		c := *iv
		rep.byTime[t] = &c
	}
	lostAt := map[string]time.Time{}
	for k, v := range d.lostAt {
		lostAt[k] = v
	}
	d.mu.Unlock()
	rep.events = rep.Faults
	if rep.Faults == nil {
		rep.Faults = []drillFault{}
	}
	fail := func(format string, args ...any) {
		rep.Verdict = "FAIL"
		if rep.Reason == "" {
			rep.Reason = fmt.Sprintf(format, args...)
		}
	}
	if failure != "" {
		fail("%s", failure)
	}
	for k, at := range lostAt {
		rep.Notes = append(rep.Notes, fmt.Sprintf("master run %s declared lost at %+.1fs", strings.Replace(k, "/", ": worker ", 1), d.since(at)))
	}
	slices.Sort(rep.Notes)

	rep.Output = d.out
	refDir := filepath.Join(d.dir, "reference")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	zero, batch, err := readJobZero(ctx, d.ckLoc)
	if err != nil {
		fail("cannot read the job's zero from its checkpoint location %s: %v", d.ckLoc, err)
		return rep
	}
	// The job's outputs, read back where it wrote them: a folder, or the
	// store (through checkpoint.Open, as any reader of the job's would).
	var out jobOutput = folderOutput(d.out)
	if isStoreURL(d.out) {
		so, err := openStoreOutput(ctx, d.out)
		if err != nil {
			fail("cannot open the job's output location %s: %v", d.out, err)
			return rep
		}
		defer so.Close()
		out = so
	}
	if batch != o.batch {
		fail("the job ran with batch %v, not %v", batch, o.batch)
		return rep
	}
	rep.Zero = zero.UnixMilli()
	rep.FirstInterval = zero.Add(batch).UnixMilli()
	last, err := lastInterval(ctx, out)
	if err != nil || last == 0 {
		fail("the job wrote no output (%v)", err)
		return rep
	}
	rep.LastInterval = last
	rep.IntervalCount = int((last-rep.FirstInterval)/batch.Milliseconds()) + 1
	fmt.Fprintf(progress, "dstream drill: the job stopped after interval %d (%d intervals); the fault-free run ...\n", last, rep.IntervalCount)
	refLog, err := os.Create(filepath.Join(d.dir, "reference.log"))
	if err != nil {
		fail("%v", err)
		return rep
	}
	defer refLog.Close()
	start := time.Now()
	jc := drillJobConfig{Batch: o.batch, Seed: o.seed, Words: o.words, Window: 4 * o.batch}
	parallelism := o.workers
	if d.parallelism > 0 {
		parallelism = d.parallelism
	}
	if err := runReference(jc, parallelism, zero, time.UnixMilli(last), refDir, refLog); err != nil {
		fail("the fault-free run failed: %v", err)
		return rep
	}
	rep.ReferenceSeconds = time.Since(start).Seconds()
	rep.Outputs, err = compareOutputs(ctx, out, folderOutput(refDir), rep.FirstInterval, last, batch, rep.Zero)
	if err != nil {
		fail("comparing the outputs: %v", err)
		return rep
	}
	for _, r := range rep.Outputs {
		if !r.ok() {
			fail("output %s: %d missing, %d incomplete, %d extra, %d different intervals; first: %s",
				r.Name, len(r.Missing), len(r.Incomplete), len(r.Extra), len(r.Different), r.FirstDifference)
		}
		for _, l := range r.Leftovers {
			rep.Notes = append(rep.Notes, "output left behind: "+l)
		}
	}
	d.figures(rep)
	return rep
}

// figures computes the processing times and recoveries.
func (d *drill) figures(rep *drillReport) {
	batch := d.o.batch
	var all []*drillInterval
	for t := rep.FirstInterval; t <= rep.LastInterval; t += batch.Milliseconds() {
		if iv, ok := rep.byTime[t]; ok {
			all = append(all, iv)
			rep.Intervals = append(rep.Intervals, *iv)
			if len(iv.epochs) > 1 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("interval %d was completed by master runs %v", t, iv.epochs))
			}
			if iv.Failed {
				rep.Notes = append(rep.Notes, fmt.Sprintf("interval %d failed in master run %d", t, iv.Epoch))
			}
		}
	}
	if rep.Intervals == nil {
		rep.Intervals = []drillInterval{}
	}
	if n := rep.IntervalCount - len(all); n > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("processing time unknown for %d of %d intervals (completed after the drill's last look at a master's UI before it was killed or stopped)", n, rep.IntervalCount))
	}
	var procs []int64
	for _, iv := range all {
		procs = append(procs, iv.ProcessingMs)
	}
	rep.Processing = processingSummary{Known: len(procs), MedianMs: percentile(procs, 50), P95Ms: percentile(procs, 95), MaxMs: percentile(procs, 100)}

	rep.WorkerKills, rep.Stalls, rep.MasterRestarts = []recoveryFigure{}, []recoveryFigure{}, []restartFigure{}
	if d.hostsRun != nil {
		rep.Hosts, rep.Store, rep.Cuts = true, d.o.store, []recoveryFigure{}
		if d.o.standby {
			rep.Standby, rep.Failovers, rep.MasterCuts = true, []restartFigure{}, []recoveryFigure{}
		}
		d.mu.Lock()
		rep.WorkerRestarts = slices.Clone(d.respawns)
		d.mu.Unlock()
		if rep.WorkerRestarts == nil {
			rep.WorkerRestarts = []drillRespawn{}
		}
	}
	for i, f := range rep.Faults {
		quiet := d.t0
		if i > 0 {
			quiet = rep.Faults[i-1].At.Add(3 * time.Second)
			if u := rep.Faults[i-1].Until; u != nil {
				quiet = u.Add(3 * time.Second)
			}
		}
		medProc, medTotal := baseline(all, f.At, quiet)
		thr := medTotal + max(100, batch.Milliseconds()/4)
		switch f.Kind {
		case faultKill, faultStall, faultCut, faultMasterCut:
			from := f.At
			r := recoveryFigure{Offset: f.Offset, Worker: f.Worker, MedianBeforeMs: medProc, AfterMs: []int64{}, Host: f.Host}
			for _, iv := range all {
				if iv.end.After(f.At) {
					s := iv.end.Sub(f.At).Seconds()
					r.FirstDoneAfter = &s
					break
				}
			}
			var lost *time.Time
			// A loss is this fault's only within the time the master takes to
			// declare one (the heartbeat timeout, with slack) after the fault
			// ended: a later loss is another fault's.
			within := f.At.Add(drillDetectWithin)
			if f.Until != nil {
				within = f.Until.Add(drillDetectWithin)
			}
			if f.Kind == faultCut || f.Kind == faultMasterCut {
				r.Cut, r.Hosts = f.Cut, f.Hosts
				lost = d.detected(f.At, within, f.Epoch, "", f.Hosts)
			} else {
				lost = d.detected(f.At, within, f.Epoch, f.Worker, nil)
			}
			if lost != nil {
				s := lost.Sub(f.At).Seconds()
				r.DetectedAfter = &s
			}
			if f.Until != nil && f.Kind == faultStall {
				from = *f.Until
				r.StallSeconds = f.Until.Sub(f.At).Seconds()
				lost := f.DeclaredLost
				r.DeclaredLost = &lost
			}
			if f.Until != nil && (f.Kind == faultCut || f.Kind == faultMasterCut) {
				from = *f.Until
				r.CutSeconds = f.Until.Sub(f.At).Seconds()
			}
			var recovered *drillInterval
			for _, iv := range all {
				if iv.end.Before(f.At) {
					continue
				}
				if len(r.AfterMs) < 4 {
					r.AfterMs = append(r.AfterMs, iv.ProcessingMs)
				}
				if recovered == nil {
					r.MaxAfterMs = max(r.MaxAfterMs, iv.ProcessingMs)
					if !iv.start.Before(from) && iv.TotalMs <= thr {
						recovered = iv
						s := iv.end.Sub(f.At).Seconds()
						r.RecoveredAfter = &s
					}
				}
			}
			switch f.Kind {
			case faultKill:
				rep.WorkerKills = append(rep.WorkerKills, r)
			case faultStall:
				rep.Stalls = append(rep.Stalls, r)
			case faultMasterCut:
				rep.MasterCuts = append(rep.MasterCuts, r)
			default:
				rep.Cuts = append(rep.Cuts, r)
			}
		case faultRestart, faultPause, faultLeaseLost, faultStoreCut:
			if f.Kind == faultStoreCut && f.NewHost == "" {
				continue // the master kept its lease: no failover
			}
			r := restartFigure{Offset: f.Offset, OldPID: f.PID, NewPID: f.NewPID}
			failover := rep.Standby
			if failover {
				r.Kind, r.Host, r.NewHost, r.OldExit = f.Kind, f.Host, f.NewHost, f.OldExit
				r.DetectedAfter = sinceFault(f.Takeover, f.At)
			}
			add := func() {
				if failover {
					rep.Failovers = append(rep.Failovers, r)
				} else {
					rep.MasterRestarts = append(rep.MasterRestarts, r)
				}
			}
			if f.Ready == nil {
				add()
				continue
			}
			r.UpAfter = f.Ready.Sub(f.At).Seconds()
			e := f.Epoch + 1
			if d.hostsRun != nil {
				d.mu.Lock()
				if t, ok := d.full[e]; ok {
					s := t.Sub(f.At).Seconds()
					r.WorkersBackAfter = &s
				}
				d.mu.Unlock()
			}
			var firstDone *drillInterval
			for _, iv := range all {
				if slices.Contains(iv.epochs, f.Epoch) {
					r.LastBefore = max(r.LastBefore, iv.Time)
				}
				if !slices.Contains(iv.epochs, e) {
					continue
				}
				if len(iv.epochs) > 1 {
					r.Reruns++
				}
				if firstDone == nil || iv.end.Before(firstDone.end) {
					firstDone = iv
				}
				if iv.Time <= f.Ready.UnixMilli() {
					r.CaughtUp++
				}
				if r.CaughtUpAfter == nil && iv.TotalMs <= thr {
					s := iv.end.Sub(f.At).Seconds()
					r.CaughtUpAfter = &s
				}
			}
			if firstDone != nil {
				r.FirstInterval = firstDone.Time
				a := firstDone.end.Sub(f.At).Seconds()
				r.FirstDoneAfter = &a
				if f.Restarted != nil {
					b := firstDone.end.Sub(*f.Restarted).Seconds()
					r.FirstDoneAfterStart = &b
				}
				if f.Takeover != nil {
					c := firstDone.end.Sub(*f.Takeover).Seconds()
					r.TakeoverToFirst = &c
				}
			}
			add()
		}
	}
}

// failoverSummary is the median and max of the failovers' figures, or ""
// for none.
func failoverSummary(fs []restartFigure) string {
	if len(fs) == 0 {
		return ""
	}
	stat := func(get func(restartFigure) *float64) string {
		var ms []int64
		for _, f := range fs {
			if p := get(f); p != nil {
				ms = append(ms, int64(*p*1000))
			}
		}
		if len(ms) == 0 {
			return "none"
		}
		return fmt.Sprintf("median %.2fs, max %.2fs (%d)", float64(percentile(ms, 50))/1000, float64(percentile(ms, 100))/1000, len(ms))
	}
	return fmt.Sprintf("%d; detection %s; takeover to first interval %s; fault to first interval %s", len(fs),
		stat(func(f restartFigure) *float64 { return f.DetectedAfter }),
		stat(func(f restartFigure) *float64 { return f.TakeoverToFirst }),
		stat(func(f restartFigure) *float64 { return f.FirstDoneAfter }))
}

// baseline is the median processing time and total delay of the last (up
// to 10) intervals that ended before at, preferring those that ended after
// quiet (clear of the fault before).
func baseline(all []*drillInterval, at, quiet time.Time) (proc, total int64) {
	var before, calm []*drillInterval
	for _, iv := range all {
		if iv.end.Before(at) {
			before = append(before, iv)
			if iv.end.After(quiet) {
				calm = append(calm, iv)
			}
		}
	}
	if len(calm) >= 3 {
		before = calm
	}
	before = before[max(0, len(before)-10):]
	var ps, ts []int64
	for _, iv := range before {
		ps, ts = append(ps, iv.ProcessingMs), append(ts, iv.TotalMs)
	}
	return percentile(ps, 50), percentile(ts, 50)
}

// percentile is the p-th percentile (nearest rank) of xs; 0 for none.
func percentile(xs []int64, p float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func secs(p *float64) string {
	if p == nil {
		return "never"
	}
	return fmt.Sprintf("%.2fs", *p)
}

func joinMs(xs []int64) string {
	if len(xs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, x)
	}
	return b.String() + " ms"
}

// printDrillReport prints rep for people.
func printDrillReport(w io.Writer, rep *drillReport) {
	lines := 0
	for _, r := range rep.Outputs {
		lines += r.Lines
	}
	if rep.Verdict == "PASS" {
		fmt.Fprintf(w, "\nverdict: PASS: %d outputs x %d intervals (%d .. %d, %d lines) identical to a fault-free run; %d master runs\n",
			len(rep.Outputs), rep.IntervalCount, rep.FirstInterval, rep.LastInterval, lines, rep.MasterRuns)
	} else {
		fmt.Fprintf(w, "\nverdict: FAIL: %s\n", rep.Reason)
	}
	fmt.Fprintf(w, "faults (seconds after the job's zero, the start of its first interval; seed %d):\n", rep.Seed)
	if len(rep.Faults) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, f := range rep.Faults {
		switch f.Kind {
		case faultKill:
			on := ""
			if f.Host != "" {
				on = " on host " + f.Host
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s SIGKILL worker %s (pid %d)%s, master run %d\n", f.Offset, f.Kind, f.Worker, f.PID, on, f.Epoch)
		case faultStall:
			lost := "not declared lost"
			if f.DeclaredLost {
				lost = "declared lost by the master"
			}
			stall := 0.0
			if f.Until != nil {
				stall = f.Until.Sub(f.At).Seconds()
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s SIGSTOP worker %s (pid %d) for %.2fs, then SIGCONT; %s\n", f.Offset, f.Kind, f.Worker, f.PID, stall, lost)
		case faultRestart:
			up := "never up again"
			if f.Ready != nil {
				up = fmt.Sprintf("new master pid %d up %.2fs after the kill", f.NewPID, f.Ready.Sub(f.At).Seconds())
			}
			if rep.Standby {
				fmt.Fprintf(w, "  %+7.2fs  %-15s SIGKILL the active master (host %s, pid %d, run %d): the standby on host %s took over (%s), and the killed one was started again as the standby\n",
					f.Offset, f.Kind, f.Host, f.PID, f.Epoch, f.NewHost, up)
				continue
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s SIGKILL master (pid %d, run %d), started again: %s\n", f.Offset, f.Kind, f.PID, f.Epoch, up)
		case faultPause:
			paused := 0.0
			if f.Until != nil {
				paused = f.Until.Sub(f.At).Seconds()
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s SIGSTOP the active master (host %s, pid %d, run %d) for %.2fs, until the standby on host %s took over, then SIGCONT: it stopped (%s), saying it lost its lease: %v; started again as the standby\n",
				f.Offset, f.Kind, f.Host, f.PID, f.Epoch, paused, f.NewHost, f.OldExit, f.SaidLeaseLost)
		case faultStoreCut:
			cut := 0.0
			if f.Until != nil {
				cut = f.Until.Sub(f.At).Seconds()
			}
			after := fmt.Sprintf("it stopped (%s), saying it lost its lease: %v; the standby on host %s took over; started again as the standby", f.OldExit, f.SaidLeaseLost, f.NewHost)
			if f.NewHost == "" {
				after = f.Note
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s %s routes between the active master's host %s (pid %d, run %d) and the store for %.2fs, then healed: %s\n",
				f.Offset, f.Kind, f.Cut, f.Host, f.PID, f.Epoch, cut, after)
		case faultLeaseLost:
			fmt.Fprintf(w, "  %+7.2fs  %-15s the active master (host %s, pid %d, run %d) stopped itself, its lease lost (%s); the standby on host %s took over; started again as the standby\n",
				f.Offset, f.Kind, f.Host, f.PID, f.Epoch, f.OldExit, f.NewHost)
		case faultMasterCut:
			cut := 0.0
			if f.Until != nil {
				cut = f.Until.Sub(f.At).Seconds()
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s %s routes between the active master's host %s (run %d) and every worker's host (%s) for %.2fs, then healed; the store and the standby stay reachable\n",
				f.Offset, f.Kind, f.Cut, f.Host, f.Epoch, strings.Join(f.Hosts[1:], ", "), cut)
		case faultCut:
			cut := 0.0
			if f.Until != nil {
				cut = f.Until.Sub(f.At).Seconds()
			}
			what := "host " + strings.Join(f.Hosts, "") + " off the network (its link down)"
			if f.Cut != cutLinkDown {
				what = fmt.Sprintf("%s routes between hosts %s", f.Cut, strings.Join(f.Hosts, " and "))
			}
			fmt.Fprintf(w, "  %+7.2fs  %-15s %s for %.2fs, then healed; workers there: %s\n", f.Offset, f.Kind, what, cut, strings.Join(f.Affected, ", "))
		}
	}
	fmt.Fprintln(w, "figures:")
	p := rep.Processing
	fmt.Fprintf(w, "  processing time: median %d ms, p95 %d ms, max %d ms (known for %d of %d intervals); the fault-free run took %.1fs\n",
		p.MedianMs, p.P95Ms, p.MaxMs, p.Known, rep.IntervalCount, rep.ReferenceSeconds)
	detected := func(r recoveryFigure) string {
		if !rep.Hosts {
			return ""
		}
		return fmt.Sprintf("declared lost after %s; first interval done after %s; ", secs(r.DetectedAfter), secs(r.FirstDoneAfter))
	}
	for _, r := range rep.WorkerKills {
		fmt.Fprintf(w, "  worker kill at %+.2fs (%s): %smedian before %d ms; after: %s (slowest until recovered %d ms); recovered after %s\n",
			r.Offset, r.Worker, detected(r), r.MedianBeforeMs, joinMs(r.AfterMs), r.MaxAfterMs, secs(r.RecoveredAfter))
	}
	for _, r := range rep.Cuts {
		fmt.Fprintf(w, "  link cut at %+.2fs (%s %s, %.2fs): %smedian before %d ms; after: %s (slowest until recovered %d ms); recovered after %s (from the cut)\n",
			r.Offset, r.Cut, strings.Join(r.Hosts, "-"), r.CutSeconds, detected(r), r.MedianBeforeMs, joinMs(r.AfterMs), r.MaxAfterMs, secs(r.RecoveredAfter))
	}
	for _, r := range rep.MasterCuts {
		fmt.Fprintf(w, "  master cut at %+.2fs (%s %s, %.2fs): %smedian before %d ms; after: %s (slowest until recovered %d ms); recovered after %s (from the cut)\n",
			r.Offset, r.Cut, strings.Join(r.Hosts, "-"), r.CutSeconds, detected(r), r.MedianBeforeMs, joinMs(r.AfterMs), r.MaxAfterMs, secs(r.RecoveredAfter))
	}
	for _, r := range rep.Failovers {
		what := map[string]string{faultRestart: "kill", faultPause: "pause", faultLeaseLost: "lease lost", faultStoreCut: "store cut"}[r.Kind]
		fmt.Fprintf(w, "  failover (%s) at %+.2fs, host %s -> %s: detection (to the lease taken) %s; takeover to first completed interval %s; %s to first completed interval %s (interval %d; the old master's last seen: %d); %d intervals caught up; back to normal delay after %s; %d re-runs; every worker back after %s\n",
			what, r.Offset, r.Host, r.NewHost, secs(r.DetectedAfter), secs(r.TakeoverToFirst), what, secs(r.FirstDoneAfter), r.FirstInterval, r.LastBefore, r.CaughtUp, secs(r.CaughtUpAfter), r.Reruns, secs(r.WorkersBackAfter))
	}
	if s := failoverSummary(rep.Failovers); s != "" {
		fmt.Fprintf(w, "  failovers: %s\n", s)
	}
	for _, r := range rep.Stalls {
		fmt.Fprintf(w, "  stall at %+.2fs (%s, %.2fs): median before %d ms; after: %s (slowest until recovered %d ms); recovered after %s\n",
			r.Offset, r.Worker, r.StallSeconds, r.MedianBeforeMs, joinMs(r.AfterMs), r.MaxAfterMs, secs(r.RecoveredAfter))
	}
	for _, r := range rep.MasterRestarts {
		if r.FirstDoneAfter == nil {
			fmt.Fprintf(w, "  master restart at %+.2fs: new master up after %.2fs; it completed no interval (the old master's last seen: %d)\n", r.Offset, r.UpAfter, r.LastBefore)
			continue
		}
		fmt.Fprintf(w, "  master restart at %+.2fs: new master up after %.2fs; its first interval (%d; the old master's last seen: %d) done %s after the kill (%s after the new process started); %d intervals caught up; back to normal delay after %s; %d re-runs\n",
			r.Offset, r.UpAfter, r.FirstInterval, r.LastBefore, secs(r.FirstDoneAfter), secs(r.FirstDoneAfterStart), r.CaughtUp, secs(r.CaughtUpAfter), r.Reruns)
		if rep.Hosts {
			fmt.Fprintf(w, "    every worker alive again under the new master %s after the kill\n", secs(r.WorkersBackAfter))
		}
	}
	if rep.Hosts {
		fmt.Fprintf(w, "  workers started again by the supervisor: %d\n", len(rep.WorkerRestarts))
		for _, r := range rep.WorkerRestarts {
			fmt.Fprintf(w, "    host %s: pid %d %s; pid %d started %.2fs later\n", r.Host, r.OldPID, r.Why, r.NewPID, r.Started.Sub(r.ExitedAt).Seconds())
		}
	}
	if rep.IntervalCount > 0 {
		fmt.Fprintf(w, "  processing time per interval (ms; ? unknown), from interval %d every %d ms; K kill, S stall, M master restart (with a standby: a failover), P master pause, X master cut, D store cut, L lease lost, C link cut before the interval it hit (the one in flight, or the next):\n", rep.FirstInterval, rep.BatchMs)
		marks := faultMarks(rep)
		var b strings.Builder
		n := 0
		for t := rep.FirstInterval; t <= rep.LastInterval; t += rep.BatchMs {
			if n%15 == 0 {
				if n > 0 {
					fmt.Fprintln(w, b.String())
				}
				b.Reset()
				fmt.Fprintf(&b, "    %+6.1fs:", float64(t-rep.Zero)/1000)
			}
			b.WriteByte(' ')
			b.WriteString(marks[t])
			if iv, ok := rep.byTime[t]; ok {
				fmt.Fprint(&b, iv.ProcessingMs)
			} else {
				b.WriteByte('?')
			}
			n++
		}
		fmt.Fprintln(w, b.String())
	}
	if len(rep.Outputs) > 0 {
		fmt.Fprintf(w, "outputs in %s (every interval with its _SUCCESS; its lines, sorted, against the fault-free run's):\n", rep.Output)
	}
	for _, r := range rep.Outputs {
		status := "identical"
		if !r.ok() {
			status = fmt.Sprintf("%d missing, %d incomplete, %d extra, %d different; first: %s", len(r.Missing), len(r.Incomplete), len(r.Extra), len(r.Different), r.FirstDifference)
		}
		fmt.Fprintf(w, "  %-7s %d of %d intervals identical (%d lines): %s\n", r.Name, r.Identical, r.Intervals, r.Lines, status)
	}
	if rep.Plot != "" {
		fmt.Fprintf(w, "plot: %s\n", rep.Plot)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "notes:")
		for _, n := range rep.Notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
}

// faultMarks places each fault's letter on the interval it hit: the first
// whose processing ended after it (intervals run one at a time, in order),
// or, when that is unknown, the first that began after it.
func faultMarks(rep *drillReport) map[int64]string {
	marks := map[int64]string{}
	for _, f := range rep.Faults {
		at := f.At.UnixMilli()
		hit := (at/rep.BatchMs + 1) * rep.BatchMs // the interval being cut
		for t := rep.FirstInterval; t <= rep.LastInterval; t += rep.BatchMs {
			iv, ok := rep.byTime[t]
			if ok && iv.end.UnixMilli() > at {
				hit = t
				break
			}
			if !ok && t >= at {
				hit = t
				break
			}
		}
		marks[hit] += map[string]string{faultKill: "K", faultStall: "S", faultRestart: "M", faultCut: "C", faultPause: "P", faultMasterCut: "X", faultStoreCut: "D", faultLeaseLost: "L"}[f.Kind]
	}
	return marks
}

// writeDrillPlot writes an SVG of the processing time (and total delay)
// per interval, with a vertical line at each fault.
func writeDrillPlot(name string, rep *drillReport) error {
	if rep.IntervalCount == 0 {
		return fmt.Errorf("no intervals to plot")
	}
	const (
		width, height          = 1000.0, 440.0
		left, right, top, bott = 70.0, 20.0, 76.0, 50.0
	)
	pw, ph := width-left-right, height-top-bott
	n := rep.IntervalCount
	ymax := int64(1)
	for _, iv := range rep.Intervals {
		ymax = max(ymax, iv.ProcessingMs)
	}
	step := niceStep(float64(ymax) / 5)
	top5 := math.Ceil(float64(ymax)/step) * step
	x := func(t float64) float64 { // t: interval time, Unix ms
		if n == 1 {
			return left + pw/2
		}
		return left + (t-float64(rep.FirstInterval))/float64(rep.BatchMs)/float64(n-1)*pw
	}
	y := func(ms float64) float64 { return top + ph - ms/top5*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="38" fill="#555">dots: each interval's processing time (hover: run, total delay); dashed: faults; shaded: a worker stopped</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="15" font-weight="bold">dstream drill: %s, seed %d, batch %d ms, local-cluster[%d]: processing time per interval</text>`+"\n",
		left, html.EscapeString(rep.Verdict), rep.Seed, rep.BatchMs, rep.Workers)
	// Axes and grid.
	for v := 0.0; v <= top5+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), left+pw, y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%g ms</text>`+"\n", left-6, y(v)+4, v)
	}
	secStep := niceStep(float64(n) * float64(rep.BatchMs) / 1000 / 10)
	for s := 0.0; ; s += secStep {
		t := float64(rep.Zero) + s*1000
		if t < float64(rep.FirstInterval) {
			continue
		}
		if t > float64(rep.LastInterval) {
			break
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(t), top+ph, x(t), top+ph+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%gs</text>`+"\n", x(t), top+ph+18, s)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">interval time, seconds after the job's zero</text>`+"\n", left+pw/2, height-10)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	// Faults.
	colors := map[string]string{faultKill: "#d62728", faultStall: "#ff7f0e", faultRestart: "#9467bd"}
	labels := map[string]string{faultKill: "kill", faultStall: "stall", faultRestart: "master restart"}
	// Long labels (on two alternating rows) while they fit; with faults
	// closer than half a label, letters and a legend.
	short := false
	for i := 1; i < len(rep.events); i++ {
		if x(float64(rep.events[i].At.UnixMilli()))-x(float64(rep.events[i-1].At.UnixMilli())) < 55 {
			short = true
		}
	}
	if short {
		labels = map[string]string{faultKill: "K", faultStall: "S", faultRestart: "M"}
		fmt.Fprintf(&b, `<text x="%.1f" y="38" text-anchor="end"><tspan fill="%s">K kill</tspan>  <tspan fill="%s">S stall</tspan>  <tspan fill="%s">M master restart</tspan></text>`+"\n",
			left+pw, "#d62728", "#ff7f0e", "#9467bd")
	}
	for i, f := range rep.events {
		fx := x(float64(f.At.UnixMilli()))
		if fx < left || fx > left+pw {
			continue
		}
		c := colors[f.Kind]
		if f.Until != nil {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.15"/>`+"\n", fx, top, max(1, x(float64(f.Until.UnixMilli()))-fx), ph, c)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="6,3"/>`+"\n", fx, top, fx, top+ph, c)
		label := labels[f.Kind]
		if f.Worker != "" && !short {
			label += " " + f.Worker
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" text-anchor="middle">%s</text>`+"\n", fx, top-6-float64(i%2)*12, c, html.EscapeString(label))
	}
	// The processing times: a line broken where a time is unknown.
	var pts []string
	flush := func() {
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for t := rep.FirstInterval; t <= rep.LastInterval; t += rep.BatchMs {
		iv, ok := rep.byTime[t]
		if !ok {
			flush()
			continue
		}
		px, py := x(float64(t)), y(float64(iv.ProcessingMs))
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
		fill := "#1f77b4"
		if iv.Failed {
			fill = "#d62728"
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.2" fill="%s"><title>interval %d (run %d): processing %d ms, total delay %d ms</title></circle>`+"\n",
			px, py, fill, t, iv.Epoch, iv.ProcessingMs, iv.TotalMs)
	}
	flush()
	b.WriteString("</svg>\n")
	return os.WriteFile(name, []byte(b.String()), 0o644)
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}
