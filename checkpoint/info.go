package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Optional capabilities. A Store is all that checkpoints and the metadata
// log need. A file stream over a store (dstream.TextFileStream given a URL)
// needs more: each object's size and modification time, to select an
// interval's files as it does in a folder (Lister), and it reads a large
// object split by split (RangeGetter). A Store offers them by implementing
// these interfaces as well; callers find out with a type assertion. Dir
// implements both.

// Info is what a store knows of an object besides its bytes.
type Info struct {
	Name    string    // the object's name
	Size    int64     // its length in bytes
	ModTime time.Time // when it was last written (Put), by the store's clock
}

// A Lister lists objects with their sizes and modification times, one
// level of names at a time. It is optional (see above).
type Lister interface {
	// ListInfo returns the Info of every object whose name begins with
	// prefix and holds no slash after it, in increasing byte order of
	// names: with prefix "in/", the object "in/a" but not "in/sub/b".
	// The prefix need not end at a slash; "" lists the top level. A
	// prefix under which nothing is stored lists nothing, without error.
	// Names that ValidName refuses are left out. (An S3 store: one
	// ListObjectsV2 listing with Delimiter "/", every page, its Contents'
	// Key, Size and LastModified; its CommonPrefixes are not objects.)
	ListInfo(ctx context.Context, prefix string) ([]Info, error)
}

// A RangeGetter reads part of an object. It is optional (see above).
type RangeGetter interface {
	// GetRange returns at most n bytes of the object stored under name,
	// from byte offset off: fewer only where the object ends, none when
	// off is at or past its end (not an error). If there is no object,
	// the error wraps ErrNotFound. off and n must not be negative. The
	// caller owns the returned slice. (An S3 store: GetObject with
	// Range "bytes=off-(off+n-1)"; a 416 for an offset past the end is
	// an empty result.)
	GetRange(ctx context.Context, name string, off, n int64) ([]byte, error)
}

var (
	_ Lister      = (*Dir)(nil)
	_ RangeGetter = (*Dir)(nil)
)

// ListInfo implements Lister: the regular files of one directory, dot
// names excluded as List excludes them. Symbolic links are not followed
// (List does not list them either).
func (d *Dir) ListInfo(ctx context.Context, prefix string) ([]Info, error) {
	if err := d.check(ctx, "list", prefix); err != nil {
		return nil, err
	}
	dir, rest := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, rest = prefix[:i+1], prefix[i+1:]
	}
	entries, err := os.ReadDir(d.path(dir))
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("checkpoint: list %q: %w", prefix, err)
	}
	var infos []Info
	for _, e := range entries { // sorted by name
		n := e.Name()
		if !strings.HasPrefix(n, rest) || strings.HasPrefix(n, ".") || !e.Type().IsRegular() {
			continue
		}
		name := dir + n
		if ValidName(name) != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if notFound(err) {
				continue // deleted while listed
			}
			return nil, fmt.Errorf("checkpoint: list %q: %w", prefix, err)
		}
		infos = append(infos, Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return infos, nil
}

// GetRange implements RangeGetter.
func (d *Dir) GetRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	if err := d.check(ctx, "get", name); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("checkpoint: get %q: negative range (offset %d, length %d)", name, off, n)
	}
	f, err := os.Open(d.path(name))
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("checkpoint: get %q: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("checkpoint: get %q: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: get %q: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: get %q: %w", name, ErrNotFound)
	}
	if off >= st.Size() {
		return []byte{}, nil
	}
	b := make([]byte, min(n, st.Size()-off))
	k, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("checkpoint: get %q: %w", name, err)
	}
	return b[:k], nil
}
