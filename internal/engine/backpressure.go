package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rate"
)

// Backpressure (Spark's spark.streaming.backpressure): with
// Config.Backpressure, each receiver input has a rate controller, a PID
// estimator fed by every completed interval's records, processing time and
// scheduling delay (package rate), that sets the rate its receivers take
// records in at, capped by Config.MaxRate. A receiver held to its rate makes
// its sender wait (TCP flow control): nothing it accepted is dropped.
// Without Backpressure, MaxRate alone is a fixed ceiling per receiver.

// perStreamRecords remembers how many records each recent interval took
// from one input stream, for its rate controller: the listener bus delivers
// completions late, so it keeps a bounded window of them.
type perStreamRecords struct {
	mu sync.Mutex
	at map[int64]int64
}

// maxRecordedIntervals bounds perStreamRecords: the bus delivers a
// completion long before this many later intervals are cut, or drops it.
const maxRecordedIntervals = 256

func (r *perStreamRecords) note(t time.Time, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[int64]int64)
	}
	r.at[t.UnixMilli()] = n
	if len(r.at) > maxRecordedIntervals {
		cutoff := t.UnixMilli()
		for ms := range r.at {
			cutoff = min(cutoff, ms)
		}
		delete(r.at, cutoff)
	}
}

func (r *perStreamRecords) of(b listener.BatchInfo) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.at[b.Time.UnixMilli()]
	return n, ok
}

// startRateControl gives every receiver input a rate controller, fed by the
// listener bus, when Config.Backpressure asks for one.
func (c *Engine) startRateControl() error {
	if !c.cfg.Backpressure {
		return nil
	}
	for _, in := range c.inputs {
		ri, ok := in.(*ReceiverInput)
		if !ok {
			continue
		}
		pid, err := rate.NewDefaultPID(c.cfg.BatchInterval)
		if err != nil {
			return err
		}
		ctl, err := rate.NewController(rate.ControllerConfig{Estimator: pid, MaxRate: c.cfg.MaxRate, InitialRate: c.cfg.InitialRate,
			Records: ri.records.of, Logger: c.log.With("stream", fmt.Sprint(ri.node))})
		if err != nil {
			return err
		}
		ri.rate = ctl
		c.bus.Add(ctl)
		if at := ri.worker(); at != "" {
			c.rateRemote(ri, at)
		}
	}
	return nil
}

// stopRateControl ends the goroutines that carry rates to receivers on
// workers.
func (c *Engine) stopRateControl() {
	for _, in := range c.inputs {
		if ri, ok := in.(*ReceiverInput); ok {
			ri.atMu.Lock()
			unrate := ri.unrate
			ri.unrate = nil
			ri.atMu.Unlock()
			if unrate != nil {
				unrate()
			}
		}
	}
}

// rateRemote makes the rate controller of ri, a receiver running on worker
// at, set its rate there (by RPC, off the listener bus: rate.Async sends
// only the latest rate), in place of wherever it ran before.
func (c *Engine) rateRemote(ri *ReceiverInput, at string) {
	if ri.rate == nil {
		return
	}
	a := rate.NewAsync(remoteLimiter{c: c, stream: ri.OpID(), at: at})
	unregister := ri.rate.Register(a)
	ri.atMu.Lock()
	prev := ri.unrate
	ri.unrate = func() { unregister(); a.Close() }
	ri.atMu.Unlock()
	if prev != nil {
		prev()
	}
}

// remoteLimiter sets the rate of a receiver on a worker.
type remoteLimiter struct {
	c      *Engine
	stream int32
	at     string
}

func (l remoteLimiter) SetRate(n int) {
	pc, err := l.c.cluster.peers.Peer(l.at)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(l.c.RunCtx(), 5*time.Second)
	defer cancel()
	if _, err := pc.SetReceiverRate(ctx, &clusterpb.SetReceiverRateRequest{Stream: l.stream, Rate: int64(n)}); err != nil && ctx.Err() == nil {
		l.c.log.Warn("receiver rate not set", "stream", l.stream, "worker", l.at, "rate", n, "err", err)
	}
}

// noteRecords tells the rate controllers how many records each input
// stream's receivers contributed to interval t.
func (c *Engine) noteRecords(t time.Time) {
	if !c.cfg.Backpressure {
		return
	}
	for _, in := range c.inputs {
		ri, ok := in.(*ReceiverInput)
		if !ok || ri.rate == nil {
			continue
		}
		var n int64
		for _, b := range c.tracker.Blocks(ri.OpID(), t) {
			n += int64(b.Records)
		}
		ri.records.note(t, n)
	}
}
