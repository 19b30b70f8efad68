package rate

import (
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/dstream/dstream/listener"
)

// Limiter is what a Controller publishes rates to: a receiver's rate limit
// (source.BlockGenerator implements it). SetRate takes a rate in records
// per second, 0 meaning unlimited; the Controller never publishes 0 from an
// estimate, whose minimum is positive.
//
// SetRate is called with the Controller's lock held, on the goroutine that
// delivered the batch completion (the listener bus's): it must be cheap,
// must not block, and must not call the Controller. A limiter that must do
// slow work, such as an RPC to the worker running the receiver, wraps it in
// an Async.
type Limiter interface {
	SetRate(recordsPerSecond int)
}

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	// Estimator computes the stream's rate from each completed batch;
	// required (a *PID, as Spark's only estimator).
	Estimator Estimator
	// MaxRate caps the rate published to each receiver, in records per
	// second, as spark.streaming.receiver.maxRate does (the --max-rate
	// flag); 0 means no cap.
	MaxRate int
	// InitialRate is the stream's rate before the first estimate, as
	// spark.streaming.backpressure.initialRate; 0 means none: until the
	// first estimate, receivers get MaxRate if set, and otherwise keep the
	// rate they have (unlimited, unless configured).
	InitialRate int
	// Records returns how many of a completed batch's records are the
	// stream's, and whether the batch has the stream's count; it is used by
	// OnEvent. Default: every record of the batch (BatchInfo.Records), which
	// is right when the program has one receiver stream only. With several,
	// the engine must count records per stream (Spark's
	// BatchInfo.streamIdToInputInfo) and select this stream's: a stream's
	// rate is its share of the processing rate, its records over the batch's
	// processing time.
	Records func(listener.BatchInfo) (int64, bool)
	// Logger receives a debug line per new rate. Default slog.Default().
	Logger *slog.Logger
}

// Controller is one input stream's rate controller, as Spark's
// RateController: fed with the completed batches (it is a
// listener.Listener; or call OnBatchCompleted), it computes the stream's
// new rate with its Estimator and publishes it to the stream's receivers,
// its registered Limiters.
//
// The estimate is the rate of the stream's whole input. Spark runs one
// receiver per input stream and sends it the whole rate. A Controller with
// several Limiters registered (several receivers feeding one stream) splits
// the rate evenly among them, so that together they take in what the
// estimate says, which is what it measures next; each share is at least 1
// record per second, and capped by MaxRate, which is per receiver like
// Spark's spark.streaming.receiver.maxRate. An even split under-uses a
// stream whose receivers are offered unequal loads (a receiver offered less
// than its share leaves the difference unused); the estimate then follows
// what is taken in, not what could be.
//
// Every estimate is published, even an unchanged one (Spark does too);
// source.BlockGenerator ignores a rate it already has. A Controller is safe
// for concurrent use.
type Controller struct {
	cfg ControllerConfig

	mu        sync.Mutex
	latest    float64 // the latest estimate; valid when estimated
	estimated bool
	limiters  []*registration
}

type registration struct{ l Limiter }

// NewController returns a Controller; cfg.Estimator is required.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.Estimator == nil {
		return nil, errors.New("rate: a controller needs an estimator")
	}
	if cfg.MaxRate < 0 || cfg.InitialRate < 0 {
		return nil, errors.New("rate: the maximum and initial rates must be >= 0")
	}
	if cfg.Records == nil {
		cfg.Records = func(b listener.BatchInfo) (int64, bool) { return b.Records, true }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Controller{cfg: cfg}, nil
}

// OnEvent implements listener.Listener: it takes BatchCompleted events, as
// Spark's RateController.onBatchCompleted, passing the batch's processing
// end time, its records (ControllerConfig.Records), processing time and
// scheduling delay to OnBatchCompleted. A batch not processed (no end time)
// or without the stream's count is skipped. Failed batches count, as in
// Spark. Other events are ignored.
func (c *Controller) OnEvent(e listener.Event) {
	bc, ok := e.(listener.BatchCompleted)
	if !ok || bc.Batch.EndTime.IsZero() {
		return
	}
	n, ok := c.cfg.Records(bc.Batch)
	if !ok {
		return
	}
	c.OnBatchCompleted(bc.Batch.EndTime, n, bc.Batch.ProcessingTime, bc.Batch.SchedulingDelay)
}

// OnBatchCompleted takes a completed batch: at is when it completed (its
// processing end time, as Spark passes; times must increase from batch to
// batch), records the stream's records in it, processing how long its jobs
// ran and scheduling how long it waited to start. When the estimator gives
// a new rate, it is published to every registered Limiter, before
// OnBatchCompleted returns.
func (c *Controller) OnBatchCompleted(at time.Time, records int64, processing, scheduling time.Duration) {
	r, ok := c.cfg.Estimator.Compute(at, records, processing, scheduling)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latest, c.estimated = r, true
	c.cfg.Logger.Debug("backpressure: new rate", "records_per_second", r, "receivers", len(c.limiters),
		"batch_records", records, "processing", processing, "scheduling_delay", scheduling)
	c.publishLocked()
}

// Rate returns the latest estimate, in records per second for the whole
// stream, and whether there is one yet (Spark's getLatestRate, -1 before).
func (c *Controller) Rate() (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest, c.estimated
}

// Register adds a receiver's limiter. It is given its share of the latest
// estimate at once (or of InitialRate, or MaxRate, before the first
// estimate), and the others' shares are updated. The returned function
// removes it (idempotent), updating the others' shares; call it when the
// receiver stops.
func (c *Controller) Register(l Limiter) (unregister func()) {
	reg := &registration{l}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limiters = append(c.limiters, reg)
	c.publishLocked()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for i, r := range c.limiters {
				if r == reg {
					c.limiters = append(c.limiters[:i:i], c.limiters[i+1:]...)
					break
				}
			}
			c.publishLocked()
		})
	}
}

// Share returns what each of n receivers gets of a stream rate: an even
// share, at least 1 record per second, capped by maxRate (when positive).
func Share(streamRate float64, n, maxRate int) int {
	s := streamRate / float64(max(n, 1))
	var share int
	switch {
	case !(s >= 1): // NaN too
		share = 1
	case s >= math.MaxInt32:
		share = math.MaxInt32
	default:
		share = int(s) // truncated, as Spark's rate.toLong
	}
	if maxRate > 0 {
		share = min(share, maxRate)
	}
	return share
}

// publishLocked sends every limiter its share of the current rate. c.mu is
// held.
func (c *Controller) publishLocked() {
	if len(c.limiters) == 0 {
		return
	}
	var share int
	switch {
	case c.estimated:
		share = Share(c.latest, len(c.limiters), c.cfg.MaxRate)
	case c.cfg.InitialRate > 0:
		share = Share(float64(c.cfg.InitialRate), len(c.limiters), c.cfg.MaxRate)
	case c.cfg.MaxRate > 0:
		share = c.cfg.MaxRate
	default:
		return // nothing known: receivers keep their own rate
	}
	for _, r := range c.limiters {
		r.l.SetRate(share)
	}
}

var _ listener.Listener = (*Controller)(nil)
