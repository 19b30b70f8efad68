package rdd

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// ID names a dataset the same way in every process that builds the same graph.
//
// Datasets built outside any stream (static datasets) live in the root scope
// {Op: 0, Time: 0} and are numbered in creation order, so a program that builds
// them deterministically before it runs names them identically everywhere.
// Datasets built while a stream operator generates interval Time live in the
// scope {Op, Time} of that operator and interval and are numbered within it.
type ID struct {
	Op   int32 // stream operator that generated the dataset; 0 for static datasets
	Time int64 // interval time in Unix milliseconds; 0 for static datasets
	Seq  int32 // creation order within the scope
}

// String renders the ID compactly, e.g. "3@1700000000000#2".
func (id ID) String() string { return fmt.Sprintf("%d@%d#%d", id.Op, id.Time, id.Seq) }

// Scope hands out dataset IDs for one (operator, interval) pair.
type Scope struct {
	Op   int32
	Time int64
	next atomic.Int32
}

// NewID returns the next ID in the scope.
func (s *Scope) NewID() ID {
	return ID{Op: s.Op, Time: s.Time, Seq: s.next.Add(1) - 1}
}

// scopes tracks the scope new datasets are created in.
type scopes struct {
	mu   sync.Mutex
	root Scope
	cur  *Scope
}

func (s *scopes) newID() ID {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		return cur.NewID()
	}
	return s.root.NewID()
}

// InScope runs fn with every dataset created by fn (on this goroutine or any
// other, so callers serialise generation) named in the scope {op, timeMs}. The
// stream layer uses it while it generates an operator's dataset for an interval.
func (c *Context) InScope(op int32, timeMs int64, fn func()) {
	sc := &Scope{Op: op, Time: timeMs}
	c.scopes.mu.Lock()
	prev := c.scopes.cur
	c.scopes.cur = sc
	c.scopes.mu.Unlock()
	defer func() {
		c.scopes.mu.Lock()
		c.scopes.cur = prev
		c.scopes.mu.Unlock()
	}()
	fn()
}
