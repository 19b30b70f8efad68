package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dstream/dstream/checkpoint"
)

// Defaults of Config.
const (
	DefaultTTL = 10 * time.Second
)

// Config is a contender's configuration. The zero durations are defaults.
type Config struct {
	// ID names this contender in the lease record. It must be unique per
	// process run (a host name and a process id, or a random string), not
	// per host: a restarted process is a new contender.
	ID string
	// TTL is how long a holder holds the lease after the start of its last
	// successful write. Default DefaultTTL.
	TTL time.Duration
	// Margin is how much longer than the record's TTL a standby waits,
	// by its own clock, before it takes over a lease it saw unchanged:
	// the allowance for the clocks' different rates. Default TTL/5.
	Margin time.Duration
	// RenewEvery is how often the holder renews, from the start of its
	// last successful write. Default TTL/3; it must be less than TTL.
	RenewEvery time.Duration
	// RetryEvery is the wait before a read, or a renewal, that failed
	// with an error other than a conflict is tried again. Default TTL/10.
	RetryEvery time.Duration
}

// withDefaults returns c with its defaults filled in, or why it is wrong.
func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		return c, errors.New("lease: config: empty ID")
	}
	if c.TTL < 0 || c.Margin < 0 || c.RenewEvery < 0 || c.RetryEvery < 0 {
		return c, fmt.Errorf("lease: config: negative duration (TTL %v, Margin %v, RenewEvery %v, RetryEvery %v)", c.TTL, c.Margin, c.RenewEvery, c.RetryEvery)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Margin == 0 {
		c.Margin = c.TTL / 5
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.TTL / 3
	}
	if c.RetryEvery == 0 {
		c.RetryEvery = c.TTL / 10
	}
	if c.RenewEvery >= c.TTL {
		return c, fmt.Errorf("lease: config: RenewEvery %v is not less than TTL %v: the lease would lapse between renewals", c.RenewEvery, c.TTL)
	}
	if c.RenewEvery == 0 || c.RetryEvery == 0 {
		return c, fmt.Errorf("lease: config: TTL %v too short", c.TTL)
	}
	return c, nil
}

// Record is the content of the lease object (JSON).
type Record struct {
	Holder string `json:"holder"`
	Epoch  uint64 `json:"epoch"`
	// Expiry is when the holder stops acting unless it renews, by the
	// holder's clock: for people reading the object. Standbys do not
	// compare it with their own clock; they wait TTLMillis (and their
	// margin) from when they first saw this content.
	Expiry    time.Time `json:"expiry"`
	TTLMillis int64     `json:"ttl_ms"`
	// Released: the holder gave the lease up (it stopped cleanly); a
	// standby takes it over at once.
	Released bool `json:"released,omitempty"`
}

// parseRecord decodes a lease object.
func parseRecord(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("lease: the lease object is not a lease record: %w", err)
	}
	if r.Holder == "" || r.Epoch == 0 || r.TTLMillis <= 0 {
		return Record{}, fmt.Errorf("lease: the lease object is not a lease record: holder %q, epoch %d, ttl_ms %d", r.Holder, r.Epoch, r.TTLMillis)
	}
	return r, nil
}

// Write is a conditional write the core asks for: Data in place of the
// lease object if it is at Version ("": if it is absent).
type Write struct {
	Data    []byte
	Version string
}

// Change is a change of role.
type Change struct {
	// Active: the contender became the holder, with Epoch. Otherwise it
	// stopped acting with Epoch, for good: it never acts with it again.
	Active bool
	Epoch  uint64
	Why    string // why it stopped acting
}

// Output is what the core asks of its shell after an event. At most one of
// Read and Write is set, and only when no operation is in flight.
type Output struct {
	Read   bool    // read the lease object, then call ReadDone
	Write  *Write  // write it conditionally, then call WriteDone
	Change *Change // a change of role, to report at once
	Err    error   // a failed operation, to report; the core retries
	// Wake is when to call Tick next; zero: only after the operation in
	// flight ends.
	Wake time.Time
}

// Role is a contender's role.
type Role int

// The roles.
const (
	Standby Role = iota
	Active
)

type op int

const (
	opNone op = iota
	opRead
	opAcquire
	opRenew
	opRelease
)

// Core is a lease contender's logic, without I/O, clock or goroutines, in
// the manner of etcd's raft: fed events (Tick with the time; the result of
// a read or a conditional write), it returns what to do next (Output).
// Its shell (Lease) does the I/O with a store and a clock.
//
// The rules:
//   - A standby reads the lease object every RenewEvery. It writes a
//     record of its own, with the record's epoch plus one, conditionally
//     on the version it read, when the object is absent, or when it has
//     seen the same version for the record's TTL plus Margin, by its own
//     clock.
//   - A successful write at time t (the time it was sent) makes the
//     contender the holder until t+TTL by its own clock; it renews from
//     t+RenewEvery, conditionally on the version it wrote.
//   - A holder whose renewal meets a conflict, or whose t+TTL comes,
//     stops acting at once and for good with that epoch (Change), and is
//     a standby again: a later acquisition is a new, higher epoch.
//   - A holder that stops cleanly writes a released record (Release); a
//     standby that reads one takes over at once.
//
// Safety needs the clocks of the contenders to run at rates that differ
// by less than Margin/TTL (the holder's TTL must end, in real time, before
// a standby's TTL+Margin does); their readings need not agree. A holder
// must also not act on its lease after the deadline: an action started
// before it and landing after it is what fencing (an epoch checked by the
// store, as a fenced log does) guards against.
type Core struct {
	cfg Config

	role     Role
	epoch    uint64    // Active: the epoch held
	version  string    // Active: the version last written
	deadline time.Time // Active: stop acting at this time
	renewAt  time.Time // Active: next renewal

	readAt    time.Time // Standby: next read
	seen      bool      // Standby: seenVersion and the rest are valid
	seenVer   string    // "" the object was absent
	seenRec   Record
	seenSince time.Time // when seenVer was first seen
	maxEpoch  uint64    // the highest epoch seen or tried

	pending    op
	sent       time.Time // when the pending write was sent
	writeEpoch uint64    // its epoch

	// The last epoch held and the version last written with it, kept
	// after the holder stops acting, for Release; "": nothing to release.
	heldEpoch   uint64
	heldVersion string
}

// NewCore returns a standby contender, whose first Tick reads the lease.
func NewCore(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Core{cfg: cfg}, nil
}

// Config returns the configuration, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Role returns the contender's role and, if Active, its epoch and the
// time, by its clock, at which it stops acting unless it renews.
func (c *Core) Role() (r Role, epoch uint64, deadline time.Time) {
	if c.role != Active {
		return Standby, 0, time.Time{}
	}
	return Active, c.epoch, c.deadline
}

// Tick tells the core the time.
func (c *Core) Tick(now time.Time) Output {
	var out Output
	c.next(now, &out)
	return out
}

// ReadDone tells the core the result of the read it asked for: the
// object and its version, or an error (wrapping checkpoint.ErrNotFound if
// there is no object).
func (c *Core) ReadDone(now time.Time, data []byte, version string, err error) Output {
	var out Output
	if c.pending != opRead {
		out.Err = errors.New("lease: a read's result with no read in flight (ignored)")
		c.next(now, &out)
		return out
	}
	c.pending = opNone
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		c.observe(now, "", Record{})
		c.acquire(now, &out)
	case err != nil:
		out.Err = err
		c.readAt = now.Add(c.cfg.RetryEvery)
	default:
		rec, err := parseRecord(data)
		if err != nil {
			out.Err = err
			c.readAt = now.Add(c.cfg.RetryEvery)
			break
		}
		c.observe(now, version, rec)
		if exp := c.expiry(); now.Before(exp) && !rec.Released {
			c.readAt = minTime(now.Add(c.cfg.RenewEvery), exp)
		} else {
			c.acquire(now, &out)
		}
	}
	c.next(now, &out)
	return out
}

// WriteDone tells the core the result of the conditional write it asked
// for: the new version, or an error (wrapping checkpoint.ErrConflict if
// the condition failed).
func (c *Core) WriteDone(now time.Time, version string, err error) Output {
	var out Output
	kind := c.pending
	if kind != opAcquire && kind != opRenew && kind != opRelease {
		out.Err = errors.New("lease: a write's result with no write in flight (ignored)")
		c.next(now, &out)
		return out
	}
	c.pending = opNone
	deadline := c.sent.Add(c.cfg.TTL)
	switch {
	case kind == opRelease:
		c.heldVersion = ""
		if err != nil && !errors.Is(err, checkpoint.ErrConflict) {
			out.Err = err // the lease lapses instead
		}
	case kind == opAcquire && err == nil:
		if now.Before(deadline) {
			c.role, c.epoch, c.version, c.deadline = Active, c.writeEpoch, version, deadline
			c.renewAt = c.sent.Add(c.cfg.RenewEvery)
			out.Change = &Change{Active: true, Epoch: c.epoch}
		} else { // won, but too late to act
			c.readAt, c.seen = now, false
		}
	case kind == opAcquire:
		if !errors.Is(err, checkpoint.ErrConflict) {
			out.Err = err
		}
		// Another contender won, or the write may have taken effect:
		// read again, and wait as for anyone's record.
		c.readAt, c.seen = now, false
	case c.role != Active || c.epoch != c.writeEpoch:
		// A renewal of an epoch already given up: nothing to do.
	case err == nil:
		c.version, c.deadline = version, deadline
		c.renewAt = c.sent.Add(c.cfg.RenewEvery)
	case errors.Is(err, checkpoint.ErrConflict):
		c.lose(now, &out, "the lease object changed under the holder (another contender took it over)")
		c.heldVersion = "" // not ours to release
	default:
		out.Err = err
		c.renewAt = now.Add(c.cfg.RetryEvery)
	}
	c.next(now, &out)
	return out
}

// Abandon gives the lease up, as a shell does when it stops running: an
// active contender stops acting (out.Change). The lease object is left
// as is, to lapse.
func (c *Core) Abandon(now time.Time) Output {
	var out Output
	if c.role == Active {
		c.lose(now, &out, "the contender stopped")
	}
	return out
}

// Release gives up the lease the contender holds, or held last, for a
// successor to take at once rather than after it lapses: it writes a
// released record, conditionally on the version it last wrote (so it
// never touches a successor's record), and stops acting (Change) if it
// was active. A shell calls it when it stops cleanly, after the work done
// as the holder has ended; the write's result is fed to WriteDone as any.
// There is nothing to write when the contender never held the lease, or
// another took it over.
func (c *Core) Release(now time.Time) Output {
	var out Output
	if c.role == Active {
		c.lose(now, &out, "the holder released the lease")
	}
	if c.heldVersion == "" {
		return out
	}
	rec := Record{Holder: c.cfg.ID, Epoch: c.heldEpoch, Expiry: now.UTC(), TTLMillis: c.cfg.TTL.Milliseconds(), Released: true}
	data, err := json.Marshal(rec)
	if err != nil { // a Record always marshals
		panic(err)
	}
	c.pending, c.sent, c.writeEpoch = opRelease, now, c.heldEpoch
	out.Write = &Write{Data: data, Version: c.heldVersion}
	return out
}

// Seen returns the record a standby read last, if any: who holds the
// lease, for people to read.
func (c *Core) Seen() (Record, bool) {
	if !c.seen || c.seenVer == "" {
		return Record{}, false
	}
	return c.seenRec, true
}

// observe records the version of the object read.
func (c *Core) observe(now time.Time, version string, rec Record) {
	c.maxEpoch = max(c.maxEpoch, rec.Epoch)
	if c.seen && version == c.seenVer {
		return
	}
	c.seen, c.seenVer, c.seenRec, c.seenSince = true, version, rec, now
}

// expiry is when a standby may take over the record seen, by its clock.
func (c *Core) expiry() time.Time {
	if c.seenVer == "" {
		return c.seenSince // absent: at once
	}
	ttl := max(time.Duration(c.seenRec.TTLMillis)*time.Millisecond, c.cfg.TTL)
	return c.seenSince.Add(ttl + c.cfg.Margin)
}

// acquire asks for the write that takes the lease over.
func (c *Core) acquire(now time.Time, out *Output) {
	epoch := max(c.maxEpoch, c.seenRec.Epoch) + 1
	c.maxEpoch = epoch
	c.write(now, out, opAcquire, epoch, c.seenVer)
}

func (c *Core) write(now time.Time, out *Output, kind op, epoch uint64, version string) {
	rec := Record{Holder: c.cfg.ID, Epoch: epoch, Expiry: now.Add(c.cfg.TTL).UTC(), TTLMillis: c.cfg.TTL.Milliseconds()}
	data, err := json.Marshal(rec)
	if err != nil { // a Record always marshals
		panic(err)
	}
	c.pending, c.sent, c.writeEpoch = kind, now, epoch
	out.Write = &Write{Data: data, Version: version}
}

// lose makes an active contender a standby.
func (c *Core) lose(now time.Time, out *Output, why string) {
	out.Change = &Change{Epoch: c.epoch, Why: why}
	c.heldEpoch, c.heldVersion = c.epoch, c.version
	c.role, c.epoch, c.version = Standby, 0, ""
	c.readAt, c.seen = now, false
}

// next ends the handling of an event: the holder's deadline, the operation
// due, the time to wake.
func (c *Core) next(now time.Time, out *Output) {
	if c.role == Active && !now.Before(c.deadline) {
		c.lose(now, out, fmt.Sprintf("the lease lapsed at %v without a renewal", c.deadline.UTC().Format(time.RFC3339Nano)))
	}
	if c.pending == opNone && out.Write == nil {
		switch {
		case c.role == Active && !now.Before(c.renewAt):
			c.write(now, out, opRenew, c.epoch, c.version)
		case c.role == Standby && !now.Before(c.readAt):
			c.pending = opRead
			out.Read = true
		}
	}
	switch {
	case c.role == Active && c.pending != opNone:
		out.Wake = c.deadline
	case c.role == Active:
		out.Wake = minTime(c.renewAt, c.deadline)
	case c.pending == opNone:
		out.Wake = c.readAt
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
