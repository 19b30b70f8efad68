package sched

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/dstream/dstream/rdd"
)

// outputs is an in-memory MapOutputs the transcript edits.
type outputs map[rdd.ID]map[int]bool

func (o outputs) Missing(s rdd.ID, n int) []int {
	var m []int
	for i := range n {
		if !o[s][i] {
			m = append(m, i)
		}
	}
	return m
}

// TestJobTranscripts replays scripts of events (testdata/job/*) against a
// JobScheduler and compares the actions it returns, as etcd-raft's
// interaction tests do. Commands:
//
//	graph            lines "name: source N" or "name: shuffle PARENT N" or
//	                 "name: narrow PARENT..." define the lineage
//	run NAME [parts=0,1]   submit a job on NAME
//	ok STAGE PART     the current attempt of a task succeeded
//	fail STAGE PART   it failed with an ordinary error
//	fetchfail STAGE PART SHUFFLE MAP   it found map output MAP of SHUFFLE gone
//	lose SHUFFLE MAP  a map output disappears (eviction, lost worker)
func TestJobTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/job", func(t *testing.T, path string) {
		var (
			nodes   map[string]*rdd.Node
			shufIDs map[rdd.ID]string
			outs    outputs
			js      *JobScheduler
			tasks   map[[2]int]Task // (stage, part) -> current task
		)
		seq := int32(0)
		render := func(acts []Action) string {
			var lines []string
			for _, a := range acts {
				switch a := a.(type) {
				case Launch:
					tk := a.Task
					tasks[[2]int{tk.Stage, tk.Partition()}] = tk
					kind := "result"
					if tk.IsMap() {
						kind = "map " + shufIDs[*tk.Spec.Shuffle]
					}
					lines = append(lines, fmt.Sprintf("launch stage=%d part=%d attempt=%d (%s)", tk.Stage, tk.Partition(), tk.Attempt(), kind))
				case Supersede:
					tk := a.Task
					lines = append(lines, fmt.Sprintf("supersede stage=%d part=%d attempt=%d", tk.Stage, tk.Partition(), tk.Attempt()))
				case Done:
					if a.Err != nil {
						lines = append(lines, "done error: "+a.Err.Error())
					} else {
						lines = append(lines, fmt.Sprintf("done results=%v", a.Results))
					}
				}
			}
			if len(lines) == 0 {
				return "(no actions)\n"
			}
			return strings.Join(lines, "\n") + "\n"
		}
		task := func(d *datadriven.TestData) Task {
			st, _ := strconv.Atoi(d.CmdArgs[0].Key)
			p, _ := strconv.Atoi(d.CmdArgs[1].Key)
			tk, ok := tasks[[2]int{st, p}]
			if !ok {
				d.Fatalf(t, "no launched task for stage %d part %d", st, p)
			}
			return tk
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "graph":
				nodes, shufIDs = parseGraph(t, d, &seq)
				outs, tasks = outputs{}, map[[2]int]Task{}
				for id := range shufIDs {
					outs[id] = map[int]bool{}
				}
				return "ok\n"
			case "run":
				n := nodes[d.CmdArgs[0].Key]
				parts := make([]int, n.NumPartitions)
				for i := range parts {
					parts[i] = i
				}
				if d.HasArg("parts") {
					parts = nil
					for _, v := range d.CmdArgs[1].Vals {
						p, _ := strconv.Atoi(v)
						parts = append(parts, p)
					}
				}
				js = NewJob(1, &rdd.Job{Final: n, Partitions: parts}, outs, 4)
				return render(js.Start())
			case "ok":
				tk := task(d)
				var res any
				if tk.IsMap() {
					outs[*tk.Spec.Shuffle][tk.Partition()] = true
				} else {
					res = fmt.Sprintf("r%d", tk.Partition())
				}
				return render(js.TaskEnded(tk, res, nil))
			case "fail":
				return render(js.TaskEnded(task(d), nil, errors.New("boom")))
			case "fetchfail":
				tk := task(d)
				name := d.CmdArgs[2].Key
				m, _ := strconv.Atoi(d.CmdArgs[3].Key)
				id := nodes[name].ID
				delete(outs[id], m)
				return render(js.TaskEnded(tk, nil, &rdd.FetchFailedError{Shuffle: id, Map: m}))
			case "lose":
				m, _ := strconv.Atoi(d.CmdArgs[1].Key)
				delete(outs[nodes[d.CmdArgs[0].Key].ID], m)
				return "ok\n"
			case "stale":
				// An old attempt reports late: it must be ignored.
				tk := task(d)
				tk.Spec.Attempt--
				return render(js.TaskEnded(tk, "late", nil))
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// parseGraph reads a transcript's lineage: lines "name: source N",
// "name: shuffle PARENT N" or "name: narrow PARENT...". seq numbers the IDs.
func parseGraph(t *testing.T, d *datadriven.TestData, seq *int32) (map[string]*rdd.Node, map[rdd.ID]string) {
	nodes, shufIDs := map[string]*rdd.Node{}, map[rdd.ID]string{}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		name, spec, _ := strings.Cut(line, ":")
		f := strings.Fields(spec)
		*seq++
		id := rdd.ID{Seq: *seq}
		switch f[0] {
		case "source":
			n, _ := strconv.Atoi(f[1])
			nodes[name] = rdd.NewNode(id, name, n)
		case "shuffle":
			n, _ := strconv.Atoi(f[2])
			dep := &rdd.ShuffleDep{ID: id, Parent: nodes[f[1]], NumReduce: n}
			shufIDs[id] = name
			nodes[name] = rdd.NewNode(id, name, n, dep)
		case "narrow":
			var deps []rdd.Dep
			parts := 0
			for _, p := range f[1:] {
				deps = append(deps, rdd.NarrowDep{Parent: nodes[p]})
				parts += nodes[p].NumPartitions
			}
			nodes[name] = rdd.NewNode(id, name, parts, deps...)
		default:
			d.Fatalf(t, "unknown node kind %q", f[0])
		}
	}
	return nodes, shufIDs
}

func TestMissingResultPartitionsOnlyRunOnce(t *testing.T) {
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 3)
	js := NewJob(1, &rdd.Job{Final: n, Partitions: []int{2, 0}}, outputs{}, 4)
	acts := js.Start()
	var ps []int
	for _, a := range acts {
		ps = append(ps, a.(Launch).Task.Partition())
	}
	slices.Sort(ps)
	if !slices.Equal(ps, []int{0, 2}) {
		t.Fatalf("launched %v, want [0 2]", ps)
	}
}

func TestLocalFailedJobWithManyRunningTasksReturns(t *testing.T) {
	// One task fails for good while a hundred others are still running:
	// RunJob must return (the others are cancelled), not deadlock.
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 200)
	l := NewLocal(LocalConfig{Slots: 8, MaxAttempts: 1})
	release := make(chan struct{})
	var failed atomic.Bool
	done := make(chan error, 1)
	go func() {
		_, err := l.RunJob(context.Background(), &rdd.Job{Final: n, Partitions: allParts(200), Func: func(tc *rdd.TaskContext, p int) (any, error) {
			// The first task to get a slot fails (whichever partition it
			// is: slots are taken in no set order), the rest wait.
			if failed.CompareAndSwap(false, true) {
				return nil, errors.New("bad partition")
			}
			select {
			case <-release:
			case <-tc.Ctx.Done():
			}
			return p, nil
		}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "bad partition") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("RunJob did not return after a task failed")
	}
}

func allParts(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// A job whose caller gives up returns at once with the caller's error; its
// running tasks are cancelled, and their slots serve the next job.
func TestLocalCancelledJobFreesItsSlots(t *testing.T) {
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 4)
	l := NewLocal(LocalConfig{Slots: 2})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 64) // room for any retries
	done := make(chan error, 1)
	go func() {
		_, err := l.RunJob(ctx, &rdd.Job{Final: n, Partitions: allParts(4), Func: func(tc *rdd.TaskContext, p int) (any, error) {
			started <- struct{}{}
			<-tc.Ctx.Done()
			return nil, tc.Ctx.Err()
		}})
		done <- err
	}()
	<-started
	<-started // both slots busy, two tasks queued
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job returned %v", err)
	}
	res, err := l.RunJob(context.Background(), &rdd.Job{Final: n, Partitions: allParts(4), Func: func(tc *rdd.TaskContext, p int) (any, error) {
		return p, nil
	}})
	if err != nil || len(res) != 4 {
		t.Fatalf("next job: %v, %v", res, err)
	}
	if w := l.Workers(); len(w) != 1 || w[0].Free != 2 {
		t.Fatalf("slots after both jobs: %+v", w)
	}
}
