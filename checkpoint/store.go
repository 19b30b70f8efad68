package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// A Store holds named, immutable-once-written objects. It is the whole of
// what the rest of this package needs from storage, small enough for an
// object store (S3 and its imitators) to implement.
//
// Names are slash-separated relative paths (see [ValidName]). A Store need not
// have directories: "a/b" and "a/c" share the prefix "a/" and nothing else.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// Put stores data under name, replacing any object of that name.
	// Put is atomic: a concurrent or later Get, including one by another
	// process after a crash of this one, returns all of data or the
	// previous object (or ErrNotFound), never a mixture or a prefix.
	// A Put that returned nil is durable. A Put that returned an error
	// may or may not have taken effect.
	Put(ctx context.Context, name string, data []byte) error

	// Get returns the object stored under name. If there is none, the
	// error wraps ErrNotFound. The caller owns the returned slice.
	Get(ctx context.Context, name string) ([]byte, error)

	// List returns the names of the objects whose name begins with
	// prefix, in increasing byte order. The prefix need not end at a
	// slash. An empty prefix lists every object.
	List(ctx context.Context, prefix string) ([]string, error)

	// Delete removes the object stored under name. Deleting a name that
	// holds no object is not an error.
	Delete(ctx context.Context, name string) error
}

// ErrNotFound is wrapped by the error of a read of an object that does not
// exist.
var ErrNotFound = errors.New("checkpoint: object not found")

// ErrInvalidName is wrapped by the error of an operation given a name that
// ValidName refuses.
var ErrInvalidName = errors.New("checkpoint: invalid object name")

// ValidName reports whether name can name an object, and if not, why. A
// name is one or more elements separated by single slashes. It must not
// begin or end with a slash (absolute names and empty elements are refused),
// and no element may begin with a dot: "." and ".." are refused, and names
// beginning with a dot are reserved for a Store's own bookkeeping (Dir's
// temporary files). Names must not contain NUL or a backslash.
//
// The error wraps ErrInvalidName.
func ValidName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if strings.HasPrefix(name, "/") {
		return bad("absolute (begins with a slash)")
	}
	if strings.ContainsAny(name, "\x00\\") {
		return bad("contains NUL or a backslash")
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "":
			return bad("empty element (trailing or doubled slash)")
		case elem == "." || elem == "..":
			return bad(fmt.Sprintf("element %q", elem))
		case elem[0] == '.':
			return bad(fmt.Sprintf("element %q begins with a dot (reserved)", elem))
		}
	}
	return nil
}

// ValidPrefix reports whether prefix can be given to List, and if not, why:
// the part up to its last slash must be a valid name (see [ValidName]); the
// rest is matched as is, and may be empty. The error wraps ErrInvalidName.
func ValidPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "\x00\\") {
		return fmt.Errorf("%w: prefix %q contains NUL or a backslash", ErrInvalidName, prefix)
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if err := ValidName(prefix[:i]); err != nil {
			return fmt.Errorf("prefix %q: %w", prefix, err)
		}
	}
	return nil
}
