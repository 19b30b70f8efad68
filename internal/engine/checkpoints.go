package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
)

// State checkpoints, the engine's side. The typed state streams (package
// dstream, checkpointing.go) decide when to checkpoint and hold the
// records; the engine stores a checkpoint's parts in the checkpoint store
// (WritePart, CheckpointDir), reads them back (DurableReader, CommittedReader),
// and tells the streams which holders of their kept partitions a cluster
// lost (loseHolder, ForgetDeadHolders).

// ForgetDeadHolders drops from n's locations the processes that are no
// longer in the cluster: a worker lost while Keep ran was not there to be
// forgotten when the loss was handled.
func (c *Engine) ForgetDeadHolders(n *rdd.Node, lose func(addr string) bool) {
	if c.cluster == nil {
		return
	}
	for p := range n.NumPartitions {
		for _, l := range n.Locations(p) {
			if l != "" && !c.cluster.isAlive(l) {
				lose(l)
			}
		}
	}
}

// hasState reports whether the graph has a state stream.
func (c *Engine) hasState() bool {
	for _, n := range c.nodes {
		if n.Checkpoints() {
			return true
		}
	}
	return false
}

// loseHolder tells every state stream that process addr is gone.
func (c *Engine) loseHolder(addr string) {
	for _, n := range c.nodes {
		n.LoseHolder(addr)
	}
}

// WritePart writes one partition of a checkpoint to the store, framed, and
// returns the object's name.
func (c *Engine) WritePart(tc *rdd.TaskContext, records any, dir string) (string, error) {
	store, err := c.CheckpointStore()
	if err != nil {
		return "", err
	}
	data, err := rdd.EncodeBlock(records)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s/part-%05d", dir, tc.Partition)
	if err := store.Put(tc.Ctx, name, checkpoint.Frame("state-part", 1, data)); err != nil {
		return "", err
	}
	return name, nil
}

// CommitMeta is what a committed state checkpoint says about itself.
type CommitMeta struct {
	Stream         int32         `json:"stream"`
	State          string        `json:"state,omitempty"` // the state's name (Stream.Name); "" unnamed
	Dataset        manifest.ID   `json:"dataset"`
	Name           string        `json:"name"`
	Partitions     int           `json:"partitions"`
	HashPartitions int           `json:"hash,omitempty"`
	Parts          []string      `json:"parts"`
	Zero           int64         `json:"zero"`
	Slide          time.Duration `json:"slide"`
}

// StatePrefix is where a state stream's checkpoints are: under its name
// when it has one ("state/counts/"), so that a changed graph finds them
// whatever the stream's operator ID (recovery.go), else under its operator
// ID ("state/000003/"). A state's name begins with a letter, so the two
// never meet.
func StatePrefix(stream int32, name string) string {
	if name != "" {
		return "state/" + name + "/"
	}
	return fmt.Sprintf("state/%06d/", stream)
}

// CheckpointDir names the store folder of a state stream's checkpoint at
// t (StatePrefix): interval times are zero-padded so names sort as times do.
func CheckpointDir(stream int32, name string, t int64) string {
	return fmt.Sprintf("%s%020d", StatePrefix(stream, name), t)
}

// DurableReader reads partition p of a committed checkpoint.
func (c *Engine) DurableReader(parts []string) func(ctx context.Context, p int) ([]byte, error) {
	return func(ctx context.Context, p int) ([]byte, error) {
		if p < 0 || p >= len(parts) {
			return nil, fmt.Errorf("checkpoint has %d partitions, not %d", len(parts), p+1)
		}
		store, err := c.CheckpointStore()
		if err != nil {
			return nil, err
		}
		b, err := store.Get(ctx, parts[p])
		if err != nil {
			return nil, err
		}
		kind, _, payload, err := checkpoint.Unframe(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", parts[p], err)
		}
		if kind != "state-part" {
			return nil, fmt.Errorf("%s holds a %q, not a partition of a state checkpoint", parts[p], kind)
		}
		return payload, nil
	}
}

// CommittedReader reads partition p of the checkpoint committed in dir,
// reading its commit (which lists the parts) at the first read, not now: a
// worker adopts a durable checkpoint at every interval a manifest names a
// new one, and reads it only to recover a partition it lacks, so the
// commit's round trip to the store stays off the interval's first task.
// The commit is read under the reading task's context (a task killed
// meanwhile stops waiting); a failed read is tried again at the next.
func (c *Engine) CommittedReader(dir string) func(ctx context.Context, p int) ([]byte, error) {
	var parts atomic.Pointer[[]string]
	return func(ctx context.Context, p int) ([]byte, error) {
		ps := parts.Load()
		if ps == nil {
			meta, err := c.readCommit(ctx, dir)
			if err != nil {
				return nil, err
			}
			ps = &meta.Parts
			parts.Store(ps)
		}
		return c.DurableReader(*ps)(ctx, p)
	}
}

// readCommit reads the commit of a state checkpoint.
func (c *Engine) readCommit(ctx context.Context, dir string) (*CommitMeta, error) {
	store, err := c.CheckpointStore()
	if err != nil {
		return nil, err
	}
	rec, err := checkpoint.ReadCommit(ctx, store, dir)
	if err != nil {
		return nil, fmt.Errorf("state checkpoint %s: %w", dir, err)
	}
	return CommitMetaOf(rec)
}

// CommitMetaOf decodes what a state checkpoint's commit says of it.
func CommitMetaOf(rec *checkpoint.CommitRecord) (*CommitMeta, error) {
	var m CommitMeta
	if err := json.Unmarshal(rec.Meta, &m); err != nil {
		return nil, fmt.Errorf("state checkpoint %s: its commit: %w", rec.Dir, err)
	}
	return &m, nil
}
