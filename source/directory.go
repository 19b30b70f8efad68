package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dstream/dstream/clock"
)

// DirectoryOptions configure a Directory receiver.
type DirectoryOptions struct {
	Poll           time.Duration // how often the folder is listed; default 1 s
	Clock          clock.Clock   // paces the polls; default the wall clock
	SkipExisting   bool          // ignore the files already there at Open
	MaxRecordBytes int           // longer lines are dropped with a warning; default 16 MiB
	Logger         *slog.Logger  // default slog.Default()
}

// Directory receives the lines of every regular file that appears in a
// folder, once each, as records (the same line rules as Socket). It lists the
// folder every Poll on its clock; files are read in name order. Names
// starting with "." or "_" are ignored: write a file under such a name (or
// elsewhere on the same file system) and rename it in, so it is never read
// half-written. A file is known by its name: a name is remembered only while
// it is in the folder (memory stays bounded by the folder's size), so a file
// deleted and later created again under the same name is read again, but one
// replaced between two polls is not. Files already there at Open are read too
// unless SkipExisting. An unreadable file is logged and skipped.
//
// What it receives is stored as blocks like a socket's, and is not
// replayable after a restart of the master: dstream.TextFileStream does
// not use it, but selects each interval's files by their modification
// times (FileRule) and names them in the interval's manifest.
type Directory struct {
	dir  string
	opts DirectoryOptions
	seen map[string]bool
}

// NewDirectory returns a receiver watching dir.
func NewDirectory(dir string, opts DirectoryOptions) *Directory {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 16 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Directory{dir: dir, opts: opts, seen: map[string]bool{}}
}

// Name returns "directory DIR".
func (d *Directory) Name() string { return "directory " + d.dir }

// Open checks that the folder exists and can be listed, and with
// SkipExisting, remembers the files already there.
func (d *Directory) Open() error {
	st, err := os.Stat(d.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("source %s: no such directory", d.Name())
	case err != nil:
		return fmt.Errorf("source %s: %w", d.Name(), err)
	case !st.IsDir():
		return fmt.Errorf("source %s: not a directory", d.Name())
	}
	names, err := d.list()
	if err != nil {
		return fmt.Errorf("source %s: %w", d.Name(), err)
	}
	if d.opts.SkipExisting {
		for _, n := range names {
			d.seen[n] = true
		}
	}
	return nil
}

// list returns the names of the folder's candidate files, sorted.
func (d *Directory) list() ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
			continue
		}
		switch t := e.Type(); {
		case t.IsRegular():
		case t&fs.ModeSymlink != 0:
			// A link to a regular file counts as one.
			if st, err := os.Stat(filepath.Join(d.dir, n)); err != nil || !st.Mode().IsRegular() {
				continue
			}
		default:
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Receive lists the folder now and every Poll until ctx is done, writing the
// lines of each new file. A file being read when ctx is done is read to its
// end. It returns nil when ctx is done, and an error only when w fails.
func (d *Directory) Receive(ctx context.Context, w Writer) error {
	next := d.opts.Clock.Now()
	for {
		if d.opts.Clock.WaitUntil(ctx, next) != nil {
			return nil
		}
		next = next.Add(d.opts.Poll)
		names, err := d.list()
		if err != nil {
			d.opts.Logger.Warn("directory source cannot list its folder", "dir", d.dir, "err", err)
			continue
		}
		present := make(map[string]bool, len(names))
		for _, n := range names {
			present[n] = true
			if d.seen[n] {
				continue
			}
			d.seen[n] = true
			if err := d.readFile(filepath.Join(d.dir, n), w); err != nil {
				return err
			}
		}
		// Remember only names still present: memory stays bounded by the folder.
		for n := range d.seen {
			if !present[n] {
				delete(d.seen, n)
			}
		}
	}
}

// readFile writes a file's lines; it fails only when w fails.
func (d *Directory) readFile(path string, w Writer) error {
	f, err := os.Open(path)
	if err != nil {
		d.opts.Logger.Warn("directory source skips an unreadable file", "file", path, "err", err)
		return nil
	}
	defer f.Close()
	lr := newLineReader(f, d.opts.MaxRecordBytes, func(size int) {
		d.opts.Logger.Warn("directory source dropped an over-long record", "file", path, "bytes", size, "max", d.opts.MaxRecordBytes)
	})
	for {
		line, ok, _, err := lr.next()
		if ok {
			if werr := w.Write(line); werr != nil {
				return fmt.Errorf("source %s: %w", d.Name(), werr)
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			d.opts.Logger.Warn("directory source: read error, rest of the file skipped", "file", path, "err", err)
			return nil
		}
	}
}
