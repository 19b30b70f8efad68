package dstream

import (
	"context"
	"time"

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
