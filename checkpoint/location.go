package checkpoint

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// A Scheme opens the stores at the locations SCHEME://... of one kind of
// object storage. This package knows local folders only; a store package
// that imports this one registers its scheme ([RegisterScheme]) rather than
// being imported by it, which would be a cycle. Package checkpoint/s3store
// registers "s3"; the engine imports it, so every dstream program has it.
type Scheme struct {
	// Check reports whether location is well formed, without reaching the
	// store, so that a malformed location is an error at startup.
	Check func(location string) error
	// Open opens the store at location, which Check accepted.
	Open func(ctx context.Context, location string) (Store, error)
}

var schemes struct {
	sync.RWMutex
	m map[string]Scheme
}

// RegisterScheme makes [Open] and [CheckLocation] hand the locations
// "name://..." to s. It is meant for a store package's init function, and
// panics, as a program's mistake, if name is empty, "file" or already
// registered, or if s lacks Check or Open.
func RegisterScheme(name string, s Scheme) {
	schemes.Lock()
	defer schemes.Unlock()
	switch {
	case name == "" || name == "file" || strings.ContainsAny(name, ":/"):
		panic(fmt.Sprintf("checkpoint: RegisterScheme(%q): not a scheme a store may take", name))
	case s.Check == nil || s.Open == nil:
		panic(fmt.Sprintf("checkpoint: RegisterScheme(%q): Check and Open are both needed", name))
	case schemes.m[name].Open != nil:
		panic(fmt.Sprintf("checkpoint: RegisterScheme(%q): registered twice", name))
	}
	if schemes.m == nil {
		schemes.m = map[string]Scheme{}
	}
	schemes.m[name] = s
}

// CheckLocation reports whether location names a store [Open] can open, and
// if not, why, without reaching the store: a local folder (a path, or a
// file:// URL), or SCHEME://... of a registered scheme whose Check accepts
// it (for s3://BUCKET/PREFIX, see package checkpoint/s3store).
func CheckLocation(location string) error {
	_, err := schemeOf(location)
	return err
}

// schemeOf checks location and returns its registered scheme, or a zero
// Scheme for a local folder.
func schemeOf(location string) (Scheme, error) {
	name, rest, ok := strings.Cut(location, "://")
	switch {
	case location == "":
		return Scheme{}, fmt.Errorf("checkpoint: empty location")
	case !ok:
		return Scheme{}, nil // a folder
	case name == "file":
		if rest == "" {
			return Scheme{}, fmt.Errorf("checkpoint: location %q names no folder", location)
		}
		return Scheme{}, nil
	}
	schemes.RLock()
	s, known := schemes.m[name]
	names := slices.Sorted(maps.Keys(schemes.m))
	schemes.RUnlock()
	if !known {
		supported := "a folder, file://PATH"
		for _, n := range names {
			supported += ", " + n + "://"
		}
		return Scheme{}, fmt.Errorf("checkpoint: location %q: scheme %q not supported (supported: %s)", location, name, supported)
	}
	if err := s.Check(location); err != nil {
		return Scheme{}, err
	}
	return s, nil
}

// Open opens the store at location: a local folder (a path, or a file://
// URL) as a [Dir], or SCHEME://... through its registered [Scheme]. A
// location [CheckLocation] refuses is refused with its error.
func Open(ctx context.Context, location string) (Store, error) {
	s, err := schemeOf(location)
	switch {
	case err != nil:
		return nil, err
	case s.Open != nil:
		return s.Open(ctx, location)
	}
	return OpenDir(strings.TrimPrefix(location, "file://"))
}

// Absolute makes a location that is a folder absolute (a path or a file://
// URL), so a process started elsewhere on the machine (a worker) finds it;
// a URL of object storage names the same store from anywhere and stays as
// it is, and "" stays "".
func Absolute(location string) string {
	if path, ok := strings.CutPrefix(location, "file://"); ok {
		return "file://" + absPath(path)
	}
	if strings.Contains(location, "://") {
		return location
	}
	return absPath(location)
}

// absPath is name made absolute ("" stays "", and a name that cannot be
// made absolute stays as it is).
func absPath(name string) string {
	if name == "" {
		return ""
	}
	if a, err := filepath.Abs(name); err == nil {
		return a
	}
	return name
}
