package checkpoint

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// A PutIf waits for a writer holding the directory's lock only as long as
// its context allows (a stopped process keeps its flock), and goes through
// once the lock is released.
func TestPutIfWaitsForTheLockNoLongerThanItsContext(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	unlock, err := lockExclusive(context.Background(), filepath.Join(d.root, casLockName))
	if err != nil {
		t.Fatal(err)
	}
	// On a bubble's clock: the deadline passes as soon as PutIf waits.
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := d.PutIf(ctx, "lease", []byte("a"), ""); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("PutIf with the lock held elsewhere = %v; want the context's deadline", err)
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := d.PutIf(context.Background(), "lease", []byte("a"), "")
		done <- err
	}()
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("PutIf once the lock is free = %v", err)
	}
	if b, err := d.Get(context.Background(), "lease"); err != nil || string(b) != "a" {
		t.Fatalf("lease = %q, %v", b, err)
	}
}
