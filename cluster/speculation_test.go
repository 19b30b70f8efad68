package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
	"google.golang.org/grpc"
)

// countTasks is a worker's side of RunTask for count jobs over a dataset
// of two records per partition: it answers at once, except attempt 0 of
// partition slow, which runs until its call is cancelled.
type countTasks struct {
	addr      string
	slow      int
	mu        *sync.Mutex
	calls     *[]string // "addr p#a", shared by the workers
	cancelled chan string
}

func (c *countTasks) RunTask(ctx context.Context, req *clusterpb.RunTaskRequest) (*clusterpb.RunTaskResponse, error) {
	var spec rdd.TaskSpec
	if err := json.Unmarshal(req.GetSpec(), &spec); err != nil {
		return nil, err
	}
	c.mu.Lock()
	*c.calls = append(*c.calls, c.addr+" "+spec.String())
	c.mu.Unlock()
	if spec.Partition == c.slow && spec.Attempt == 0 {
		<-ctx.Done() // the master cancelled the call
		c.cancelled <- c.addr
		return nil, ctx.Err()
	}
	return &clusterpb.RunTaskResponse{Result: binary.AppendVarint(nil, 2)}, nil
}

// serveTasks serves tasks's RunTask on a loopback port until the test ends.
func serveTasks(t *testing.T, newTasks func(addr string) TaskRunner) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	clusterpb.RegisterPeerServer(srv, NewPeerServer(Stores{}, newTasks(lis.Addr().String())))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// A straggling task on one worker gets a copy on the other; the copy wins,
// and the master kills the original by cancelling its RunTask call, which
// the worker sees as its task's context cancelled. OnTask reports both.
// The straggler's worker is then excluded from placement for a while.
func TestRunnerSpeculation(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	cancelled := make(chan string, 1)
	newTasks := func(addr string) TaskRunner {
		return &countTasks{addr: addr, slow: 3, mu: &mu, calls: &calls, cancelled: cancelled}
	}
	w1, w2 := serveTasks(t, newTasks), serveTasks(t, newTasks)
	peers := NewPeers(nil, nil, nil)
	t.Cleanup(peers.Close)
	var evMu sync.Mutex
	var events []sched.TaskEvent
	r := NewRunner(RunnerConfig{
		Self: "127.0.0.1:1", Peers: peers, Logger: discardLogger(),
		Rebuildable: func(rdd.ID) bool { return true },
		Speculation: &sched.Speculation{Enabled: true, MinRuntime: 50 * time.Millisecond, Interval: 10 * time.Millisecond},
		OnTask:      func(e sched.TaskEvent) { evMu.Lock(); events = append(events, e); evMu.Unlock() },
	})
	r.AddWorker(w1, 2)
	r.AddWorker(w2, 2)
	bs := block.New(block.Options{MaxBytes: 1 << 20})
	rc, err := rdd.NewContext(rdd.Config{Runner: r, Blocks: bs, Shuffles: shuffle.New(bs), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := rdd.Parallelize(rc, []int{1, 2, 3, 4, 5, 6, 7, 8}, 4).Count(ctx)
	if err != nil || n != 8 {
		t.Fatalf("count = %d, %v; calls %v", n, err, calls)
	}
	var orig string
	select {
	case orig = <-cancelled:
	case <-ctx.Done():
		t.Fatalf("the straggler's call was never cancelled; calls %v", calls)
	}
	evMu.Lock()
	var copyOn, killedOn string
	for _, e := range events {
		if e.Task.Partition() != 3 {
			continue
		}
		switch {
		case e.Speculative && e.Err == nil:
			copyOn = e.Worker
		case e.Killed && e.Task.Attempt() == 0:
			killedOn = e.Worker
		}
	}
	if copyOn == "" || copyOn == orig || killedOn != orig || !slices.Contains([]string{w1, w2}, copyOn) {
		t.Fatalf("copy on %q, killed original on %q, straggler on %q; events %+v", copyOn, killedOn, orig, events)
	}
	evMu.Unlock()
	for _, w := range r.Workers() {
		if w.Free != w.Slots {
			t.Errorf("worker %s: %d of %d slots free", w.ID, w.Free, w.Slots)
		}
		if excluded := !w.ExcludedUntil.IsZero(); excluded != (w.ID == orig) {
			t.Errorf("worker %s: excluded until %v; want the straggler's worker (%s) excluded, and it alone", w.ID, w.ExcludedUntil, orig)
		}
	}
	// The straggler's worker takes no new task while it is excluded: the
	// next job (three partitions, none slow) runs on the other worker.
	mu.Lock()
	before := len(calls)
	mu.Unlock()
	if n, err := rdd.Parallelize(rc, []int{1, 2, 3, 4, 5, 6}, 3).Count(ctx); err != nil || n != 6 {
		t.Fatalf("second count = %d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range calls[before:] {
		if strings.HasPrefix(c, orig+" ") {
			t.Errorf("task %q ran on the excluded worker %s", c, orig)
		}
	}
}
