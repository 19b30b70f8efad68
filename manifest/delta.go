package manifest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dstream/dstream/checkpoint"
)

// Deltas. A state stream's manifest entries change little from one interval
// to the next (a window's reductions are each listed while the window
// remembers them: one entry more, one less, perhaps one whose lineage was
// cut), but a full manifest lists them all, so a process that learns every
// interval would decode and adopt O(window/interval) entries each interval.
// A Delta is a manifest written as the changes from the manifest of an
// earlier interval, its Base: the checkpoint entries that Base's manifest
// lacks or holds different (entries compare whole: locations, Kept,
// Durable, everything), and the entries of Base's manifest that this one
// lacks. Everything else (inputs, event times) is per interval and stays
// whole. Apply turns Base's manifest and the delta back into the manifest,
// equal to what Unmarshal reads from its full frame.
//
// Deltas are only for the master's answers to its workers (the cluster
// package's Manifests call, when a worker asks for them): the metadata log
// and everything else keep full manifests. A delta frame is a
// checkpoint.Frame of its own kind (DeltaKind, version DeltaVersion), so a
// reader of full manifests refuses it rather than taking it for one.

// DeltaKind is the checkpoint.Frame kind of a marshaled Delta.
const DeltaKind = "dstream.manifest.delta"

// DeltaVersion is the delta format version MarshalDelta writes and Decode
// accepts.
const DeltaVersion = 1

// Delta is interval Time's manifest relative to the manifest of interval
// Base (see Diff).
type Delta struct {
	Version int   `json:"v"`
	Base    int64 `json:"base"`
	// BaseSum is Base's manifest's Sum: Apply refuses a base of that
	// interval that lists other entries than the manifest Diff was given.
	BaseSum uint64 `json:"baseSum"`
	Zero    int64  `json:"zero"`
	Time    int64  `json:"time"`
	// Inputs and EventTimes are the manifest's own, whole.
	Inputs     []Input     `json:"inputs,omitempty"`
	EventTimes []EventTime `json:"eventTimes,omitempty"`
	// Checkpoints are the manifest's entries that Base's lacks or holds
	// different, sorted by stream and dataset time.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	// Dropped are the entries of Base's manifest this one lacks.
	Dropped []CheckpointRef `json:"dropped,omitempty"`
}

// CheckpointRef names a manifest's checkpoint entry: a manifest lists at
// most one per state stream and dataset time.
type CheckpointRef struct {
	Stream int32 `json:"stream"`
	Time   int64 `json:"time"`
}

func refOf(c Checkpoint) CheckpointRef { return CheckpointRef{Stream: c.Stream, Time: c.Dataset.Time} }

func compareRef(a, b CheckpointRef) int {
	return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Time, b.Time))
}

// sortedCheckpoints returns m's entries sorted by stream and dataset time
// (as Marshal writes them), and false if two name the same dataset time of
// a stream.
func sortedCheckpoints(cps []Checkpoint) ([]Checkpoint, bool) {
	if !slices.IsSortedFunc(cps, func(a, b Checkpoint) int { return compareRef(refOf(a), refOf(b)) }) {
		cps = slices.Clone(cps)
		slices.SortFunc(cps, func(a, b Checkpoint) int { return compareRef(refOf(a), refOf(b)) })
	}
	for i := 1; i < len(cps); i++ {
		if refOf(cps[i-1]) == refOf(cps[i]) {
			return nil, false
		}
	}
	return cps, true
}

// sameCheckpoint reports whether two entries are equal in every field.
func sameCheckpoint(a, b Checkpoint) bool {
	return a.Stream == b.Stream && a.Dataset == b.Dataset && a.Name == b.Name && a.Partitions == b.Partitions &&
		a.HashPartitions == b.HashPartitions && a.Kept == b.Kept && a.Durable == b.Durable && slices.Equal(a.Locations, b.Locations)
}

// Diff returns m as a delta relative to base, the manifest of an earlier
// interval of the same zero. It fails when the two cannot be related: base
// is not earlier, the zeros differ, or either lists an entry twice (a full
// manifest must be sent then).
func Diff(base, m *Interval) (*Delta, error) {
	d, _, err := DiffSummed(base, base.Sum(), m)
	return d, err
}

// DiffSummed is Diff given base's Sum, and returns m's Sum too, hashing
// only the entries that changed (as ApplySummed does on the other side):
// a process that diffs every interval against the one before pays for what
// changed, not for every entry a window keeps.
func DiffSummed(base *Interval, baseSum uint64, m *Interval) (*Delta, uint64, error) {
	switch {
	case base.Time >= m.Time:
		return nil, 0, fmt.Errorf("manifest delta of interval %d relative to interval %d, which is not earlier", m.Time, base.Time)
	case base.Zero != m.Zero:
		return nil, 0, fmt.Errorf("manifest delta of interval %d (zero %d) relative to interval %d of zero %d", m.Time, m.Zero, base.Time, base.Zero)
	}
	from, ok1 := sortedCheckpoints(base.Checkpoints)
	to, ok2 := sortedCheckpoints(m.Checkpoints)
	if !ok1 || !ok2 {
		return nil, 0, fmt.Errorf("manifest delta of interval %d relative to interval %d: an entry is listed twice", m.Time, base.Time)
	}
	sum := baseSum
	d := &Delta{Version: DeltaVersion, Base: base.Time, BaseSum: baseSum, Zero: m.Zero, Time: m.Time, Inputs: m.Inputs, EventTimes: m.EventTimes}
	i, j := 0, 0
	for i < len(from) || j < len(to) {
		var c int
		switch {
		case i == len(from):
			c = 1
		case j == len(to):
			c = -1
		default:
			c = compareRef(refOf(from[i]), refOf(to[j]))
		}
		switch {
		case c < 0:
			d.Dropped = append(d.Dropped, refOf(from[i]))
			sum -= entrySum(&from[i])
			i++
		case c > 0:
			d.Checkpoints = append(d.Checkpoints, to[j])
			sum += entrySum(&to[j])
			j++
		default:
			if !sameCheckpoint(from[i], to[j]) {
				d.Checkpoints = append(d.Checkpoints, to[j])
				sum += entrySum(&to[j]) - entrySum(&from[i])
			}
			i++
			j++
		}
	}
	return d, sum, nil
}

// ErrBase is wrapped by Apply's errors when the delta does not fit the
// manifest it is given: the whole manifest must be asked for instead.
var ErrBase = errors.New("manifest delta does not fit its base")

// Apply returns the manifest d describes, given base, the manifest of
// interval d.Base. It fails, with an error wrapping ErrBase, when base is
// not that manifest (another interval, zero or checkpoint entries than the
// delta was made from); the result is validated as Unmarshal validates a
// manifest.
func (d *Delta) Apply(base *Interval) (*Interval, error) {
	m, _, err := d.ApplySummed(base, base.Sum())
	return m, err
}

// ApplySummed is Apply given base's Sum (from Sum, or from the
// ApplySummed that returned base), and returns the manifest's Sum too.
// Checksums cost what changed, so a process that learns every interval
// from a delta hashes only the entries that changed.
func (d *Delta) ApplySummed(base *Interval, baseSum uint64) (*Interval, uint64, error) {
	switch {
	case base.Time != d.Base:
		return nil, 0, fmt.Errorf("%w: the delta of interval %d is relative to interval %d, not to %d", ErrBase, d.Time, d.Base, base.Time)
	case base.Zero != d.Zero:
		return nil, 0, fmt.Errorf("%w: the delta of interval %d is of zero %d, its base of zero %d", ErrBase, d.Time, d.Zero, base.Zero)
	case baseSum != d.BaseSum:
		return nil, 0, fmt.Errorf("%w: the delta of interval %d is relative to other entries of interval %d than this process knows (checksum %x, not %x)", ErrBase, d.Time, d.Base, d.BaseSum, baseSum)
	}
	from, ok := sortedCheckpoints(base.Checkpoints)
	if !ok {
		return nil, 0, fmt.Errorf("%w: the delta of interval %d: its base lists an entry twice", ErrBase, d.Time)
	}
	sum := baseSum
	cps := make([]Checkpoint, 0, len(from)+len(d.Checkpoints))
	i, j, k := 0, 0, 0 // from, d.Checkpoints, d.Dropped
	for i < len(from) || j < len(d.Checkpoints) {
		if j < len(d.Checkpoints) && (i == len(from) || compareRef(refOf(d.Checkpoints[j]), refOf(from[i])) <= 0) {
			if i < len(from) && refOf(d.Checkpoints[j]) == refOf(from[i]) {
				sum -= entrySum(&from[i]) // replaced
				i++
			}
			sum += entrySum(&d.Checkpoints[j])
			cps = append(cps, d.Checkpoints[j])
			j++
			continue
		}
		if k < len(d.Dropped) && d.Dropped[k] == refOf(from[i]) {
			sum -= entrySum(&from[i])
			k++
			i++
			continue
		}
		cps = append(cps, from[i])
		i++
	}
	if k < len(d.Dropped) {
		return nil, 0, fmt.Errorf("%w: the delta of interval %d drops entry %+v, which the manifest of interval %d does not hold after the ones it keeps", ErrBase, d.Time, d.Dropped[k], d.Base)
	}
	if len(cps) == 0 {
		cps = nil
	}
	if _, ok := sortedCheckpoints(cps); !ok {
		return nil, 0, fmt.Errorf("manifest delta of interval %d: an entry is listed twice", d.Time)
	}
	m := &Interval{Version: Version, Zero: d.Zero, Time: d.Time, Inputs: d.Inputs, Checkpoints: cps, EventTimes: d.EventTimes}
	if err := m.Validate(); err != nil {
		return nil, 0, err
	}
	return m, sum, nil
}

// Sum is the checksum of m's checkpoint entries that a delta relative to m
// carries (Delta.BaseSum): the sum (mod 2^64) of each entry's FNV-1a hash
// (64 bits) over every field, each string and list with its length, so it
// does not depend on the entries' order and changes by what changed. No
// locations and empty ones hash alike: a frame does not tell them apart.
func (m *Interval) Sum() uint64 {
	var sum uint64
	for i := range m.Checkpoints {
		sum += entrySum(&m.Checkpoints[i])
	}
	return sum
}

// entrySum is one checkpoint entry's part of Sum.
func entrySum(c *Checkpoint) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	num := func(v int64) {
		for range 8 {
			h = (h ^ uint64(v&0xff)) * prime
			v >>= 8
		}
	}
	str := func(s string) {
		num(int64(len(s)))
		for i := range len(s) {
			h = (h ^ uint64(s[i])) * prime
		}
	}
	flag := func(b bool) {
		if b {
			num(1)
		} else {
			num(0)
		}
	}
	num(int64(c.Stream))
	num(int64(c.Dataset.Op))
	num(c.Dataset.Time)
	num(int64(c.Dataset.Seq))
	str(c.Name)
	num(int64(c.Partitions))
	num(int64(c.HashPartitions))
	flag(c.Kept)
	str(c.Durable)
	num(int64(len(c.Locations)))
	for _, l := range c.Locations {
		str(l)
	}
	return h
}

// validate checks what a delta says of itself.
func (d *Delta) validate() error {
	switch {
	case d.Version != DeltaVersion:
		return fmt.Errorf("manifest delta version %d, this program reads version %d", d.Version, DeltaVersion)
	case d.Base <= d.Zero || d.Base >= d.Time:
		return fmt.Errorf("manifest delta of interval %d: its base %d is not an earlier interval (zero %d)", d.Time, d.Base, d.Zero)
	}
	for i := 1; i < len(d.Checkpoints); i++ {
		if compareRef(refOf(d.Checkpoints[i-1]), refOf(d.Checkpoints[i])) >= 0 {
			return fmt.Errorf("manifest delta of interval %d: its entries are not sorted by stream and time, each once", d.Time)
		}
	}
	for i := 1; i < len(d.Dropped); i++ {
		if compareRef(d.Dropped[i-1], d.Dropped[i]) >= 0 {
			return fmt.Errorf("manifest delta of interval %d: its dropped entries are not sorted by stream and time, each once", d.Time)
		}
	}
	return nil
}

// MarshalDelta frames d (DeltaKind). Inputs and event times are sorted by
// stream, as Marshal sorts a manifest's.
func (d *Delta) Marshal() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	// The manifest's own checks, on the parts a delta holds whole.
	probe := Interval{Version: Version, Zero: d.Zero, Time: d.Time, Inputs: d.Inputs, EventTimes: d.EventTimes}
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	c := *d
	c.Inputs = slices.Clone(d.Inputs)
	c.EventTimes = slices.Clone(d.EventTimes)
	slices.SortFunc(c.Inputs, func(a, b Input) int { return cmp.Compare(a.Stream, b.Stream) })
	slices.SortFunc(c.EventTimes, func(a, b EventTime) int { return cmp.Compare(a.Stream, b.Stream) })
	payload, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return checkpoint.Frame(DeltaKind, DeltaVersion, payload), nil
}

// Decode reads one frame from the start of b, a full manifest (m) or a
// delta (d), and returns it with the bytes after the frame. It refuses
// what Unmarshal refuses, and a delta that is malformed or of an unknown
// version.
func Decode(b []byte) (m *Interval, d *Delta, rest []byte, err error) {
	kind, v, payload, rest, err := checkpoint.UnframePrefix(b)
	if err != nil || kind != DeltaKind {
		m, rest, err = Unmarshal(b)
		return m, nil, rest, err
	}
	if v != DeltaVersion {
		return nil, nil, nil, fmt.Errorf("manifest delta version %d, this program reads version %d", v, DeltaVersion)
	}
	d = new(Delta)
	if err := json.Unmarshal(payload, d); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := d.validate(); err != nil {
		return nil, nil, nil, err
	}
	return nil, d, rest, nil
}
