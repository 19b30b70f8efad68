package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
)

// The interval loop. Start opens the receivers (or places them on workers)
// and starts two goroutines: generate, the job generator, which at every
// interval end allocates the received blocks to the interval
// (received.Tracker), feeds queue and file inputs, and queues the interval;
// and runBatches, the runner, which runs queued intervals one at a time, in
// order (runBatch: the manifest, every output operation, the state streams'
// FinishInterval, the metadata log's completion record, then forgetting
// what no window or state needs). Stop ends them, gracefully (every record
// received is processed and output first) or at once.

// batch is one interval cut by the generator and waiting to run.
type batch struct {
	time      time.Time
	submitted time.Time
	records   int64
}

// running is the state of a started context.
type running struct {
	ctx        context.Context // cancelled by a hard stop
	cancel     context.CancelFunc
	recvCancel context.CancelFunc
	recvDone   sync.WaitGroup
	genCancel  context.CancelFunc
	genDone    chan struct{}
	batches    chan batch
	runnerDone chan struct{}
	stopped    chan struct{}
	// stopping is set by the first Stop; a later one waits on stopped (a
	// channel, not a sync.Once's mutex: a wait testing/synctest sees as
	// durable, so virtual time goes on for what the first Stop waits on).
	stopping atomic.Bool

	errMu sync.Mutex
	err   error // why the context stopped on its own (a failed interval)

	mu          sync.Mutex
	receiving   bool // receivers still running
	lastQueued  time.Time
	lastDone    time.Time
	drainTarget time.Time // graceful stop: the last interval to generate
	doneCond    *sync.Cond
}

// RunCtx is the context jobs run under.
func (c *Engine) RunCtx() context.Context {
	if c.run == nil {
		return context.Background()
	}
	return c.run.ctx
}

// Start validates the graph, opens the receivers and starts cutting
// intervals. The first interval ends at the first multiple of the batch
// interval after now.
func (c *Engine) Start() error {
	err := c.start()
	if err != nil && c.lease != nil {
		c.mu.Lock()
		running := c.state == stateRunning
		c.mu.Unlock()
		if !running {
			c.releaseLease()
		}
	}
	return err
}

// start is Start.
func (c *Engine) start() error {
	c.mu.Lock()
	switch c.state {
	case stateRunning:
		c.mu.Unlock()
		return errors.New("dstream: context already started")
	case stateStopped:
		c.mu.Unlock()
		return ErrStopped
	}
	if c.materialized {
		c.mu.Unlock()
		return errors.New("dstream: a context that materialized manifests does not run its own intervals")
	}
	if c.graphErr != nil {
		err := c.graphErr
		c.mu.Unlock()
		return fmt.Errorf("dstream: %w", err)
	}
	if len(c.outputs) == 0 {
		c.mu.Unlock()
		return errors.New("dstream: no output operations registered: add Print, SaveAsTextFiles or ForeachRDD")
	}
	PropagateRemember(c.nodes, c.KeepsLineage())
	c.mu.Unlock()
	if c.worker != nil {
		return c.startWorker()
	}
	// A master with a checkpoint location acts only while it holds its
	// lease: a standby waits here (leader.go).
	if err := c.awaitLease(); err != nil {
		return fmt.Errorf("dstream: %w", err)
	}
	if c.cluster != nil {
		if err := c.startCluster(); err != nil {
			return fmt.Errorf("dstream: %w", err)
		}
	}
	for _, in := range c.cutters {
		if ch, ok := in.(startChecker); ok {
			if err := ch.check(context.Background()); err != nil {
				return fmt.Errorf("dstream: %w", err)
			}
		}
	}
	for _, op := range c.outputs {
		if op.Open != nil {
			if err := op.Open(); err != nil {
				return fmt.Errorf("dstream: %s: %w", op.Name, err)
			}
		}
	}
	if c.cluster != nil && !c.cluster.dep.standalone {
		if err := c.placeReceivers(); err != nil {
			c.stopCluster()
			return fmt.Errorf("dstream: %w", err)
		}
	} else {
		for i, in := range c.inputs {
			if err := in.open(); err != nil {
				c.closeOpened(i)
				return fmt.Errorf("dstream: %w", err)
			}
		}
	}
	c.limitProcessMemory()
	now := c.cfg.Clock.Now()
	tl := c.tl.Start(now)
	if c.cfg.CheckpointDir != "" {
		var err error
		tl, err = c.resume(context.Background(), now)
		if err == nil {
			err = c.appendEpoch(context.Background())
		}
		if err != nil {
			if c.cluster != nil {
				c.stopCluster()
			}
			c.closeOpened(len(c.inputs))
			return fmt.Errorf("dstream: %w", err)
		}
	}
	r := &running{genDone: make(chan struct{}), runnerDone: make(chan struct{}), stopped: make(chan struct{}), receiving: true}
	r.doneCond = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.batches = make(chan batch, c.cfg.MaxPendingBatches)
	c.mu.Lock()
	if err := c.holding(); err != nil {
		// The lease lapsed while the master resumed.
		c.mu.Unlock()
		if c.cluster != nil {
			c.stopCluster()
		}
		c.closeOpened(len(c.inputs))
		return err
	}
	c.tl = tl
	c.run = r
	c.seedManifests()
	c.state = stateRunning
	c.stopHeapProfile = profileHeap("master", c.log)
	c.mu.Unlock()

	if err := c.startRateControl(); err != nil {
		return fmt.Errorf("dstream: %w", err)
	}
	recvCtx, recvCancel := context.WithCancel(r.ctx)
	r.recvCancel = recvCancel
	for _, in := range c.inputs {
		r.recvDone.Add(1)
		go func() {
			defer r.recvDone.Done()
			ri, _ := in.(*ReceiverInput)
			if ri != nil {
				ri.active.Store(true)
				defer ri.active.Store(false)
			}
			if err := in.receive(recvCtx); err != nil && !errors.Is(err, context.Canceled) {
				c.log.Error("receiver failed", "stream", in.OpID(), "err", err)
				c.bus.Post(listener.ReceiverError{Stream: int(in.OpID()), Err: err})
				if ri != nil {
					ri.failed(err, c.cfg.Clock.Now())
				}
			}
		}()
	}
	c.noteProgress()
	genCtx, genCancel := context.WithCancel(r.ctx)
	r.genCancel = genCancel
	go c.generate(genCtx)
	go c.runBatches()
	st := c.blocks.Stats()
	c.log.Info("dstream started", "master", c.cfg.Master, "batch", c.cfg.BatchInterval, "inputs", len(c.inputs), "outputs", len(c.outputs),
		"memory", c.cfg.MemoryBytes, "store", st.MaxBytes, "max_input", st.MaxInputBytes, "max_pinned", st.MaxPinnedBytes)
	return nil
}

// closeOpened releases receivers 0..n-1 that were opened by a failed Start.
func (c *Engine) closeOpened(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, in := range c.inputs[:n] {
		_ = in.receive(ctx)
	}
}

// generate is the job generator: at each interval boundary (plus slack) it
// cuts the interval, allocating the received blocks to it, and queues it.
func (c *Engine) generate(ctx context.Context) {
	r := c.run
	defer close(r.genDone)
	tl := c.Timeline()
	for t := tl.First(); ; t = tl.Next(t) {
		if err := c.cfg.Clock.WaitUntil(ctx, t.Add(c.cfg.Slack)); err != nil {
			return
		}
		if err := c.holding(); err != nil {
			// The lease lapsed (this master was paused, or cut off from
			// the store): another may act; cut nothing more.
			c.fence(err)
			return
		}
		c.tracker.Allocate(t)
		for _, in := range c.cutters {
			if err := in.cut(ctx, t); err != nil {
				if ctx.Err() == nil {
					// The interval cannot be formed: stop, saying why,
					// rather than wait for ever without intervals.
					c.stopWith(c.cfg.NewBatchError(t, -1, "input", err))
				}
				return
			}
		}
		n := c.tracker.Records(t) + c.offsetRecords(t)
		c.noteRecords(t)
		b := batch{time: t, submitted: c.cfg.Clock.Now(), records: n}
		c.bus.Post(listener.BatchSubmitted{Batch: listener.BatchInfo{Time: t, Records: n, SubmissionTime: b.submitted}})
		select {
		case r.batches <- b:
		case <-ctx.Done():
			return
		}
		r.mu.Lock()
		r.lastQueued = t
		target := r.drainTarget
		r.mu.Unlock()
		if !target.IsZero() && !t.Before(target) {
			return
		}
	}
}

// runBatches runs queued intervals one after another, in order.
func (c *Engine) runBatches() {
	r := c.run
	defer func() {
		close(r.runnerDone)
		r.mu.Lock()
		r.doneCond.Broadcast()
		r.mu.Unlock()
	}()
	for b := range r.batches {
		if r.ctx.Err() != nil {
			continue // hard stop: drain without running
		}
		c.runBatch(b)
		r.mu.Lock()
		r.lastDone = b.time
		r.doneCond.Broadcast()
		r.mu.Unlock()
		c.noteProgress()
	}
}

// finishInterval runs every state stream's FinishInterval for interval t,
// in graph order, and returns their errors in that order. One after
// another, in a cluster too. A keep mostly runs no job (the interval's
// output pinned its partitions: rdd.PinOnCompute); when it does, its tasks
// pin partitions where the interval's jobs computed them, and a task finds
// its partition's worker free only when no other keep's task holds that
// worker's slot. Run
// at once (the fourth session did, to overlap their round trips), two
// streams' keeps took each other's slots, so a task went to the other
// worker and computed the partition again from its lineage: 5-20 ms an
// interval of WordCount at 500K records instead of under 1 ms
// (BENCHMARKS.md, fifth session).
func (c *Engine) finishInterval(t time.Time) []error {
	var errs []error
	for _, n := range c.nodes {
		if n.Checkpoints() {
			errs = append(errs, n.FinishInterval(t))
		}
	}
	return errs
}

func (c *Engine) runBatch(b batch) {
	info := listener.BatchInfo{Time: b.time, Records: b.records, SubmissionTime: b.submitted}
	info.StartTime = c.cfg.Clock.Now()
	info.SchedulingDelay = info.StartTime.Sub(b.submitted)
	c.bus.Post(listener.BatchStarted{Batch: info})
	c.measureStart() // measure this interval's shuffles only (memory.go)
	m := c.manifestOf(b.time)
	c.manifests.Add(m)
	c.metaStarted(m)
	var failed error
	for i, op := range c.outputs {
		start := c.cfg.Clock.Now()
		c.curOutput.Store(&runningOutput{t: b.time, op: i})
		err := op.Run(b.time)
		c.curOutput.Store(nil)
		if err != nil {
			info.FailedOutputs++
			if failed == nil {
				failed = c.cfg.NewBatchError(b.time, i, op.Name, err)
			}
			c.log.Error("interval failed", "time", b.time.UnixMilli(), "output", op.Name, "err", err)
		}
		c.bus.Post(listener.OutputOpCompleted{Time: b.time, OutputOp: i, Name: op.Name, Duration: c.cfg.Clock.Now().Sub(start), Err: err})
	}
	for _, err := range c.finishInterval(b.time) {
		if err != nil {
			c.log.Error("state checkpoint failed", "time", b.time.UnixMilli(), "err", err)
			if failed == nil {
				failed = c.cfg.NewBatchError(b.time, -1, "state checkpoint", err)
			}
		}
	}
	if failed == nil {
		if err := c.observeEventTimes(b.time); err != nil {
			failed = c.cfg.NewBatchError(b.time, -1, "event time", err)
		}
	}
	if failed != nil {
		info.Err = failed
	}
	c.metaCompleted(b.time, failed != nil)
	c.measureEnd(c.tracker.Bytes(b.time))
	c.clearOld(b.time)
	c.resizeInput()
	info.EndTime = c.cfg.Clock.Now()
	info.ProcessingTime = info.EndTime.Sub(info.StartTime)
	info.TotalDelay = info.EndTime.Sub(b.time)
	c.bus.Post(listener.BatchCompleted{Batch: info})
	if failed != nil && c.run.ctx.Err() == nil {
		// (An interval cut short by a hard stop is abandoned, not failed.)
		c.batchFailed(b.time, failed)
	}
}

// batchFailed asks Config.OnBatchError what to do with a failed interval and,
// unless it says carry on, stops the context with the error: the intervals
// queued after it are not run.
func (c *Engine) batchFailed(t time.Time, failed error) {
	err := failed
	if h := c.cfg.OnBatchError; h != nil {
		err = h(failed)
	}
	if err == nil {
		c.log.Warn("interval failed; OnBatchError lets the job carry on", "time", t.UnixMilli(), "err", failed)
		return
	}
	c.stopWith(err)
}

// stopWith stops the context with err, which Run, RunUntil and Stop return:
// the runner skips what is queued, and a graceful Stop in progress ends its
// drain.
func (c *Engine) stopWith(err error) {
	r := c.run
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	c.log.Error("stopping: an interval failed", "err", err)
	r.cancel()
	go c.Stop(false)
}

// Done returns a channel that is closed once the context has stopped, by
// Stop or on its own (a failed interval, see Config.OnBatchError); Stop then
// returns the error it stopped with. Before Start it returns nil, a channel
// that never closes.
func (c *Engine) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run == nil {
		return nil
	}
	return c.run.stopped
}

// stopErr is the error the context stopped with, if it stopped on its own.
func (r *running) stopErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// clearOld forgets what no window or state needs any more after interval t:
// generated datasets, their blocks and shuffles, and input blocks.
func (c *Engine) clearOld(t time.Time) {
	for _, n := range c.nodes {
		n.Forget(t)
	}
	// An input's blocks live as long as its stream remembers: as long as
	// any consumer may recompute from them (propagateRemember).
	for _, in := range c.blockInputs() {
		for _, key := range c.tracker.Forget(in.OpID(), t.Add(-in.RememberDuration())) {
			c.blocks.Remove(key)
		}
	}
	c.manifests.Forget(t.Add(-c.MaxRemember()).UnixMilli())
	rules := make([]rdd.ForgetRule, len(c.outputs))
	for i, op := range c.outputs {
		rules[i] = rdd.ForgetRule{Op: op.ID, UpTo: t.UnixMilli()}
	}
	c.rctx.Forget(rules...)
}

// Stop stops the context. A graceful stop stops the receivers, waits until
// every record they received has been cut into an interval, processed and
// output, then returns; otherwise intervals not yet processed are abandoned.
// Stop is idempotent; it returns the first error of the shutdown.
func (c *Engine) Stop(graceful bool) error {
	c.mu.Lock()
	state := c.state
	c.state = stateStopped
	c.mu.Unlock()
	if state == stateStandby {
		// Start waits for the lease: end the wait, then clean up as
		// before a start.
		c.lease.cancel()
		<-c.lease.settled
		state = stateNew
	}
	if state == stateNew {
		if c.cluster != nil {
			c.stopCluster()
		}
		c.bus.Stop()
		c.closeStores() // Start may have opened some before it failed
		return c.blocks.Close()
	}
	r := c.run
	if r == nil {
		return nil // stopped before it ran, and stopped again
	}
	if r.stopping.Swap(true) {
		if !graceful {
			// A hard stop during a graceful one (a second signal): the
			// intervals not yet processed are abandoned.
			r.cancel()
		}
		<-r.stopped
		return r.stopErr()
	}
	func() {
		defer close(r.stopped)
		if graceful && c.cluster != nil {
			watched := make(chan struct{})
			defer close(watched)
			go c.watchStop(r, watched)
		}
		if graceful {
			// 1. Stop receiving; receivers flush their last blocks.
			r.recvCancel()
			r.recvDone.Wait()
			// 2. Let the generator cut intervals until every block is allocated.
			//    That is the first interval boundary at or after now: every
			//    block was cut at or before now.
			now := c.cfg.Clock.Now()
			target := c.Timeline().Containing(now)
			r.mu.Lock()
			r.drainTarget = target
			drained := !r.lastQueued.Before(target)
			r.mu.Unlock()
			if !drained {
				select {
				case <-r.genDone:
				case <-r.ctx.Done():
				}
			}
		} else {
			r.cancel()
			r.recvCancel()
			r.recvDone.Wait()
		}
		r.genCancel()
		<-r.genDone
		close(r.batches)
		<-r.runnerDone
		if graceful {
			c.ckWG.Wait() // state checkpoints in flight are committed
		}
		r.cancel()
		c.ckWG.Wait()
		// A barrier: reprotect adds to protecting under c.mu, and only
		// while r.ctx is not done; past it, no add races the Wait below.
		c.mu.Lock()
		//lint:ignore SA2001 the empty critical section is the barrier
		c.mu.Unlock()
		c.protecting.Wait()
		if c.cluster != nil {
			if graceful {
				c.cluster.releaseWorkers(c.log, c.handoverWait())
			}
			c.stopCluster()
		}
		c.releaseLease() // nothing runs any more: a standby may take over
		c.closeCheckpoints()
		c.stopRateControl()
		c.bus.Stop()
		if c.worker != nil {
			// The host stops serving (the run's context is done): no task
			// or fetch still runs when the store's files go.
			c.worker.stopReceivers()
			<-c.worker.hostDone
			if c.worker.stopProfile != nil {
				c.worker.stopProfile()
			}
		}
		if c.stopHeapProfile != nil {
			c.stopHeapProfile()
		}
		c.closeStores() // no task runs any more
		if err := c.blocks.Close(); err != nil {
			c.log.Warn("could not delete the spill folder", "err", err)
		}
		c.log.Info("dstream stopped", "graceful", graceful)
	}()
	return r.stopErr()
}

// noWorkerGrace is how long a graceful stop of a cluster's master waits
// for a worker to join when none is alive and intervals still wait to run.
const noWorkerGrace = 3 * time.Second

// ErrNoWorkers is the error of a graceful stop that abandoned intervals
// because no worker was alive to run them.
var ErrNoWorkers = errors.New("dstream: no worker alive to run the intervals left")

// watchStop watches a cluster master's graceful stop until done is closed:
// while no worker is alive, it says what the stop waits for, and after
// noWorkerGrace without one it abandons the intervals left (they run again
// when the master restarts on its checkpoint folder), so a stop never waits
// for ever for workers that are gone.
func (c *Engine) watchStop(r *running, done <-chan struct{}) {
	cr := c.cluster
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var since time.Time // when the cluster was last seen without workers
	for {
		select {
		case <-done:
			return
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		cr.mu.Lock()
		n := len(cr.alive)
		cr.mu.Unlock()
		r.mu.Lock()
		lastDone, lastQueued := r.lastDone, r.lastQueued
		r.mu.Unlock()
		if n > 0 || !lastDone.Before(lastQueued) {
			since = time.Time{} // a worker, or nothing waiting for one
			continue
		}
		now := time.Now()
		if since.IsZero() {
			since = now
			c.log.Warn("stopping: intervals wait for a worker to run their tasks, and no worker is alive; waiting for one to join (a second signal stops at once)",
				"last_completed", lastDone.UnixMilli(), "last_cut", lastQueued.UnixMilli(), "wait", noWorkerGrace)
			continue
		}
		if now.Sub(since) < noWorkerGrace {
			continue
		}
		err := fmt.Errorf("%w: the stop abandoned the intervals after %d (cut up to %d) when no worker joined within %v; a master restarted on the same checkpoint folder runs them",
			ErrNoWorkers, lastDone.UnixMilli(), lastQueued.UnixMilli(), noWorkerGrace)
		c.log.Error("stopping: no worker alive; abandoning the intervals left", "err", err)
		r.errMu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.errMu.Unlock()
		r.cancel()
		return
	}
}

// AwaitBatch blocks until interval t has been processed, the context stops,
// or ctx is done. Tests use it after advancing a manual clock.
func (c *Engine) AwaitBatch(ctx context.Context, t time.Time) error {
	r := c.run
	if r == nil {
		return errors.New("dstream: context not started")
	}
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.doneCond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.lastDone.Before(t) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-r.runnerDone:
			return ErrStopped
		default:
		}
		r.doneCond.Wait()
	}
	return nil
}

// StartTime returns the time before the first interval: interval k ends at
// StartTime() + k*BatchInterval. It is zero until Start (or Materialize)
// and safe to call from any goroutine.
func (c *Engine) StartTime() time.Time { return c.Timeline().Zero() }

// LastCompleted is the time of the last interval the runner finished, zero
// before the first.
func (c *Engine) LastCompleted() time.Time {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r == nil {
		return time.Time{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastDone
}
