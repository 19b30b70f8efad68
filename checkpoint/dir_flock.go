//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"errors"
	"os"
	"syscall"
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
// needed), waiting for it, and returns its release. flock locks belong to
// an open file description, so two callers in one process exclude each
// other as two processes do.
func lockExclusive(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}
