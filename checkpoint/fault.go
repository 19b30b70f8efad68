package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
)

// This file holds the fault twins for tests, modelled on pebble's vfs
// errorfs (an Injector consulted before each operation) and its crashable
// file system: FaultStore fails chosen operations of any Store; CrashDir is
// a Dir that crashes, really leaving on disk what a killed process leaves.

// An Op is a Store operation.
type Op int

// The Store operations.
const (
	OpPut Op = iota + 1
	OpGet
	OpList
	OpDelete
)

func (op Op) String() string {
	switch op {
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpList:
		return "list"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// An Injector decides whether an operation fails. FaultStore calls it
// before each operation with the operation's name (List: its prefix); a
// non-nil result is returned instead of doing the operation. Injectors may
// be called concurrently.
type Injector func(op Op, name string) error

// ErrInjected is wrapped by the errors of the Injectors in this package.
var ErrInjected = errors.New("checkpoint: injected fault")

func injected(op Op, name string) error {
	return fmt.Errorf("%w: %s %q", ErrInjected, op, name)
}

// FailNth fails the nth call (counting from 1) of op, and no other.
func FailNth(op Op, n int) Injector {
	var mu sync.Mutex
	count := 0
	return func(o Op, name string) error {
		if o != op {
			return nil
		}
		mu.Lock()
		count++
		hit := count == n
		mu.Unlock()
		if hit {
			return injected(o, name)
		}
		return nil
	}
}

// FailPrefix fails every call of op on a name with the given prefix.
func FailPrefix(op Op, prefix string) Injector {
	return func(o Op, name string) error {
		if o == op && strings.HasPrefix(name, prefix) {
			return injected(o, name)
		}
		return nil
	}
}

// FailRandomly fails each call of the given ops (of every op if none are
// given) with probability p, drawing from rng: with a seeded rng and
// calls made in a deterministic order, the failures are the same on every
// run. FailRandomly serializes its use of rng.
func FailRandomly(rng *rand.Rand, p float64, ops ...Op) Injector {
	var mu sync.Mutex
	return func(o Op, name string) error {
		if len(ops) > 0 && !containsOp(ops, o) {
			return nil
		}
		mu.Lock()
		hit := rng.Float64() < p
		mu.Unlock()
		if hit {
			return injected(o, name)
		}
		return nil
	}
}

func containsOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// FaultStore is a Store that consults Inject before each operation of the
// Store it wraps and fails the operation, without doing it, if Inject
// returns an error. A nil Inject injects nothing.
type FaultStore struct {
	Store  Store
	Inject Injector
}

func (f *FaultStore) fault(op Op, name string) error {
	if f.Inject == nil {
		return nil
	}
	return f.Inject(op, name)
}

// Put implements Store.
func (f *FaultStore) Put(ctx context.Context, name string, data []byte) error {
	if err := f.fault(OpPut, name); err != nil {
		return err
	}
	return f.Store.Put(ctx, name, data)
}

// Get implements Store.
func (f *FaultStore) Get(ctx context.Context, name string) ([]byte, error) {
	if err := f.fault(OpGet, name); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, name)
}

// List implements Store.
func (f *FaultStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := f.fault(OpList, prefix); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

// Delete implements Store.
func (f *FaultStore) Delete(ctx context.Context, name string) error {
	if err := f.fault(OpDelete, name); err != nil {
		return err
	}
	return f.Store.Delete(ctx, name)
}

// ErrCrashed is returned by every operation of a CrashDir after its crash,
// and by the operation that crashed it.
var ErrCrashed = errors.New("checkpoint: crashed")

// A CrashStage is how far the crashing write got.
type CrashStage int

const (
	// CrashBeforeWrite: the write had no effect.
	CrashBeforeWrite CrashStage = iota
	// CrashMidWrite: a Put's temporary file holds the first half of the
	// data, unsynced, and was never renamed. A Delete removed the object.
	CrashMidWrite
	// CrashBeforeRename: a Put's temporary file is complete and synced
	// but was never renamed. A Delete removed the object.
	CrashBeforeRename
	// CrashAfterRename: a Put renamed the object into place but did not
	// sync its directory; the write took effect though the Put failed.
	// A Delete removed the object.
	CrashAfterRename
)

// CrashStages lists the stages, for loops over crash points.
var CrashStages = []CrashStage{CrashBeforeWrite, CrashMidWrite, CrashBeforeRename, CrashAfterRename}

func (s CrashStage) String() string {
	switch s {
	case CrashBeforeWrite:
		return "before-write"
	case CrashMidWrite:
		return "mid-write"
	case CrashBeforeRename:
		return "before-rename"
	case CrashAfterRename:
		return "after-rename"
	}
	return fmt.Sprintf("CrashStage(%d)", int(s))
}

// CrashDir is a Dir that crashes as a killed process does: at Crash, or
// during its nth write (Put or Delete) at a chosen stage, it stops where it
// is, leaving the directory as the real Dir left it so far (a temporary
// holding part of the data, a temporary never renamed, a rename never
// synced), and releases the directory as the kernel would. From then on
// every operation returns ErrCrashed. Reopen the directory with OpenDir to
// recover.
//
// CrashDir models a process crash: what the kernel accepted survives. It
// does not model a machine crash losing unsynced data, which needs a file
// system that tracks syncs. CrashDir serializes its operations.
type CrashDir struct {
	d *Dir

	mu      sync.Mutex
	crashed bool
	writes  int        // writes begun
	at      int        // crash during write number at (0: never)
	stage   CrashStage // at this stage
}

// OpenCrashDir opens path as OpenDir does, wrapped to crash.
func OpenCrashDir(path string) (*CrashDir, error) {
	d, err := OpenDir(path)
	if err != nil {
		return nil, err
	}
	return &CrashDir{d: d}, nil
}

// Dir returns the underlying Dir.
func (c *CrashDir) Dir() *Dir { return c.d }

// CrashAt arranges a crash during the nth write from the start (counting
// Puts and Deletes from 1, including those already done), at stage.
func (c *CrashDir) CrashAt(n int, stage CrashStage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.stage = n, stage
}

// Writes returns the number of writes begun: run a sequence once to count
// its writes, then crash it at each.
func (c *CrashDir) Writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// Crash crashes the directory now.
func (c *CrashDir) Crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crashLocked()
}

func (c *CrashDir) crashLocked() {
	if !c.crashed {
		c.crashed = true
		c.d.Close()
	}
}

// Crashed reports whether the directory has crashed.
func (c *CrashDir) Crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed
}

// Close closes the directory (without crashing it).
func (c *CrashDir) Close() error { return c.d.Close() }

// op runs one operation, holding the lock throughout so that nothing
// runs after a crash point. For the write that is to crash, it passes do a
// stop hook and crashes after it.
func (c *CrashDir) op(ctx context.Context, kind, name string, write bool, do func(stop func(putStage) bool) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return ErrCrashed
	}
	if err := c.d.check(ctx, kind, name); err != nil {
		return err
	}
	if !write {
		return do(nil)
	}
	c.writes++
	if c.writes != c.at {
		return do(nil)
	}
	at := map[CrashStage]putStage{
		CrashBeforeWrite:  stageBegin,
		CrashMidWrite:     stageMidWrite,
		CrashBeforeRename: stageBeforeRename,
		CrashAfterRename:  stageAfterRename,
	}[c.stage]
	// Stages come in order; Delete has only stageBegin and
	// stageAfterRename, so it removes the object at any later stage.
	err := do(func(s putStage) bool { return s >= at })
	c.crashLocked()
	if err != nil && !errors.Is(err, errStopped) {
		return err
	}
	return ErrCrashed
}

// Put implements Store.
func (c *CrashDir) Put(ctx context.Context, name string, data []byte) error {
	return c.op(ctx, "put", name, true, func(stop func(putStage) bool) error {
		return c.d.put(name, data, stop)
	})
}

// Delete implements Store.
func (c *CrashDir) Delete(ctx context.Context, name string) error {
	return c.op(ctx, "delete", name, true, func(stop func(putStage) bool) error {
		return c.d.delete(name, stop)
	})
}

// Get implements Store.
func (c *CrashDir) Get(ctx context.Context, name string) (b []byte, err error) {
	err = c.op(ctx, "get", name, false, func(func(putStage) bool) error {
		b, err = c.d.Get(ctx, name)
		return err
	})
	return b, err
}

// List implements Store.
func (c *CrashDir) List(ctx context.Context, prefix string) (names []string, err error) {
	err = c.op(ctx, "list", prefix, false, func(func(putStage) bool) error {
		names, err = c.d.List(ctx, prefix)
		return err
	})
	return names, err
}
