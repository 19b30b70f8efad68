// Package rate adapts how fast receivers take records in to how fast the
// engine processes them: Spark Streaming's backpressure
// (spark.streaming.backpressure.enabled).
//
// A PID estimates, from each completed batch (its records, processing time
// and scheduling delay), the rate in records per second at which the stream's
// input should be received so that a batch is processed in about a batch
// interval and no delay builds up. It is a port of Spark's PIDRateEstimator,
// with the same defaults and the same arithmetic. A Controller feeds a PID
// with batch completions (it is a listener.Listener) and publishes each new
// rate to the stream's receivers through the Limiter interface, capped per
// receiver like spark.streaming.receiver.maxRate; source.BlockGenerator is a
// Limiter (its SetRate changes its token bucket's rate at run time).
package rate

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Spark's defaults (spark.streaming.backpressure.pid.*).
const (
	DefaultProportional = 1.0
	DefaultIntegral     = 0.2
	DefaultDerivative   = 0.0
	DefaultMinRate      = 100.0 // records per second
)

// Estimator computes the rate at which a stream should take records in,
// from the latest completed batch; see PID.Compute.
type Estimator interface {
	Compute(at time.Time, elements int64, processingDelay, schedulingDelay time.Duration) (rate float64, ok bool)
}

// PID is a proportional-integral-derivative controller acting on the rate at
// which a stream takes records in, as Spark's PIDRateEstimator:
//
//   - the error is the difference between the rate it estimated last (the
//     desired rate) and the measured processing rate (records / processing
//     time);
//   - the integral term is the scheduling delay, read as accumulated error:
//     a scheduling delay s means about s * processingRate records
//     overflowed earlier batches, to be worked off over a batch interval, a
//     "historical error" of s * processingRate / batchInterval records per
//     second;
//   - the derivative term is the change of the error per second since the
//     previous estimate.
//
// The new rate is latestRate - proportional*error - integral*historicalError
// - derivative*dError, never below minRate. A PID is safe for concurrent use.
type PID struct {
	batch                 time.Duration
	kp, ki, kd, minRate   float64
	mu                    sync.Mutex
	firstRun              bool
	latestTime            time.Time
	latestRate, latestErr float64
}

// NewPID returns a PID for a stream whose batch interval is batchInterval.
// It validates its arguments as Spark does: the batch interval must be
// positive, the gains zero or positive, and minRate positive (so the stream
// always takes some records in, without which no rate could be measured).
// Spark's defaults are DefaultProportional, DefaultIntegral,
// DefaultDerivative and DefaultMinRate.
func NewPID(batchInterval time.Duration, proportional, integral, derivative, minRate float64) (*PID, error) {
	// Written as !(x >= 0) so that NaN fails too, as Spark's require does.
	switch {
	case batchInterval <= 0:
		return nil, fmt.Errorf("rate: batch interval %v is invalid: it must be positive", batchInterval)
	case !(proportional >= 0) || math.IsInf(proportional, 0):
		return nil, fmt.Errorf("rate: proportional gain %v must be >= 0", proportional)
	case !(integral >= 0) || math.IsInf(integral, 0):
		return nil, fmt.Errorf("rate: integral gain %v must be >= 0", integral)
	case !(derivative >= 0) || math.IsInf(derivative, 0):
		return nil, fmt.Errorf("rate: derivative gain %v must be >= 0", derivative)
	case !(minRate > 0) || math.IsInf(minRate, 0):
		return nil, fmt.Errorf("rate: minimum rate %v must be > 0", minRate)
	}
	return &PID{batch: batchInterval, kp: proportional, ki: integral, kd: derivative, minRate: minRate,
		firstRun: true, latestRate: -1, latestErr: -1}, nil
}

// NewDefaultPID returns a PID with Spark's default gains and minimum rate.
func NewDefaultPID(batchInterval time.Duration) (*PID, error) {
	return NewPID(batchInterval, DefaultProportional, DefaultIntegral, DefaultDerivative, DefaultMinRate)
}

// Compute takes the latest completed batch: at is when it completed (Spark
// passes the batch's processing end time; any time that increases from batch
// to batch works), elements the records it held, processingDelay how long its
// jobs ran and schedulingDelay how long it waited to start. It returns the
// rate, in records per second, at which the stream should now take records
// in.
//
// As in Spark, it returns ok false, and changes nothing, when at is not
// after the previous accepted call's, when elements is not positive or when
// processingDelay is not positive: such a batch says nothing about the
// processing rate. The first accepted call only records the measured
// processing rate as the latest rate, and returns ok false too.
//
// Durations are used at their full (nanosecond) precision where Spark uses
// milliseconds: a sub-millisecond processing delay, which Spark reads as 0
// and skips, is used here.
func (p *PID) Compute(at time.Time, elements int64, processingDelay, schedulingDelay time.Duration) (float64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !(p.firstRun || at.After(p.latestTime)) || elements <= 0 || processingDelay <= 0 {
		return 0, false
	}
	// In records per second. Computed from integer nanoseconds so that
	// round figures stay exact (10 records in 10 ms is 1000/s exactly).
	processingRate := float64(elements) * float64(time.Second) / float64(processingDelay)
	if p.firstRun {
		p.firstRun = false
		p.latestTime, p.latestRate, p.latestErr = at, processingRate, 0
		return 0, false
	}
	// In seconds; about a batch interval.
	sinceUpdate := float64(at.Sub(p.latestTime)) / float64(time.Second)
	// The rate estimated last is the desired rate; the error is how far the
	// measured processing rate is from it (records per second).
	e := p.latestRate - processingRate
	// Records that overflowed earlier batches, worked off over a batch
	// interval (records per second); see PID.
	historical := float64(schedulingDelay) * processingRate / float64(p.batch)
	// Records per second, per second.
	dErr := (e - p.latestErr) / sinceUpdate
	rate := max(p.minRate, p.latestRate-p.kp*e-p.ki*historical-p.kd*dErr)
	p.latestTime, p.latestRate, p.latestErr = at, rate, e
	return rate, true
}
