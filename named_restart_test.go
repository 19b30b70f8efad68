package dstream_test

import (
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/dstreamtest"
)

// namedCounts is graph A of the named-state tests: a running sum per key
// named "counts", checkpointed every interval, collected.
func namedCounts(h *dstreamtest.Harness[kv]) *dstreamtest.Collector[kv] {
	in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
	return dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 2).Checkpoint(sec).Name("counts"))
}

// sums is the naive reference: every key's sum of restartInput over the
// intervals times[from:to], each record's value through f.
func sums(times []time.Time, from, to int, f func(int) int, into map[string]int) map[string]int {
	out := maps.Clone(into)
	if out == nil {
		out = map[string]int{}
	}
	for _, t := range times[from:to] {
		for _, part := range restartInput(t) {
			for _, r := range part {
				out[r.Key] += f(r.Value)
			}
		}
	}
	return out
}

func asPairs(m map[string]int) string {
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, p(k, m[k]))
	}
	return fmt.Sprint(out)
}

// newestCheckpoint returns the index in times of the newest committed
// checkpoint of the state named name in folder dir.
func newestCheckpoint(t *testing.T, dir, name string, times []time.Time) int {
	t.Helper()
	store, err := checkpoint.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := checkpoint.Committed(t.Context(), store, "state/"+name+"/")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("committed checkpoints of %q: %v, %v; want one at least", name, dirs, err)
	}
	ms, err := strconv.ParseInt(path.Base(dirs[len(dirs)-1]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(times, func(at time.Time) bool { return at.UnixMilli() == ms })
	if i < 0 {
		t.Fatalf("checkpoint %s is of no interval run", dirs[len(dirs)-1])
	}
	return i
}

// A job whose state is named "counts" runs seven intervals with checkpoints,
// stops, and starts again on the same folder as another graph while the
// clock moved on to interval 10. A compatible graph resumes "counts" from
// its newest checkpoint: every interval after it is computed by the new
// graph (from the logged inputs), so the counts are the checkpoint's plus
// what the new graph adds. An incompatible one is refused at Start, naming
// the state and the reason.
func TestNamedStateResumesAcrossGraphChanges(t *testing.T) {
	identity := func(v int) int { return v }
	double := func(v int) int { return 2 * v }
	type graphB func(h *dstreamtest.Harness[kv]) (counts, other *dstreamtest.Collector[kv])
	tests := []struct {
		name    string
		master  string // "" local[2]
		hard    bool   // the first run stops hard (as if killed)
		unnamed bool   // graph A's state is unnamed
		allow   bool   // Config.AllowDroppedState
		b       graphB
		f       func(int) int // what B does to a record before "counts"
		other   string        // what the other collector must hold at the end: "all" a full running sum; "" nothing checked
		refused string        // a part of Start's error; "" resumes
	}{
		{name: "output added", f: identity, b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
			out := namedCounts(h)
			in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput) // a second, stateless reader
			return out, dstreamtest.Collect(dstream.Map(in, func(x kv) kv { return x }))
		}},
		{name: "map added before the state", f: double, hard: true, b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
			in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
			in = dstream.Map(in, func(x kv) kv { return p(x.Key, 2*x.Value) })
			return dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 2).Checkpoint(sec).Name("counts")), nil
		}},
		{name: "map added before the state, local-cluster", master: "local-cluster[2]", f: double, b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
			in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
			in = dstream.Map(in, func(x kv) kv { return p(x.Key, 2*x.Value) })
			return dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 2).Checkpoint(sec).Name("counts")), nil
		}},
		{name: "a second state", f: identity, other: "all", b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
			out := namedCounts(h)
			in := dstream.GeneratedStream(h.Ctx, "again", restartInput)
			return out, dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 2).Name("totals"))
		}},
		{name: "value type changed", refused: `state "counts": its record type changed from kv.Pair[string,int] to kv.Pair[string,int64]`,
			b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
				in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
				st := dstream.UpdateStateByKey(in, func(vs []int, s dstream.Opt[int64]) dstream.Opt[int64] { return s }, 2).Name("counts")
				dstreamtest.Collect(st)
				return nil, nil
			}},
		{name: "partition count changed", refused: `state "counts": its partitions changed from 2 to 3`,
			b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
				in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
				return dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 3).Name("counts")), nil
			}},
		{name: "named state gone", refused: `state "counts" (stream 3 updateStateByKey of kv.Pair[string,int]`,
			b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
				dstreamtest.Collect(dstream.GeneratedStream(h.Ctx, "replayable", restartInput))
				return nil, nil
			}},
		{name: "named state gone, allowed", allow: true, b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
			return nil, dstreamtest.Collect(dstream.GeneratedStream(h.Ctx, "replayable", restartInput))
		}},
		{name: "unnamed state, output added", unnamed: true, refused: "name every state stream (Stream.Name)",
			b: func(h *dstreamtest.Harness[kv]) (*dstreamtest.Collector[kv], *dstreamtest.Collector[kv]) {
				in := dstream.GeneratedStream(h.Ctx, "replayable", restartInput)
				out := dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 2).Checkpoint(sec))
				return out, dstreamtest.Collect(in)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := dstreamtest.Options{Master: tt.master, Config: func(c *dstream.Config) {
				c.CheckpointDir, c.AllowDroppedState = dir, tt.allow
			}}
			// A worker process of a local-cluster test runs the test again
			// from the top: one spawned by the second master builds graph B
			// only (its environment says so).
			var times []time.Time
			c := -1 // the interval of the newest checkpoint of "counts" before the restart
			if os.Getenv(graphBEnv) == "" {
				times, c = runGraphA(t, tt.unnamed, tt.hard, opts, dir)
			}
			if tt.master != "" {
				t.Setenv(graphBEnv, "1")
			}

			second := dstreamtest.New[kv](t, opts)
			counts, other := tt.b(second)
			if tt.refused != "" {
				err := second.Ctx.Start()
				if err == nil || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("Start = %v; want a refusal with %q", err, tt.refused)
				}
				t.Logf("refused: %v", err)
				return
			}
			second.Start()
			advanceTo(t, second, times[9])
			if counts != nil {
				resumed := sums(times, 0, c+1, identity, nil)
				for i := 7; i < 10; i++ {
					want := asPairs(sums(times, c+1, i+1, tt.f, resumed))
					if got := fmt.Sprint(dstreamtest.Sorted(counts.At(times[i]))); got != want {
						t.Errorf("resumed from the checkpoint of interval %d; interval %d = %s, want %s", c+1, i+1, got, want)
					}
				}
			}
			if tt.other == "all" {
				if got, want := fmt.Sprint(dstreamtest.Sorted(other.At(times[9]))), asPairs(sums(times, 0, 10, identity, nil)); got != want {
					t.Errorf("the new state at interval 10 = %s, want %s (rebuilt from the replayable input)", got, want)
				}
			}
			if other != nil && !other.Ran(times[9]) {
				t.Errorf("the new output did not run interval 10")
			}
			for i := range 7 {
				if counts != nil && counts.Ran(times[i]) {
					t.Errorf("the resumed job ran interval %d again; it had completed", i+1)
				}
			}
		})
	}
}

// graphBEnv, set, tells a worker process of a local-cluster test that its
// master runs graph B.
const graphBEnv = "DSTREAM_TEST_NAMED_GRAPH_B"

// runGraphA runs graph A (namedCounts, or its unnamed twin) on folder dir
// for seven intervals and stops it; it returns the ten intervals' times
// and the index of the newest checkpoint of "counts" (-1 if unnamed).
func runGraphA(t *testing.T, unnamed, hard bool, opts dstreamtest.Options, dir string) ([]time.Time, int) {
	t.Helper()
	first := dstreamtest.New[kv](t, opts)
	if unnamed {
		in := dstream.GeneratedStream(first.Ctx, "replayable", restartInput)
		dstreamtest.Collect(dstream.UpdateStateByKey(in, runningSum, 2).Checkpoint(sec))
	} else {
		namedCounts(first)
	}
	first.Start()
	var times []time.Time
	for range 7 {
		times = append(times, first.Tick())
	}
	for i := 7; i < 10; i++ {
		times = append(times, times[6].Add(time.Duration(i-6)*sec))
	}
	if err := first.Ctx.Stop(!hard); err != nil && !hard {
		t.Fatal(err)
	}
	if unnamed {
		return times, -1
	}
	return times, newestCheckpoint(t, dir, "counts", times)
}

// Name refuses what it cannot name: a stream without state, a bad name, a
// name taken.
func TestNamedStateGraphErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		build func(h *dstreamtest.Harness[kv])
		want  string
	}{
		{"no state", func(h *dstreamtest.Harness[kv]) {
			dstreamtest.Collect(h.In.Name("x"))
		}, "keeps no state to name"},
		{"bad name", func(h *dstreamtest.Harness[kv]) {
			dstreamtest.Collect(dstream.UpdateStateByKey(h.In, runningSum, 2).Name("1st"))
		}, `state name "1st"`},
		{"taken", func(h *dstreamtest.Harness[kv]) {
			dstreamtest.Collect(dstream.UpdateStateByKey(h.In, runningSum, 2).Name("c"))
			dstreamtest.Collect(dstream.CountByValueAndWindow(h.In, 2*sec, sec, 2).Name("c"))
		}, `two states named "c"`},
		{"window names its reductions", func(h *dstreamtest.Harness[kv]) {
			dstreamtest.Collect(dstream.CountByValueAndWindow(h.In, 2*sec, sec, 2).Name("c"))
			dstreamtest.Collect(dstream.UpdateStateByKey(h.In, runningSum, 2).Name("c.reduced"))
		}, `two states named "c.reduced"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := dstreamtest.New[kv](t, dstreamtest.Options{})
			tt.build(h)
			if err := h.Ctx.Start(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v; want an error with %q", err, tt.want)
			}
		})
	}
}
