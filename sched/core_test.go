package sched

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/dstream/dstream/rdd"
)

// TestCoreTranscripts replays scripts (testdata/core/*) against a Core and
// compares its decisions, as etcd-raft's interaction tests do. Commands:
//
//	graph                  the lineage, as in the job transcripts
//	add-worker ID slots=N  a worker joins (or changes its slots)
//	kill-worker ID         a worker is lost
//	prefer NAME PART ID... tasks computing partition PART of NAME prefer workers ID...
//	pin NAME ID            tasks computing NAME may run on worker ID only
//	reserve ID             worker ID runs pinned tasks only
//	run JOB NAME [parts=(0,1)] [background]  submit a job (a background
//	                       one: its tasks take background slots)
//	ok JOB STAGE PART      the running attempt of a task succeeded on its worker
//	fail JOB STAGE PART    it failed with an ordinary error
//	fetchfail JOB STAGE PART SHUFFLE MAP   it found a map output gone
//	killed JOB STAGE PART  it ended cancelled (the shell carried out a Kill)
//	forget SHUFFLE         the stream layer forgot a shuffle
//	late JOB STAGE PART WORKER  a task reports from a worker it no longer runs on
//	workers                print the slot accounting and the map-output table
//
// Time and speculation:
//
//	speculation [quantile=Q] [multiplier=M] [min=MS] [exclude=MS]  turn
//	                       speculation on (Spark's defaults otherwise;
//	                       exclude=-1: no straggler's worker is excluded,
//	                       see Core); from then on runs
//	                       show their start (at=MS), speculative copies are
//	                       marked, and results name their attempt (r3#1)
//	tick MS                the clock reads MS (ms since the transcript's
//	                       start, never backwards); the core is ticked
//
// Every event takes an optional at=MS: the clock moves to MS first (without
// a Tick). The time is 0 until moved. Task commands (ok, fail, fetchfail,
// killed, late) take the latest attempt of the partition launched, or the
// one named by attempt=N.
func TestCoreTranscripts(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	datadriven.Walk(t, "testdata/core", func(t *testing.T, path string) {
		var (
			nodes   map[string]*rdd.Node
			shufIDs map[rdd.ID]string
			names   map[rdd.ID]string
			core    *Core
			running map[[3]int][]Run // (job, stage, part) -> the attempts launched, in order
			prefs   map[string][]string
			pins    map[string]string
			now     = t0
			timed   bool
		)
		ms := func(at time.Time) int64 { return at.Sub(t0).Milliseconds() }
		seq := int32(0)
		render := func(ds []Decision) string {
			var lines []string
			for _, d := range ds {
				switch d := d.(type) {
				case Run:
					tk := d.Task
					k := [3]int{tk.Job, tk.Stage, tk.Partition()}
					running[k] = append(running[k], d)
					kind := "result"
					if tk.IsMap() {
						kind = "map " + shufIDs[*tk.Spec.Shuffle]
					}
					line := fmt.Sprintf("run job=%d stage=%d part=%d attempt=%d (%s) on %s", tk.Job, tk.Stage, tk.Partition(), tk.Attempt(), kind, d.Worker)
					if timed {
						line += fmt.Sprintf(" at=%d", ms(d.Start))
						if d.Speculative {
							line += " speculative"
						}
					}
					lines = append(lines, line)
				case Kill:
					tk := d.Task
					lines = append(lines, fmt.Sprintf("kill job=%d stage=%d part=%d attempt=%d on %s", tk.Job, tk.Stage, tk.Partition(), tk.Attempt(), d.Worker))
				case Exclude:
					lines = append(lines, fmt.Sprintf("exclude %s until=%d", d.Worker, ms(d.Until)))
				case JobDone:
					if d.Err != nil {
						lines = append(lines, fmt.Sprintf("job %d done error: %v", d.Job, d.Err))
					} else {
						lines = append(lines, fmt.Sprintf("job %d done results=%v", d.Job, d.Results))
					}
				}
			}
			if len(lines) == 0 {
				return "(no decisions)\n"
			}
			return strings.Join(lines, "\n") + "\n"
		}
		arg := func(d *datadriven.TestData, i int) int {
			n, err := strconv.Atoi(d.CmdArgs[i].Key)
			if err != nil {
				d.Fatalf(t, "argument %d: %v", i, err)
			}
			return n
		}
		setTime := func(d *datadriven.TestData, v string) {
			n, err := strconv.Atoi(v)
			if err != nil {
				d.Fatalf(t, "time %q: %v", v, err)
			}
			at := t0.Add(time.Duration(n) * time.Millisecond)
			if at.Before(now) {
				d.Fatalf(t, "time %d ms is before the clock's %d ms", n, ms(now))
			}
			now = at
		}
		advance := func(d *datadriven.TestData) {
			if d.HasArg("at") {
				var v string
				d.ScanArgs(t, "at", &v)
				setTime(d, v)
			}
		}
		current := func(d *datadriven.TestData) Run {
			k := [3]int{arg(d, 0), arg(d, 1), arg(d, 2)}
			rs := running[k]
			if len(rs) == 0 {
				d.Fatalf(t, "no task launched for job %d stage %d part %d", k[0], k[1], k[2])
			}
			if !d.HasArg("attempt") {
				return rs[len(rs)-1]
			}
			var a int
			d.ScanArgs(t, "attempt", &a)
			for _, r := range rs {
				if r.Task.Attempt() == a {
					return r
				}
			}
			d.Fatalf(t, "no attempt %d launched for job %d stage %d part %d", a, k[0], k[1], k[2])
			return Run{}
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			advance(d)
			switch d.Cmd {
			case "graph":
				nodes, shufIDs = parseGraph(t, d, &seq)
				names = map[rdd.ID]string{}
				for name, n := range nodes {
					names[n.ID] = name
				}
				core, running, prefs, pins = NewCore(4), map[[3]int][]Run{}, map[string][]string{}, map[string]string{}
				core.Prefer = func(tk Task) []string {
					return prefs[fmt.Sprintf("%s/%d", names[tk.Spec.Dataset], tk.Partition())]
				}
				core.Pin = func(tk Task) string { return pins[names[tk.Spec.Dataset]] }
				return "ok\n"
			case "speculation":
				sp := Speculation{Enabled: true}
				if d.HasArg("quantile") {
					d.ScanArgs(t, "quantile", &sp.Quantile)
				}
				if d.HasArg("multiplier") {
					d.ScanArgs(t, "multiplier", &sp.Multiplier)
				}
				if d.HasArg("min") {
					var n int
					d.ScanArgs(t, "min", &n)
					sp.MinRuntime = time.Duration(n) * time.Millisecond
				}
				if d.HasArg("exclude") {
					var n int
					d.ScanArgs(t, "exclude", &n)
					sp.ExcludeFor = time.Duration(n) * time.Millisecond
				}
				core.Speculation = sp
				timed = true
				return "ok\n"
			case "tick":
				setTime(d, d.CmdArgs[0].Key)
				return render(core.Tick(now))
			case "add-worker":
				var slots int
				d.ScanArgs(t, "slots", &slots)
				return render(core.AddWorker(now, d.CmdArgs[0].Key, slots))
			case "kill-worker":
				return render(core.LoseWorker(now, d.CmdArgs[0].Key))
			case "prefer":
				var ws []string
				for _, a := range d.CmdArgs[2:] {
					ws = append(ws, a.Key)
				}
				prefs[d.CmdArgs[0].Key+"/"+d.CmdArgs[1].Key] = ws
				return "ok\n"
			case "reserve":
				core.Reserved = d.CmdArgs[0].Key
				return "ok\n"
			case "pin":
				pins[d.CmdArgs[0].Key] = d.CmdArgs[1].Key
				return "ok\n"
			case "run":
				n := nodes[d.CmdArgs[1].Key]
				parts := allParts(n.NumPartitions)
				if d.HasArg("parts") {
					parts = nil
					for _, v := range d.CmdArgs[2].Vals {
						p, _ := strconv.Atoi(v)
						parts = append(parts, p)
					}
				}
				return render(core.Submit(now, arg(d, 0), &rdd.Job{Final: n, Partitions: parts, Background: d.HasArg("background")}))
			case "ok":
				r := current(d)
				var res any
				if !r.Task.IsMap() {
					res = fmt.Sprintf("r%d", r.Task.Partition())
					if timed {
						res = fmt.Sprintf("r%d#%d", r.Task.Partition(), r.Task.Attempt())
					}
				}
				return render(core.TaskEnded(now, r.Task, r.Worker, res, nil))
			case "fail":
				r := current(d)
				return render(core.TaskEnded(now, r.Task, r.Worker, nil, errors.New("boom")))
			case "killed":
				r := current(d)
				return render(core.TaskEnded(now, r.Task, r.Worker, nil, ErrKilled))
			case "fetchfail":
				r := current(d)
				m, _ := strconv.Atoi(d.CmdArgs[4].Key)
				return render(core.TaskEnded(now, r.Task, r.Worker, nil, &rdd.FetchFailedError{Shuffle: nodes[d.CmdArgs[3].Key].ID, Map: m}))
			case "late":
				r := current(d)
				return render(core.TaskEnded(now, r.Task, d.CmdArgs[3].Key, "late", nil))
			case "forget":
				id := nodes[d.CmdArgs[0].Key].ID
				core.ForgetShuffles(func(s rdd.ID) bool { return s == id })
				return "ok\n"
			case "workers":
				var lines []string
				for _, w := range core.Workers() {
					lines = append(lines, fmt.Sprintf("%s: %d of %d slots free", w.ID, w.Free, w.Slots))
				}
				var shuffles []string
				for id, outs := range core.outputs {
					var ms []string
					for _, m := range slices.Sorted(mapsKeys(outs.at)) {
						ms = append(ms, fmt.Sprintf("%d@%s", m, outs.at[m]))
					}
					shuffles = append(shuffles, fmt.Sprintf("outputs %s: %s", shufIDs[id], strings.Join(ms, " ")))
				}
				slices.Sort(shuffles)
				lines = append(lines, shuffles...)
				lines = append(lines, fmt.Sprintf("running %d, queued %d", core.Running(), core.Queued()))
				return strings.Join(lines, "\n") + "\n"
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
