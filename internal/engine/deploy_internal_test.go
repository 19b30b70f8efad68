package engine

import (
	"log/slog"
	"testing"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster"
)

// A worker process that restarts at the same address registers anew before
// its old registration expires: it stays in the scheduler once, and the old
// registration's expiry does not remove the new one.
func TestRestartedWorkerAtTheSameAddress(t *testing.T) {
	peers := cluster.NewPeers(nil, nil, nil)
	defer peers.Close()
	cr := &clusterRole{self: "master:1", peers: peers, joined: make(chan struct{}, 1)}
	cr.runner = cluster.NewRunner(cluster.RunnerConfig{Self: cr.self, Peers: peers})
	c := &Engine{log: slog.New(slog.DiscardHandler), cfg: Config{Clock: clock.Real{}}}
	ev := func(kind cluster.EventKind, id string, inc uint64) cluster.Event {
		return cluster.Event{Kind: kind, Worker: cluster.WorkerInfo{ID: id, Incarnation: inc, Address: "10.0.0.5:7078", Slots: 2}}
	}
	cr.onEvent(c, ev(cluster.WorkerAdded, "w1", 1))
	cr.onEvent(c, ev(cluster.WorkerAdded, "w2", 2)) // restarted, same address
	cr.onEvent(c, ev(cluster.WorkerLost, "w1", 1))  // the old registration expires
	if len(cr.alive) != 1 || cr.alive[0] != "10.0.0.5:7078" {
		t.Errorf("alive = %v, want the address once", cr.alive)
	}
	var found bool
	for _, w := range cr.runner.Workers() {
		found = found || w.ID == "10.0.0.5:7078" && w.Slots == 2
	}
	if !found {
		t.Errorf("the restarted worker left the scheduler: %+v", cr.runner.Workers())
	}
	if got := cr.replicaTargets(2); len(got) != 1 {
		t.Errorf("replica targets %v: one worker holds one copy", got)
	}
	cr.onEvent(c, ev(cluster.WorkerLost, "w2", 2))
	if len(cr.alive) != 0 || len(cr.runner.Workers()) != 1 {
		t.Errorf("after the new registration is lost: alive %v, scheduler %+v", cr.alive, cr.runner.Workers())
	}
}
