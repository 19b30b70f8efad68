package engine

import (
	"errors"
	"fmt"
	"time"
)

// Health: what a process's probes ask (the root's Context.Live and Ready,
// served by package health). A master's loop moves when it starts, when the
// runner finishes an interval (one is due every batch interval, empty or
// not, so a stuck generator shows too: the runner runs dry), and when a
// worker joins (intervals waiting for one can run); noteProgress stamps
// each. A worker's loop is its
// heartbeat (workerProgram.BlockStats stamps each).

// StallAfter is how long the interval loop may go without moving, or a
// worker without heartbeating, before Live calls it wedged: at least this,
// and at least ten batch intervals. It is long on purpose: a liveness
// failure restarts the process, which costs a master the job's progress
// since its last checkpoint, so only a loop stuck beyond doubt fails it.
const StallAfter = 5 * time.Minute

// heartbeatSilence is how long a worker may go without heartbeating
// before Ready says it is not in touch with its master (its heartbeats
// are every cluster.DefaultHeartbeatInterval; the master declares it lost
// after two seconds without one).
const heartbeatSilence = 10 * time.Second

// noteProgress stamps the interval loop's last move.
func (c *Engine) noteProgress() { c.progressAt.Store(c.cfg.Clock.Now().UnixNano()) }

// stallAfter is the engine's StallAfter.
func (c *Engine) stallAfter() time.Duration { return max(StallAfter, 10*c.cfg.BatchInterval) }

// lifecycle returns the engine's state and, once started, its run.
func (c *Engine) lifecycle() (int, *running) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.run
}

// Ready returns nil when the process can do its job, and otherwise why
// not: a master (or local job) once started as the active master (a
// standby waiting for the lease is not ready: a Service in front of two
// masters routes workers to the active one), workers or not; a worker once
// registered with its master and heartbeating.
func (c *Engine) Ready() error {
	state, r := c.lifecycle()
	switch {
	case state == stateNew:
		return errors.New("not started yet")
	case state == stateStandby:
		return c.standbyReady()
	case state == stateStopped || r.stopping.Load():
		return errors.New("stopping")
	}
	if w := c.worker; w != nil {
		beat := w.beat.Load()
		if beat == 0 {
			return fmt.Errorf("not registered with master %s yet", w.env.Master)
		}
		if silent := time.Since(time.Unix(0, beat)); silent > heartbeatSilence {
			return fmt.Errorf("no heartbeat to master %s for %v (registering again)", w.env.Master, silent.Round(time.Second))
		}
		return nil
	}
	return nil
}

// Live returns nil unless the process is stopped or its loop wedged: a
// master whose interval loop has not finished an interval for StallAfter (not counting waits for a worker when none is alive), or a
// worker that registered but has not heartbeated for StallAfter. A process
// still starting (a master resuming from its checkpoints) or stopping
// gracefully is live.
func (c *Engine) Live() error {
	state, r := c.lifecycle()
	switch {
	case state == stateNew, state == stateStandby:
		return nil
	case state == stateStopped && r == nil:
		return errors.New("stopped before it started")
	case state == stateStopped:
		select {
		case <-r.stopped:
		default:
			return nil // stopping
		}
		if err := r.stopErr(); err != nil {
			return fmt.Errorf("stopped: %w", err)
		}
		return errors.New("stopped")
	}
	limit := c.stallAfter()
	if w := c.worker; w != nil {
		if beat := w.beat.Load(); beat != 0 {
			if silent := time.Since(time.Unix(0, beat)); silent > limit {
				return fmt.Errorf("wedged: no heartbeat to master %s for %v", w.env.Master, silent.Round(time.Second))
			}
		}
		return nil
	}
	if cr := c.cluster; cr != nil {
		cr.mu.Lock()
		alive := len(cr.alive)
		cr.mu.Unlock()
		if alive == 0 {
			return nil // waiting for a worker is not a wedge
		}
	}
	since := c.cfg.Clock.Now().Sub(time.Unix(0, c.progressAt.Load()))
	if since > limit {
		r.mu.Lock()
		queued, done := r.lastQueued, r.lastDone
		r.mu.Unlock()
		if done.IsZero() {
			return fmt.Errorf("wedged: no interval finished in the %v since the start (last queued %d)", since.Round(time.Second), queued.UnixMilli())
		}
		return fmt.Errorf("wedged: no interval finished for %v (last finished %d, last queued %d)",
			since.Round(time.Second), done.UnixMilli(), queued.UnixMilli())
	}
	return nil
}

// HealthListen returns where a worker serves its probes (its
// environment's cluster.EnvHealthListen), "" in a master.
func (c *Engine) HealthListen() string {
	if c.worker == nil {
		return ""
	}
	return c.worker.env.HealthListen
}
