package dstream

import (
	"fmt"
	"time"
)

// BatchError is the error of an interval that failed after its retries: which
// interval, which output operation (by registration index and name), and why
// (the task's error names the operator that failed).
type BatchError struct {
	Time     time.Time // the interval's time
	OutputOp int       // index of the failed output operation; -1 when the interval failed elsewhere
	Output   string    // the output operation's name, e.g. "saveAsTextFiles"; or "state checkpoint", "input"
	Err      error
}

func (e *BatchError) Error() string {
	if e.OutputOp < 0 {
		return fmt.Sprintf("interval %d (%s) failed: %v", e.Time.UnixMilli(), e.Time.UTC().Format("15:04:05.000"), e.Err)
	}
	return fmt.Sprintf("interval %d (%s) failed in output %d (%s): %v", e.Time.UnixMilli(), e.Time.UTC().Format("15:04:05.000"), e.OutputOp, e.Output, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }
