package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/source"
)

// folder is where a file stream's files are: the master lists it at every
// cut, and the tasks, wherever they run, read the files it selected.
type folder interface {
	// check tells Start, on the master, why the stream cannot be read.
	check(ctx context.Context) error
	// list returns the candidate files, sorted by name (source.ListFiles).
	list(ctx context.Context) ([]source.File, error)
	// read yields the lines of file that start in split (source.ReadLines).
	read(ctx context.Context, file source.File, split source.Split, maxRec int, tooLong func(int), yield func(string) bool) error
	// String is the location, for messages.
	String() string
}

// folderAt returns the folder at location: a store for a URL, else a local
// folder.
func (c *Engine) folderAt(location string) folder {
	if IsURL(location) {
		return storeFolder{c: c, loc: location}
	}
	return localFolder(location)
}

// localFolder is a folder of the local file system (or one mounted at the
// same path everywhere).
type localFolder string

// check is done when the graph is built (dstream.TextFileStream).
func (localFolder) check(context.Context) error { return nil }

func (d localFolder) list(context.Context) ([]source.File, error) { return source.ListFiles(string(d)) }

func (d localFolder) read(_ context.Context, file source.File, split source.Split, maxRec int, tooLong func(int), yield func(string) bool) error {
	return source.ReadLines(string(d), file, split, maxRec, tooLong, yield)
}

func (d localFolder) String() string { return string(d) }

// storeFolder is the top level of a store opened by URL: its objects are
// the files (names without a slash; source.Candidate's rule applies), each
// with the size and modification time the store lists (checkpoint.Lister,
// which the store must offer). Tasks read an object by ranges where the
// store offers them (checkpoint.RangeGetter), a window at a time, else
// whole.
//
// An object cannot be checked for a change since it was selected but by
// its length: one shorter than its selected size fails the task
// (source.ErrFileChanged); one replaced by another at least as long is
// read as it is now.
type storeFolder struct {
	c   *Engine
	loc string
}

// readWindow is how much of an object one ranged read asks for.
const readWindow = 4 << 20

func (f storeFolder) String() string { return f.loc }

func (f storeFolder) lister(ctx context.Context) (checkpoint.Lister, error) {
	st, err := f.c.Store(ctx, f.loc)
	if err != nil {
		return nil, err
	}
	l, ok := st.(checkpoint.Lister)
	if !ok {
		return nil, fmt.Errorf("the store at %s (%T) does not list objects with their sizes and modification times (checkpoint.Lister), which a file stream selects files by", f.loc, st)
	}
	return l, nil
}

func (f storeFolder) check(ctx context.Context) error {
	l, err := f.lister(ctx)
	if err != nil {
		return err
	}
	if _, err := l.ListInfo(ctx, ""); err != nil {
		return fmt.Errorf("cannot list %s: %w", f.loc, err)
	}
	return nil
}

func (f storeFolder) list(ctx context.Context) ([]source.File, error) {
	l, err := f.lister(ctx)
	if err != nil {
		return nil, err
	}
	infos, err := l.ListInfo(ctx, "")
	if err != nil {
		return nil, err
	}
	files := make([]source.File, 0, len(infos))
	for _, in := range infos {
		if source.Candidate(in.Name) {
			files = append(files, source.File{Name: in.Name, Size: in.Size, ModTime: in.ModTime})
		}
	}
	return files, nil
}

func (f storeFolder) read(ctx context.Context, file source.File, split source.Split, maxRec int, tooLong func(int), yield func(string) bool) error {
	st, err := f.c.Store(ctx, f.loc)
	if err != nil {
		return err
	}
	var r io.ReaderAt
	if rg, ok := st.(checkpoint.RangeGetter); ok {
		r = &objectReader{ctx: ctx, store: rg, name: file.Name, size: file.Size, window: readWindow}
	} else {
		b, err := st.Get(ctx, file.Name)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b) // ReadLinesAt says if it is short
	}
	return source.ReadLinesAt(r, file.Name, file.Size, split, maxRec, tooLong, yield)
}

// objectReader reads the first size bytes of an object through ranged
// reads of window bytes (at least), keeping the last one. It is an
// io.ReaderAt for one goroutine.
type objectReader struct {
	ctx    context.Context
	store  checkpoint.RangeGetter
	name   string
	size   int64
	window int64
	buf    []byte // the object's bytes from off
	off    int64
}

func (r *objectReader) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case off < 0:
		return 0, fmt.Errorf("%s: negative offset %d", r.name, off)
	case off >= r.size:
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < r.size {
		if off < r.off || off >= r.off+int64(len(r.buf)) {
			want := min(max(r.window, int64(len(p)-n)), r.size-off)
			b, err := r.store.GetRange(r.ctx, r.name, off, want)
			if err != nil {
				return n, err
			}
			if int64(len(b)) < want {
				return n, fmt.Errorf("%w: it ends at byte %d, %d bytes when selected", source.ErrFileChanged, off+int64(len(b)), r.size)
			}
			r.buf, r.off = b, off
		}
		k := copy(p[n:], r.buf[off-r.off:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
