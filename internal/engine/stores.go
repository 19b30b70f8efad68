package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dstream/dstream/checkpoint"
)

// Stores of file streams and text outputs. A location given to
// dstream.TextFileStream or SaveAsTextFiles is a URL (IsURL: s3://BUCKET/
// PREFIX, file:///PATH) or a local path. A URL is opened with
// checkpoint.Open, file:// included, so that a local folder can stand for
// an object store (the tests' way to run the store path); a path is read
// and written with the file system's own calls, as before stores existed.
//
// Every process opens a location once, when it first needs it (the master
// at Start; a worker at its first task that reads or writes there), and
// closes it when the context stops.

// IsURL reports whether location names a store by URL, "scheme://...",
// whose scheme is a letter followed by letters, digits, "+", "-" or ".".
// Anything else is a local path.
func IsURL(location string) bool {
	scheme, _, ok := strings.Cut(location, "://")
	if !ok || scheme == "" {
		return false
	}
	for i, r := range scheme {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// storeSet holds the stores opened by location, one each.
type storeSet struct {
	mu     sync.Mutex
	open   map[string]checkpoint.Store
	closed bool
}

// errStoresClosed is returned by Store once the context has stopped.
var errStoresClosed = errors.New("the context has stopped")

// Store returns the store at location (a URL: IsURL), opening it with
// checkpoint.Open on first use in this process. A failed open is not
// remembered: the next call tries again. After Stop it fails.
func (c *Engine) Store(ctx context.Context, location string) (checkpoint.Store, error) {
	s := &c.stores
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("store %s: %w", location, errStoresClosed)
	}
	if st, ok := s.open[location]; ok {
		return st, nil
	}
	st, err := checkpoint.Open(ctx, location)
	if err != nil {
		return nil, err
	}
	if s.open == nil {
		s.open = map[string]checkpoint.Store{}
	}
	s.open[location] = st
	return st, nil
}

// closeStores closes the stores Store opened (those that can be closed)
// and refuses to open more. No task may be running.
func (c *Engine) closeStores() {
	s := &c.stores
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for loc, st := range s.open {
		if cl, ok := st.(interface{ Close() error }); ok {
			if err := cl.Close(); err != nil {
				c.log.Warn("could not close a store", "location", loc, "err", err)
			}
		}
	}
	s.open = nil
}
