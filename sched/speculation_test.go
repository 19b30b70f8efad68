package sched

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dstream/dstream/rdd"
)

// TestCoreSpeculationProperties drives a Core with speculation on through
// random schedules of ticks, task ends (successes, failures, fetch
// failures, ends of killed attempts), late reports, lost and added workers,
// pinned tasks, submissions and cancellations, one schedule per seed, and
// checks after every event that:
//
//   - every worker's free slots are within [0, slots] and match the
//     attempts running on it;
//   - no two running attempts share a (job, stage, partition, attempt);
//   - a partition's live attempts (the original and its copy) never run
//     on the same worker, and the copy is live beside its original; a
//     copy never runs on the reserved worker, or for a pinned task;
//   - a Kill names a running attempt, never killed before;
//   - each partition of each job accepts exactly one result, which never
//     changes, and the job's JobDone carries it; JobDone fires exactly
//     once per job (never for a cancelled one), and every job ends;
//   - a late report from a lost worker decides nothing.
func TestCoreSpeculationProperties(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	var copies, kills, exclusions int
	for seed := range seeds {
		c, k, e := runSpeculationSchedule(t, uint64(seed))
		copies += c
		kills += k
		exclusions += e
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
	// The schedules must exercise speculation, not just pass without it.
	if copies < seeds || kills < seeds/4 || exclusions < seeds/10 {
		t.Fatalf("%d schedules launched only %d copies, %d kills and %d exclusions", seeds, copies, kills, exclusions)
	}
}

// simRun is a running attempt as the test's shell sees it.
type simRun struct {
	r      Run
	killed bool
}

func runSpeculationSchedule(t *testing.T, seed uint64) (copies, kills, exclusions int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
	}

	// The lineage: two sources and a shuffle of the first.
	src := rdd.NewNode(rdd.ID{Seq: 1}, "src", 1+rng.IntN(6))
	other := rdd.NewNode(rdd.ID{Seq: 2}, "other", 1+rng.IntN(4))
	dep := &rdd.ShuffleDep{ID: rdd.ID{Seq: 3}, Parent: src, NumReduce: 1 + rng.IntN(3)}
	counts := rdd.NewNode(dep.ID, "counts", dep.NumReduce, dep)
	finals := []*rdd.Node{src, other, counts}

	core := NewCore(4)
	core.Speculation = Speculation{Enabled: true, Quantile: []float64{0.5, 0.75, 0.9}[rng.IntN(3)],
		Multiplier: []float64{1, 1.5, 2}[rng.IntN(3)], MinRuntime: time.Duration(rng.IntN(150)) * time.Millisecond,
		ExcludeFor: []time.Duration{-1, 0, 300 * time.Millisecond, time.Second}[rng.IntN(4)]}
	pinOther := rng.IntN(3) == 0 // tasks of "other" are pinned to the master
	if rng.IntN(2) == 0 || pinOther {
		core.Reserved = "master"
	}
	pin := func(tk Task) string {
		if pinOther && tk.Spec.Dataset == other.ID {
			return "master"
		}
		return ""
	}
	core.Pin = pin
	core.Prefer = func(tk Task) []string { return []string{fmt.Sprintf("w%d", tk.Partition()%3)} }

	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	running := map[taskKey]*simRun{}
	var lost []Run // attempts on lost workers: their late reports
	slots := map[string]int{}
	nextWorker := 0
	var workers []string // alive, in the order added (not the master)

	type jobState struct {
		parts      []int
		js         *JobScheduler
		accepted   map[int]string // partition -> the result it accepted
		done       bool
		cancelled  bool
		background bool // its tasks take background slots
	}
	jobs := map[int]*jobState{}
	nextJob := 1

	excludedUntil := map[string]time.Time{} // the Exclude decisions seen
	check := func(ds []Decision) {
		t.Helper()
		for _, d := range ds {
			switch d := d.(type) {
			case Exclude:
				exclusions++
				if _, ok := slots[d.Worker]; !ok || d.Worker == core.Reserved {
					fail("exclusion of %s, not a worker that runs any task", d.Worker)
				}
				if !d.Until.After(now) {
					fail("exclusion of %s until %v, not after now (%v)", d.Worker, d.Until, now)
				}
				excludedUntil[d.Worker] = d.Until
				n, eligible := 0, 0
				for _, w := range core.Workers() {
					if w.ID != core.Reserved {
						eligible++
					}
					if now.Before(excludedUntil[w.ID]) {
						n++
					}
				}
				if n > eligible/2 {
					fail("%d of %d workers excluded at once", n, eligible)
				}
			case Run:
				if now.Before(excludedUntil[d.Worker]) && pin(d.Task) != d.Worker {
					fail("%s launched on %s, excluded until %v", d.Task, d.Worker, excludedUntil[d.Worker])
				}
				k := keyOf(d.Task)
				if running[k] != nil {
					fail("%s launched twice (on %s and %s)", d.Task, running[k].r.Worker, d.Worker)
				}
				if _, ok := slots[d.Worker]; !ok {
					fail("%s launched on unknown worker %s", d.Task, d.Worker)
				}
				if d.Worker == core.Reserved && pin(d.Task) != d.Worker {
					fail("%s launched on the reserved worker", d.Task)
				}
				if d.Speculative {
					copies++
					if j := jobs[d.Task.Job]; j != nil && j.background {
						fail("a background job's %s speculated", d.Task)
					}
					if pin(d.Task) != "" {
						fail("pinned %s speculated", d.Task)
					}
					if d.Worker == core.Reserved {
						fail("copy %s on the reserved worker", d.Task)
					}
					if j := jobs[d.Task.Job]; j != nil && j.js != nil {
						if live, n := j.js.Live(d.Task); n != 2 || live[1] != d.Task.Attempt() {
							fail("copy %s: live attempts %v", d.Task, live[:n])
						}
					}
				}
				running[k] = &simRun{r: d}
			case Kill:
				kills++
				o := running[keyOf(d.Task)]
				if o == nil || o.r.Worker != d.Worker {
					fail("kill of %s on %s, which does not run there", d.Task, d.Worker)
					continue
				}
				if o.killed {
					fail("%s killed twice", d.Task)
				}
				o.killed = true
			case JobDone:
				j := jobs[d.Job]
				switch {
				case j == nil:
					fail("JobDone for unknown job %d", d.Job)
					continue
				case j.done:
					fail("JobDone twice for job %d", d.Job)
				case j.cancelled:
					fail("JobDone for cancelled job %d", d.Job)
				}
				j.done = true
				if d.Err != nil {
					continue
				}
				for i, p := range j.parts {
					if got, want := d.Results[i], j.accepted[p]; got != want || want == "" {
						fail("job %d partition %d: result %v, accepted %q", d.Job, p, got, want)
					}
				}
			}
		}
		// Slots and running attempts.
		perWorker, bgPerWorker := map[string]int{}, map[string]int{}
		for _, o := range running {
			if j := jobs[o.r.Task.Job]; j != nil && j.background {
				bgPerWorker[o.r.Worker]++
			} else {
				perWorker[o.r.Worker]++
			}
			j := jobs[o.r.Task.Job]
			if j == nil || j.js == nil {
				continue
			}
			// The live attempts of its partition (stale ones of an
			// earlier, stopped run of the stage may still drain).
			live, n := j.js.Live(o.r.Task)
			for _, a := range live[:n] {
				k := keyOf(o.r.Task)
				k.attempt = a
				if a != o.r.Task.Attempt() && running[k] != nil && running[k].r.Worker == o.r.Worker {
					fail("%s and attempt %d both live on %s", o.r.Task, a, o.r.Worker)
				}
			}
		}
		for _, w := range core.Workers() {
			if w.Free < 0 || w.Free > w.Slots {
				fail("worker %s: %d of %d slots free", w.ID, w.Free, w.Slots)
			}
			if bgPerWorker[w.ID] > BackgroundSlots {
				fail("worker %s: %d background attempts run there", w.ID, bgPerWorker[w.ID])
			}
			if busy := w.Slots - w.Free; busy != perWorker[w.ID] {
				fail("worker %s: %d slots busy, %d attempts run there", w.ID, busy, perWorker[w.ID])
			}
		}
		n, eligible := 0, 0
		for _, w := range core.Workers() {
			if w.ID != core.Reserved {
				eligible++
			}
			if !w.ExcludedUntil.IsZero() {
				n++
				if !now.Before(w.ExcludedUntil) {
					fail("worker %s reported excluded until %v at %v", w.ID, w.ExcludedUntil, now)
				}
			}
		}
		if n > eligible/2 {
			fail("%d of %d workers excluded", n, eligible)
		}
		if core.Running() != len(running) {
			fail("core runs %d attempts, the shell %d", core.Running(), len(running))
		}
		// Accepted results never change.
		for id, j := range jobs {
			for p, v := range j.accepted {
				if got := j.js.results[j.js.index[p]]; got != v {
					fail("job %d partition %d: result changed from %q to %v", id, p, v, got)
				}
			}
		}
	}
	advance := func() time.Time {
		now = now.Add(time.Duration(rng.IntN(120)) * time.Millisecond)
		return now
	}
	addWorker := func() {
		id := fmt.Sprintf("w%d", nextWorker)
		nextWorker++
		slots[id] = 1 + rng.IntN(3)
		workers = append(workers, id)
		check(core.AddWorker(advance(), id, slots[id]))
	}
	submit := func() {
		n := finals[rng.IntN(len(finals))]
		parts := allParts(n.NumPartitions)
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		parts = parts[:1+rng.IntN(len(parts))]
		id := nextJob
		nextJob++
		bg := rng.IntN(4) == 0
		jobs[id] = &jobState{parts: parts, accepted: map[int]string{}, background: bg}
		ds := core.Submit(advance(), id, &rdd.Job{Final: n, Partitions: parts, Background: bg})
		if cj := core.jobs[id]; cj != nil {
			jobs[id].js = cj.js
		}
		check(ds)
	}
	// end ends a running attempt: ok, fail or fetchfail, or (killed) the
	// cancellation or a success that came anyway.
	end := func(o *simRun, mayFail bool) {
		tk := o.r.Task
		delete(running, keyOf(tk))
		res := fmt.Sprintf("j%d.p%d#%d", tk.Job, tk.Partition(), tk.Attempt())
		var err error
		switch x := rng.IntN(100); {
		case o.killed && x < 70:
			err = ErrKilled
		case !mayFail:
		case x < 8:
			err = errors.New("boom")
		case x < 11 && tk.Spec.Dataset == counts.ID:
			err = &rdd.FetchFailedError{Shuffle: dep.ID, Map: rng.IntN(src.NumPartitions)}
		}
		var result any
		if err == nil && !tk.IsMap() {
			result = res
		}
		j := jobs[tk.Job]
		var was bool
		if j != nil && j.js != nil && !tk.IsMap() {
			was = j.js.done[tk.Partition()]
		}
		ds := core.TaskEnded(advance(), tk, o.r.Worker, result, err)
		if j != nil && j.js != nil && !tk.IsMap() && !was && j.js.done[tk.Partition()] {
			if o.killed {
				fail("killed %s accepted", tk)
			}
			if _, dup := j.accepted[tk.Partition()]; dup {
				fail("job %d partition %d accepted twice", tk.Job, tk.Partition())
			}
			j.accepted[tk.Partition()] = res
		}
		check(ds)
	}
	// pick chooses a running attempt to end; killed ones are picked less
	// often, so they linger as slow remote ones may.
	pick := func() *simRun {
		keys := slices.SortedFunc(mapsKeys(running), compareKeys)
		o := running[keys[rng.IntN(len(keys))]]
		if o.killed && rng.IntN(4) != 0 {
			o = running[keys[rng.IntN(len(keys))]]
		}
		return o
	}

	if core.Reserved != "" {
		slots["master"] = 1 + rng.IntN(2)
		check(core.AddWorker(now, "master", slots["master"]))
	}
	for range 1 + rng.IntN(4) {
		addWorker()
	}
	for range 1 + rng.IntN(3) {
		submit()
	}
	for step := 0; step < 400; step++ {
		switch x := rng.IntN(100); {
		case x < 30:
			check(core.Tick(advance()))
		case x < 80:
			if len(running) > 0 {
				end(pick(), true)
			}
		case x < 84 && len(workers) > 0:
			i := rng.IntN(len(workers))
			id := workers[i]
			workers = slices.Delete(workers, i, i+1)
			for k, o := range running {
				if o.r.Worker == id {
					lost = append(lost, o.r)
					delete(running, k)
				}
			}
			delete(excludedUntil, id)
			ds := core.LoseWorker(advance(), id)
			// A loss that leaves too few workers ends every exclusion.
			for _, w := range core.Workers() {
				if w.ExcludedUntil.IsZero() {
					delete(excludedUntil, w.ID)
				}
			}
			check(ds)
		case x < 88:
			addWorker()
		case x < 91 && len(lost) > 0:
			r := lost[rng.IntN(len(lost))]
			if ds := core.TaskEnded(advance(), r.Task, r.Worker, "late", nil); len(ds) > 0 {
				fail("late report of %s on lost %s decided %v", r.Task, r.Worker, ds)
			}
			check(nil)
		case x < 95:
			submit()
		case x < 96:
			ids := slices.Sorted(mapsKeys(jobs))
			id := ids[rng.IntN(len(ids))]
			if j := jobs[id]; !j.done && !j.cancelled {
				j.cancelled = true
				check(core.Cancel(advance(), id))
			}
		}
		if t.Failed() {
			return copies, kills, exclusions
		}
	}
	// Drain: enough workers, no more failures; every job must end.
	for len(workers) < 2 {
		addWorker()
	}
	for step := 0; ; step++ {
		pending := false
		for _, j := range jobs {
			pending = pending || (!j.done && !j.cancelled)
		}
		if !pending && len(running) == 0 {
			break
		}
		if step > 10000 {
			fail("jobs still running after the drain: %d attempts run, %d queued", core.Running(), core.Queued())
			return copies, kills, exclusions
		}
		if len(running) == 0 || rng.IntN(4) == 0 {
			check(core.Tick(advance()))
			if len(running) == 0 && pending {
				fail("jobs wait but nothing runs: %d queued", core.Queued())
				return copies, kills, exclusions
			}
			continue
		}
		end(pick(), false)
		if t.Failed() {
			return copies, kills, exclusions
		}
	}
	for id, j := range jobs {
		if !j.done && !j.cancelled {
			fail("job %d never ended", id)
		}
	}
	for _, w := range core.Workers() {
		if w.Free != w.Slots {
			fail("worker %s: %d of %d slots free at the end", w.ID, w.Free, w.Slots)
		}
	}
	return copies, kills, exclusions
}
