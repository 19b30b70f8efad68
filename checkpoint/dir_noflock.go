//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"context"
	"os"
	"sync"
	"time"
)

// lockShared opens the lock file at path. Without flock(2) it cannot tell
// whether another process has the directory open, so it reports alone:
// on these systems OpenDir must not run while another process writes to the
// same directory.
func lockShared(path string) (alone bool, f *os.File, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	return err == nil, f, err
}

// casMu serializes lockExclusive's callers in this process.
var casMu sync.Mutex

// lockExclusive serializes its callers in this process only: without
// flock(2), conditional writes are atomic within one process. It waits
// until ctx is done at most.
func lockExclusive(ctx context.Context, path string) (unlock func(), err error) {
	for wait := time.Millisecond; !casMu.TryLock(); wait = min(2*wait, 20*time.Millisecond) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
	return casMu.Unlock, nil
}
