// Package timeline is a job's interval arithmetic, in one place: where the
// intervals start (zero), which one the generator cuts first, which interval
// a time falls in, how long a stream must remember, and when a state stream's
// checkpoint is due. Every part of the engine asks a Timeline; nobody
// recomputes it.
//
// Intervals are half-open: interval t is (t-Batch, t], and it is named by
// its end t. The intervals of a job end at Zero + k*Batch for k >= 1; a
// stream that slides by S (a multiple of Batch) produces a dataset at the
// interval ends t with (t-Zero) a positive multiple of S.
//
// Master and workers must agree on every one of these answers, so they are
// computed in one place from two facts only: the batch interval and the
// zero. A master fixes the zero at Start (or keeps the one its metadata log
// holds when it resumes); a worker learns it from a manifest (At). The
// package imports nothing: it knows no streams, clocks or processes, and its
// functions are pure, table-tested in timeline_test.go.
package timeline

import (
	"fmt"
	"time"
)

// DefaultCheckpointInterval is the least default interval between a state
// stream's durable checkpoints; the default is the larger of it and five
// slides (Spark's rule).
const DefaultCheckpointInterval = 10 * time.Second

// Timeline is the interval arithmetic of one job. The zero value is not
// usable; build one with New. A Timeline is a small value: copy it freely.
type Timeline struct {
	batch time.Duration
	zero  time.Time // before the first interval: intervals end at zero + k*batch
	first time.Time // the first interval the generator cuts
}

// New returns the timeline of a job with intervals of batch that has not
// started yet: Started reports false until Start, Resume, Restart or At.
// It panics if batch is not positive (dstream.Config.Validate rules that
// out before any timeline is made).
func New(batch time.Duration) Timeline {
	if batch <= 0 {
		panic(fmt.Sprintf("timeline: batch interval %v must be positive", batch))
	}
	return Timeline{batch: batch}
}

// Start returns the timeline of a fresh job started at now: zero is the
// interval boundary at or before now, and the first interval ends one batch
// after it.
func (tl Timeline) Start(now time.Time) Timeline {
	tl.zero = now.Truncate(tl.batch)
	tl.first = tl.zero.Add(tl.batch)
	return tl
}

// Resume returns the timeline of a job that started at zero and whose last
// completed interval is lastDone (zero Time: none completed): the first
// interval to run is the one after lastDone.
func (tl Timeline) Resume(zero, lastDone time.Time) Timeline {
	tl.zero = zero
	tl.first = zero.Add(tl.batch)
	if lastDone.After(zero) {
		tl.first = lastDone.Add(tl.batch)
	}
	return tl
}

// Restart returns the timeline of a job that started at zero but ran none
// of its intervals, started again at now: it keeps its zero, and its first
// interval is the one after now's (the intervals while it was down are not
// run: nothing was received in them).
func (tl Timeline) Restart(zero, now time.Time) Timeline {
	tl.zero = zero
	tl.first = now.Truncate(tl.batch).Add(tl.batch)
	if !tl.first.After(zero) {
		tl.first = zero.Add(tl.batch)
	}
	return tl
}

// At returns the timeline of a job whose intervals start at zero, as a
// process that does not cut intervals (a worker) learns it from a manifest.
func (tl Timeline) At(zero time.Time) Timeline {
	tl.zero = zero
	tl.first = zero.Add(tl.batch)
	return tl
}

// Batch is the length of an interval.
func (tl Timeline) Batch() time.Duration { return tl.batch }

// Started reports whether the timeline has a zero (Start, Resume or At).
func (tl Timeline) Started() bool { return !tl.zero.IsZero() }

// Zero is the time before the first interval; the zero Time before Start.
func (tl Timeline) Zero() time.Time { return tl.zero }

// First is the end of the first interval the generator cuts: zero + batch
// for a fresh job, the interval after the last completed one for a resumed
// job.
func (tl Timeline) First() time.Time { return tl.first }

// Next is the interval after t.
func (tl Timeline) Next(t time.Time) time.Time { return t.Add(tl.batch) }

// Prev is the interval before t.
func (tl Timeline) Prev(t time.Time) time.Time { return t.Add(-tl.batch) }

// Index is how many intervals end in (zero, t]: 1 for the first interval.
func (tl Timeline) Index(t time.Time) int64 { return int64(t.Sub(tl.zero) / tl.batch) }

// Containing is the interval that t falls in: the first interval end at or
// after t that is after zero. A record received at t belongs to it; a
// graceful stop at t drains up to it.
func (tl Timeline) Containing(t time.Time) time.Time {
	end := t.Truncate(tl.batch)
	if end.Before(t) || !end.After(tl.zero) {
		end = end.Add(tl.batch)
	}
	if !end.After(tl.zero) {
		end = tl.zero.Add(tl.batch)
	}
	return end
}

// IsSlide reports whether t is an interval at which a stream sliding by
// slide produces a dataset: (t - zero) is a positive multiple of slide.
func (tl Timeline) IsSlide(t time.Time, slide time.Duration) bool {
	d := t.Sub(tl.zero)
	return d > 0 && d%slide == 0
}

// FirstSlideAtOrAfter is the first time at or after t (and after zero) at
// which a stream sliding by slide produces a dataset.
func (tl Timeline) FirstSlideAtOrAfter(t time.Time, slide time.Duration) time.Time {
	if !t.After(tl.zero) {
		return tl.zero.Add(slide)
	}
	k := (t.Sub(tl.zero) + slide - 1) / slide
	return tl.zero.Add(k * slide)
}

// Since are the intervals, oldest first, from the one back intervals before
// first up to the one before first, none at or before zero: what a resumed
// job learns again before it runs first.
func (tl Timeline) Since(first time.Time, back int64) []time.Time {
	var out []time.Time
	for t := first.Add(-time.Duration(back) * tl.batch); t.Before(first); t = t.Add(tl.batch) {
		if t.After(tl.zero) {
			out = append(out, t)
		}
	}
	return out
}

// Intervals is how many whole intervals d spans, rounded down.
func (tl Timeline) Intervals(d time.Duration) int64 { return int64(d / tl.batch) }

// CheckpointEvery is how often a state stream sliding by slide writes a
// durable checkpoint: explicit (Stream.Checkpoint) if set, else configured
// (Config.CheckpointInterval) if set, else the larger of
// DefaultCheckpointInterval and five slides; rounded up to a multiple of
// slide.
func CheckpointEvery(slide, explicit, configured time.Duration) time.Duration {
	every := explicit
	if every == 0 {
		every = configured
	}
	if every == 0 {
		every = max(DefaultCheckpointInterval, 5*slide)
	}
	return (every + slide - 1) / slide * slide
}

// CheckpointDue reports whether interval t is one at which a state stream
// checkpointing every `every` writes a durable checkpoint.
func (tl Timeline) CheckpointDue(t time.Time, every time.Duration) bool {
	return t.Sub(tl.zero)%every == 0
}

// Retention is how long after its interval a thing read by the graph must
// be kept: the graph's longest remember duration and two checkpoint
// intervals of its slowest-checkpointing state stream, plus two intervals
// of slack (what an interval running late, and the one after, still read).
func (tl Timeline) Retention(remember, checkpointEvery time.Duration) time.Duration {
	return max(remember, 2*checkpointEvery) + 2*tl.batch
}
