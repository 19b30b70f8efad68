package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// learnProgram is a worker's program that records the intervals it learns,
// in order, and builds no lineage: its tasks fail once learned.
type learnProgram struct {
	rc      *rdd.Context
	mu      sync.Mutex
	learned []int64
}

var errNoLineage = errors.New("test program: no lineage")

func (p *learnProgram) Graph() []graphspec.Node { return testGraph() }
func (p *learnProgram) Datasets() *rdd.Context  { return p.rc }
func (p *learnProgram) Learn(m *manifest.Interval) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.learned = append(p.learned, m.Time)
	return nil
}
func (p *learnProgram) Lineage(rdd.TaskSpec) (*rdd.Lineage, error) { return nil, errNoLineage }

func (p *learnProgram) times() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.learned)
}

// frames is a master's Manifests for intervals every second up to last.
func testFrames(t *testing.T, last int64) func(after, upTo int64) ([][]byte, error) {
	t.Helper()
	var all [][]byte
	for tm := int64(1000); tm <= last; tm += 1000 {
		b, err := (&manifest.Interval{Version: manifest.Version, Time: tm}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b)
	}
	return func(after, upTo int64) ([][]byte, error) {
		var out [][]byte
		for i, b := range all {
			if tm := int64(i+1) * 1000; tm > after && tm <= upTo {
				out = append(out, b)
			}
		}
		return out, nil
	}
}

// A worker learns the manifests a task carries without asking the master,
// when they come from its master's session and start no later than what it
// knows; otherwise it asks. Either way it learns every interval once, in
// order.
func TestHostLearnsSentManifests(t *testing.T) {
	serve := testFrames(t, 6000)
	var asked atomic.Int32
	tm := startMaster(t, MasterConfig{Manifests: func(after, upTo int64) ([][]byte, error) {
		asked.Add(1)
		return serve(after, upTo)
	}})
	prog := &learnProgram{rc: newDatasets(t, sched.NewLocal(sched.LocalConfig{}))}
	h, err := NewHost(HostConfig{Master: tm.addr, Slots: 1, Secret: testSecret, Program: prog, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if ev := tm.next(t); ev.Kind != WorkerAdded {
		t.Fatalf("event %v, want added", ev.Kind)
	}
	w := h.worker.Load()
	select {
	case <-w.Registered():
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not register")
	}
	peers := NewPeers(testSecret, nil, nil)
	t.Cleanup(peers.Close)
	sent := func(after, upTo int64) [][]byte {
		f, _ := serve(after, upTo)
		return f
	}
	for _, c := range []struct {
		name    string
		time    int64
		session string // "" : the master's
		after   int64
		frames  [][]byte
		asked   int32 // Manifests calls so far
		learned []int64
	}{
		{"carried from the start", 2000, "", 0, sent(0, 2000), 0, []int64{1000, 2000}},
		{"another session's: asks", 3000, "another", 2000, sent(2000, 3000), 1, []int64{1000, 2000, 3000}},
		{"a gap before them: asks", 5000, "", 4000, sent(4000, 5000), 2, []int64{1000, 2000, 3000, 4000, 5000}},
		{"some known already", 6000, "", 3000, sent(3000, 6000), 2, []int64{1000, 2000, 3000, 4000, 5000, 6000}},
		{"all known", 6000, "", 0, sent(0, 6000), 2, []int64{1000, 2000, 3000, 4000, 5000, 6000}},
		{"none carried, all known", 4000, "", 0, nil, 2, []int64{1000, 2000, 3000, 4000, 5000, 6000}},
	} {
		spec, err := json.Marshal(rdd.TaskSpec{Dataset: rdd.ID{Op: 2, Time: c.time}})
		if err != nil {
			t.Fatal(err)
		}
		session := c.session
		if session == "" {
			session = tm.Session()
		}
		req := &clusterpb.RunTaskRequest{Spec: spec, Manifests: c.frames, ManifestsAfter: c.after, ManifestsSession: session}
		var resp *clusterpb.RunTaskResponse
		err = peers.call(ctx, h.Addr(), func(pc clusterpb.PeerClient) error {
			var err error
			resp, err = pc.RunTask(ctx, req)
			return err
		})
		if err != nil {
			t.Fatalf("%s: RunTask: %v", c.name, err)
		}
		if got := resp.GetFailure().GetMessage(); got != errNoLineage.Error() {
			t.Errorf("%s: task failure %q, want %q (after learning)", c.name, got, errNoLineage)
		}
		if got := asked.Load(); got != c.asked {
			t.Errorf("%s: the worker asked the master %d times, want %d", c.name, got, c.asked)
		}
		if got := prog.times(); !slices.Equal(got, c.learned) {
			t.Errorf("%s: learned %v, want %v", c.name, got, c.learned)
		}
	}
}

// The runner attaches to a task the manifests its worker has not learned
// as far as it knows: from the start, then after the latest interval a
// task it ran succeeded at; none once the worker knows the task's
// interval, none beyond maxSentFrames, and from the start again once the
// worker left and joined again.
func TestRunnerAttachesManifests(t *testing.T) {
	serve := testFrames(t, 40_000)
	session := "s1"
	r := NewRunner(RunnerConfig{Self: "127.0.0.1:1", Peers: NewPeers(nil, nil, nil), Logger: discardLogger(),
		Manifests: serve, Session: func() string { return session }})
	const w = "127.0.0.1:2"
	r.AddWorker(w, 1)
	frames := func(after, upTo int64) [][]byte {
		f, _ := serve(after, upTo)
		return f
	}
	check := func(name string, time, wantAfter int64, want [][]byte) {
		t.Helper()
		req := &clusterpb.RunTaskRequest{}
		r.attachManifests(req, w, time)
		if req.GetManifestsAfter() != wantAfter || len(req.GetManifests()) != len(want) {
			t.Errorf("%s: after %d with %d frames, want after %d with %d", name, req.GetManifestsAfter(), len(req.GetManifests()), wantAfter, len(want))
		}
		for i := range want {
			if i < len(req.GetManifests()) && string(req.GetManifests()[i]) != string(want[i]) {
				t.Errorf("%s: frame %d differs", name, i)
			}
		}
		if len(want) > 0 && req.GetManifestsSession() != session {
			t.Errorf("%s: session %q, want %q", name, req.GetManifestsSession(), session)
		}
	}
	check("from the start", 2000, 0, frames(0, 2000))
	r.learnedUpTo(w, 2000)
	check("after what it learned", 3000, 2000, frames(2000, 3000))
	check("its interval known", 2000, 0, nil)
	check("too many", 2000+maxSentFrames*1000+1000, 0, nil)
	r.LoseWorker(w)
	r.AddWorker(w, 1)
	check("joined again", 3000, 0, frames(0, 3000))
	session = ""
	check("no session yet", 3000, 0, nil)
}
