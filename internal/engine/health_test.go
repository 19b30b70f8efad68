package engine

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/cluster"
)

// want checks err against a prefix of its message ("" for nil).
func want(t *testing.T, what string, err error, prefix string) {
	t.Helper()
	switch {
	case prefix == "" && err != nil:
		t.Errorf("%s = %v, want nil", what, err)
	case prefix != "" && (err == nil || !strings.HasPrefix(err.Error(), prefix)):
		t.Errorf("%s = %v, want %q...", what, err, prefix)
	}
}

// TestMasterHealth walks a cluster master through its states on a manual
// clock: Ready needs a started, active master (workers or not: it is where
// they join), Live a loop that finishes intervals, but waiting for a worker
// while none is alive is no wedge.
func TestMasterHealth(t *testing.T) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	c := &Engine{cfg: Config{Clock: clk, BatchInterval: time.Second}, log: slog.New(slog.DiscardHandler)}
	c.cluster = &clusterRole{self: "10.0.0.1:7077"}
	want(t, "Ready before Start", c.Ready(), "not started yet")
	want(t, "Live before Start", c.Live(), "")

	r := &running{stopped: make(chan struct{})}
	c.state, c.run = stateRunning, r
	c.noteProgress()
	want(t, "Ready without workers", c.Ready(), "")
	clk.Advance(StallAfter + time.Minute)
	want(t, "Live without workers, long after", c.Live(), "")

	c.cluster.alive = []string{"10.0.0.2:7078"}
	want(t, "Ready with a worker", c.Ready(), "")
	want(t, "Live, nothing finished for 6m", c.Live(), "wedged: no interval finished in the 6m0s since the start")
	c.noteProgress() // a worker joined, or an interval finished
	clk.Advance(StallAfter)
	want(t, "Live, StallAfter after a move", c.Live(), "")
	clk.Advance(time.Second)
	want(t, "Live, past StallAfter", c.Live(), "wedged: no interval finished")

	c.state = stateStopped // Stop: draining
	want(t, "Ready while stopping", c.Ready(), "stopping")
	want(t, "Live while stopping", c.Live(), "")
	r.err = errors.New("interval 5 failed")
	close(r.stopped)
	want(t, "Live once stopped", c.Live(), "stopped: interval 5 failed")
}

// TestWorkerHealth: a worker is ready once it heartbeats and while it
// does; it is wedged only after StallAfter without a heartbeat.
func TestWorkerHealth(t *testing.T) {
	c := &Engine{cfg: Config{Clock: clock.Real{}, BatchInterval: time.Second}, log: slog.New(slog.DiscardHandler)}
	c.worker = &workerRole{env: cluster.WorkerEnv{Master: "dstream-master:7077", HealthListen: "0.0.0.0:8081"}}
	c.state, c.run = stateRunning, &running{stopped: make(chan struct{})}
	if got := c.HealthListen(); got != "0.0.0.0:8081" {
		t.Errorf("HealthListen() = %q, want the environment's", got)
	}
	want(t, "Ready before registering", c.Ready(), "not registered with master dstream-master:7077 yet")
	want(t, "Live before registering", c.Live(), "")
	for _, tc := range []struct {
		ago         time.Duration
		ready, live string
	}{
		{0, "", ""},
		{heartbeatSilence + time.Second, "no heartbeat to master dstream-master:7077 for ", ""},
		{StallAfter + time.Second, "no heartbeat", "wedged: no heartbeat to master dstream-master:7077 for 5m"},
	} {
		c.worker.beat.Store(time.Now().Add(-tc.ago).UnixNano())
		want(t, "Ready "+tc.ago.String()+" after a heartbeat", c.Ready(), tc.ready)
		want(t, "Live "+tc.ago.String()+" after a heartbeat", c.Live(), tc.live)
	}
}
