package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dstream/dstream/cluster/clusterpb"
)

// TestHostLearnsSentManifests: the manifests a task carries are learned
// without a Manifests call when they come from the master the worker
// follows and start no later than what it knows; otherwise (another
// session, a gap, a delta of another base) the worker asks for what it
// lacks, and in every case it ends knowing exactly the master's manifests.
func TestHostLearnsSentManifests(t *testing.T) {
	const n, w = 40, 10
	ctx := context.Background()
	at := func(i int) int64 { return deltaZero + int64(i)*100 }
	srv := &deltaServer{log: windowLog(n, w, "a")}
	var calls atomic.Int64
	m := startMaster(t, MasterConfig{Manifests: func(q ManifestQuery) ([][]byte, error) {
		calls.Add(1)
		return srv.frames(q)
	}})
	// What the master's runner attaches (attachManifests' query).
	sentFor := func(session string, after, upTo int) sentManifests {
		from := int64(0) // after 0 is no interval: the frames start whole
		if after > 0 {
			from = at(after)
		}
		fs, err := srv.log.Frames(from, at(upTo), true, from)
		if err != nil {
			t.Fatal(err)
		}
		return sentManifests{session: session, after: at(after), frames: fs}
	}
	// Whole frames, which no delta base guards: only the session and the
	// gap checks stand between them and the worker.
	wholeFor := func(session string, after, upTo int) sentManifests {
		fs, err := srv.log.Frames(at(after), at(upTo), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		return sentManifests{session: session, after: at(after), frames: fs}
	}
	newFollower := func() (*Host, *learnProgram) {
		h, p := newLearner(t, m.addr)
		h.registered(m.Session(), m.addr)
		return h, p
	}
	learn := func(h *Host, upTo int, s sentManifests) {
		t.Helper()
		if err := h.learn(ctx, at(upTo), s); err != nil {
			t.Fatal(err)
		}
	}
	asked := func(want int64, what string) {
		t.Helper()
		if got := calls.Load(); got != want {
			t.Fatalf("%s: %d Manifests calls, want %d", what, got, want)
		}
	}

	// Asked once, then every later interval comes with its tasks.
	h, p := newFollower()
	learn(h, 5, sentManifests{})
	asked(1, "the first interval")
	for i := 6; i <= 20; i++ {
		learn(h, i, sentFor(m.Session(), i-1, i))
	}
	// Sent twice (two tasks of the interval): the second is a no-op.
	learn(h, 20, sentFor(m.Session(), 19, 20))
	// Frames that overlap what it knows (a stale hint): the known ones
	// are skipped, the chain of deltas still fits.
	learn(h, 23, sentFor(m.Session(), 18, 23))
	asked(1, "intervals sent with their tasks")
	wantLearned(t, "the follower", p, srv.log, 0, 23)

	// Another session's frames (a master this worker does not follow):
	// not learned; it asks its own.
	learn(h, 25, wholeFor("another-session", 23, 25))
	asked(2, "frames of another session")
	// A gap: the frames start after an interval it does not know.
	learn(h, 30, wholeFor(m.Session(), 27, 30))
	asked(3, "frames with a gap before them")
	wantLearned(t, "the follower", p, srv.log, 0, 30)

	// A delta whose base is not the manifest it learned last: it keeps
	// what fit and asks for the rest.
	bad := sentFor(m.Session(), 30, 33)
	bad.frames = bad.frames[1:] // starts with 32's delta, based on 31
	bad.after = at(30)
	learn(h, 33, bad)
	asked(4, "a delta of another base")
	wantLearned(t, "the follower", p, srv.log, 0, 33)

	// A worker that follows nobody yet takes no sent frames.
	h2, p2 := newLearner(t, m.addr)
	learn(h2, 10, sentFor(m.Session(), 0, 10))
	asked(5, "a worker not registered")
	wantLearned(t, "the new worker", p2, srv.log, 0, 10)

	// Garbage in a frame: a clear error, nothing learned past it.
	junk := sentFor(m.Session(), 33, 35)
	junk.frames[1] = []byte("not a manifest")
	if err := h.learn(ctx, at(35), junk); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Fatalf("a garbled frame: %v", err)
	}
}

// TestHostFollowsItsRegisteredMaster: while the worker tries another master
// of its list, the master it registered with stays the one its tasks read
// from and it learns from; a new master's answer is never learned into the
// old master's run.
func TestHostFollowsItsRegisteredMaster(t *testing.T) {
	srvA := &deltaServer{log: windowLog(10, 3, "a")}
	a := startMaster(t, MasterConfig{Manifests: srvA.frames})
	srvB := &deltaServer{log: windowLog(10, 3, "b")}
	b := startMaster(t, MasterConfig{Manifests: srvB.frames})
	h, _ := newLearner(t, a.addr+","+b.addr)
	if got := h.Master(); got != a.addr {
		t.Fatalf("before registering: master %s, want the first of the list %s", got, a.addr)
	}
	h.registered(b.Session(), b.addr)
	if got := h.Master(); got != b.addr {
		t.Fatalf("registered with B: master %s, want %s", got, b.addr)
	}
	// B's address now answers as A (B restarted as another process): the
	// worker does not learn A's manifests into B's run.
	h.following.Store(&follow{session: b.Session(), addr: a.addr})
	err := h.learnUpTo(context.Background(), deltaZero+500)
	if err == nil || !strings.Contains(err.Error(), "not the one this worker follows") {
		t.Fatalf("learning from another master process: %v", err)
	}
	if h.known != 0 {
		t.Fatalf("learned up to %d from a master it does not follow", h.known)
	}
}

// TestRunnerAttachesManifests: a task carries the frames of the intervals
// its worker has not learned as far as the runner knows, only after the
// worker's first task, and none past the bounds.
func TestRunnerAttachesManifests(t *testing.T) {
	var queries []ManifestQuery
	frames := 1
	r := NewRunner(RunnerConfig{Self: "master:1", Peers: NewPeers(testSecret, nil, nil), Logger: discardLogger(),
		Session: func() string { return "s1" },
		Manifests: func(q ManifestQuery) ([][]byte, error) {
			queries = append(queries, q)
			out := make([][]byte, frames)
			for i := range out {
				out[i] = []byte(fmt.Sprint(i))
			}
			return out, nil
		}})
	attach := func(worker string, t int64) *clusterpb.RunTaskRequest {
		req := &clusterpb.RunTaskRequest{}
		r.attachManifests(req, worker, t)
		return req
	}
	r.AddWorker("w1", 2)
	if req := attach("w1", 100); len(req.GetManifests()) != 0 || len(queries) != 0 {
		t.Fatalf("a worker that just joined got %d frames", len(req.GetManifests()))
	}
	r.learnedUpTo("w1", 100)
	if req := attach("w1", 100); len(req.GetManifests()) != 0 {
		t.Fatal("frames for an interval the worker knows")
	}
	req := attach("w1", 300)
	if len(req.GetManifests()) != 1 || req.GetManifestsAfter() != 100 || req.GetManifestsSession() != "s1" {
		t.Fatalf("got %d frames after %d of %q", len(req.GetManifests()), req.GetManifestsAfter(), req.GetManifestsSession())
	}
	if q := queries[len(queries)-1]; q != (ManifestQuery{After: 100, UpTo: 300, Deltas: true, Base: 100}) {
		t.Fatalf("query %+v", q)
	}
	frames = maxSentFrames + 1
	if req := attach("w1", 400); len(req.GetManifests()) != 0 {
		t.Fatal("more frames than a task carries")
	}
	frames = 1
	r.LoseWorker("w1")
	if req := attach("w1", 500); len(req.GetManifests()) != 0 {
		t.Fatal("frames for a lost worker's hint")
	}
}
