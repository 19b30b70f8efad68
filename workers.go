package dstream

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
	State         string    // "alive" (a cluster adds "lost")
	LastHeartbeat time.Time // zero for this process
}

// Workers returns the processes that run the context's tasks.
func (c *Context) Workers() []WorkerInfo {
	st := c.blocks.Stats()
	var out []WorkerInfo
	for _, w := range c.shell.Workers() {
		out = append(out, WorkerInfo{ID: w.ID, PID: os.Getpid(), Slots: w.Slots, FreeSlots: w.Free,
			MemoryUsed: st.Bytes, MemoryLimit: c.cfg.MemoryBytes, Blocks: st.Blocks, State: "alive"})
	}
	return out
}
