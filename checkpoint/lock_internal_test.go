package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// A PutIf holds the directory's lock only to compare and rename: not while
// it writes and syncs its data, nor while it syncs the directory after, so
// a process stopped there blocks no other writer.
func TestPutIfHoldsTheLockToCompareAndRenameOnly(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	free := func(stage putStage) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		unlock, err := lockExclusive(ctx, filepath.Join(d.root, casLockName))
		if err != nil {
			t.Errorf("at stage %d the lock is held: %v", stage, err)
			return
		}
		unlock()
	}
	stages := 0
	v, err := d.putIf(context.Background(), "lease", []byte("a"), "", func(s putStage) bool {
		stages++
		free(s)
		return false
	})
	if err != nil || v != version([]byte("a")) || stages != 4 {
		t.Fatalf("putIf = %q, %v after %d stages; want version of %q, 4 stages", v, err, stages, "a")
	}
	if _, err := d.putIf(context.Background(), "lease", []byte("b"), "", func(s putStage) bool { free(s); return false }); !errors.Is(err, ErrConflict) {
		t.Fatalf("put if absent over an object = %v; want a conflict", err)
	}
	es, _ := os.ReadDir(d.root)
	for _, e := range es {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Fatalf("a conflicting write left its temporary %s", e.Name())
		}
	}
	free(stageAfterRename)
}
