//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockShared opens the lock file at path and takes a shared flock(2) on it,
// held until the file is closed (or the process dies). alone reports
// whether, just before, no other open file description held a lock on it:
// then no other Dir, in any process, had the directory open.
func lockShared(path string) (alone bool, f *os.File, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, nil, err
	}
	fd := int(f.Fd())
	switch err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		alone = true
	case errors.Is(err, syscall.EWOULDBLOCK):
	default:
		f.Close()
		return false, nil, err
	}
	// Converting the exclusive lock to a shared one may let another
	// opener take the exclusive lock in between; it then sees no Put of
	// ours in flight, since OpenDir has not returned.
	if err := flock(fd, syscall.LOCK_SH); err != nil {
		f.Close()
		return false, nil, err
	}
	return alone, f, nil
}

func flock(fd, how int) error {
	for {
		if err := syscall.Flock(fd, how); err != syscall.EINTR {
			return err
		}
	}
}

// lockExclusive takes an exclusive flock(2) on the file at path (created if
// needed), waiting for it until ctx is done, and returns its release. flock
// locks belong to an open file description, so two callers in one process
// exclude each other as two processes do. The wait polls (LOCK_NB, backing
// off from 1 to 20 ms) rather than blocking in the kernel: a holder that is
// stopped, not dead (a SIGSTOPped process keeps its locks), must not hold
// its caller past ctx, such as a standby master's lease renewal.
func lockExclusive(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	wait := time.Millisecond
	for {
		err := flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("another writer holds %s: %w", path, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}
