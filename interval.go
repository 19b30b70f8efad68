package dstream

import (
	"errors"
	"fmt"
	"time"

	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/received"
)

// Intervals as every process sees them: the runner records each interval's
// manifest (package manifest) before running it, and a context that does not
// run the loop (a worker, a test standing for one) learns intervals from
// manifests with Materialize. Either way an interval's datasets are then the
// streams' At(t): the same IDs, lineage and partitions in every process.

// Manifest returns the manifest of interval t, while the context remembers
// it (as long as the longest remember duration in the graph).
func (c *Context) Manifest(t time.Time) (*manifest.Interval, bool) {
	return c.manifests.Get(t.UnixMilli())
}

// blockInput is an input stream whose intervals read stored blocks.
type blockInput interface {
	opID() int32
	rememberDuration() time.Duration
}

func (c *Context) blockInputs() []blockInput {
	var ins []blockInput
	for _, in := range c.inputs {
		if r, ok := in.(*receiverInput); ok {
			ins = append(ins, r)
		}
	}
	for _, in := range c.cutters {
		ins = append(ins, in)
	}
	return ins
}

// maxRemember is the longest remember duration in the graph.
func (c *Context) maxRemember() time.Duration {
	var d time.Duration
	for _, n := range c.nodes {
		d = max(d, n.rememberDuration())
	}
	return d
}

// manifestOf describes interval t as the runner is about to run it: its
// input blocks, and the latest checkpoint of every state stream before t.
func (c *Context) manifestOf(t time.Time) *manifest.Interval {
	m := &manifest.Interval{Version: manifest.Version, Zero: c.zero.UnixMilli(), Time: t.UnixMilli()}
	for _, in := range c.blockInputs() {
		if fi, ok := in.(*fileInput); ok {
			// A file stream names the files it took (filestream.go).
			if files, _ := fi.filesAt(m.Time); len(files) > 0 {
				m.Inputs = append(m.Inputs, manifest.Input{Stream: fi.opID(), Files: files})
			}
			continue
		}
		bs := c.tracker.Blocks(in.opID(), t)
		if len(bs) == 0 {
			continue
		}
		mi := manifest.Input{Stream: in.opID(), Blocks: make([]manifest.Block, len(bs))}
		for i, b := range bs {
			mi.Blocks[i] = manifest.Block{Key: b.Key, Records: b.Records, Bytes: b.Bytes, Locations: b.Locations}
		}
		m.Inputs = append(m.Inputs, mi)
	}
	for _, n := range c.nodes {
		m.Checkpoints = append(m.Checkpoints, n.lastCheckpoints(t)...)
	}
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
func (c *Context) Materialize(m *manifest.Interval) error {
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
		propagateRemember(c.nodes, c.keepsLineage())
		c.materialized = true
		c.zero = time.UnixMilli(m.Zero)
	}
	zero := c.zero
	c.mu.Unlock()
	if zero.UnixMilli() != m.Zero {
		return fmt.Errorf("dstream: manifest of interval %d starts at %d, this context at %d", m.Time, m.Zero, zero.UnixMilli())
	}
	t := time.UnixMilli(m.Time)
	byID := make(map[int32]node, len(c.nodes))
	for _, n := range c.nodes {
		byID[n.opID()] = n
	}
	inputs := map[int32]bool{}
	for _, in := range c.blockInputs() {
		inputs[in.opID()] = true
	}
	for _, in := range m.Inputs {
		if !inputs[in.Stream] {
			return fmt.Errorf("dstream: manifest of interval %d names input stream %d, which this graph does not have", m.Time, in.Stream)
		}
		if len(in.Files) > 0 && c.fileInputOf(in.Stream) == nil {
			return fmt.Errorf("dstream: manifest of interval %d names files of stream %d, which is not a file stream of this graph", m.Time, in.Stream)
		}
	}
	for _, cp := range m.Checkpoints {
		if n, ok := byID[cp.Stream]; !ok || !n.checkpoints() {
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
		if len(in.Blocks) == 0 {
			continue
		}
		infos := make([]received.Block, len(in.Blocks))
		for i, b := range in.Blocks {
			infos[i] = received.Block{Stream: in.Stream, Key: b.Key, Time: t, Records: b.Records, Bytes: b.Bytes, Locations: b.Locations}
		}
		c.tracker.AddAllocated(t, in.Stream, infos)
	}
	for _, cp := range m.Checkpoints {
		if err := byID[cp.Stream].adopt(cp); err != nil {
			return fmt.Errorf("dstream: manifest of interval %d: %w", m.Time, err)
		}
	}
	c.manifests.Add(m)
	return nil
}
