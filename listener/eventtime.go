package listener

import "time"

// LateRecords is posted after an interval in which an event-time operator
// (stream Stream) dropped records as late: their windows had all ended at
// or before the interval's watermark.
type LateRecords struct {
	Time    time.Time // the interval
	Stream  int32     // the operator's stream
	Records int64
}

func (LateRecords) isEvent() {}
