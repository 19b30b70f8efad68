//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import "os"

// lockShared opens the lock file at path. Without flock(2) it cannot tell
// whether another process has the directory open, so it reports alone:
// on these systems OpenDir must not run while another process writes to the
// same directory.
func lockShared(path string) (alone bool, f *os.File, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	return err == nil, f, err
}
