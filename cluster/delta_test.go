package cluster

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/sched"
)

// learnProgram records the manifests its host makes it learn.
type learnProgram struct {
	*figuresProgram
	mu      sync.Mutex
	learned map[int64]*manifest.Interval
	order   []int64
}

func (p *learnProgram) Learn(m *manifest.Interval) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.learned == nil {
		p.learned = map[int64]*manifest.Interval{}
	}
	if n := len(p.order); n > 0 && p.order[n-1] >= m.Time {
		return fmt.Errorf("learned %d after %d", m.Time, p.order[n-1])
	}
	p.learned[m.Time] = m
	p.order = append(p.order, m.Time)
	return nil
}

func (p *learnProgram) Reset() ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.learned, p.order = nil, nil
	return nil, nil
}

func (p *learnProgram) Drop([]string) {}

const deltaZero = 1_700_000_000_000

// windowLog is a master's manifest log of intervals 1..n (100 ms each) of a
// state stream that lists its last w intervals' datasets, a window's
// reductions: each interval one entry more, one less, and (every fifth)
// one whose lineage is cut. salt makes another master's manifests differ.
func windowLog(n, w int, salt string) *manifest.Log {
	var l manifest.Log
	for i := 1; i <= n; i++ {
		t := deltaZero + int64(i)*100
		m := &manifest.Interval{Version: manifest.Version, Zero: deltaZero, Time: t,
			Inputs: []manifest.Input{{Stream: 1, Blocks: []manifest.Block{{Key: fmt.Sprintf("input_1_%s%d", salt, i), Records: i, Bytes: 10, Locations: []string{"w1", "w2"}}}}}}
		for j := max(1, i-w); j < i; j++ {
			m.Checkpoints = append(m.Checkpoints, manifest.Checkpoint{Stream: 3, Dataset: manifest.ID{Op: 3, Time: deltaZero + int64(j)*100, Seq: 1},
				Name: "reduce" + salt, Partitions: 2, Locations: []string{"w1", "w2"}, Kept: j%5 != 0 || i-j < 2})
		}
		l.Add(m)
	}
	return &l
}

// deltaServer counts the frames a master's log serves, whole and deltas.
type deltaServer struct {
	log          *manifest.Log
	mu           sync.Mutex
	whole, delta int
}

func (s *deltaServer) frames(q ManifestQuery) ([][]byte, error) {
	fs, err := s.log.Frames(q.After, q.UpTo, q.Deltas, q.Base)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if m, _, _, _ := manifest.Decode(f); m != nil {
			s.whole++
		} else {
			s.delta++
		}
	}
	return fs, err
}

func (s *deltaServer) counts() (whole, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.whole, s.delta
}

func newLearner(t *testing.T, master string) (*Host, *learnProgram) {
	t.Helper()
	rc := newDatasets(t, sched.NewLocal(sched.LocalConfig{}))
	prog := &learnProgram{figuresProgram: &figuresProgram{rc: rc}}
	h, err := NewHost(HostConfig{Master: master, Slots: 1, Secret: testSecret, Program: prog, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.lis.Close()
		h.peers.Close()
	})
	return h, prog
}

// wantLearned checks that prog learned exactly the full manifests of
// intervals in (from, to] of log, each as its full frame reads.
func wantLearned(t *testing.T, who string, prog *learnProgram, log *manifest.Log, from, to int) {
	t.Helper()
	prog.mu.Lock()
	defer prog.mu.Unlock()
	for i := from + 1; i <= to; i++ {
		tm := deltaZero + int64(i)*100
		m, _ := log.Get(tm)
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := manifest.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := prog.learned[tm]; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s learned interval %d as\n%+v\nwant\n%+v", who, i, got, want)
		}
	}
}

// TestHostLearnsDeltas: a worker that learns every interval as it comes
// (deltas after the first), one that joins late (one answer, chained
// deltas) and one that rejoins a master of another session (its base is
// not the new master's: full frames first) all learn exactly the full
// manifests; a delta that does not fit what the worker knows is not
// applied, and the worker asks again for full frames.
func TestHostLearnsDeltas(t *testing.T) {
	const n, w = 40, 12
	a := &deltaServer{log: windowLog(n, w, "")}
	ma := startMaster(t, MasterConfig{Manifests: a.frames})
	ctx := context.Background()

	// Interval by interval: the first frame whole, then deltas.
	steady, sp := newLearner(t, ma.addr)
	for i := 1; i <= n; i++ {
		if err := steady.learnUpTo(ctx, deltaZero+int64(i)*100); err != nil {
			t.Fatal(err)
		}
	}
	wantLearned(t, "the steady worker", sp, a.log, 0, n)
	if whole, delta := a.counts(); whole != 1 || delta != n-1 {
		t.Fatalf("served %d whole frames and %d deltas, want 1 and %d", whole, delta, n-1)
	}

	// Late, in two answers: the second starts from the first's last.
	late, lp := newLearner(t, ma.addr)
	for _, upTo := range []int{n / 2, n} {
		if err := late.learnUpTo(ctx, deltaZero+int64(upTo)*100); err != nil {
			t.Fatal(err)
		}
	}
	wantLearned(t, "the late worker", lp, a.log, 0, n)

	// A master of another session with other manifests at the same
	// times: a worker that learned from A and asks B before it rejoined
	// (the race Host.rejoin ends) gets B's manifests whole first.
	b := &deltaServer{log: windowLog(n+10, w, "b")}
	mb := startMaster(t, MasterConfig{Manifests: b.frames})
	moved, mp := newLearner(t, mb.addr)
	moved.known, moved.learned, moved.learnedFrom = steady.known, steady.learned, steady.learnedFrom
	if err := moved.learnUpTo(ctx, deltaZero+int64(n+10)*100); err != nil {
		t.Fatal(err)
	}
	wantLearned(t, "the worker that moved", mp, b.log, n, n+10)
	if whole, _ := b.counts(); whole != 1 {
		t.Fatalf("B served %d whole frames to a worker whose base is A's, want 1", whole)
	}
	// Rejoined (known reset): everything B remembers, the same manifests.
	if _, err := moved.rejoin(ctx, mb.Session(), mb.addr); err != nil {
		t.Fatal(err)
	}
	if err := moved.learnUpTo(ctx, deltaZero+int64(n+10)*100); err != nil {
		t.Fatal(err)
	}
	wantLearned(t, "the rejoined worker", mp, b.log, 0, n+10)

	// A master that sends a delta relative to another manifest than the
	// one asked for: the worker does not apply it, and asks for full
	// frames.
	bad := &deltaServer{log: a.log}
	mbad := startMaster(t, MasterConfig{Manifests: func(q ManifestQuery) ([][]byte, error) {
		if q.Deltas && q.Base > 0 {
			q.Base -= 100 // the interval before the worker's
		}
		return bad.frames(q)
	}})
	wrong, wp := newLearner(t, mbad.addr)
	for _, upTo := range []int{5, n} {
		if err := wrong.learnUpTo(ctx, deltaZero+int64(upTo)*100); err != nil {
			t.Fatal(err)
		}
	}
	wantLearned(t, "the worker of a bad master", wp, a.log, 0, n)
	if whole, delta := bad.counts(); whole != 1+n-5 || delta != 4+n-5 {
		t.Fatalf("the bad master served %d whole frames and %d deltas, want %d and %d (an answer of deltas refused, then whole ones)", whole, delta, 1+n-5, 4+n-5)
	}
}
