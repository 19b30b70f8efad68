package dstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dstream/dstream/health"
	"github.com/dstream/dstream/manifest"
)

// Start validates the graph, opens the receivers and starts cutting
// intervals. The first interval ends at the first multiple of the batch
// interval after now (or, resuming from a checkpoint folder, after the last
// completed interval). With Config.HealthListen (or, in a worker, its
// environment's address) it first binds the probes' endpoint, which answers
// while Start resumes and until the context stops; an address that cannot be
// bound fails Start.
func (c *Context) Start() error {
	if err := c.listenHealth(); err != nil {
		return err
	}
	if err := c.e.Start(); err != nil {
		if c.e.Done() == nil { // the context never ran (not: started already)
			c.closeHealth(true)
		}
		return err
	}
	// A context that stops on its own (a failed interval) stops serving too.
	go func() {
		<-c.e.Done()
		c.closeHealth(false)
	}()
	return nil
}

// Run starts the context and blocks until it stops: on SIGINT or SIGTERM it
// stops gracefully (every record already received is processed and output),
// and it returns when Stop is called from elsewhere.
func (c *Context) Run() error {
	sig, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return c.RunUntil(sig)
}

// RunUntil starts the context, waits until ctx is done (or the context is
// stopped elsewhere), then stops gracefully.
func (c *Context) RunUntil(ctx context.Context) error {
	started := make(chan error, 1)
	go func() { started <- c.Start() }()
	select {
	case err := <-started:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		// A standby master waits in Start for the lease: stop the wait.
		_ = c.Stop(false)
		if err := <-started; err != nil && !errors.Is(err, ErrStopped) {
			return err
		}
		return nil
	}
	select {
	case <-ctx.Done():
		return c.Stop(true)
	case <-c.Done():
		return c.Stop(false) // it stopped on its own: the error it stopped with
	}
}

// Stop stops the context. A graceful stop stops the receivers, waits until
// every record they received has been cut into an interval, processed and
// output, then returns; otherwise intervals not yet processed are abandoned.
// Stop is idempotent; it returns the first error of the shutdown (a failed
// interval's *BatchError, or what Config.OnBatchError returned).
func (c *Context) Stop(graceful bool) error {
	err := c.e.Stop(graceful)
	c.closeHealth(false)
	return err
}

// Done returns a channel that is closed once the context has stopped, by
// Stop or on its own (a failed interval, see Config.OnBatchError); Stop then
// returns the error it stopped with. Before Start it returns nil, a channel
// that never closes.
func (c *Context) Done() <-chan struct{} { return c.e.Done() }

// AwaitBatch blocks until interval t has been processed, the context stops,
// or ctx is done. Tests use it after advancing a manual clock.
func (c *Context) AwaitBatch(ctx context.Context, t time.Time) error { return c.e.AwaitBatch(ctx, t) }

// StartTime returns the time before the first interval: interval k ends at
// StartTime() + k*BatchInterval. It is zero until Start (or Materialize)
// and safe to call from any goroutine.
func (c *Context) StartTime() time.Time { return c.e.Timeline().Zero() }

// Manifest returns the manifest of interval t, while the context remembers
// it (as long as the longest remember duration in the graph).
func (c *Context) Manifest(t time.Time) (*manifest.Interval, bool) { return c.e.Manifest(t) }

// Materialize makes interval m.Time known to a context that does not run its
// own intervals: a worker, given the master's manifests. After it, every
// stream's At(m.Time) builds the interval's datasets exactly as the context
// that wrote m did, reading the input blocks and checkpoints m names from
// this context's block store (where they must be, or the tasks that read
// them fail naming the block). Materialize the intervals a window or state
// reaches back to as well (as long as the graph remembers). The graph must be
// complete; a context that materialized a manifest cannot be started.
func (c *Context) Materialize(m *manifest.Interval) error { return c.e.Materialize(m) }

// IsWorker reports whether this process is a worker of a cluster: its
// Context serves the master's tasks and runs no intervals of its own (no
// receiver listens, no output runs here but per-partition ones).
func (c *Context) IsWorker() bool { return c.e.IsWorker() }

// ClusterAddr returns the address of the master's cluster port (where
// workers register and peers fetch), or "" when the deployment is local[N].
func (c *Context) ClusterAddr() string { return c.e.ClusterAddr() }

// CheckpointFailures returns how many durable state checkpoints have failed
// (the state then keeps its lineage until the next one commits).
func (c *Context) CheckpointFailures() int64 { return c.e.CheckpointFailures() }

// ReceiverWaits returns how many times a receiver's block found the input
// memory full and waited for processed intervals to free it: how often
// backpressure held the receivers back.
func (c *Context) ReceiverWaits() int64 { return c.e.ReceiverWaits() }

// ReceivedRecords returns how many records the receivers have taken in.
func (c *Context) ReceivedRecords() int64 { return c.e.ReceivedRecords() }

// DroppedRecords returns how many records the receivers dropped as
// malformed (a socket source's line over its limit), each with a warning in
// the log; they are not counted in ReceivedRecords.
func (c *Context) DroppedRecords() int64 { return c.e.DroppedRecords() }

// Probes. A Context answers package health's Checker: Live for /healthz
// (Kubernetes' livenessProbe: a failure restarts the process) and Ready for
// /readyz (readinessProbe). Config.HealthListen, or a worker's
// `--health-listen`, serves them on their own port, apart from the web UI's
// data; the UI (package ui) serves them too.

// Live returns nil unless the process should be restarted: the context has
// stopped, or its loop is wedged. A master's interval loop is wedged when it
// has not finished an interval for engine.StallAfter (5 minutes, or ten
// batch intervals if longer; one is due every interval, empty or not); waiting for a worker while
// none is alive is not a wedge. A worker's loop is its heartbeat to its
// master. Before Start, while starting and during a graceful stop, it is
// live.
func (c *Context) Live() error { return c.e.Live() }

// Ready returns nil when the process does its job, and otherwise why not:
// a master (or local job) once started as the active master (a standby
// waiting for the lease of its checkpoint location is not ready); a worker
// while registered with its master and heartbeating.
func (c *Context) Ready() error { return c.e.Ready() }

// LeaseEpoch returns the epoch of the checkpoint location's lease this
// master acts with (Config.LeaseTTL): it grows with every change of
// master. It is 0 in a standby still waiting, in a worker, and without a
// lease.
func (c *Context) LeaseEpoch() uint64 { return c.e.LeaseEpoch() }

// ScratchCheckpoint reports what this master's temporary checkpoint folder
// holds, for a job with state and no checkpoint location in a cluster: the
// bytes it keeps in memory (at most a quarter of Config.MemoryBytes) and the
// objects that did not fit, written as files. ok is false without such a
// folder (local[N], a checkpoint location, no state, a worker) and before
// its first write.
func (c *Context) ScratchCheckpoint() (heldBytes int64, spilledObjects int, ok bool) {
	return c.e.ScratchCheckpoint()
}

// HealthAddr returns the address the probes' endpoint listens on (with the
// port chosen for port 0), or "" when there is none.
func (c *Context) HealthAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.health == nil {
		return ""
	}
	return c.health.Addr()
}

// listenHealth binds the probes' endpoint, once: a worker's address comes
// from its environment, anyone else's from Config.HealthListen.
func (c *Context) listenHealth() error {
	addr := c.cfg.HealthListen
	if c.IsWorker() {
		addr = c.e.HealthListen()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr == "" || c.health != nil {
		return nil
	}
	ep, err := health.Listen(addr, c, c.log)
	if err != nil {
		return fmt.Errorf("dstream: %w", err)
	}
	c.health = ep
	c.log.Info("dstream: probes served", "addr", ep.Addr(), "live", health.LivePath, "ready", health.ReadyPath)
	return nil
}

// closeHealth stops serving the probes; with forget, a later Start binds
// them again (its Start failed).
func (c *Context) closeHealth(forget bool) {
	c.mu.Lock()
	ep := c.health
	if forget {
		c.health = nil
	}
	c.mu.Unlock()
	if ep != nil {
		_ = ep.Close()
	}
}
