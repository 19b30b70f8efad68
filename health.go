package dstream

import (
	"fmt"

	"github.com/dstream/dstream/health"
)

// Probes. A Context answers package health's Checker: Live for /healthz
// (Kubernetes' livenessProbe: a failure restarts the process) and Ready for
// /readyz (readinessProbe). Config.HealthListen, or a worker's
// `--health-listen`, serves them on their own port, apart from the web UI's
// data; the UI (package ui) serves them too.

// Live returns nil unless the process should be restarted: the context has
// stopped, or its loop is wedged. A master's interval loop is wedged when it
// has not finished an interval for engine.StallAfter (5 minutes, or ten
// batch intervals if longer; one is due every interval, empty or not); waiting for a worker while
// none is alive is not a wedge. A worker's loop is its heartbeat to its
// master. Before Start, while starting and during a graceful stop, it is
// live.
func (c *Context) Live() error { return c.e.Live() }

// Ready returns nil when the process does its job, and otherwise why not:
// a master (or local job) once started and, in a cluster, while at least
// one worker is alive; a worker while registered with its master and
// heartbeating.
func (c *Context) Ready() error { return c.e.Ready() }

// HealthAddr returns the address the probes' endpoint listens on (with the
// port chosen for port 0), or "" when there is none.
func (c *Context) HealthAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.health == nil {
		return ""
	}
	return c.health.Addr()
}

// listenHealth binds the probes' endpoint, once: a worker's address comes
// from its environment, anyone else's from Config.HealthListen.
func (c *Context) listenHealth() error {
	addr := c.cfg.HealthListen
	if c.IsWorker() {
		addr = c.e.HealthListen()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr == "" || c.health != nil {
		return nil
	}
	ep, err := health.Listen(addr, c, c.log)
	if err != nil {
		return fmt.Errorf("dstream: %w", err)
	}
	c.health = ep
	c.log.Info("dstream: probes served", "addr", ep.Addr(), "live", health.LivePath, "ready", health.ReadyPath)
	return nil
}

// closeHealth stops serving the probes; with forget, a later Start binds
// them again (its Start failed).
func (c *Context) closeHealth(forget bool) {
	c.mu.Lock()
	ep := c.health
	if forget {
		c.health = nil
	}
	c.mu.Unlock()
	if ep != nil {
		_ = ep.Close()
	}
}
