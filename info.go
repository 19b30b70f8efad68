package dstream

import "github.com/dstream/dstream/internal/engine"

// WorkerInfo describes a process that runs tasks, for the UI and the JSON
// API: this process in local[N], the master and each worker in a cluster.
type WorkerInfo = engine.WorkerInfo

// ReceiverInfo describes a receiver, for the UI.
type ReceiverInfo = engine.ReceiverInfo

// Workers describes the processes that run tasks, the master first.
func (c *Context) Workers() []WorkerInfo { return c.e.Workers() }

// Receivers describes the context's receivers, in stream order.
func (c *Context) Receivers() []ReceiverInfo { return c.e.Receivers() }

// DefaultLeaseTTL is Config.LeaseTTL's default.
const DefaultLeaseTTL = engine.DefaultLeaseTTL

// LeaseLostError is the error a master stops with when it no longer holds
// the lease of its checkpoint location (Config.LeaseTTL): another master
// may act on it.
type LeaseLostError = engine.LeaseLostError

// DefaultClusterListen is where a standalone master listens for workers.
const DefaultClusterListen = engine.DefaultClusterListen
