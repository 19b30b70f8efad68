package engine

import (
	"os"
	"time"
)

// WorkerInfo describes a process that runs tasks, as the master sees it. In
// local[N] there is one: this process, named "local".
type WorkerInfo struct {
	ID            string
	Address       string // where peers reach it; empty for this process
	PID           int
	Slots         int       // task slots
	FreeSlots     int       // slots not running a task now
	MemoryUsed    int64     // bytes its block store holds
	MemoryLimit   int64     // its memory budget (Config.MemoryBytes)
	Blocks        int       // blocks in its store
	State         string    // "alive" or "lost"
	LastHeartbeat time.Time // zero for this process
	// ExcludedUntil is when its exclusion from placement ends, its task
	// having been beaten by a speculative copy (sched.Core); zero when it
	// is not excluded.
	ExcludedUntil time.Time
}

// Workers returns the processes that run the context's tasks: this one,
// then (in local-cluster[N]) every worker that joined, alive or lost, as
// its heartbeats last reported it.
func (c *Engine) Workers() []WorkerInfo {
	st := c.blocks.Stats()
	self := WorkerInfo{ID: "local", PID: os.Getpid(), MemoryUsed: st.Bytes, MemoryLimit: c.cfg.MemoryBytes, Blocks: st.Blocks, State: "alive"}
	slots := c.shell.Workers()
	if c.cluster == nil || c.cluster.master.Load() == nil {
		var out []WorkerInfo
		for _, w := range slots {
			i := self
			i.ID, i.Slots, i.FreeSlots = w.ID, w.Slots, w.Free
			out = append(out, i)
		}
		return out
	}
	free := map[string]int{}
	excluded := map[string]time.Time{}
	for _, w := range slots {
		free[w.ID] = w.Free
		excluded[w.ID] = w.ExcludedUntil
	}
	cr := c.cluster
	self.ID, self.Address, self.Slots, self.FreeSlots = "master", cr.self, cr.dep.slots, free[cr.self]
	out := []WorkerInfo{self}
	for _, w := range cr.master.Load().Workers() {
		out = append(out, WorkerInfo{ID: w.ID, Address: w.Address, PID: int(w.PID), Slots: w.Slots, FreeSlots: free[w.Address],
			MemoryUsed: w.MemoryUsed, MemoryLimit: w.MemoryBytes, Blocks: int(w.Blocks), State: w.State.String(), LastHeartbeat: w.LastHeartbeat,
			ExcludedUntil: excluded[w.Address]})
	}
	return out
}
