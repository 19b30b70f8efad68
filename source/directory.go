package source

import (
	"context"
	"fmt"
	"io"
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
	Clock          clock.Clock   // default the wall clock
	SkipExisting   bool          // ignore files already there at Open
	MaxRecordBytes int           // longer lines are dropped with a warning; default 16 MiB
	Logger         *slog.Logger
}

// Directory receives the lines of every file that appears in a folder, once.
// Names starting with "." or "_" are ignored: write a file under such a name
// (or elsewhere) and rename it in, so it is never read half-written.
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

// Name describes the receiver.
func (d *Directory) Name() string { return "directory " + d.dir }

// Open checks that the folder exists.
func (d *Directory) Open() error {
	st, err := os.Stat(d.dir)
	if err != nil {
		return fmt.Errorf("source %s: %w", d.Name(), err)
	}
	if !st.IsDir() {
		return fmt.Errorf("source %s: not a directory", d.Name())
	}
	if d.opts.SkipExisting {
		names, err := d.list()
		if err != nil {
			return fmt.Errorf("source %s: %w", d.Name(), err)
		}
		for _, n := range names {
			d.seen[n] = true
		}
	}
	return nil
}

func (d *Directory) list() ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || !e.Type().IsRegular() {
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Receive polls the folder until ctx is done.
func (d *Directory) Receive(ctx context.Context, w Writer) error {
	next := d.opts.Clock.Now()
	for {
		if err := d.opts.Clock.WaitUntil(ctx, next); err != nil {
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
		d.opts.Logger.Warn("directory source dropped an over-long record", "file", path, "bytes", size)
	})
	for {
		line, _, err := lr.next()
		if err == nil || (err == io.EOF && line != "") {
			if werr := w.Write(line); werr != nil {
				return fmt.Errorf("source %s: %w", d.Name(), werr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			d.opts.Logger.Warn("directory source: read error, rest of file skipped", "file", path, "err", err)
			return nil
		}
	}
}
