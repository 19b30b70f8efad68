package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
)

// ErrConflict is wrapped by the error of a conditional write whose
// condition did not hold: the object was present when it was to be absent,
// or its version was not the one given.
var ErrConflict = errors.New("checkpoint: conditional write conflict")

// A Conditional store writes an object only if it is as the writer last saw
// it: a compare-and-swap on one object, what a lease (package lease) and a
// fenced log need. It is optional (see Lister); Dir and the S3 store
// implement it.
//
// A version is an opaque, non-empty string naming one content of an object
// (S3: its ETag). Two writes of the same bytes may have the same version;
// a caller that needs every write to be told apart writes something
// different each time (a lease renewal writes a new expiry).
type Conditional interface {
	// GetVersion returns the object stored under name and its version.
	// If there is none, the error wraps ErrNotFound.
	GetVersion(ctx context.Context, name string) (data []byte, version string, err error)

	// PutIf stores data under name if the object is at version, or, if
	// version is "", if there is no object; it returns the new object's
	// version. If the condition does not hold, nothing is written and the
	// error wraps ErrConflict. Like Put, a PutIf that returned another
	// error may or may not have taken effect; and one whose answer was
	// lost and that was retried (an S3 client retries) may return
	// ErrConflict although its own first attempt took effect: a caller
	// reads again to find out.
	PutIf(ctx context.Context, name string, data []byte, version string) (newVersion string, err error)
}

var _ Conditional = (*Dir)(nil)

// casLockName is the file whose exclusive lock serializes Dir's
// conditional writes and versioned reads.
const casLockName = ".cas-lock"

// version is Dir's version of an object's content: its SHA-256, in hex.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// GetVersion implements Conditional. The version is the SHA-256 of the
// content.
func (d *Dir) GetVersion(ctx context.Context, name string) ([]byte, string, error) {
	if err := d.check(ctx, "get", name); err != nil {
		return nil, "", err
	}
	b, err := d.Get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return b, version(b), nil
}

// PutIf implements Conditional. The compare and the swap happen under an
// exclusive flock(2) of a lock file in the directory, so they are atomic
// against every other PutIf on the directory, by any goroutine or process
// of this machine, and against no plain Put (a plain Put to a name that is
// also written conditionally voids the guarantee). Over a network file
// system, flock's guarantee is the file system's. Where flock(2) does not
// exist, the lock serializes only this process's PutIfs.
//
// The lock is held for the compare (a read) and the rename only: the data
// is written and synced to a temporary before, the directory synced after.
// A process stopped while it holds the lock (SIGSTOP, a paused VM) keeps
// it, and every other PutIf on the directory waits until it runs again or
// its own context ends; the shorter the hold, the rarer that is (a lease's
// standby would otherwise wait on a paused master it is to replace).
func (d *Dir) PutIf(ctx context.Context, name string, data []byte, ver string) (string, error) {
	return d.putIf(ctx, name, data, ver, nil)
}

// putIf is PutIf with put's stop hook (a test's).
func (d *Dir) putIf(ctx context.Context, name string, data []byte, ver string, stop func(putStage) bool) (string, error) {
	if err := d.check(ctx, "put", name); err != nil {
		return "", err
	}
	guard := func() (func(), error) {
		unlock, err := lockExclusive(ctx, filepath.Join(d.root, casLockName))
		if err != nil {
			return nil, fmt.Errorf("checkpoint: put %q: locking: %w", name, err)
		}
		cur, err := d.Get(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			if ver != "" {
				err = fmt.Errorf("checkpoint: put %q if at version %.12s: no object: %w", name, ver, ErrConflict)
			} else {
				err = nil
			}
		case err != nil:
		case ver == "":
			err = fmt.Errorf("checkpoint: put %q if absent: it exists: %w", name, ErrConflict)
		case version(cur) != ver:
			err = fmt.Errorf("checkpoint: put %q if at version %.12s: it is at %.12s: %w", name, ver, version(cur), ErrConflict)
		}
		if err != nil {
			unlock()
			return nil, err
		}
		return unlock, nil
	}
	if err := d.putGuarded(name, data, stop, guard); err != nil {
		return "", err
	}
	return version(data), nil
}
