package ui

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dstream/dstream/listener"
)

// DefaultRetainedBatches is how many batches a Progress keeps unless told
// otherwise, as Spark's spark.streaming.ui.retainedBatches.
const DefaultRetainedBatches = 1000

// MaxFailureReason bounds the bytes of a failure message kept per batch and
// per output operation; a longer message is cut at a rune boundary and ends
// in "...".
const MaxFailureReason = 4096

// Status is a batch's state. A batch is queued when the generator has cut
// it, processing once its output operations have begun, and completed or
// failed when they have all ended, failed if any of them (or the state
// checkpoint after them) failed.
type Status string

// The states of a batch, as the API spells them.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
)

// ParseStatus returns the status named s (case-insensitive).
func ParseStatus(s string) (Status, bool) {
	for _, st := range []Status{StatusQueued, StatusProcessing, StatusCompleted, StatusFailed} {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

func (s Status) finished() bool { return s == StatusCompleted || s == StatusFailed }

// Batch is one interval's batch as GET /api/v1/batches and
// GET /api/v1/batches/{batchTime} return it; the names are Spark's where
// Spark has the field. Nullable fields are pointers.
type Batch struct {
	// BatchID ("batchId") is the interval time in Unix milliseconds: the
	// batch's key, as in Spark.
	BatchID int64 `json:"batchId"`
	// BatchTime ("batchTime") is the interval time (its end), RFC 3339.
	BatchTime string `json:"batchTime"`
	// Status ("status"): queued, processing, completed or failed.
	Status Status `json:"status"`
	// BatchDuration ("batchDuration") is the batch interval in milliseconds.
	BatchDuration int64 `json:"batchDuration"`
	// InputSize ("inputSize") is the number of records received in the
	// interval.
	InputSize int64 `json:"inputSize"`
	// SubmissionTime ("submissionTime") is when the generator cut the
	// interval and queued it.
	SubmissionTime string `json:"submissionTime"`
	// ProcessingStartTime ("processingStartTime") is when its output
	// operations began; null while queued.
	ProcessingStartTime *string `json:"processingStartTime"`
	// ProcessingEndTime ("processingEndTime") is when they all ended; null
	// until then.
	ProcessingEndTime *string `json:"processingEndTime"`
	// SchedulingDelay ("schedulingDelay") is processingStartTime -
	// submissionTime in milliseconds; null while queued.
	SchedulingDelay *int64 `json:"schedulingDelay"`
	// ProcessingTime ("processingTime") is processingEndTime -
	// processingStartTime in milliseconds; null until the batch ends.
	ProcessingTime *int64 `json:"processingTime"`
	// TotalDelay ("totalDelay") is processingEndTime - batchTime in
	// milliseconds: how long after its interval closed the batch's output
	// was done; null until the batch ends.
	TotalDelay *int64 `json:"totalDelay"`
	// NumCompletedOutputOps ("numCompletedOutputOps") counts the output
	// operations that have succeeded so far.
	NumCompletedOutputOps int `json:"numCompletedOutputOps"`
	// NumFailedOutputOps ("numFailedOutputOps") counts those that failed.
	NumFailedOutputOps int `json:"numFailedOutputOps"`
	// FirstFailureReason ("firstFailureReason") is the error of a failed
	// batch (naming the interval and the first failed output operation, or
	// the state checkpoint); null otherwise.
	FirstFailureReason *string `json:"firstFailureReason"`
	// OffsetRanges ("offsetRanges") are the offsets each Kafka stream
	// took from each partition in the interval, as its manifest names
	// them (Spark shows them on a direct stream's batch page). Only GET
	// /api/v1/batches/{batchTime} has them, while the master remembers
	// the interval's manifest.
	OffsetRanges []OffsetRange `json:"offsetRanges,omitempty"`
	// EventTimeOperators ("eventTimeOperators") are the event-time window
	// operators (CountByEventWindow, ...): the watermark each ran the
	// interval with and the records it dropped as late. Only GET
	// /api/v1/batches/{batchTime} has them, while the master remembers the
	// interval's manifest.
	EventTimeOperators []EventTimeOperator `json:"eventTimeOperators,omitempty"`
}

// EventTimeOperator is an event-time window operator's part in a batch.
type EventTimeOperator struct {
	// Stream ("stream") is the operator's stream (its state's), and Name
	// ("name") its operator: "countByEventWindow", ...
	Stream int32  `json:"stream"`
	Name   string `json:"name"`
	// Watermark ("watermark") is the watermark the batch ran with, RFC
	// 3339 with milliseconds; null while an event-time input has none.
	Watermark *string `json:"watermark"`
	// LateRecords ("lateRecords") counts the batch's records the operator
	// dropped as late (listener.LateRecords); null until the batch has
	// completed (a failed batch's are not counted).
	LateRecords *int64 `json:"lateRecords"`
}

// OffsetRange is the offsets [fromOffset, untilOffset) a Kafka stream took
// from one partition in an interval.
type OffsetRange struct {
	Stream      int32  `json:"stream"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	FromOffset  int64  `json:"fromOffset"`
	UntilOffset int64  `json:"untilOffset"`
}

// OutputOperation is one output operation of a batch, as
// GET /api/v1/batches/{batchTime}/operations returns it.
type OutputOperation struct {
	// OutputOpID ("outputOpId") is the operation's index, in registration
	// order.
	OutputOpID int `json:"outputOpId"`
	// Name ("name") is the operation's kind: "print", "saveAsTextFiles",
	// "foreachRDD".
	Name string `json:"name"`
	// Status ("status") is "succeeded" or "failed".
	Status string `json:"status"`
	// Duration ("duration") is how long the operation ran, in milliseconds.
	Duration int64 `json:"duration"`
	// FailureReason ("failureReason") is the operation's error; null when it
	// succeeded.
	FailureReason *string `json:"failureReason"`
}

// Statistics is what GET /api/v1/statistics returns, after Spark's
// StreamingStatistics. Counters "since start" cover every batch the
// Progress has seen, retained or not; averages cover the retained batches
// whose status is completed (failed ones are left out) and are null when
// there are none.
type Statistics struct {
	// StartTime ("startTime") is the time before the first interval (interval
	// k ends at startTime + k*batchDuration); null before the context starts.
	StartTime *string `json:"startTime"`
	// BatchDuration ("batchDuration") is the batch interval in milliseconds.
	BatchDuration int64 `json:"batchDuration"`
	// NumTotalCompletedBatches ("numTotalCompletedBatches") counts batches
	// completed since start.
	NumTotalCompletedBatches int64 `json:"numTotalCompletedBatches"`
	// NumTotalFailedBatches ("numTotalFailedBatches") counts batches failed
	// since start.
	NumTotalFailedBatches int64 `json:"numTotalFailedBatches"`
	// NumActiveBatches ("numActiveBatches") counts retained batches queued or
	// processing.
	NumActiveBatches int `json:"numActiveBatches"`
	// NumRetainedBatches ("numRetainedBatches") counts the batches retained,
	// in any state; at most MaxRetainedBatches.
	NumRetainedBatches int `json:"numRetainedBatches"`
	// NumRetainedCompletedBatches ("numRetainedCompletedBatches") counts the
	// retained batches whose status is completed: the averages' sample.
	NumRetainedCompletedBatches int `json:"numRetainedCompletedBatches"`
	// MaxRetainedBatches ("maxRetainedBatches") is the retention bound.
	MaxRetainedBatches int `json:"maxRetainedBatches"`
	// NumDroppedBatches ("numDroppedBatches") counts batches dropped, oldest
	// first, to keep within the bound.
	NumDroppedBatches int64 `json:"numDroppedBatches"`
	// NumProcessedRecords ("numProcessedRecords") sums the records of the
	// batches completed since start.
	NumProcessedRecords int64 `json:"numProcessedRecords"`
	// NumReceivedRecords ("numReceivedRecords") sums the records of every
	// batch seen since start, in any state.
	NumReceivedRecords int64 `json:"numReceivedRecords"`
	// AvgInputRate ("avgInputRate") is the records per second of the
	// retained completed batches: their records over their intervals.
	AvgInputRate *float64 `json:"avgInputRate"`
	// AvgSchedulingDelay ("avgSchedulingDelay"), AvgProcessingTime
	// ("avgProcessingTime") and AvgTotalDelay ("avgTotalDelay") are the
	// means over the retained completed batches, in milliseconds
	// (truncated).
	AvgSchedulingDelay *int64 `json:"avgSchedulingDelay"`
	AvgProcessingTime  *int64 `json:"avgProcessingTime"`
	AvgTotalDelay      *int64 `json:"avgTotalDelay"`
}

// Progress is a listener.Listener that keeps the last N batches of a context
// (the retained batches) and counters since it was registered. Register it
// before the context starts to see every batch. Past N the oldest batch is
// dropped and counted, whatever its state (the engine runs batches in
// order, so it has finished unless more than N are queued); later events
// for a dropped batch are ignored. It is safe for concurrent use; every
// method returns a copy.
type Progress struct {
	mu      sync.Mutex
	limit   int
	batches []*batchRecord // ascending interval time; at most limit
	// gone is the newest interval time dropped: events for it or older
	// ones are ignored rather than bringing a dropped batch back.
	gone      int64
	dropped   int64
	completed int64
	failed    int64
	received  int64
	processed int64

	taskLimit  int   // task attempts kept per batch
	taskBudget int   // task attempts kept over all batches
	taskCount  int   // task attempts kept now
	strayTasks int64 // task events for no retained batch
}

type batchRecord struct {
	time       time.Time
	status     Status
	records    int64
	submitted  time.Time
	started    time.Time // zero while queued
	ended      time.Time // zero until finished
	schedDelay time.Duration
	procTime   time.Duration
	totalDelay time.Duration
	failure    string // a failed batch's error
	ops        []opRecord

	tasks        []taskRecord // at most the Progress's taskLimit
	tasksDropped int64        // task attempts not kept
	tasksEvicted bool         // its tasks were dropped for the total bound: keep none
	jobs         []jobRecord  // at most MaxJobsPerBatch
	jobsDropped  int64
	late         map[int32]int64 // late records by event-time operator; at most maxLateOperators
}

// maxLateOperators bounds the event-time operators whose late records a
// batch keeps (a graph has a few).
const maxLateOperators = 1024

type opRecord struct {
	id       int
	name     string
	duration time.Duration
	failed   bool
	failure  string
}

// NewProgress returns a Progress that retains the last retained batches
// (DefaultRetainedBatches when retained <= 0).
func NewProgress(retained int) *Progress {
	if retained <= 0 {
		retained = DefaultRetainedBatches
	}
	return &Progress{limit: retained, gone: -1 << 63, taskLimit: DefaultMaxTasksPerBatch, taskBudget: DefaultRetainedTasks}
}

// OnEvent records e. It is called by the listener bus, one event at a time;
// events other than the batch, output operation, job and task events are
// ignored. Job and task events are kept for a retained batch only (one
// already dropped, or a job outside the intervals, is not recorded).
func (p *Progress) OnEvent(e listener.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := e.(type) {
	case listener.TaskEnded:
		p.onTask(&e)
	case listener.JobStarted:
		p.onJob(e.Time, e.Job, e.OutputOp, e.Name, e.Start, time.Time{}, nil, false)
	case listener.JobEnded:
		p.onJob(e.Time, e.Job, e.OutputOp, e.Name, e.Start, e.End, e.Err, true)
	case listener.BatchSubmitted:
		p.find(e.Batch)
	case listener.BatchStarted:
		b := p.find(e.Batch)
		if b != nil && b.status == StatusQueued {
			b.status = StatusProcessing
			b.started = e.Batch.StartTime
			b.schedDelay = e.Batch.SchedulingDelay
		}
	case listener.OutputOpCompleted:
		b := p.lookup(e.Time.UnixMilli())
		if b == nil || b.status.finished() {
			return
		}
		op := opRecord{id: e.OutputOp, name: e.Name, duration: e.Duration}
		if e.Err != nil {
			op.failed, op.failure = true, truncate(e.Err.Error())
		}
		b.ops = append(b.ops, op)
	case listener.LateRecords:
		b := p.lookup(e.Time.UnixMilli())
		if b == nil || b.status.finished() {
			return
		}
		if b.late == nil {
			b.late = map[int32]int64{}
		}
		if _, ok := b.late[e.Stream]; ok || len(b.late) < maxLateOperators {
			b.late[e.Stream] += e.Records
		}
	case listener.BatchCompleted:
		b := p.find(e.Batch)
		if b == nil || b.status.finished() {
			return
		}
		info := e.Batch
		b.started, b.ended = info.StartTime, info.EndTime
		b.schedDelay, b.procTime, b.totalDelay = info.SchedulingDelay, info.ProcessingTime, info.TotalDelay
		if info.Err != nil {
			b.status, b.failure = StatusFailed, truncate(info.Err.Error())
			p.failed++
		} else {
			b.status = StatusCompleted
			p.completed++
			p.processed += b.records
		}
	}
}

// find returns the batch of info, adding it (queued, at its place in time
// order) if it is new; nil for a batch already dropped. The caller holds
// p.mu.
func (p *Progress) find(info listener.BatchInfo) *batchRecord {
	ms := info.Time.UnixMilli()
	i, ok := p.index(ms)
	if ok {
		return p.batches[i]
	}
	if ms <= p.gone {
		return nil
	}
	b := &batchRecord{time: info.Time, status: StatusQueued, records: info.Records, submitted: info.SubmissionTime}
	p.received += info.Records
	p.batches = slices.Insert(p.batches, i, b)
	for len(p.batches) > p.limit {
		p.gone = max(p.gone, p.batches[0].time.UnixMilli())
		p.taskCount -= len(p.batches[0].tasks)
		p.batches[0] = nil
		p.batches = p.batches[1:]
		p.dropped++
	}
	if ms <= p.gone {
		return nil // it was the oldest: dropped at once
	}
	return b
}

// lookup returns the retained batch of interval ms, or nil. The caller holds
// p.mu.
func (p *Progress) lookup(ms int64) *batchRecord {
	if i, ok := p.index(ms); ok {
		return p.batches[i]
	}
	return nil
}

// index is where the batch of interval ms is, or would be inserted, in
// p.batches. The caller holds p.mu.
func (p *Progress) index(ms int64) (int, bool) {
	return slices.BinarySearchFunc(p.batches, ms, func(b *batchRecord, ms int64) int { return cmp.Compare(b.time.UnixMilli(), ms) })
}

// Filter selects batches for Batches. The zero value selects every
// retained batch.
type Filter struct {
	// Statuses, when not empty, keeps only batches in one of these states.
	Statuses []Status
	// Limit, when positive, keeps only the newest Limit batches selected.
	Limit int
}

// Batches returns the retained batches f selects, newest first, each with
// batchDuration set to interval (the context's batch interval).
func (p *Progress) Batches(f Filter, interval time.Duration) []Batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []Batch{}
	for i := len(p.batches) - 1; i >= 0; i-- {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		b := p.batches[i]
		if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, b.status) {
			continue
		}
		out = append(out, b.view(interval))
	}
	return out
}

// Batch returns the retained batch of interval ms (Unix milliseconds).
func (p *Progress) Batch(ms int64, interval time.Duration) (Batch, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.lookup(ms)
	if b == nil {
		return Batch{}, false
	}
	return b.view(interval), true
}

// LateRecords returns the late records each event-time operator dropped
// in the retained batch of interval ms, by operator stream (an operator
// that dropped none is absent); false unless the batch has completed.
func (p *Progress) LateRecords(ms int64) (map[int32]int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.lookup(ms)
	if b == nil || b.status != StatusCompleted {
		return nil, false
	}
	return maps.Clone(b.late), true
}

// Operations returns the output operations of the retained batch of
// interval ms that have completed, in registration order (empty, not nil,
// while none has).
func (p *Progress) Operations(ms int64) ([]OutputOperation, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.lookup(ms)
	if b == nil {
		return nil, false
	}
	out := make([]OutputOperation, 0, len(b.ops))
	for _, op := range b.ops {
		o := OutputOperation{OutputOpID: op.id, Name: op.name, Status: "succeeded", Duration: op.duration.Milliseconds()}
		if op.failed {
			o.Status = "failed"
			o.FailureReason = ptr(op.failure)
		}
		out = append(out, o)
	}
	slices.SortStableFunc(out, func(a, b OutputOperation) int { return a.OutputOpID - b.OutputOpID })
	return out, true
}

// Retention reports the retention bound, how many batches are retained and
// the oldest retained interval time (Unix ms, 0 when none), and how many
// have been dropped.
func (p *Progress) Retention() (limit, retained int, oldest, dropped int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.batches) > 0 {
		oldest = p.batches[0].time.UnixMilli()
	}
	return p.limit, len(p.batches), oldest, p.dropped
}

// Statistics returns the counters and averages; StartTime is left for the
// caller (the Progress does not know the context), BatchDuration is set to
// interval.
func (p *Progress) Statistics(interval time.Duration) Statistics {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Statistics{
		BatchDuration:            interval.Milliseconds(),
		NumTotalCompletedBatches: p.completed,
		NumTotalFailedBatches:    p.failed,
		NumRetainedBatches:       len(p.batches),
		MaxRetainedBatches:       p.limit,
		NumDroppedBatches:        p.dropped,
		NumProcessedRecords:      p.processed,
		NumReceivedRecords:       p.received,
	}
	var n, records int64
	var sched, proc, total time.Duration
	for _, b := range p.batches {
		switch b.status {
		case StatusQueued, StatusProcessing:
			s.NumActiveBatches++
		case StatusCompleted:
			n++
			records += b.records
			sched += b.schedDelay
			proc += b.procTime
			total += b.totalDelay
		}
	}
	s.NumRetainedCompletedBatches = int(n)
	if n > 0 {
		if interval > 0 {
			s.AvgInputRate = ptr(float64(records) / (float64(n) * interval.Seconds()))
		}
		s.AvgSchedulingDelay = ptr((sched / time.Duration(n)).Milliseconds())
		s.AvgProcessingTime = ptr((proc / time.Duration(n)).Milliseconds())
		s.AvgTotalDelay = ptr((total / time.Duration(n)).Milliseconds())
	}
	return s
}

// view renders b for the API. The caller holds p.mu.
func (b *batchRecord) view(interval time.Duration) Batch {
	v := Batch{
		BatchID:        b.time.UnixMilli(),
		BatchTime:      stamp(b.time),
		Status:         b.status,
		BatchDuration:  interval.Milliseconds(),
		InputSize:      b.records,
		SubmissionTime: stamp(b.submitted),
	}
	if b.status != StatusQueued {
		v.ProcessingStartTime = ptr(stamp(b.started))
		v.SchedulingDelay = ptr(b.schedDelay.Milliseconds())
	}
	if b.status.finished() {
		v.ProcessingEndTime = ptr(stamp(b.ended))
		v.ProcessingTime = ptr(b.procTime.Milliseconds())
		v.TotalDelay = ptr(b.totalDelay.Milliseconds())
	}
	for _, op := range b.ops {
		if op.failed {
			v.NumFailedOutputOps++
		} else {
			v.NumCompletedOutputOps++
		}
	}
	if b.status == StatusFailed {
		v.FirstFailureReason = ptr(b.failure)
	}
	return v
}

// timeLayout is RFC 3339 with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// stamp formats t in UTC with milliseconds.
func stamp(t time.Time) string { return t.UTC().Format(timeLayout) }

func ptr[T any](v T) *T { return &v }

// truncate cuts s to at most MaxFailureReason bytes, at a rune boundary.
func truncate(s string) string {
	if len(s) <= MaxFailureReason {
		return s
	}
	const ellipsis = "..."
	cut := MaxFailureReason - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
