package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dstream/dstream/checkpoint"
)

// Durable writes: the metadata log's records, the write-ahead log's
// objects and records, and state checkpoints are what a restart resumes
// from and what an acknowledgement promises. A store's errors are often
// transient (a full queue, a lost connection to an object store), so each
// write is retried a few times with backoff (durableAttempts); one that
// still fails stops the job with a *DurableError (a non-zero exit): going on
// would break the promise without a word, as a job that warns "not written"
// and exits 0 on a full disk did. The writes themselves must be idempotent
// (a Put of the same object; a log record replayed once).

// durableAttempts and durableBackoff bound a durable write's retries:
// 100, 200, 400, 800 ms between five attempts, 1.5 s in all.
const (
	durableAttempts = 5
	durableBackoff  = 100 * time.Millisecond
)

// DurableError is the error a job stops with when a durable write failed
// after its retries.
type DurableError struct {
	What string // what was written: "metadata log record \"done\"", "write-ahead log block ..."
	Err  error
}

func (e *DurableError) Error() string {
	return fmt.Sprintf("dstream: %s not written after %d attempts (the job stops: what it promised could not be made durable): %v", e.What, durableAttempts, e.Err)
}

func (e *DurableError) Unwrap() error { return e.Err }

// retryDurable runs write until it succeeds, ctx is done or it failed
// durableAttempts times, waiting between attempts; it returns the last
// error as a *DurableError naming what.
func (c *Engine) retryDurable(ctx context.Context, what string, write func() error) error {
	var err error
	for attempt := range durableAttempts {
		if err = write(); err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, checkpoint.ErrConflict) {
			return err // a conflict is another master's write: no retry makes it ours
		}
		if attempt == 0 {
			c.log.Warn("durable write failed; retrying", "what", what, "err", err)
		}
		if attempt < durableAttempts-1 {
			t := time.NewTimer(durableBackoff << attempt)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return err
			}
		}
	}
	return &DurableError{What: what, Err: err}
}

// DurableFailed stops the job with err, a durable write that failed after
// its retries (a master only; a worker's failure reaches its master through
// the task or the report that failed).
func (c *Engine) DurableFailed(err error) {
	if c.worker != nil || c.run == nil {
		return
	}
	var de *DurableError
	if !errors.As(err, &de) {
		err = &DurableError{What: "a durable write", Err: err}
	}
	c.stopWith(err)
}
