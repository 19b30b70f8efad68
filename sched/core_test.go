package sched

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

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
//	run JOB NAME [parts=(0,1)]  submit a job
//	ok JOB STAGE PART      the running attempt of a task succeeded on its worker
//	fail JOB STAGE PART    it failed with an ordinary error
//	fetchfail JOB STAGE PART SHUFFLE MAP   it found a map output gone
//	forget SHUFFLE         the stream layer forgot a shuffle
//	late JOB STAGE PART WORKER  a task reports from a worker it no longer runs on
//	workers                print the slot accounting and the map-output table
func TestCoreTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/core", func(t *testing.T, path string) {
		var (
			nodes   map[string]*rdd.Node
			shufIDs map[rdd.ID]string
			names   map[rdd.ID]string
			core    *Core
			running map[[3]int]Run // (job, stage, part) -> where the current attempt runs
			prefs   map[string][]string
			pins    map[string]string
		)
		seq := int32(0)
		render := func(ds []Decision) string {
			var lines []string
			for _, d := range ds {
				switch d := d.(type) {
				case Run:
					tk := d.Task
					running[[3]int{tk.Job, tk.Stage, tk.Partition()}] = d
					kind := "result"
					if tk.IsMap() {
						kind = "map " + shufIDs[*tk.Spec.Shuffle]
					}
					lines = append(lines, fmt.Sprintf("run job=%d stage=%d part=%d attempt=%d (%s) on %s", tk.Job, tk.Stage, tk.Partition(), tk.Attempt(), kind, d.Worker))
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
		current := func(d *datadriven.TestData) Run {
			k := [3]int{arg(d, 0), arg(d, 1), arg(d, 2)}
			r, ok := running[k]
			if !ok {
				d.Fatalf(t, "no task running for job %d stage %d part %d", k[0], k[1], k[2])
			}
			return r
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "graph":
				nodes, shufIDs = parseGraph(t, d, &seq)
				names = map[rdd.ID]string{}
				for name, n := range nodes {
					names[n.ID] = name
				}
				core, running, prefs, pins = NewCore(4), map[[3]int]Run{}, map[string][]string{}, map[string]string{}
				core.Prefer = func(tk Task) []string {
					return prefs[fmt.Sprintf("%s/%d", names[tk.Spec.Dataset], tk.Partition())]
				}
				core.Pin = func(tk Task) string { return pins[names[tk.Spec.Dataset]] }
				return "ok\n"
			case "add-worker":
				var slots int
				d.ScanArgs(t, "slots", &slots)
				return render(core.AddWorker(d.CmdArgs[0].Key, slots))
			case "kill-worker":
				return render(core.LoseWorker(d.CmdArgs[0].Key))
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
				return render(core.Submit(arg(d, 0), &rdd.Job{Final: n, Partitions: parts}))
			case "ok":
				r := current(d)
				var res any
				if !r.Task.IsMap() {
					res = fmt.Sprintf("r%d", r.Task.Partition())
				}
				return render(core.TaskEnded(r.Task, r.Worker, res, nil))
			case "fail":
				r := current(d)
				return render(core.TaskEnded(r.Task, r.Worker, nil, errors.New("boom")))
			case "fetchfail":
				r := current(d)
				m, _ := strconv.Atoi(d.CmdArgs[4].Key)
				return render(core.TaskEnded(r.Task, r.Worker, nil, &rdd.FetchFailedError{Shuffle: nodes[d.CmdArgs[3].Key].ID, Map: m}))
			case "late":
				r := current(d)
				return render(core.TaskEnded(r.Task, d.CmdArgs[3].Key, "late", nil))
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
