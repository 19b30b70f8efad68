package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/graphspec"
	"github.com/dstream/dstream/manifest"
)

// A master restarted with a graph other than the one that wrote its
// checkpoint folder resumes what graphspec.Upgrade allows (recovery.go,
// resume): named states by name (their checkpoints are under their names,
// StatePrefix), inputs at the same operator ID with the same description
// from their logged positions. What the plan does not carry over starts
// afresh: the records of the log and the objects of the folder that
// belong to it are passed over or deleted here, so that a stream of the
// new graph never adopts another's. The start record then names the new
// graph (resume).

// upgrade prepares the folder for a changed graph: the inputs and state
// streams that start afresh lose what the folder holds under their names.
func (c *Engine) upgrade(ctx context.Context, store checkpoint.Store, plan *graphspec.Plan, st metaStart) error {
	c.fresh = map[int32]bool{}
	var clear []string
	for _, n := range plan.NewInputs {
		c.fresh[n.ID] = true
		clear = append(clear, fmt.Sprintf("files/%06d/", n.ID), fmt.Sprintf("offsets/%06d/", n.ID))
	}
	for _, o := range plan.DroppedInputs {
		clear = append(clear, fmt.Sprintf("files/%06d/", o.ID), fmt.Sprintf("offsets/%06d/", o.ID))
	}
	for _, n := range plan.Fresh {
		clear = append(clear, StatePrefix(n.ID, n.StateName))
	}
	for _, prefix := range clear {
		names, err := store.List(ctx, prefix)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := store.Delete(ctx, name); err != nil {
				return err
			}
		}
	}
	for _, n := range plan.Fresh {
		c.log.Info("graph changed: a state stream starts without a checkpoint", "stream", n.ID, "state", n.StateName, "operator", n.Name)
	}
	for _, o := range plan.Dropped {
		c.log.Warn("graph changed: a named state of the checkpoint is not in this graph; it is not restored (Config.AllowDroppedState)", "state", o.StateName, "was", o.String())
	}
	for _, n := range plan.NewInputs {
		c.log.Info("graph changed: a new input starts at its configured start", "stream", n.ID, "input", n.Name)
	}
	for _, o := range plan.DroppedInputs {
		c.log.Info("graph changed: an input of the checkpoint is not in this graph; its positions are deleted", "stream", o.ID, "input", o.Name)
	}
	c.log.Info("graph changed since the checkpoint was written; resuming its named states", "states", len(plan.States), "fresh", len(plan.Fresh),
		"inputs_resumed", len(plan.Inputs), "written_by", graphspec.Fingerprint(st.Graph), "graph", graphspec.Fingerprint(c.resolvedGraph()))
	return nil
}

// resumedOnly keeps, of what a changed graph's restart read back from the
// metadata log, what belongs to streams the plan carries over: the
// inputs' blocks and files of resumed inputs, the event-time progress of
// streams that are the same; state checkpoints are named by the states
// themselves (restoreState), so the manifests' are left out.
func resumedOnly(plan *graphspec.Plan, logged map[int64]loggedManifest, blocks []loggedBlock, done []manifest.EventTime) (map[int64]loggedManifest, []loggedBlock, []manifest.EventTime) {
	sameTimes := func(ets []manifest.EventTime) []manifest.EventTime {
		var out []manifest.EventTime
		for _, e := range ets {
			if plan.Same[e.Stream] {
				out = append(out, e)
			}
		}
		return out
	}
	kept := make(map[int64]loggedManifest, len(logged))
	for t, lm := range logged {
		m := *lm.m
		m.Inputs = nil
		for _, in := range lm.m.Inputs {
			if plan.Inputs[in.Stream] {
				m.Inputs = append(m.Inputs, in)
			}
		}
		m.Checkpoints = nil
		m.EventTimes = sameTimes(lm.m.EventTimes)
		kept[t] = loggedManifest{&m, lm.seq}
	}
	var bs []loggedBlock
	for _, b := range blocks {
		if plan.Inputs[b.Stream] {
			bs = append(bs, b)
		}
	}
	return kept, bs, sameTimes(done)
}

// putStart writes the start record: the job's identity.
func (c *Engine) putStart(ctx context.Context, store checkpoint.Store, st metaStart) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := store.Put(ctx, metaStartName, checkpoint.Frame("dstream.start", 1, b)); err != nil {
		return fmt.Errorf("checkpoint folder: %w", err)
	}
	return nil
}

// resolvedGraph is the graph as the checkpoint's start record keeps it: a
// state's partitions given as the default (0) are the default's number,
// which only the master knows (a worker learns it after it compares
// graphs), so that a change of Config.Parallelism is a change of the state.
func (c *Engine) resolvedGraph() []graphspec.Node {
	g := c.Graph()
	for i, n := range g {
		if n.State && n.Partitions == 0 && n.Partitioner != "" {
			g[i].Partitions = c.Datasets().Parallelism()
		}
	}
	return g
}
