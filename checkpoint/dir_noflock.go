//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"os"
	"sync"
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
// flock(2), conditional writes are atomic within one process.
func lockExclusive(path string) (unlock func(), err error) {
	casMu.Lock()
	return casMu.Unlock, nil
}
