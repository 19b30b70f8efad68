package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
	"google.golang.org/grpc"
)

// figuresJob builds, in rc, a shuffle of n pairs with distinct keys from 4
// map partitions into 3 reduce partitions. Every process builds it alike,
// so its datasets have the same IDs everywhere.
func figuresJob(rc *rdd.Context, n int) *rdd.Dataset[rdd.Pair[int, string]] {
	keys := make([]int, n)
	for i := range keys {
		keys[i] = i
	}
	pairs := rdd.Map(rdd.Parallelize(rc, keys, 4), func(i int) rdd.Pair[int, string] { return rdd.KV(i, fmt.Sprint("value ", i)) })
	return rdd.PartitionBy(pairs, rdd.Partitioner[int](rdd.NewHashPartitioner[int](3)))
}

// figuresProgram is a worker's program for figuresJob: its own datasets,
// and the job's lineage for every task.
type figuresProgram struct {
	rc  *rdd.Context
	lin *rdd.Lineage
}

func (p *figuresProgram) Graph() []graphspec.Node                    { return testGraph() }
func (p *figuresProgram) Datasets() *rdd.Context                     { return p.rc }
func (p *figuresProgram) Learn(*manifest.Interval) error             { return nil }
func (p *figuresProgram) Lineage(rdd.TaskSpec) (*rdd.Lineage, error) { return p.lin, nil }

// newDatasets returns a context with its own block and shuffle stores.
func newDatasets(t *testing.T, runner rdd.JobRunner) *rdd.Context {
	t.Helper()
	bs := block.New(block.Options{MaxBytes: 64 << 20})
	rc, err := rdd.NewContext(rdd.Config{Runner: runner, Blocks: bs, Shuffles: shuffle.New(bs), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// startFiguresWorker runs a worker's Host serving its Peer service (tasks
// from the master, buckets to the other worker) on a loopback port until
// the test ends, and returns its address.
func startFiguresWorker(t *testing.T, n int) string {
	t.Helper()
	rc := newDatasets(t, sched.NewLocal(sched.LocalConfig{}))
	prog := &figuresProgram{rc: rc, lin: rdd.IndexLineage(figuresJob(rc, n).Node())}
	h, err := NewHost(HostConfig{Master: "127.0.0.1:1", Program: prog, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	clusterpb.RegisterPeerServer(srv, NewPeerServer(Stores{Blocks: rc.Blocks(), Shuffles: rc.Shuffles()}, h))
	go srv.Serve(h.lis)
	t.Cleanup(func() {
		srv.Stop()
		h.peers.Close()
	})
	return h.Addr()
}

// A task run on a worker over gRPC reports its figures with its result, and
// the master's OnTask has them: every map task read and wrote its 250
// records, the reduce tasks read and returned the 1000 between them, and
// shuffle bytes were written and read (a bucket fetched from the other
// worker counts its encoded bytes, one read where it was written its size
// in the store, so the sums differ).
func TestRemoteTaskFigures(t *testing.T) {
	const n = 1000
	w1, w2 := startFiguresWorker(t, n), startFiguresWorker(t, n)
	peers := NewPeers(nil, nil, nil)
	t.Cleanup(peers.Close)
	var mu sync.Mutex
	var events []sched.TaskEvent
	r := NewRunner(RunnerConfig{
		Self: "127.0.0.1:1", Peers: peers, Logger: discardLogger(),
		Rebuildable: func(rdd.ID) bool { return true },
		Speculation: &sched.Speculation{},
		OnTask:      func(e sched.TaskEvent) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	r.AddWorker(w1, 2)
	r.AddWorker(w2, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	xs, err := figuresJob(newDatasets(t, r), n).Collect(ctx)
	if err != nil || len(xs) != n {
		t.Fatalf("collect: %d records, %v", len(xs), err)
	}
	mu.Lock()
	defer mu.Unlock()
	var maps, results int
	var read, written, shufRead, shufWritten int64
	for _, e := range events {
		f := e.Figures
		if e.Err != nil || !slices.Contains([]string{w1, w2}, e.Worker) {
			t.Errorf("task %s on %s: %v", e.Task, e.Worker, e.Err)
			continue
		}
		if e.Task.IsMap() {
			maps++
			if f.RecordsRead != n/4 || f.RecordsWritten != n/4 || f.ShuffleReadBytes != 0 || f.ShuffleWriteBytes <= 0 {
				t.Errorf("map task %d figures %+v, want %d records read and written, and shuffle bytes written", e.Task.Partition(), f, n/4)
			}
			shufWritten += f.ShuffleWriteBytes
			continue
		}
		results++
		if f.RecordsRead != f.RecordsWritten || f.ShuffleReadBytes <= 0 || f.ShuffleWriteBytes != 0 {
			t.Errorf("result task %d figures %+v, want its records read returned, and shuffle bytes read", e.Task.Partition(), f)
		}
		read += f.RecordsRead
		written += f.RecordsWritten
		shufRead += f.ShuffleReadBytes
	}
	if maps != 4 || results != 3 || read != n || written != n || shufRead <= 0 || shufWritten <= 0 {
		t.Errorf("%d map and %d result tasks; result tasks read %d records and returned %d, want %d; shuffle bytes read %d, written %d",
			maps, results, read, written, n, shufRead, shufWritten)
	}
}

// A worker whose task runner reports no figures (one that never runs the
// task through a lineage, as an older worker would) leaves them not
// measured on the master.
func TestRemoteTaskFiguresNotReported(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	w := serveTasks(t, func(addr string) TaskRunner {
		return &countTasks{addr: addr, slow: -1, mu: &mu, calls: &calls}
	})
	peers := NewPeers(nil, nil, nil)
	t.Cleanup(peers.Close)
	var evMu sync.Mutex
	var events []sched.TaskEvent
	r := NewRunner(RunnerConfig{
		Self: "127.0.0.1:1", Peers: peers, Logger: discardLogger(),
		Rebuildable: func(rdd.ID) bool { return true },
		Speculation: &sched.Speculation{},
		OnTask:      func(e sched.TaskEvent) { evMu.Lock(); events = append(events, e); evMu.Unlock() },
	})
	r.AddWorker(w, 2)
	n, err := rdd.Parallelize(newDatasets(t, r), []int{1, 2, 3, 4}, 2).Count(t.Context())
	if err != nil || n != 4 {
		t.Fatalf("count = %d, %v", n, err)
	}
	evMu.Lock()
	defer evMu.Unlock()
	if len(events) != 2 {
		t.Fatalf("%d task events, want 2", len(events))
	}
	for _, e := range events {
		if e.Worker != w || e.Figures != rdd.NotMeasured {
			t.Errorf("task %s on %s: figures %+v, want not measured", e.Task, e.Worker, e.Figures)
		}
	}
}
