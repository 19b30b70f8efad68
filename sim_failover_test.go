package dstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/simnet"
)

// A master failover in the simulated cluster: a standalone master and a
// standby with the same checkpoint folder, on hosts of their own, and
// three workers given both addresses. The active master's host crashes
// (its network is gone and its process releases nothing: the lease
// lapses) while intervals run; the standby takes the lease over in virtual
// time, resumes from the metadata log, the workers move to it, and the job
// goes on. The queue stays empty (a queue is not replayable across a new
// master process); the generated input is. Every interval is output, each
// equal to the fault-free run's: the new master's once, the old master's
// whatever it finished before the crash.

// simFailover runs the failover: the active master's host crashes at
// crashAt after the zero (once interval awaitFirst has completed, when it
// is positive), under faults (nil: none). It returns the outputs of the
// first and of the second master, and the last interval the first had
// completed (all its outputs recorded) when its host crashed.
func simFailover(t *testing.T, intervals int, crashAt time.Duration, awaitFirst int, faults *simFaults, log *ringLog, dir string) (first, second *simOutputs, completed int) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	net := simnet.New(simnet.Config{Latency: faults.latencyFunc()})
	cfg := Config{Master: "cluster", BatchInterval: simBatch, CheckpointInterval: 3 * simBatch, Logger: logger, Out: io.Discard,
		CheckpointDir: dir, Insecure: true}
	cl := &simCluster{net: net, faults: faults, cfg: cfg, log: logger, workers: map[string]*simWorker{}}
	master := func(host string, out *simOutputs) *Context {
		mc := cfg
		mc.Logger = logger.With("process", host)
		mc.ClusterListen = host + ":7077"
		mc.sim = &engine.Sim{Net: cl.host(host), OpenStore: faults.openStore()}
		c, err := NewContext(mc)
		if err != nil {
			t.Fatal(err)
		}
		simGraph(c, NewQueue[string](), out)
		return c
	}
	first, second = newSimOutputs(), newSimOutputs()
	m1 := master("master", first)
	if err := m1.Start(); err != nil {
		t.Fatal(err)
	}
	m2 := master("standby", second)
	started := make(chan error, 1)
	go func() { started <- m2.Start() }()
	cl.mu.Lock()
	cl.spawned = cluster.SpawnConfig{Master: "master:7077,standby:7077", Slots: 2}
	cl.mu.Unlock()
	for i := range simStandaloneWorkers {
		if err := cl.start(fmt.Sprintf("w%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	if faults != nil {
		cl.inject(m1.StartTime(), stop)
	}
	defer func() {
		close(stop)
		cl.stopAll()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(intervals)*simBatch)
	defer cancel()
	if awaitFirst > 0 {
		if err := m1.AwaitBatch(ctx, m1.StartTime().Add(time.Duration(awaitFirst)*simBatch)); err != nil {
			t.Fatalf("the first master did not complete interval %d: %v", awaitFirst, err)
		}
	}
	time.Sleep(time.Until(m1.StartTime().Add(crashAt)))
	first.mu.Lock()
	for k, outs := range first.at {
		if len(outs) == len(simOutputNames) {
			completed = max(completed, k)
		}
	}
	first.mu.Unlock()
	cl.log.Info("sim: the active master's host crashes", "host", "master")
	net.Crash("master")
	m1.e.Crash()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		m1.Stop(false)
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("the standby's Start: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the standby never took over")
	}
	last := m2.StartTime().Add(time.Duration(intervals) * simBatch)
	if err := m2.AwaitBatch(ctx, last); err != nil {
		t.Errorf("the new master: interval %d never completed: %v", intervals, err)
	}
	if err := m2.Stop(false); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stop: %v", err)
	}
	<-stopped
	return first, second, completed
}

// compareFailover reports every interval that neither master output, or
// whose output differs from want's, any the new master output twice, and
// any it ran again though the first had completed it (before the
// interval the first was running when it crashed: that one, logged as
// started, may run again).
func compareFailover(t *testing.T, want, first, second *simOutputs, completed, intervals int) {
	t.Helper()
	for k := 1; k <= intervals; k++ {
		if second.times[k] > 0 {
			t.Errorf("interval %d was output %d more times by the new master", k, second.times[k])
		}
		got := second.at[k]
		if len(got) == 0 {
			got = first.at[k]
		} else if k < completed {
			t.Errorf("interval %d ran again on the new master, though the first completed it", k)
		}
		for _, name := range simOutputNames {
			if g, w := got[name], want.at[k][name]; g != w {
				t.Errorf("interval %d %s:\n got %s\nwant %s", k, name, g, w)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(first.at[k])) {
			if g, w := first.at[k][name], want.at[k][name]; g != w {
				t.Errorf("the first master's interval %d %s:\n got %s\nwant %s", k, name, g, w)
			}
		}
	}
}

// simOutputNames are simGraph's outputs.
var simOutputNames = []string{"eventtime", "reduceByKey", "state", "window", "window-inv"}

func TestSimulatedMasterFailover(t *testing.T) {
	const intervals = 14
	var want *simOutputs
	synctest.Test(t, func(t *testing.T) {
		want = simRun{master: "local[2]", intervals: intervals, log: newRingLog(10), noQueue: true}.run(t)
	})
	for _, tc := range []struct {
		name   string
		after  int
		offset time.Duration
	}{
		{"between intervals", 5, 20 * time.Millisecond},
		{"mid-interval", 6, simBatch / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newRingLog(3000)
			dir := simDir(t)
			defer watchBubble(tc.name).Stop()
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("the log's end:\n%s", log)
					}
				}()
				crashAt := time.Duration(tc.after)*simBatch + tc.offset
				first, second, completed := simFailover(t, intervals, crashAt, tc.after, nil, log, dir)
				if completed < tc.after {
					t.Fatalf("the first master completed %d intervals before the crash, want at least %d", completed, tc.after)
				}
				compareFailover(t, want, first, second, completed, intervals)
				t.Logf("the first master completed %d intervals; the new master output %d", completed, len(second.at))
			})
		})
	}
}
