package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dstream/dstream/program"
	"github.com/dstream/dstream/ui"
)

// `dstream drill`: a fault drill with real processes. It runs the drill job
// (drilljob.go) as a local-cluster master with its worker processes,
// SIGKILLs workers, SIGSTOPs one for a while (a straggler), SIGKILLs the
// master and starts it again with the same command line (it resumes from
// its checkpoint folder), stops the job gracefully, then runs the same
// graph in this process on a manual clock (a fault-free run) and compares
// every interval's output of every output, line for line.

// drillOptions are the drill's flags.
type drillOptions struct {
	duration, batch, stall time.Duration
	workers                int
	seed                   uint64
	kills, restarts        int
	stalls                 int
	long, asJSON, verbose  bool
	plot, keep             string
	words                  int
	// --hosts: every process on a host of its own (drillhosts.go).
	hosts        bool
	store        string        // where the job checkpoints and writes its outputs: s3 or folder
	cuts         int           // link cuts
	cut, respawn time.Duration // how long a cut lasts; a killed worker's wait to start again
	// --hosts --store s3: a standby master on a host of its own
	// (drillstandby.go), master pauses and cuts between the active master
	// and the workers.
	standby                       bool
	pauses, masterCuts, storeCuts int
	leaseTTL                      time.Duration // the job's --lease-ttl (0: its default)
}

// Drill timings (see planFaults).
const (
	drillMinWarmup   = 2 * time.Second // before the first fault
	drillMinCooldown = 3 * time.Second // after the last one
	drillMinSlot     = 2 * time.Second // between faults, at least
	drillPoll        = 200 * time.Millisecond
	drillStartWait   = 90 * time.Second // a master's start (its workers join)
	drillStopWait    = 90 * time.Second // the graceful stop (it may catch up first)
	drillEventWait   = 30 * time.Second // a fault waits this long for the job to be ready for it
	// drillDetectWithin: a worker the master declares lost this long after
	// a fault ended (the 2 s heartbeat timeout, and slack) is that fault's.
	drillDetectWithin = 5 * time.Second
)

var errDrillFailed = errors.New("the drill failed (FAIL above)")

func parseDrillFlags(args []string, stdout io.Writer) (*drillOptions, error) {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	o := &drillOptions{}
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long the job runs under faults (the last faults leave a few seconds to recover); --long: 5m; --hosts: 40s")
	fs.DurationVar(&o.batch, "batch", 500*time.Millisecond, "the job's batch interval")
	fs.IntVar(&o.workers, "workers", 3, "worker processes (local-cluster[N]); a killed worker is not replaced until the master restarts")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the fault schedule and of the job's input (0: one from the clock, printed)")
	count := func(p *int, name, usage string) {
		fs.Func(name, usage, func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			if n < 0 {
				return fmt.Errorf("%d must not be negative", n)
			}
			*p = n
			return nil
		})
	}
	count(&o.kills, "kills", "`number` of workers to SIGKILL (default: one per 15s of --duration, at least 1; at most --workers - 1 per master run)")
	count(&o.restarts, "master-restarts", "`number` of times to SIGKILL the master and start it again (with a standby: the active master, the standby takes over and the killed one comes back as the standby) (default: one per 30s, at least 1)")
	count(&o.stalls, "stalls", "`number` of times to SIGSTOP a worker for --stall, then SIGCONT it (default: one per 30s, at least 1)")
	fs.DurationVar(&o.stall, "stall", 1500*time.Millisecond, "how long a stalled worker stays stopped (the master declares a worker lost after 2s without heartbeat)")
	fs.BoolVar(&o.long, "long", false, "a long drill: --duration 5m unless set (and the fault counts that follow from it)")
	fs.BoolVar(&o.asJSON, "json", false, "print the verdict, faults and figures as one JSON object")
	fs.StringVar(&o.plot, "plot", "", "write an SVG `file` of the processing time per interval, with the faults marked")
	fs.StringVar(&o.keep, "keep", "", "work `folder` (checkpoint, outputs, reference, job log), kept afterwards (default: a temporary folder, deleted on PASS)")
	fs.IntVar(&o.words, "words", 3000, "the job's input: words per interval, about")
	fs.BoolVar(&o.verbose, "v", false, "say what the drill does as it does it (on stderr)")
	fs.BoolVar(&o.hosts, "hosts", false, "every process on a host of its own (a network namespace with a private folder; needs root and ip netns): a standalone master, --workers worker processes (dstream worker) that a supervisor starts again, link cuts")
	fs.StringVar(&o.store, "store", "s3", "with --hosts, the `store` of the job's checkpoints and outputs: s3 (an S3 server on a host of its own: s3://drill/ckpt and s3://drill/out; the hosts share nothing but the network) or folder (checkpoints in the master's private folder, served to its workers; outputs in a folder every host shares, as NFS would be)")
	count(&o.cuts, "cuts", "with --hosts, `number` of link cuts: between two hosts (blackhole or prohibit routes) or a worker's host off the network (its link down) (default: one per 15s of --duration, at least 1)")
	fs.DurationVar(&o.cut, "cut", 3*time.Second, "with --hosts, how long a link stays cut")
	fs.DurationVar(&o.respawn, "respawn", 2*time.Second, "with --hosts, how long after a kill a worker's host starts it again (as a supervisor would)")
	fs.BoolVar(&o.standby, "standby", true, "with --hosts --store s3, a standby master on a host of its own (the same command and checkpoint location): a master kill is a failover, and the killed master is started again as the standby")
	count(&o.pauses, "pauses", "with a standby, `number` of times to SIGSTOP the active master past its lease, then SIGCONT it: it must stop itself, and is started again as the standby (default: one per 30s, at least 1)")
	count(&o.masterCuts, "master-cuts", "with a standby, `number` of cuts between the active master's host and every worker's host (not the store's), for --cut (default: one per 30s, at least 1)")
	count(&o.storeCuts, "store-cuts", "with a standby, `number` of cuts between the active master's host and the store's, for --cut: longer than the lease TTL, the master must stop itself and the standby take over (default 0)")
	fs.DurationVar(&o.leaseTTL, "lease-ttl", 0, "with a standby, the masters' --lease-ttl (default: theirs, "+leaseTTLDefault.String()+")")
	if err := parseFlags(fs, "[flags]", args, stdout); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.long && !set["duration"] {
		o.duration = 5 * time.Minute
	} else if o.hosts && !set["duration"] {
		o.duration = 40 * time.Second // room for a cut too
	}
	o.standby = o.standby && o.hosts && o.store == "s3"
	switch {
	case o.duration <= 0:
		return nil, program.Usagef("--duration %v must be positive", o.duration)
	case o.batch < 50*time.Millisecond || o.batch > 10*time.Second:
		return nil, program.Usagef("--batch %v must be between 50ms and 10s", o.batch)
	case o.workers < 1 || o.workers > 16:
		return nil, program.Usagef("--workers %d must be between 1 and 16", o.workers)
	case o.stall < 0:
		return nil, program.Usagef("--stall %v must not be negative", o.stall)
	case o.words < 1:
		return nil, program.Usagef("--words %d must be positive", o.words)
	case !o.hosts && (set["cuts"] || set["store"] || set["cut"] || set["respawn"]):
		return nil, program.Usagef("--cuts, --cut, --store and --respawn need --hosts")
	case o.store != "folder" && o.store != "s3":
		return nil, program.Usagef("--store %q: want folder or s3", o.store)
	case o.cut <= 0 || o.respawn < 0:
		return nil, program.Usagef("--cut %v must be positive and --respawn %v not negative", o.cut, o.respawn)
	case !o.standby && (set["pauses"] || set["master-cuts"] || set["store-cuts"] || set["lease-ttl"]):
		return nil, program.Usagef("--pauses, --master-cuts, --store-cuts and --lease-ttl need a standby master: --hosts --store s3 --standby")
	case o.leaseTTL < 0:
		return nil, program.Usagef("--lease-ttl %v must be positive: the drill's standby needs the lease", o.leaseTTL)
	}
	per := func(every time.Duration) int { return max(1, int(o.duration/every)) }
	if !set["master-restarts"] {
		o.restarts = per(30 * time.Second)
	}
	if !set["stalls"] {
		o.stalls = per(30 * time.Second)
		if o.stall == 0 {
			o.stalls = 0
		}
	}
	if o.hosts && !set["cuts"] {
		o.cuts = per(30 * time.Second)
	}
	if o.standby && !set["pauses"] {
		o.pauses = per(30 * time.Second)
	}
	if o.standby && !set["master-cuts"] {
		o.masterCuts = per(30 * time.Second)
	}
	maxKills := (o.restarts + 1) * (o.workers - 1)
	if o.hosts {
		// A supervisor starts a killed worker again; the drill still never
		// kills the last one alive.
		maxKills = math.MaxInt
		if o.workers < 2 {
			maxKills = 0
		}
	}
	if !set["kills"] {
		o.kills = min(per(15*time.Second), maxKills)
	}
	if o.kills > maxKills {
		return nil, program.Usagef("--kills %d: a local cluster replaces no worker, so each master run (%d with --master-restarts %d) may lose at most --workers - 1 = %d; at most %d kills",
			o.kills, o.restarts+1, o.restarts, o.workers-1, maxKills)
	}
	if o.hosts && o.store == "s3" {
		if err := s3Supported(); err != nil {
			return nil, program.Usagef("--store s3 needs object storage behind checkpoint.Open (s3://BUCKET/PREFIX), which this build lacks: %v", err)
		}
	}
	if o.stalls > 0 && o.stall == 0 {
		return nil, program.Usagef("--stalls %d needs a positive --stall", o.stalls)
	}
	if o.hosts && !set["duration"] {
		// Long enough for the faults the counts ask for.
		warmup, cooldown, _ := drillTimings(o)
		n := o.kills + o.restarts + o.stalls + o.cuts + o.pauses + o.masterCuts + o.storeCuts
		o.duration = max(o.duration, warmup+cooldown+time.Duration(n)*drillSlotNeed(o))
	}
	warmup, cooldown, slot := drillTimings(o)
	if n := o.kills + o.restarts + o.stalls + o.cuts + o.pauses + o.masterCuts + o.storeCuts; n > 0 {
		need := drillSlotNeed(o)
		if slot < need {
			return nil, program.Usagef("--duration %v is too short for %d faults: each needs %v after a %v warm-up and before a %v cool-down (at least %v); lengthen --duration or lower --kills, --master-restarts, --stalls, --cuts, --pauses, --master-cuts",
				o.duration, n, need, warmup, cooldown, warmup+cooldown+time.Duration(n)*need)
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano()%999_999) + 1
	}
	if o.plot != "" {
		if abs, err := filepath.Abs(o.plot); err == nil {
			o.plot = abs
		}
	}
	return o, nil
}

// drillTimings returns the warm-up before the first fault, the cool-down
// after the last, and the slot each fault has.
func drillTimings(o *drillOptions) (warmup, cooldown, slot time.Duration) {
	warmup = max(drillMinWarmup, 4*o.batch)
	cooldown = max(drillMinCooldown, 6*o.batch)
	n := o.kills + o.restarts + o.stalls + o.cuts + o.pauses + o.masterCuts + o.storeCuts
	if n == 0 {
		return warmup, cooldown, 0
	}
	return warmup, cooldown, (o.duration - warmup - cooldown) / time.Duration(n)
}

// drillSlotNeed is the least slot a fault needs.
func drillSlotNeed(o *drillOptions) time.Duration {
	need := max(drillMinSlot, 4*o.batch)
	if o.stalls > 0 {
		need = max(need, o.stall+time.Second)
	}
	if o.cuts > 0 || o.masterCuts > 0 || o.storeCuts > 0 {
		need = max(need, o.cut+2*time.Second)
	}
	if o.standby && (o.restarts > 0 || o.pauses > 0 || o.storeCuts > 0) {
		// A failover: the lease lapses (TTL and a fifth), the standby
		// resumes and catches up.
		need = max(need, 2*o.ttl()+3*time.Second)
	}
	return need
}

// Fault kinds.
const (
	faultKill    = "worker-kill"
	faultStall   = "worker-stall"
	faultRestart = "master-restart"
	faultCut     = "link-cut" // --hosts
	// With a standby (drillstandby.go): the active master paused past its
	// lease; the links between it and every worker cut; and, not planned,
	// an active master that stopped itself having lost its lease (cut off
	// from the store by a link cut).
	faultPause     = "master-pause"
	faultMasterCut = "master-cut"
	faultStoreCut  = "store-cut"
	faultLeaseLost = "lease-lost"
)

// plannedFault is a fault of the schedule: its kind and when, after the
// first master is up.
type plannedFault struct {
	kind string
	at   time.Duration
}

// planFaults draws the schedule: the kinds in a seeded random order that
// never kills a master run's last worker, one per slot, at a random moment
// of its first 30%.
func planFaults(rng *rand.Rand, o *drillOptions) []plannedFault {
	all := []string{faultKill, faultRestart, faultStall, faultCut, faultPause, faultMasterCut, faultStoreCut}
	left := map[string]int{faultKill: o.kills, faultRestart: o.restarts, faultStall: o.stalls, faultCut: o.cuts, faultPause: o.pauses, faultMasterCut: o.masterCuts, faultStoreCut: o.storeCuts}
	epochKills := 0
	var kinds []string
	for o.kills+o.restarts+o.stalls+o.cuts+o.pauses+o.masterCuts+o.storeCuts > len(kinds) {
		var can []string
		for _, k := range all {
			if left[k] == 0 {
				continue
			}
			switch {
			case o.hosts:
				// A supervisor starts a killed worker again: no limit.
			case k == faultKill:
				if epochKills >= o.workers-1 {
					continue
				}
			case k == faultRestart:
				// What remains to kill must fit in the runs after it.
				if left[faultKill] > (o.workers-1)*left[faultRestart] {
					continue
				}
			}
			for range left[k] {
				can = append(can, k)
			}
		}
		k := can[rng.IntN(len(can))]
		left[k]--
		switch k {
		case faultKill:
			epochKills++
		case faultRestart:
			epochKills = 0
		}
		kinds = append(kinds, k)
	}
	warmup, _, slot := drillTimings(o)
	plan := make([]plannedFault, len(kinds))
	for i, k := range kinds {
		jitter := time.Duration(rng.Int64N(int64(slot)*3/10 + 1))
		plan[i] = plannedFault{kind: k, at: warmup + time.Duration(i)*slot + jitter}
	}
	return plan
}

// jobProc is one run of the job's master.
type jobProc struct {
	epoch   int      // its master run, from 1; 0 for a standby that has not taken over
	host    *netHost // --hosts: where it runs
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	started time.Time

	ready   chan struct{} // closed once its first line (UI, zero) is read
	readyAt time.Time
	ui      string
	zero    int64

	exited chan struct{} // closed once it has exited
	err    error         // its Wait's
	killed bool          // by the drill (guarded by drill.mu)

	// From its log (guarded by drill.mu): when it said it waits as a
	// standby, when it took the lease (its own time stamp), and when it
	// said it lost it.
	standbyAt, leaseAt, leaseLostAt time.Time
}

// drillInterval is what the drill knows of one interval.
type drillInterval struct {
	Time         int64 `json:"time"` // Unix ms
	Epoch        int   `json:"masterRun"`
	ProcessingMs int64 `json:"processingMs"`
	SchedulingMs int64 `json:"schedulingDelayMs"`
	TotalMs      int64 `json:"totalDelayMs"`
	Records      int64 `json:"records"`
	Failed       bool  `json:"failed,omitempty"`
	start, end   time.Time
	epochs       []int // every master run seen completing it
}

// drillFault is a fault as injected.
type drillFault struct {
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	Offset float64   `json:"offsetSeconds"` // since the job's zero
	Epoch  int       `json:"masterRun"`     // the master run it hit
	Worker string    `json:"worker,omitempty"`
	PID    int       `json:"pid"`
	// A stall: when the worker was continued, and whether the master
	// declared it lost meanwhile.
	Until        *time.Time `json:"until,omitempty"`
	DeclaredLost bool       `json:"declaredLost,omitempty"`
	// A master restart: the new master's process start and readiness.
	Restarted *time.Time `json:"restarted,omitempty"`
	Ready     *time.Time `json:"ready,omitempty"`
	NewPID    int        `json:"newPid,omitempty"`
	Note      string     `json:"note,omitempty"`
	// A link cut (--hosts): how (blackhole, prohibit, link-down), between
	// which hosts (one for link-down), and the workers on them then.
	Cut      string   `json:"cut,omitempty"`
	Hosts    []string `json:"hosts,omitempty"`
	Affected []string `json:"affectedWorkers,omitempty"`
	// Host is the killed or stalled worker's host (--hosts), or the
	// active master's (a failover, a master cut).
	Host string `json:"host,omitempty"`
	// A failover (a standby): the host of the master that took over, and
	// when it said it holds the lease; for a pause, the old master's exit
	// and whether it said it lost the lease.
	NewHost       string     `json:"newHost,omitempty"`
	Takeover      *time.Time `json:"takeover,omitempty"`
	OldExit       string     `json:"oldExit,omitempty"`
	SaidLeaseLost bool       `json:"saidLeaseLost,omitempty"`
}

// drill is a running drill.
type drill struct {
	o       *drillOptions
	dir     string
	exe     string
	args    []string
	logFile *os.File
	stderr  io.Writer
	client  *http.Client
	rng     *rand.Rand

	mu        sync.Mutex
	procs     []*jobProc
	intervals map[int64]*drillInterval
	lostAt    map[string]time.Time // "epoch/worker id" -> first seen lost
	pids      map[int]bool         // every worker pid seen
	stopped   map[int]bool         // workers SIGSTOPped and not yet continued
	faults    []drillFault
	notes     []string
	t0        time.Time // the first master was up: the schedule's origin
	zero      time.Time // the job's zero: the origin of the times printed
	failure   string    // why the drill failed while running

	ckLoc       string // the checkpoint location, as the drill reaches it: a folder or s3://...
	out         string // the job's output location (--out): a folder or s3://...
	parallelism int    // the job's, for the fault-free run (0: the number of workers)
	env         []string
	*hostsRun   // --hosts; nil without
}

func (d *drill) logf(format string, args ...any) {
	if d.o.verbose {
		fmt.Fprintf(d.stderr, "drill: %+6.1fs  %s\n", d.since(time.Now()), fmt.Sprintf(format, args...))
	}
}

// since is t in seconds after the job's zero (before it is known, after
// the drill started the job).
func (d *drill) since(t time.Time) float64 {
	if d.t0.IsZero() {
		return 0 // before the drill started the job
	}
	if d.zero.IsZero() {
		return t.Sub(d.t0).Seconds()
	}
	return t.Sub(d.zero).Seconds()
}

func (d *drill) note(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

func (d *drill) fail(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failure == "" {
		d.failure = fmt.Sprintf(format, args...)
	}
}

func (d *drill) current() *jobProc {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.procs) == 0 {
		return nil
	}
	return d.procs[len(d.procs)-1]
}

// runDrill is `dstream drill`.
func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseDrillFlags(args, stdout)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find this program to run the job: %w", err)
	}
	dir := o.keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dstream-drill-"); err != nil {
			return err
		}
	} else {
		if dir, err = filepath.Abs(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// A fresh job: an old checkpoint folder would resume another run.
		for _, sub := range []string{"checkpoint", "out", "reference", "hosts", "logs"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				return err
			}
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "job.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	d := &drill{
		o: o, dir: dir, exe: exe, logFile: logFile, stderr: stderr,
		client:    &http.Client{Timeout: 2 * time.Second},
		rng:       rand.New(rand.NewPCG(o.seed, 0x0d1a11)),
		intervals: map[int64]*drillInterval{}, lostAt: map[string]time.Time{},
		pids: map[int]bool{}, stopped: map[int]bool{},
	}
	d.ckLoc, d.out = filepath.Join(dir, "checkpoint"), filepath.Join(dir, "out")
	d.args = []string{"drill-job", "--master", fmt.Sprintf("local-cluster[%d]", o.workers), "--batch", o.batch.String(),
		"--checkpoint", d.ckLoc, "--out", d.out,
		"--ui-listen", "127.0.0.1:0", "--seed", strconv.FormatUint(o.seed, 10), "--words", strconv.Itoa(o.words),
		"--watch-stdin", "--linger", (4 * drillPoll).String(), "-v"}
	progress := stdout
	if o.asJSON {
		progress = stderr
	}
	if o.hosts {
		defer d.closeHosts()
		if err := d.setupHosts(); err != nil {
			return err
		}
		where := "checkpoints and outputs in the S3 store (host store): nothing shared but the network"
		if o.store == "folder" {
			where = "checkpoints in the master's folder, outputs in a folder every host shares"
		}
		if o.standby {
			fmt.Fprintf(progress, "dstream drill: seed %d, batch %v, across hosts: a standalone master, a standby master (lease TTL %v) and %d workers, %s, %v: %d worker kills, %d active-master kills, %d pauses, %d master cuts, %d store cuts, %d stalls of %v, %d link cuts of %v\n",
				o.seed, o.batch, o.ttl(), o.workers, where, o.duration.Round(time.Millisecond), o.kills, o.restarts, o.pauses, o.masterCuts, o.storeCuts, o.stalls, o.stall, o.cuts, o.cut)
		} else {
			fmt.Fprintf(progress, "dstream drill: seed %d, batch %v, across hosts: a standalone master and %d workers, %s, %v: %d worker kills, %d master restarts, %d stalls of %v, %d link cuts of %v\n",
				o.seed, o.batch, o.workers, where, o.duration.Round(time.Millisecond), o.kills, o.restarts, o.stalls, o.stall, o.cuts, o.cut)
		}
		d.printHostsSetup(progress)
	} else {
		fmt.Fprintf(progress, "dstream drill: seed %d, batch %v, local-cluster[%d], %v: %d worker kills, %d master restarts, %d stalls of %v\n",
			o.seed, o.batch, o.workers, o.duration.Round(time.Millisecond), o.kills, o.restarts, o.stalls, o.stall)
	}
	fmt.Fprintf(progress, "dstream drill: work folder %s (job log: %s)\n", dir, logFile.Name())
	fmt.Fprintf(progress, "dstream drill: job: %s %s\n", exe, strings.Join(d.args, " "))

	rep := d.run(ctx, progress)
	if rep == nil || ctx.Err() != nil {
		return fmt.Errorf("interrupted: the job was killed; the work folder %s is kept", dir)
	}
	if o.plot != "" {
		if err := writeDrillPlot(o.plot, rep); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("plot not written: %v", err))
		} else {
			rep.Plot = o.plot
		}
	}
	if o.asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printDrillReport(stdout, rep)
	}
	if rep.Verdict != "PASS" {
		fmt.Fprintf(stderr, "dstream drill: FAIL: %s\ndstream drill: the work folder is kept: %s (job log %s)\n", rep.Reason, dir, logFile.Name())
		printLogTail(stderr, logFile.Name(), 25)
		return errDrillFailed
	}
	if o.keep == "" {
		logFile.Close()
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(stderr, "dstream drill: could not delete the work folder %s: %v\n", dir, err)
		}
	}
	return nil
}

// run runs the drill and returns its report.
func (d *drill) run(ctx context.Context, progress io.Writer) *drillReport {
	defer d.continueStopped()
	pollCtx, stopPoll := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		d.poll(pollCtx)
	}()
	finish := func() *drillReport {
		stopPoll()
		<-pollDone
		return d.report(progress)
	}

	d.t0 = time.Now()
	first, err := d.startMaster()
	if err != nil {
		d.fail("the job did not start: %v", err)
		return finish()
	}
	d.t0, d.zero = first.readyAt, time.UnixMilli(first.zero)
	d.logf("master pid %d up: UI %s, zero %d", first.cmd.Process.Pid, first.ui, first.zero)
	if d.hostsRun != nil && d.o.standby {
		if err := d.startStandby(d.masterHosts[1]); err != nil {
			d.fail("starting the standby master: %v", err)
			d.killAll()
			return finish()
		}
	}
	if d.hostsRun != nil {
		if err := d.startWorkers(); err != nil {
			d.fail("starting the workers: %v", err)
			d.killAll()
			return finish()
		}
	}
	plan := planFaults(d.rng, d.o)
	_, cooldown, _ := drillTimings(d.o)
	end := d.t0.Add(d.o.duration)
	for _, f := range plan {
		if !d.sleepUntil(ctx, d.t0.Add(f.at)) {
			break
		}
		if err := d.inject(ctx, f.kind); err != nil {
			d.fail("%s at %+.1fs: %v", f.kind, d.since(time.Now()), err)
			break
		}
		if last := time.Now().Add(cooldown); last.After(end) {
			end = last // a late fault still has its cool-down
		}
	}
	d.sleepUntil(ctx, end)
	if ctx.Err() != nil {
		d.killAll()
		stopPoll()
		<-pollDone
		return nil
	}
	d.stopJob()
	return finish()
}

// sleepUntil waits until t; it returns false early when ctx is done, or
// the master exits on its own (which fails the drill).
func (d *drill) sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		p := d.current()
		select {
		case <-p.exited:
			d.mu.Lock()
			killed := p.killed
			d.mu.Unlock()
			if !killed && !d.leaseLost(p) {
				d.fail("the master (pid %d, run %d) exited on its own at %+.1fs: %v", p.cmd.Process.Pid, p.epoch, d.since(time.Now()), p.err)
				return false
			}
			if !killed {
				continue // the standby took over
			}
		default:
		}
		if sb := d.currentStandby(); sb != nil {
			select {
			case <-sb.exited:
				d.fail("the standby master on host %s (pid %d) exited on its own at %+.1fs: %v", sb.host.name, sb.cmd.Process.Pid, d.since(time.Now()), sb.err)
				return false
			default:
			}
		}
		if d.failed() {
			return false
		}
		wait := time.Until(t)
		if wait <= 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-p.exited:
		case <-time.After(min(wait, 100*time.Millisecond)):
		}
	}
}

// currentStandby is the master waiting as a standby, if any.
func (d *drill) currentStandby() *jobProc {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hostsRun == nil {
		return nil
	}
	return d.standby
}

func (d *drill) failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failure != ""
}

// startMaster starts a run of the job's master (on the first master host,
// across hosts), waits until it says where its UI is, and makes it the
// current master.
func (d *drill) startMaster() (*jobProc, error) {
	var h *netHost
	if d.hostsRun != nil {
		h = d.master
		if p := d.current(); p != nil {
			h = p.host // a restart in place
		}
	}
	p, err := d.launchMaster(h)
	if err != nil {
		return nil, err
	}
	if err := d.awaitUp(p, drillStartWait); err != nil {
		return nil, err
	}
	return p, d.promote(p)
}

// launchMaster starts a master process (on host h, across hosts) and reads
// its output; awaitUp waits for it to be up.
func (d *drill) launchMaster(h *netHost) (*jobProc, error) {
	d.mu.Lock()
	n := len(d.procs) + 1
	d.mu.Unlock()
	label := fmt.Sprintf("master run %d", n)
	if h != nil {
		label = "master on host " + h.name
	}
	fmt.Fprintf(d.logFile, "=== drill: %s starts at %s\n", label, time.Now().Format(time.RFC3339Nano))
	cmd := d.masterCommand(h)
	p := &jobProc{host: h, cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = d.logFile
	if h != nil {
		// Its log, a line at a time: what it says of the lease.
		cmd.Stderr = &lineWriter{line: func(line string) { d.masterLogLine(p, line) }}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(d.logFile, "drill: %s (pid %d) says: %s\n", label, cmd.Process.Pid, line)
			if f := strings.Fields(line); len(f) > 1 && f[0] == "drill-job:" && f[1] == "pid" {
				for i := 1; i+1 < len(f); i += 2 {
					switch f[i] {
					case "ui":
						p.ui = f[i+1]
					case "zero":
						p.zero, _ = strconv.ParseInt(f[i+1], 10, 64)
					}
				}
				p.readyAt = time.Now()
				close(p.ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// awaitUp waits up to wait until p says where its UI is; it kills p if it
// does not.
func (d *drill) awaitUp(p *jobProc, wait time.Duration) error {
	select {
	case <-p.ready:
	case <-p.exited:
		return fmt.Errorf("the master (pid %d) exited before it was up: %v", p.cmd.Process.Pid, p.err)
	case <-time.After(wait):
		d.mu.Lock()
		p.killed = true
		d.mu.Unlock()
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("the master (pid %d) not up after %v (killed)", p.cmd.Process.Pid, wait)
	}
	if p.ui == "" {
		return fmt.Errorf("the master (pid %d) serves no UI", p.cmd.Process.Pid)
	}
	return nil
}

// promote makes p, which is up, the current master: the next master run.
func (d *drill) promote(p *jobProc) error {
	d.mu.Lock()
	p.epoch = len(d.procs) + 1
	d.procs = append(d.procs, p)
	first := d.procs[0]
	d.mu.Unlock()
	if p.zero != first.zero {
		d.fail("master run %d resumed with zero %d; the first run's was %d", p.epoch, p.zero, first.zero)
	}
	return nil
}

// poll reads the current master's completed batches and workers until ctx
// is done.
func (d *drill) poll(ctx context.Context) {
	t := time.NewTicker(drillPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := d.current()
		if p == nil {
			continue
		}
		select {
		case <-p.ready:
		default:
			continue
		}
		select {
		case <-p.exited:
			continue
		default:
		}
		d.pollOnce(p)
	}
}

// pollOnce reads p's completed batches and its workers' states.
func (d *drill) pollOnce(p *jobProc) {
	var batches []ui.Batch
	if d.get(p, "/api/v1/batches?status=completed,failed&limit=50", &batches) == nil {
		d.noteBatches(p.epoch, batches)
	}
	if ws, err := d.workers(p); err == nil {
		now := time.Now()
		d.noteWorkers(p.epoch, ws, now)
		d.mu.Lock()
		for _, w := range ws {
			if w.ID == "master" {
				continue
			}
			d.pids[w.PID] = true
			key := fmt.Sprintf("%d/%s", p.epoch, w.ID)
			if w.State == "lost" {
				if _, ok := d.lostAt[key]; !ok {
					d.lostAt[key] = now
				}
			}
		}
		d.mu.Unlock()
	}
}

// get decodes a JSON answer of p's UI.
func (d *drill) get(p *jobProc, path string, v any) error {
	resp, err := d.client.Get("http://" + p.ui + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// workers returns p's workers (without the master).
func (d *drill) workers(p *jobProc) ([]ui.Worker, error) {
	var ws []ui.Worker
	if err := d.get(p, "/api/v1/workers", &ws); err != nil {
		return nil, err
	}
	return ws, nil
}

func parseStamp(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, *s)
	return t
}

func (d *drill) noteBatches(epoch int, bs []ui.Batch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range bs {
		if b.ProcessingTime == nil {
			continue
		}
		iv, ok := d.intervals[b.BatchID]
		if !ok {
			iv = &drillInterval{Time: b.BatchID}
			d.intervals[b.BatchID] = iv
		}
		if !slices.Contains(iv.epochs, epoch) {
			iv.epochs = append(iv.epochs, epoch)
		}
		iv.Epoch = epoch
		iv.ProcessingMs = *b.ProcessingTime
		iv.SchedulingMs = deref(b.SchedulingDelay)
		iv.TotalMs = deref(b.TotalDelay)
		iv.Records = b.InputSize
		iv.Failed = b.Status == ui.StatusFailed || b.NumFailedOutputOps > 0
		iv.start, iv.end = parseStamp(b.ProcessingStartTime), parseStamp(b.ProcessingEndTime)
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// epochDone reports whether master run epoch has completed an interval.
func (d *drill) epochDone(epoch int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, iv := range d.intervals {
		if slices.Contains(iv.epochs, epoch) {
			return true
		}
	}
	return false
}

// aliveWorkers returns the current master's workers that are alive, by
// its registry and by their process, ordered by id.
func (d *drill) aliveWorkers(p *jobProc) []ui.Worker {
	ws, err := d.workers(p)
	if err != nil {
		return nil
	}
	var out []ui.Worker
	for _, w := range ws {
		if w.ID != "master" && w.State == "alive" && w.PID > 0 && procAlive(w.PID) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b ui.Worker) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// waitReady waits until the current master has completed an interval and
// has at least n alive workers.
func (d *drill) waitReady(ctx context.Context, n int) (*jobProc, []ui.Worker, error) {
	deadline := time.Now().Add(drillEventWait)
	for {
		p := d.current()
		select {
		case <-p.exited:
			return nil, nil, fmt.Errorf("the master (pid %d) exited: %v", p.cmd.Process.Pid, p.err)
		default:
		}
		if d.epochDone(p.epoch) {
			ws := d.aliveWorkers(p)
			if len(ws) >= n {
				return p, ws, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("the job was not ready for it within %v (master run %d: an interval completed: %v; alive workers: %d, %d needed)",
				drillEventWait, p.epoch, d.epochDone(p.epoch), len(d.aliveWorkers(p)), n)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// inject injects one fault.
func (d *drill) inject(ctx context.Context, kind string) error {
	need := 1
	if kind == faultKill {
		need = 2 // never the last one
	}
	if d.hostsRun != nil && kind != faultRestart && kind != faultPause && kind != faultStoreCut {
		need = max(need, min(2, d.o.workers)) // a cut or stall of a master's one worker tells little
	}
	p, ws, err := d.waitReady(ctx, need)
	if err != nil {
		return err
	}
	now := time.Now()
	f := drillFault{Kind: kind, At: now, Epoch: p.epoch}
	switch kind {
	case faultKill:
		w := ws[d.rng.IntN(len(ws))]
		f.Worker, f.PID = w.ID, w.PID
		f.At = time.Now()
		if d.hostsRun != nil {
			host, err := d.killWorker(w)
			if err != nil {
				return fmt.Errorf("SIGKILL worker %s pid %d: %w", w.ID, w.PID, err)
			}
			f.Host = host
		} else if err := syscall.Kill(w.PID, syscall.SIGKILL); err != nil {
			return fmt.Errorf("SIGKILL worker %s pid %d: %w", w.ID, w.PID, err)
		}
		d.logf("SIGKILL worker %s (pid %d)", w.ID, w.PID)
	case faultStall:
		w := ws[d.rng.IntN(len(ws))]
		f.Worker, f.PID = w.ID, w.PID
		f.At = time.Now()
		d.mu.Lock()
		d.stopped[w.PID] = true
		d.mu.Unlock()
		if err := syscall.Kill(w.PID, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("SIGSTOP worker %s pid %d: %w", w.ID, w.PID, err)
		}
		d.logf("SIGSTOP worker %s (pid %d) for %v", w.ID, w.PID, d.o.stall)
		select {
		case <-ctx.Done():
		case <-time.After(d.o.stall):
		}
		d.continueStopped()
		until := time.Now()
		f.Until = &until
		d.logf("SIGCONT worker %s (pid %d)", w.ID, w.PID)
		// Whether the master declared it lost: its registry says so for a
		// while after (a lost worker that heartbeats again registers anew).
		time.Sleep(2 * drillPoll)
		d.mu.Lock()
		lost, ok := d.lostAt[fmt.Sprintf("%d/%s", p.epoch, w.ID)]
		d.mu.Unlock()
		f.DeclaredLost = ok && !lost.Before(f.At)
	case faultRestart, faultPause, faultMasterCut, faultStoreCut, faultCut:
		var err error
		switch {
		case kind == faultCut:
			err = d.injectCut(ctx, &f, ws)
		case kind == faultPause:
			err = d.pauseActive(ctx, &f, p)
		case kind == faultMasterCut:
			err = d.cutActive(ctx, &f, p, ws)
		case kind == faultStoreCut:
			err = d.cutStore(ctx, &f, p)
		case d.hostsRun != nil && d.o.standby:
			err = d.killActive(ctx, &f, p)
		default:
			err = d.restartMaster(&f, p)
		}
		if err != nil {
			d.recordFault(f)
			return err
		}
	}
	f.Offset = d.since(f.At)
	d.recordFault(f)
	return nil
}

// restartMaster is a master-restart without a standby: SIGKILL the master
// p and start it again with the same command line (on its host).
func (d *drill) restartMaster(f *drillFault, p *jobProc) error {
	ws, _ := d.workers(p)
	d.pollOnce(p) // what it completed so far: its UI dies with it
	f.PID = p.cmd.Process.Pid
	d.mu.Lock()
	p.killed = true
	d.mu.Unlock()
	f.At = time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("SIGKILL master pid %d: %w", f.PID, err)
	}
	<-p.exited
	d.logf("SIGKILL master (pid %d)", f.PID)
	// Its workers stop when their stdin closes; the drill waits for
	// them, so the new master's workers are the only ones. Across
	// hosts they live on, and join the new master (or exit, and their
	// supervisor starts them again).
	if d.hostsRun == nil {
		d.waitWorkersGone(ws, 10*time.Second, fmt.Sprintf("after the master (run %d) was killed", p.epoch))
	}
	restarted := time.Now()
	f.Restarted = &restarted
	np, err := d.startMaster()
	if err != nil {
		return fmt.Errorf("restarting the master: %w", err)
	}
	f.NewPID, f.Ready = np.cmd.Process.Pid, &np.readyAt
	d.logf("master restarted: pid %d, UI %s, up after %v", f.NewPID, np.ui, np.readyAt.Sub(f.At).Round(time.Millisecond))
	return nil
}

func (d *drill) recordFault(f drillFault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = append(d.faults, f)
}

// waitWorkersGone waits until the processes of ws have exited; those still
// there after wait are noted and killed.
func (d *drill) waitWorkersGone(ws []ui.Worker, wait time.Duration, when string) {
	deadline := time.Now().Add(wait)
	start := time.Now()
	for _, w := range ws {
		if w.ID == "master" || w.PID <= 0 {
			continue
		}
		for procAlive(w.PID) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if procAlive(w.PID) {
			d.note("worker %s (pid %d) still ran %v %s; the drill killed it", w.ID, w.PID, time.Since(start).Round(time.Millisecond), when)
			_ = syscall.Kill(w.PID, syscall.SIGKILL)
		}
	}
}

// continueStopped sends SIGCONT to every worker the drill stopped.
func (d *drill) continueStopped() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for pid := range d.stopped {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		delete(d.stopped, pid)
	}
}

// stopJob stops the current master gracefully (SIGTERM) and waits for it
// and its workers.
func (d *drill) stopJob() {
	p := d.current()
	select {
	case <-p.exited:
		return // it failed on its own; d.failure says so
	default:
	}
	// The standby stops first: the graceful stop releases the lease.
	d.stopStandby(drillStopWait)
	ws, _ := d.workers(p)
	d.mu.Lock()
	p.killed = true
	if d.hostsRun != nil {
		d.stopping = true // released workers exit; none starts again
	}
	d.mu.Unlock()
	stopAt := time.Now()
	d.logf("SIGTERM master (pid %d): graceful stop", p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(drillStopWait):
		d.fail("the master (pid %d) did not stop within %v of SIGTERM; killed", p.cmd.Process.Pid, drillStopWait)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	d.logf("master stopped after %v: %v", time.Since(stopAt).Round(time.Millisecond), p.err)
	if p.err != nil {
		d.fail("the master's graceful stop (SIGTERM) ended with %v, not exit status 0", p.err)
	}
	p.stdin.Close()
	if d.hostsRun != nil {
		d.endWorkers(10*time.Second, "after the master's graceful stop")
		return
	}
	d.waitWorkersGone(ws, 15*time.Second, "after the master's graceful stop")
}

// killAll kills the current master (an interrupted drill); its workers
// follow it.
func (d *drill) killAll() {
	if sb := d.currentStandby(); sb != nil {
		d.mu.Lock()
		sb.killed = true
		d.mu.Unlock()
		_ = sb.cmd.Process.Kill()
		<-sb.exited
	}
	p := d.current()
	if p == nil {
		return
	}
	ws, _ := d.workers(p)
	d.mu.Lock()
	p.killed = true
	d.mu.Unlock()
	d.continueStopped()
	_ = p.cmd.Process.Kill()
	<-p.exited
	if d.hostsRun != nil {
		d.endWorkers(time.Second, "after the drill was interrupted")
		return
	}
	d.waitWorkersGone(ws, 10*time.Second, "after the drill was interrupted")
}

// procAlive reports whether process pid exists and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false
		}
		return syscall.Kill(pid, 0) == nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// printLogTail prints the job log's last n warnings and errors.
func printLogTail(w io.Writer, name string, n int) {
	b, err := os.ReadFile(name)
	if err != nil {
		return
	}
	var keep []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.HasPrefix(line, "drill") || strings.HasPrefix(line, "===") || strings.Contains(line, "panic") {
			keep = append(keep, line)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	fmt.Fprintf(w, "dstream drill: the job log's last %d warnings and errors:\n", len(keep))
	for _, l := range keep {
		fmt.Fprintln(w, "  "+l)
	}
}
