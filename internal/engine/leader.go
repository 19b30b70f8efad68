package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/lease"
)

// The master's lease: at most one master acts on a checkpoint location.
//
// A master with a checkpoint location contends for the lease in its object
// "meta/lease" (package lease) before it does anything else: before it
// listens for workers, opens its receivers or reads the metadata log. While
// another master holds it, Start waits as a standby (Ready says so); Stop
// ends the wait. Once it holds the lease, with an epoch one higher than the
// last holder's, it resumes from the metadata log as any restarted master
// does (recovery.go) and appends an "epoch" record first: the log's appends
// are conditional (checkpoint.Log, "Fencing"), so the master it took over
// from, if it was only paused, fails its next append and stops.
//
// A holder that cannot renew the lease in time (cut off from the store,
// paused past its TTL) stops acting when it lapses, by its own clock, before
// a standby may take over (the standby waits TTL plus a margin): the job
// stops with a *LeaseLostError and writes nothing more. Every metadata log
// record and every commit of SaveAsTextFiles checks the lease first
// (holding); the log's conditional appends refuse what a stale check let
// through. A clean Stop releases the lease, so a standby takes over at once.
//
// The lease runs on the real clock, not Config.Clock: it is about processes
// that are alive, not about interval time (a manual clock that jumps would
// make it lapse).

const (
	// leaseName is the lease object in the checkpoint store.
	leaseName = "meta/lease"
	// DefaultLeaseTTL is Config.LeaseTTL's default: a standby takes over
	// at most about 2.4 s after the holder last renewed (every 667 ms).
	DefaultLeaseTTL = 2 * time.Second
	// leaseReleaseTimeout bounds the release at Stop.
	leaseReleaseTimeout = 2 * time.Second
)

// LeaseLostError is the error a master stops with when it no longer holds
// the lease of its checkpoint location: another master may act, so this
// one wrote nothing more. A supervisor that restarts it makes it a standby.
type LeaseLostError struct {
	Epoch uint64 // the epoch it held; 0 if it never held one
	Why   string
}

func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("dstream: this master no longer holds the lease of its checkpoint location (epoch %d: %s); another master may act on it, so this one stopped without writing more", e.Epoch, e.Why)
}

// masterLease is a master's side of the lease.
type masterLease struct {
	l        *lease.Lease
	id       string             // this contender's ID in the lease record
	cancel   context.CancelFunc // stops contending
	done     chan struct{}      // closed when l.Run returned
	gained   chan struct{}      // closed when the lease was first acquired
	gainOnce sync.Once
	settled  chan struct{} // closed when awaitLease returned
	epoch    atomic.Uint64 // the epoch acquired first; 0: none yet
	lost     atomic.Pointer[LeaseLostError]
	stopping atomic.Bool // the master gives the lease up itself
	release  sync.Once
}

// epochRecord is the metadata log record a master appends when it takes
// over: who it is and with which epoch.
type epochRecord struct {
	Epoch  uint64 `json:"epoch"`
	Holder string `json:"holder"`
}

// leaseHolderID names this process in the lease record: the host, the
// process id and a random part (a restarted process is a new contender).
func leaseHolderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", cmp.Or(host, "host"), os.Getpid(), hex.EncodeToString(b[:]))
}

// awaitLease contends for the lease of the checkpoint location, when there
// is one to hold, and returns once this master holds it: at once if nobody
// does, after the holder is gone otherwise. Meanwhile the engine is a
// standby; a Stop ends the wait with ErrStopped.
func (c *Engine) awaitLease() error {
	ttl := cmp.Or(c.cfg.LeaseTTL, DefaultLeaseTTL)
	if c.cfg.CheckpointDir == "" || ttl < 0 {
		return nil
	}
	store, err := c.CheckpointStore()
	if err != nil {
		return err
	}
	cond, ok := store.(checkpoint.Conditional)
	if !ok {
		c.log.Warn("the checkpoint location has no conditional writes: no lease, so a second master on it would not be kept out", "location", c.cfg.CheckpointDir)
		return nil
	}
	id := leaseHolderID()
	ml := &masterLease{id: id, done: make(chan struct{}), gained: make(chan struct{}), settled: make(chan struct{})}
	ml.l, err = lease.New(cond, leaseName, clock.Real{}, lease.Config{ID: id, TTL: ttl}, lease.Options{
		OnChange: func(ch lease.Change) { c.leaseChanged(ml, ch) },
		OnError:  func(err error) { c.log.Warn("lease: the checkpoint store failed; retrying", "err", err) },
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ml.cancel = cancel
	c.mu.Lock()
	if c.state != stateNew {
		c.mu.Unlock()
		cancel()
		return ErrStopped
	}
	c.state, c.lease = stateStandby, ml
	c.mu.Unlock()
	defer close(ml.settled)
	go func() {
		defer close(ml.done)
		_ = ml.l.Run(ctx)
	}()
	announce := time.NewTimer(ttl / 2)
	defer announce.Stop()
	for {
		select {
		case <-ml.gained:
			c.mu.Lock()
			stopped := c.state == stateStopped
			if !stopped {
				c.state = stateNew
			}
			c.mu.Unlock()
			if stopped {
				c.releaseLease()
				return ErrStopped
			}
			c.log.Info("holding the lease of the checkpoint location: acting as the master", "epoch", ml.epoch.Load(), "holder", id)
			return nil
		case <-ctx.Done(): // Stop during the wait
			<-ml.done
			return ErrStopped
		case <-announce.C:
			if rec, ok := ml.l.Seen(); ok {
				c.log.Info("standby: another master holds the lease of the checkpoint location; waiting to take over when it is gone",
					"holder", rec.Holder, "epoch", rec.Epoch, "ttl", time.Duration(rec.TTLMillis)*time.Millisecond)
			}
		}
	}
}

// leaseChanged is told of the lease's changes of role (lease.Options).
func (c *Engine) leaseChanged(ml *masterLease, ch lease.Change) {
	if ch.Active {
		if ml.epoch.CompareAndSwap(0, ch.Epoch) {
			ml.gainOnce.Do(func() { close(ml.gained) })
		}
		return
	}
	// Stopped acting: never contend again in this process (a later
	// acquisition would act beside what this one still runs).
	ml.cancel()
	if ml.stopping.Load() {
		return // given up by Stop
	}
	e := &LeaseLostError{Epoch: ch.Epoch, Why: ch.Why}
	ml.lost.CompareAndSwap(nil, e)
	c.fence(e)
}

// fence stops a running master that may no longer act (err says why);
// Start checks before it runs (leaseLost).
func (c *Engine) fence(err error) {
	c.mu.Lock()
	running := c.state == stateRunning && c.run != nil
	c.mu.Unlock()
	if running {
		c.log.Error("stopping: this master may no longer act on its checkpoint location", "err", err)
		c.stopWith(err)
	}
}

// holding returns nil when this master may write as the holder of the
// lease (or there is no lease), and otherwise why not. Check it before
// every durable write or commit made as the master.
func (c *Engine) holding() error {
	ml := c.lease
	if ml == nil {
		return nil
	}
	if _, _, ok := ml.l.Active(); ok {
		return nil
	}
	if e := ml.lost.Load(); e != nil {
		return e
	}
	return &LeaseLostError{Epoch: ml.epoch.Load(), Why: "the lease is not held"}
}

// leaseEpoch returns the epoch this master acts with; 0 without a lease.
func (c *Engine) leaseEpoch() uint64 {
	if c.lease == nil {
		return 0
	}
	return c.lease.epoch.Load()
}

// LeaseEpoch returns the epoch of the lease this master acts with: 0
// before it holds one, once it lost it, and without a lease.
func (c *Engine) LeaseEpoch() uint64 {
	if c.holding() != nil {
		return 0
	}
	return c.leaseEpoch()
}

// appendEpoch appends the epoch record to the metadata log just opened by
// resume: from then on, the previous holder's appends conflict.
func (c *Engine) appendEpoch(ctx context.Context) error {
	ml := c.lease
	if ml == nil || !c.metaOpen() {
		return nil
	}
	if err := c.holding(); err != nil {
		return err
	}
	b, err := json.Marshal(epochRecord{Epoch: ml.epoch.Load(), Holder: ml.id})
	if err != nil {
		return err
	}
	if _, err := c.meta.log.Append(ctx, "epoch", b); err != nil {
		if errors.Is(err, checkpoint.ErrConflict) {
			return &LeaseLostError{Epoch: ml.epoch.Load(), Why: "another master appended to the metadata log while this one took over: " + err.Error()}
		}
		return fmt.Errorf("checkpoint folder: metadata log: %w", err)
	}
	return nil
}

// releaseLease gives the lease up, if this master holds one: it stops
// contending and, after whatever it did as the holder has ended, writes a
// released record so a standby takes over at once. It is idempotent.
func (c *Engine) releaseLease() {
	ml := c.lease
	if ml == nil {
		return
	}
	ml.release.Do(func() {
		ml.stopping.Store(true)
		ml.cancel()
		<-ml.done
		if c.crashed.Load() {
			return // a killed process releases nothing: the lease lapses
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaseReleaseTimeout)
		defer cancel()
		if err := ml.l.Release(ctx); err != nil {
			c.log.Warn("lease: not released; a standby takes over when it lapses", "err", err)
		}
	})
}

// handoverWait is how long the workers a master releases at a graceful
// stop wait for another master to take the job over: zero without a lease
// (the stop ends the job). A standby reads the released lease within a
// third of the TTL, and serves its cluster port before it resumes; a
// worker moves to the next master 2 s (cluster.DefaultFailover) after the
// last answer of this one. When no standby takes over, the job has ended
// and the workers exit this long after the stop.
func (c *Engine) handoverWait() time.Duration {
	if c.lease == nil || c.lease.lost.Load() != nil {
		return 0
	}
	return 5*time.Second + cmp.Or(c.cfg.LeaseTTL, DefaultLeaseTTL)
}

// Crash marks the engine's process as killed, for the cluster simulation
// (a real kill runs no code): the Stop that follows releases nothing, so
// the lease lapses as after a SIGKILL.
func (c *Engine) Crash() { c.crashed.Store(true) }

// standbyReady is Ready's answer for a standby.
func (c *Engine) standbyReady() error {
	if ml := c.lease; ml != nil {
		if rec, ok := ml.l.Seen(); ok {
			return fmt.Errorf("standby: master %s holds the lease of the checkpoint location (epoch %d)", rec.Holder, rec.Epoch)
		}
	}
	return errors.New("standby: contending for the lease of the checkpoint location")
}
