package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/received"
)

// Intervals as every process sees them: the runner records each interval's
// manifest (package manifest, written by manifestOf) before running it, and
// an engine that does not run the loop (a worker, a test standing for one)
// learns intervals from manifests with Materialize. Either way an interval's
// datasets are then the streams' At(t): the same IDs, lineage and partitions
// in every process.

// Manifest returns the manifest of interval t, while the context remembers
// it (as long as the longest remember duration in the graph).
func (c *Engine) Manifest(t time.Time) (*manifest.Interval, bool) {
	return c.manifests.Get(t.UnixMilli())
}

// blockInput is an input stream whose intervals read stored blocks.
type blockInput interface {
	OpID() int32
	RememberDuration() time.Duration
}

func (c *Engine) blockInputs() []blockInput {
	var ins []blockInput
	for _, in := range c.inputs {
		if r, ok := in.(*ReceiverInput); ok {
			ins = append(ins, r)
		}
	}
	for _, in := range c.cutters {
		ins = append(ins, in)
	}
	return ins
}

// MaxRemember is the longest remember duration in the graph.
func (c *Engine) MaxRemember() time.Duration {
	var d time.Duration
	for _, n := range c.nodes {
		d = max(d, n.RememberDuration())
	}
	return d
}

// manifestOf describes interval t as the runner is about to run it: its
// input blocks, and the latest checkpoint of every state stream before t.
func (c *Engine) manifestOf(t time.Time) *manifest.Interval {
	m := &manifest.Interval{Version: manifest.Version, Zero: c.tl.Zero().UnixMilli(), Time: t.UnixMilli()}
	for _, in := range c.blockInputs() {
		if fi, ok := in.(*FileInput); ok {
			// A file stream names the files it took (filestream.go).
			if files, _ := fi.filesAt(m.Time); len(files) > 0 {
				m.Inputs = append(m.Inputs, manifest.Input{Stream: fi.OpID(), Files: files})
			}
			continue
		}
		if oi, ok := in.(*OffsetInput); ok {
			// An offset stream names its ranges (offsetstream.go), empty
			// ones included: they carry the partitions' positions.
			if rs, _ := oi.RangesAt(t); len(rs) > 0 {
				m.Inputs = append(m.Inputs, manifest.Input{Stream: oi.OpID(), Ranges: rs})
			}
			continue
		}
		bs := c.tracker.Blocks(in.OpID(), t)
		if len(bs) == 0 {
			continue
		}
		mi := manifest.Input{Stream: in.OpID(), Blocks: make([]manifest.Block, len(bs))}
		for i, b := range bs {
			mi.Blocks[i] = manifest.Block{Key: b.Key, Records: b.Records, Bytes: b.Bytes, Locations: b.Locations}
		}
		m.Inputs = append(m.Inputs, mi)
	}
	var all [][]manifest.Checkpoint
	size := 0
	for _, n := range c.nodes {
		if cps := n.LastCheckpoints(t); len(cps) > 0 {
			all = append(all, cps)
			size += len(cps)
		}
	}
	if len(all) == 1 {
		m.Checkpoints = all[0] // one state stream (or one window): its own slice
	} else if size > 0 {
		m.Checkpoints = make([]manifest.Checkpoint, 0, size)
		for _, cps := range all {
			m.Checkpoints = append(m.Checkpoints, cps...)
		}
	}
	m.EventTimes = c.eventTimesFor(t)
	return m
}

// Materialize makes interval m.Time known to a context that does not run its
// own intervals: a worker, given the master's manifests. After it, every
// stream's At(m.Time) builds the interval's datasets exactly as the context
// that wrote m did, reading the input blocks and checkpoints m names from
// this context's block store (where they must be, or the tasks that read
// them fail naming the block). Materialize the intervals a window or state
// reaches back to as well (as long as the graph remembers). The graph must be
// complete; a context that materialized a manifest cannot be started.
func (c *Engine) Materialize(m *manifest.Interval) error {
	return c.materialize(m, m.Checkpoints)
}

// materialize is Materialize adopting only the checkpoint entries adopt:
// those of m that the manifest materialized before it lacks or holds
// different (the others it adopted then, and nothing forgot since: a
// worker forgets an interval behind its master, which lists only what it
// still remembers).
func (c *Engine) materialize(m *manifest.Interval, adopt []manifest.Checkpoint) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("dstream: %w", err)
	}
	c.mu.Lock()
	switch {
	case c.state != stateNew && c.worker == nil:
		c.mu.Unlock()
		return errors.New("dstream: Materialize on a started context: it cuts its own intervals")
	case c.graphErr != nil:
		err := c.graphErr
		c.mu.Unlock()
		return fmt.Errorf("dstream: %w", err)
	}
	if !c.materialized {
		PropagateRemember(c.nodes, c.KeepsLineage())
		c.materialized = true
		c.tl = c.tl.At(time.UnixMilli(m.Zero))
	}
	zero := c.tl.Zero()
	c.mu.Unlock()
	if zero.UnixMilli() != m.Zero {
		return fmt.Errorf("dstream: manifest of interval %d starts at %d, this context at %d", m.Time, m.Zero, zero.UnixMilli())
	}
	t := time.UnixMilli(m.Time)
	byID := make(map[int32]Node, len(c.nodes))
	for _, n := range c.nodes {
		byID[n.OpID()] = n
	}
	inputs := map[int32]bool{}
	for _, in := range c.blockInputs() {
		inputs[in.OpID()] = true
	}
	for _, in := range m.Inputs {
		if !inputs[in.Stream] {
			return fmt.Errorf("dstream: manifest of interval %d names input stream %d, which this graph does not have", m.Time, in.Stream)
		}
		if len(in.Files) > 0 && c.fileInputOf(in.Stream) == nil {
			return fmt.Errorf("dstream: manifest of interval %d names files of stream %d, which is not a file stream of this graph", m.Time, in.Stream)
		}
		if len(in.Ranges) > 0 && c.offsetInputOf(in.Stream) == nil {
			return fmt.Errorf("dstream: manifest of interval %d names offset ranges of stream %d, which is not an offset stream of this graph", m.Time, in.Stream)
		}
	}
	for _, cp := range adopt {
		if n, ok := byID[cp.Stream]; !ok || !n.Checkpoints() {
			return fmt.Errorf("dstream: manifest of interval %d names a checkpoint of stream %d, not a state stream of this graph", m.Time, cp.Stream)
		}
	}
	if _, ok := c.manifests.Get(t.UnixMilli()); ok {
		return nil // already known
	}
	for _, in := range m.Inputs {
		if len(in.Files) > 0 {
			c.fileInputOf(in.Stream).learn(m.Time, in.Files)
		}
		if len(in.Ranges) > 0 {
			c.offsetInputOf(in.Stream).learn(m.Time, in.Ranges)
		}
		if len(in.Blocks) == 0 {
			continue
		}
		infos := make([]received.Block, len(in.Blocks))
		for i, b := range in.Blocks {
			infos[i] = received.Block{Stream: in.Stream, Key: b.Key, Time: t, Records: b.Records, Bytes: b.Bytes, Locations: b.Locations}
		}
		c.tracker.AddAllocated(t, in.Stream, infos)
	}
	for _, cp := range adopt {
		if err := byID[cp.Stream].Adopt(cp); err != nil {
			return fmt.Errorf("dstream: manifest of interval %d: %w", m.Time, err)
		}
	}
	c.manifests.Add(m)
	return nil
}

// PropagateRemember extends every stream's remember duration to what its
// consumers need, as Spark's DStream.remember does: a stream that keeps its
// datasets for d keeps their lineage, so its parents must be able to
// recompute them for d too (an input stream keeps its received blocks that
// long). A state stream whose lineage is cut every interval (one process)
// asks its parents for nothing beyond their own needs; one that keeps its
// lineage between checkpoints (a cluster) asks for two checkpoint intervals,
// and keeps its own datasets as long. Streams are created after their
// parents, so one pass from the newest back reaches every ancestor.
func PropagateRemember(nodes []Node, keepsLineage bool) {
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		need := n.RememberDuration()
		if n.Checkpoints() {
			if !keepsLineage {
				continue
			}
			need = 2 * n.CheckpointInterval()
			n.RememberAtLeast(need)
		}
		for _, p := range n.ParentNodes() {
			p.RememberAtLeast(need)
		}
	}
}
