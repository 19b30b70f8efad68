// Package manifest describes an interval the way every process must see it:
// what the master decides once and a worker cannot derive from the program
// (Spark keeps the same facts, scattered, in its ReceivedBlockTracker, its
// checkpoint data and its driver's memory). Given the program's graph and an
// interval's manifest, a process names and computes that interval's datasets
// exactly as the master does: the same IDs, the same lineage, the same
// partitions, byte for byte.
//
// A manifest holds:
//   - Zero, the time before the first interval, and Time, the interval's own;
//   - for each input stream, the blocks allocated to the interval, in order
//     (partition i of the interval's input dataset reads block i), or, for a
//     file stream, the files it selected (name, size, modification time),
//     which every process reads from the stream's folder, or, for an offset
//     stream (Kafka's direct stream), the offset range of each partition
//     it takes, which every process fetches from the log;
//   - for each state stream, the checkpointed dataset the interval starts
//     from, so a process that did not compute the state's history reads the
//     checkpoint instead of recomputing it: lineage stays one interval deep
//     in every process;
//   - for each event-time stream (the root package's WithEventTime), the
//     largest event time its records carried in the intervals before this
//     one and the watermark that gives, so every process and every
//     recomputation of the interval drops and finalizes the same windows.
//
// Manifests are small, versioned and checksummed: the master's metadata log
// is their sequence (Marshal frames one, as a checkpoint.Frame of kind Kind;
// Unmarshal refuses a frame that is truncated, corrupt, not a manifest or of
// an unknown version, with an error saying which).
//
// A worker learns every interval, and a state stream's entries change
// little from one interval to the next, so the master may send it a Delta
// instead (delta.go): the entries that changed since the manifest of an
// earlier interval the worker knows, which Apply turns back into the whole
// manifest. A delta is a frame of its own kind (DeltaKind); only the
// workers' Manifests answers carry deltas, and only to a worker that asks
// for them (package cluster); everything durable holds whole manifests. Log
// keeps each manifest's frames once made (Frames), so a manifest is
// marshaled once however many workers ask.
package manifest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dstream/dstream/checkpoint"
)

// Version is the format version Marshal writes and Unmarshal accepts.
const Version = 1

// Interval is one interval's manifest. Times are Unix milliseconds.
type Interval struct {
	Version     int          `json:"v"`
	Zero        int64        `json:"zero"`
	Time        int64        `json:"time"`
	Inputs      []Input      `json:"inputs,omitempty"`
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	// EventTimes are the event-time streams' progress as the interval
	// starts, one per stream that has carried a record (EventTime). Older
	// manifests have none.
	EventTimes []EventTime `json:"eventTimes,omitempty"`
}

// EventTime is an event-time stream's progress as an interval starts: Max,
// the largest event time its records carried in the intervals before, and
// Watermark, Max less the stream's maximum delay, both Unix milliseconds.
// The master decides both from what the earlier intervals' tasks reported;
// they never decrease from one interval to the next.
type EventTime struct {
	Stream    int32 `json:"stream"`
	Max       int64 `json:"max"`
	Watermark int64 `json:"watermark"`
	// Pending says the stream has no watermark yet (Watermark means
	// nothing, and Max nothing unless a partition was Seen): a stream
	// read per partition whose partitions not idle have not all carried a
	// record. Only such a stream is listed before it has a watermark.
	Pending bool `json:"pending,omitempty"`
	// Partitions is, for a stream read per partition of a log (a Kafka
	// stream's topic-partitions), each partition's progress, sorted by
	// topic and partition: the watermark is the minimum of the Max of the
	// partitions not Idle, less the stream's maximum delay, and never
	// moves back. Older manifests, and other streams, have none.
	Partitions []PartitionTime `json:"partitions,omitempty"`
}

// HasWatermark reports whether the stream has a watermark as the interval
// starts.
func (e EventTime) HasWatermark() bool { return !e.Pending }

// PartitionTime is one partition's part of an event-time stream's
// progress as an interval starts (Unix milliseconds).
type PartitionTime struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Max is the largest event time the partition's records carried in
	// the intervals before; it means nothing unless Seen.
	Max  int64 `json:"max"`
	Seen bool  `json:"seen,omitempty"`
	// Active is the end of the last interval in which the stream carried
	// records of the partition or, if none did yet, the start of the first
	// interval that read it: the partition has been quiet since.
	Active int64 `json:"active"`
	// Idle says it has been quiet for the stream's idleness timeout or
	// longer: it does not hold the watermark until it carries records
	// again.
	Idle bool `json:"idle,omitempty"`
}

// Input lists the blocks of one input stream allocated to the interval, or
// the files a file stream selected for it.
type Input struct {
	Stream int32   `json:"stream"`
	Blocks []Block `json:"blocks"`
	// Files are a file stream's files, sorted by name: the interval's
	// dataset reads them from the stream's folder (one partition per
	// split of each file). Older manifests have none.
	Files []File `json:"files,omitempty"`
	// Ranges are an offset stream's ranges, one per partition it reads,
	// sorted by topic and partition (empty ranges included: they carry
	// the partition's position). Older manifests have none.
	Ranges []OffsetRange `json:"ranges,omitempty"`
}

// OffsetRange is the records [From, Until) of one partition of a log (a
// Kafka topic's partition) an offset stream takes in the interval.
type OffsetRange struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	Until     int64  `json:"until"`
}

// Records is how many offsets the range spans (the records it holds, when
// no offset in it was compacted away or is a transaction marker).
func (r OffsetRange) Records() int64 { return r.Until - r.From }

// File is a file a file stream selected for the interval.
type File struct {
	Name    string `json:"name"`  // its name in the stream's folder
	Size    int64  `json:"size"`  // bytes, when selected: the dataset reads no further
	ModTime int64  `json:"mtime"` // modification time, Unix nanoseconds
}

// Block is one stored block of received (or queued) input.
type Block struct {
	Key     string `json:"key"`
	Records int    `json:"records"`
	Bytes   int64  `json:"bytes"` // estimated size in a block store
	// Locations are the processes holding the block; empty means the
	// process that wrote the manifest (one process, local[N]).
	Locations []string `json:"locations,omitempty"`
}

// ID names a dataset as rdd.ID does (operator, interval, creation order).
type ID struct {
	Op   int32 `json:"op"`
	Time int64 `json:"time"`
	Seq  int32 `json:"seq"`
}

// Checkpoint says that a state stream's dataset Dataset (generated at
// Dataset.Time) is checkpointed: its Partitions partitions are stored blocks,
// and its lineage is cut.
type Checkpoint struct {
	Stream     int32  `json:"stream"`
	Dataset    ID     `json:"dataset"`
	Name       string `json:"name"` // the dataset's operator name
	Partitions int    `json:"partitions"`
	// HashPartitions is n when the dataset's records are placed by a hash
	// partitioner over n partitions (0: unknown), as the original knew.
	HashPartitions int      `json:"hash,omitempty"`
	Locations      []string `json:"locations,omitempty"`
	// Kept says the dataset keeps its lineage (a cluster, between durable
	// checkpoints): a process builds it from its own graph and reads its
	// partitions at Locations, recomputing one whose holder is gone.
	// Otherwise its lineage is cut and it is adopted as it stands.
	Kept bool `json:"kept,omitempty"`
	// Durable names the committed checkpoint in the checkpoint store that
	// holds the dataset ("" if none).
	Durable string `json:"durable,omitempty"`
}

// EventTimeOf returns the progress of event-time stream stream as the
// interval starts; false if the stream has carried no record before it.
func (m *Interval) EventTimeOf(stream int32) (EventTime, bool) {
	for _, e := range m.EventTimes {
		if e.Stream == stream {
			return e, true
		}
	}
	return EventTime{}, false
}

// Input returns the blocks of stream, or nil.
func (m *Interval) Input(stream int32) []Block {
	for _, in := range m.Inputs {
		if in.Stream == stream {
			return in.Blocks
		}
	}
	return nil
}

// Records returns the number of input records in the interval.
func (m *Interval) Records() int64 {
	var n int64
	for _, in := range m.Inputs {
		for _, b := range in.Blocks {
			n += int64(b.Records)
		}
	}
	return n
}

// Bytes returns the estimated size of the interval's input blocks.
func (m *Interval) Bytes() int64 {
	var n int64
	for _, in := range m.Inputs {
		for _, b := range in.Blocks {
			n += b.Bytes
		}
	}
	return n
}

// Validate reports the first inconsistency: a manifest that would make two
// processes disagree must not be used.
func (m *Interval) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("manifest version %d, this program reads version %d", m.Version, Version)
	case m.Time <= m.Zero:
		return fmt.Errorf("manifest of interval %d: time is not after zero %d", m.Time, m.Zero)
	}
	seen := map[int32]bool{}
	for _, in := range m.Inputs {
		if seen[in.Stream] {
			return fmt.Errorf("manifest of interval %d: input stream %d listed twice", m.Time, in.Stream)
		}
		seen[in.Stream] = true
		for _, b := range in.Blocks {
			if b.Key == "" || b.Records < 0 || b.Bytes < 0 {
				return fmt.Errorf("manifest of interval %d: stream %d has a malformed block %+v", m.Time, in.Stream, b)
			}
		}
		for i, f := range in.Files {
			if f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, "/\\\x00") || f.Size < 0 {
				return fmt.Errorf("manifest of interval %d: stream %d has a malformed file %+v", m.Time, in.Stream, f)
			}
			if i > 0 && in.Files[i-1].Name >= f.Name {
				return fmt.Errorf("manifest of interval %d: stream %d's files are not sorted by name, each once (%q after %q)", m.Time, in.Stream, f.Name, in.Files[i-1].Name)
			}
		}
		for i, r := range in.Ranges {
			if r.Topic == "" || r.Partition < 0 || r.From < 0 || r.Until < r.From {
				return fmt.Errorf("manifest of interval %d: stream %d has a malformed offset range %+v", m.Time, in.Stream, r)
			}
			if i > 0 {
				p := in.Ranges[i-1]
				if cmp.Or(cmp.Compare(p.Topic, r.Topic), cmp.Compare(p.Partition, r.Partition)) >= 0 {
					return fmt.Errorf("manifest of interval %d: stream %d's offset ranges are not sorted by topic and partition, each once (%s/%d after %s/%d)", m.Time, in.Stream, r.Topic, r.Partition, p.Topic, p.Partition)
				}
			}
		}
	}
	seenET := map[int32]bool{}
	for _, e := range m.EventTimes {
		if seenET[e.Stream] || !e.Pending && e.Watermark > e.Max {
			return fmt.Errorf("manifest of interval %d: malformed event time %+v (listed twice, or a watermark past its largest event time)", m.Time, e)
		}
		seenET[e.Stream] = true
		for i, p := range e.Partitions {
			if p.Topic == "" || p.Partition < 0 || p.Seen && !e.Pending && p.Max > e.Max {
				return fmt.Errorf("manifest of interval %d: stream %d has a malformed partition event time %+v", m.Time, e.Stream, p)
			}
			if i > 0 {
				q := e.Partitions[i-1]
				if cmp.Or(cmp.Compare(q.Topic, p.Topic), cmp.Compare(q.Partition, p.Partition)) >= 0 {
					return fmt.Errorf("manifest of interval %d: stream %d's partition event times are not sorted by topic and partition, each once (%s/%d after %s/%d)", m.Time, e.Stream, p.Topic, p.Partition, q.Topic, q.Partition)
				}
			}
		}
	}
	for _, c := range m.Checkpoints {
		if c.Partitions < 0 || c.Dataset.Op != c.Stream || c.Dataset.Time >= m.Time || c.Dataset.Time <= m.Zero {
			return fmt.Errorf("manifest of interval %d: malformed checkpoint %+v", m.Time, c)
		}
	}
	return nil
}

// Kind is the checkpoint.Frame kind of a marshaled manifest.
const Kind = "dstream.manifest"

// ErrCorrupt is wrapped by Unmarshal's errors for frames that are truncated,
// fail their checksum or are not manifests. Those errors also wrap the
// checkpoint package's error (checkpoint.ErrCorrupt, a *checkpoint.FrameError)
// when it found the fault.
var ErrCorrupt = errors.New("corrupt manifest")

// Marshal validates m and frames it. Inputs and checkpoints are sorted by
// stream so equal manifests marshal to equal bytes.
func (m *Interval) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	c.Inputs = slices.Clone(m.Inputs)
	c.Checkpoints = slices.Clone(m.Checkpoints)
	c.EventTimes = slices.Clone(m.EventTimes)
	slices.SortFunc(c.EventTimes, func(a, b EventTime) int { return cmp.Compare(a.Stream, b.Stream) })
	slices.SortFunc(c.Inputs, func(a, b Input) int { return int(a.Stream) - int(b.Stream) })
	slices.SortFunc(c.Checkpoints, func(a, b Checkpoint) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Dataset.Time, b.Dataset.Time))
	})
	payload, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return checkpoint.Frame(Kind, Version, payload), nil
}

// Unmarshal reads one frame from the start of b and returns the manifest
// and the bytes after the frame.
func Unmarshal(b []byte) (*Interval, []byte, error) {
	kind, v, payload, rest, err := checkpoint.UnframePrefix(b)
	var fe *checkpoint.FrameError
	switch {
	case errors.As(err, &fe) && fe.Problem == checkpoint.FrameBadMagic:
		return nil, nil, fmt.Errorf("%w: not a manifest: %w", ErrCorrupt, err)
	case errors.Is(err, checkpoint.ErrCorrupt):
		return nil, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	case err != nil:
		return nil, nil, fmt.Errorf("manifest: %w", err) // a newer frame format
	case kind != Kind:
		return nil, nil, fmt.Errorf("%w: not a manifest but a %q frame", ErrCorrupt, kind)
	case v != Version:
		return nil, nil, fmt.Errorf("manifest version %d, this program reads version %d", v, Version)
	}
	var m Interval
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := m.Validate(); err != nil {
		return nil, nil, err
	}
	return &m, rest, nil
}

// Log keeps the manifests of the intervals a process still remembers, by
// interval time, with their frames once asked for (Frame, Frames): a
// manifest is marshaled once however often it is served. Manifests added
// must not be changed after. It is safe for concurrent use; the zero value
// is empty.
type Log struct {
	mu sync.Mutex
	m  map[int64]*logEntry
}

// logEntry is a remembered manifest and its frames, made when first asked
// for.
type logEntry struct {
	m     *Interval
	frame []byte
	// delta is m's delta frame relative to deltaBase, the manifest the log
	// held before m when it was made.
	delta     []byte
	deltaBase *Interval
	// sum is m's Sum once summed (made by the delta that ends at m, or
	// when m is a delta's base), so each manifest is hashed once, and by
	// what changed.
	sum    uint64
	summed bool
}

// Add records m, replacing a manifest of the same interval.
func (l *Log) Add(m *Interval) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[int64]*logEntry)
	}
	l.m[m.Time] = &logEntry{m: m}
}

// Get returns the manifest of interval t (Unix ms).
func (l *Log) Get(t int64) (*Interval, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[t]
	if !ok {
		return nil, false
	}
	return e.m, true
}

// Latest returns the time of the latest manifest (0: none).
func (l *Log) Latest() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t int64
	for ms := range l.m {
		t = max(t, ms)
	}
	return t
}

// Between returns the manifests of intervals in (after, upTo], in time order.
func (l *Log) Between(after, upTo int64) []*Interval {
	es := l.between(after, upTo)
	out := make([]*Interval, len(es))
	for i, e := range es {
		out[i] = e.m
	}
	return out
}

func (l *Log) between(after, upTo int64) []*logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*logEntry
	for t, e := range l.m {
		if t > after && t <= upTo {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *logEntry) int { return cmp.Compare(a.m.Time, b.m.Time) })
	return out
}

// Frame returns m's frame (Marshal), made once while the log holds m.
func (l *Log) Frame(m *Interval) ([]byte, error) {
	l.mu.Lock()
	e := l.m[m.Time]
	if e == nil || e.m != m {
		l.mu.Unlock()
		return m.Marshal()
	}
	return l.frameLocked(e)
}

// frameLocked returns e's frame; it is called with l.mu held, and releases
// it (marshaling runs unlocked).
func (l *Log) frameLocked(e *logEntry) ([]byte, error) {
	if f := e.frame; f != nil {
		l.mu.Unlock()
		return f, nil
	}
	l.mu.Unlock()
	f, err := e.m.Marshal()
	if err != nil {
		return nil, err
	}
	f = slices.Clip(f) // shared: an append by a caller copies it
	l.mu.Lock()
	e.frame = f
	l.mu.Unlock()
	return f, nil
}

// Frames returns the frames of the manifests of intervals in (after, upTo]
// the log holds, in time order. Without deltas each is a full manifest's
// (Marshal). With deltas, each is a delta (Diff) relative to the manifest
// of the frame before it in the answer and the first relative to the
// manifest of interval base (0: none), when the log holds it; a frame with
// no manifest to be relative to, or whose manifest cannot be related to it
// (Diff fails), is a full one. A delta relative to the manifest the log
// held before it is made once; others are made per call.
func (l *Log) Frames(after, upTo int64, deltas bool, base int64) ([][]byte, error) {
	es := l.between(after, upTo)
	frames := make([][]byte, 0, len(es))
	var prev *Interval
	if deltas && base > 0 {
		prev, _ = l.Get(base)
	}
	for _, e := range es {
		var f []byte
		var err error
		if deltas && prev != nil {
			f, err = l.deltaFrame(e, prev)
		}
		if f == nil && err == nil {
			l.mu.Lock()
			f, err = l.frameLocked(e)
		}
		if err != nil {
			return nil, err
		}
		frames = append(frames, f)
		prev = e.m
	}
	return frames, nil
}

// deltaFrame returns e's delta frame relative to base, or nil (no error)
// if the two cannot be related.
func (l *Log) deltaFrame(e *logEntry, base *Interval) ([]byte, error) {
	l.mu.Lock()
	if e.deltaBase == base {
		f := e.delta
		l.mu.Unlock()
		return f, nil
	}
	baseSum, ok := l.knownSum(base)
	l.mu.Unlock()
	if !ok {
		baseSum = base.Sum()
	}
	d, sum, err := DiffSummed(base, baseSum, e.m)
	if err != nil {
		return nil, nil // a full frame instead
	}
	f, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	f = slices.Clip(f)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Cache it when base is the manifest the log holds just before e's.
	var before *logEntry
	for t, o := range l.m {
		if t < e.m.Time && (before == nil || t > before.m.Time) {
			before = o
		}
	}
	if before != nil && before.m == base {
		e.delta, e.deltaBase = f, base
		before.sum, before.summed = baseSum, true
	}
	if l.m[e.m.Time] == e {
		e.sum, e.summed = sum, true
	}
	return f, nil
}

// knownSum returns m's Sum if the log holds m and has summed it; it is
// called with l.mu held.
func (l *Log) knownSum(m *Interval) (uint64, bool) {
	if e := l.m[m.Time]; e != nil && e.m == m && e.summed {
		return e.sum, true
	}
	return 0, false
}

// Forget drops the manifests of intervals at or before cutoff (Unix ms).
func (l *Log) Forget(cutoff int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t := range l.m {
		if t <= cutoff {
			delete(l.m, t)
		}
	}
}
