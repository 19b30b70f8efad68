package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
)

// deltaWorker is a worker's engine with one state stream, which builds
// nothing of its own: what it holds comes from the manifests it learns.
func deltaWorker(t *testing.T) (*Engine, *Series[int]) {
	t.Helper()
	e := newTestEngine(t, Config{BatchInterval: time.Second})
	e.worker = &workerRole{}
	s := NewSeries(e, "state", time.Second, func(at time.Time) (*rdd.Dataset[int], error) {
		return rdd.Parallelize(e.rctx, []int{int(at.Unix() % 7)}, 2), nil
	}, nil)
	s.MarkState(2, "")
	return e, s
}

// seriesState describes everything a state stream holds, to compare two
// processes.
func seriesState(s *Series[int]) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, ms := range slices.Sorted(maps.Keys(s.datasets)) {
		ds := s.datasets[ms]
		fmt.Fprintf(&b, "dataset %d %s checkpointed=%v kept=%v durable=%v locations=", ms, ds.ID(), ds.Checkpointed(), ds.Kept(), ds.Durable())
		for p := range ds.NumPartitions() {
			fmt.Fprintf(&b, "%v", ds.Node().Locations(p))
		}
		b.WriteString("\n")
	}
	for _, ms := range slices.Sorted(maps.Keys(s.keptAt)) {
		fmt.Fprintf(&b, "keptAt %d %q\n", ms, s.keptAt[ms])
	}
	for _, ms := range slices.Sorted(maps.Keys(s.durable)) {
		fmt.Fprintf(&b, "durable %d %q\n", ms, s.durable[ms])
	}
	return b.String()
}

// TestLearnChangedIsLearn: a worker that learns each interval from the
// entries that changed (LearnChanged, as its host does with deltas) holds
// exactly what one that learns the whole manifests holds, interval after
// interval: a window's entries coming and going, lineage cut, holders lost
// and datasets built by the worker's own tasks in between.
func TestLearnChangedIsLearn(t *testing.T) {
	const zero, n, window = 1_700_000_000_000, 45, 12
	whole, ws := deltaWorker(t)
	delta, ds := deltaWorker(t)
	var prev *manifest.Interval
	for i := 1; i <= n; i++ {
		tm := int64(zero + i*1000)
		m := &manifest.Interval{Version: manifest.Version, Zero: zero, Time: tm}
		for j := max(1, i-window); j < i; j++ {
			locs := []string{"w1", "w2"}
			if i > 20 && j < 20 {
				locs = []string{"", "w2"} // w1 was lost at 20
			}
			m.Checkpoints = append(m.Checkpoints, manifest.Checkpoint{Stream: ws.OpID(), Dataset: manifest.ID{Op: ws.OpID(), Time: int64(zero + j*1000), Seq: 1},
				Name: "state", Partitions: 2, Locations: locs, Kept: j%5 != 0 || i-j < 3})
		}
		if err := (workerProgram{whole}).Learn(m); err != nil {
			t.Fatal(err)
		}
		var err error
		if prev == nil {
			err = workerProgram{delta}.Learn(m)
		} else {
			d, derr := manifest.Diff(prev, m)
			if derr != nil {
				t.Fatal(derr)
			}
			err = workerProgram{delta}.LearnChanged(m, d.Checkpoints)
		}
		if err != nil {
			t.Fatal(err)
		}
		prev = m
		if i%3 == 0 {
			// A task of the interval builds the stream's dataset of an
			// earlier one in both.
			at := time.UnixMilli(int64(zero + (i-1)*1000))
			for _, e := range []*Engine{whole, delta} {
				e.worker.gen.Lock()
				_, err := e.nodes[0].NodeAt(at)
				e.worker.gen.Unlock()
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if a, b := seriesState(ws), seriesState(ds); a != b {
			t.Fatalf("after interval %d, the worker that learned whole manifests holds\n%s\nthe one that learned what changed\n%s", i, a, b)
		}
	}
	if st := seriesState(ws); !strings.Contains(st, "checkpointed=true") || !strings.Contains(st, "keptAt") {
		t.Fatalf("the test reached no cut or kept dataset:\n%s", st)
	}
}
