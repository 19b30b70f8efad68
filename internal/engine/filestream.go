package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

// File streams, as Spark's FileInputDStream: nothing is received. At each
// interval the master lists the stream's folder (a local folder, or the top
// level of a store given by URL: filefolder.go) and selects the files the
// interval takes (source.FileRule: modified in (t - batch, t], or later
// within the remember window, each name once); the interval's manifest names
// them (name, size, modification time), and every process builds the
// interval's dataset from the named files, one partition per split of each
// file, read from the folder (or store) where the task runs: a lost
// partition is read again. With a checkpoint folder the master also writes each non-empty
// selection under files/ when it cuts the interval (before the interval is
// queued), keeps them as long as the remember window or a window over the
// stream needs them, and a restarted master replays them: the intervals
// logged but not completed, or cut but not yet run, take the files they
// took; the intervals missed while it was down select with the same rule.

// FileInput is a file stream's input: on the master it selects each
// interval's files when the interval is cut; in every process it remembers
// the files of the intervals it knows (from its cuts or their manifests).
type FileInput struct {
	c      *Engine
	node   Node   // the file stream
	folder folder // where its files are (filefolder.go)
	opts   FileOptions

	mu sync.Mutex
	// selected holds the files of each known interval (Unix ms), sorted by
	// name; an interval known to take none has an empty, non-nil slice.
	selected map[int64][]manifest.File
	// taken maps each name taken within the remember window to the
	// interval that took it (the master's).
	taken  map[string]int64
	latest int64 // the latest interval known
	cuts   int   // cuts since the master started, for the cleanup's pace
}

func (fi *FileInput) OpID() int32                     { return fi.node.OpID() }
func (fi *FileInput) RememberDuration() time.Duration { return fi.node.RememberDuration() }

// remember is the stream's remember window for late files.
func (fi *FileInput) remember() time.Duration {
	return source.RememberFor(fi.c.cfg.BatchInterval, fi.opts.MinRemember)
}

// keep is how long before the latest interval a selection is kept: as
// long as the rule needs the names taken, and as long as the stream
// remembers its datasets (a window recomputes them from the files).
func (fi *FileInput) keep() time.Duration {
	return fi.c.Timeline().Retention(max(fi.remember(), fi.node.RememberDuration()), 0)
}

// rule is the selection rule in force.
func (fi *FileInput) rule() source.FileRule {
	r := source.FileRule{Remember: fi.remember()}
	if fi.opts.NewFilesOnly {
		r.NotBefore = fi.c.Timeline().Zero()
	}
	return r
}

// filesAt returns the files of interval ms and whether the interval is known.
func (fi *FileInput) filesAt(ms int64) ([]manifest.File, bool) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	files, ok := fi.selected[ms]
	return files, ok
}

// record makes files the selection of interval ms (files sorted by name),
// and forgets what no interval needs any more.
func (fi *FileInput) record(ms int64, files []manifest.File) {
	if files == nil {
		files = []manifest.File{}
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.selected[ms] = files
	for _, f := range files {
		fi.taken[f.Name] = max(fi.taken[f.Name], ms)
	}
	fi.latest = max(fi.latest, ms)
	keepFrom := fi.latest - fi.keep().Milliseconds()
	for t := range fi.selected {
		if t < keepFrom {
			delete(fi.selected, t)
		}
	}
	takenFrom := fi.latest - fi.remember().Milliseconds()
	for n, t := range fi.taken {
		if t <= takenFrom {
			delete(fi.taken, n)
		}
	}
}

// isTaken reports whether an interval within the remember window took
// name; fi.mu is held.
func (fi *FileInput) isTakenLocked(name string) bool {
	_, ok := fi.taken[name]
	return ok
}

// cut selects interval t's files on the master: those it took before a
// restart, if it was cut then; otherwise those the rule selects from the
// folder now. With a checkpoint folder the selection is written before the
// interval is queued.
func (fi *FileInput) cut(ctx context.Context, t time.Time) error {
	ms := t.UnixMilli()
	c := fi.c
	if files, ok := fi.filesAt(ms); ok {
		c.log.Debug("file stream: interval replays the files it took before the restart", "stream", fi.OpID(), "time", ms, "files", len(files))
		return nil
	}
	listing, err := fi.folder.list(ctx)
	if err != nil {
		// As Spark: the interval takes no file; a later one takes them
		// while they are within the remember window.
		c.log.Warn("file stream cannot list its folder: the interval takes no file", "stream", fi.OpID(), "dir", fi.folder, "time", ms, "err", err)
	}
	rule := fi.rule()
	fi.mu.Lock()
	sel := rule.Select(listing, t, fi.isTakenLocked)
	fi.mu.Unlock()
	files := make([]manifest.File, len(sel))
	for i, f := range sel {
		files[i] = manifest.File{Name: f.Name, Size: f.Size, ModTime: f.ModTime.UnixNano()}
	}
	fi.record(ms, files)
	if len(files) > 0 {
		c.log.Debug("file stream: interval takes files", "stream", fi.OpID(), "time", ms, "files", len(files))
	}
	fi.persist(ctx, ms, files)
	return nil
}

// fileSelection is a selection as written to the checkpoint store.
type fileSelection struct {
	Stream int32           `json:"stream"`
	Time   int64           `json:"time"`
	Files  []manifest.File `json:"files"`
}

const fileSelectionKind = "dstream.files"

// prefix is where the stream's selections are written.
func (fi *FileInput) prefix() string { return fmt.Sprintf("files/%06d/", fi.OpID()) }

// persist writes a non-empty selection to the checkpoint store, when the
// master has a metadata log, and now and then deletes those no restart can
// need. A failure is logged: a restart then selects that interval's files
// with the rule again.
func (fi *FileInput) persist(ctx context.Context, ms int64, files []manifest.File) {
	c := fi.c
	if !c.metaOpen() {
		return
	}
	if err := c.holding(); err != nil {
		c.fence(err) // a master that lost the lease overwrites no selection
		return
	}
	store, err := c.CheckpointStore()
	if err != nil {
		return
	}
	if len(files) > 0 {
		b, _ := json.Marshal(fileSelection{Stream: fi.OpID(), Time: ms, Files: files})
		if err := store.Put(ctx, fmt.Sprintf("%s%020d", fi.prefix(), ms), checkpoint.Frame(fileSelectionKind, 1, b)); err != nil {
			c.log.Warn("file stream: selection not written to the checkpoint folder; a restart selects the interval's files again", "stream", fi.OpID(), "time", ms, "err", err)
		}
	}
	fi.mu.Lock()
	fi.cuts++
	sweep := fi.cuts%16 == 1
	fi.mu.Unlock()
	if sweep {
		fi.deleteOld(ctx, store, ms-fi.keep().Milliseconds())
	}
}

// deleteOld deletes the selections written for intervals before from.
func (fi *FileInput) deleteOld(ctx context.Context, store checkpoint.Store, from int64) {
	names, err := store.List(ctx, fi.prefix())
	if err != nil {
		return
	}
	for _, n := range names {
		t, err := strconv.ParseInt(strings.TrimPrefix(n, fi.prefix()), 10, 64)
		if err != nil || t >= from {
			continue
		}
		if err := store.Delete(ctx, n); err != nil {
			fi.c.log.Warn("file stream: old selection not deleted", "name", n, "err", err)
		}
	}
}

// learn records the files a manifest names (a worker's Materialize).
func (fi *FileInput) learn(ms int64, files []manifest.File) { fi.record(ms, files) }

// dataset reads files: one partition per split of each.
func (fi *FileInput) dataset(files []manifest.File) *rdd.Dataset[string] {
	c := fi.c
	type part struct {
		file  source.File
		split source.Split
	}
	var parts []part
	for _, f := range files {
		sf := source.File{Name: f.Name, Size: f.Size, ModTime: time.Unix(0, f.ModTime)}
		for _, s := range source.Splits(f.Size, fi.opts.SplitBytes) {
			parts = append(parts, part{sf, s})
		}
	}
	if len(parts) == 0 {
		return rdd.Empty[string](c.rctx)
	}
	dir, maxRec := fi.folder, fi.opts.MaxRecordBytes
	return rdd.FromFunc(c.rctx, "file input", len(parts), func(tc *rdd.TaskContext, p int) iter.Seq[string] {
		return func(yield func(string) bool) {
			pt := parts[p]
			tooLong := func(size int) {
				c.log.Warn("file stream dropped an over-long record", "dir", dir, "file", pt.file.Name, "bytes", size, "max", maxRec)
			}
			if err := dir.read(tc.Ctx, pt.file, pt.split, maxRec, tooLong, yield); err != nil {
				tc.Fail(fmt.Errorf("file stream %s: file %s (selected with %d bytes, modified %s): %w",
					dir, pt.file.Name, pt.file.Size, pt.file.ModTime.UTC().Format(time.RFC3339Nano), err))
			}
		}
	})
}

// fileInputOf returns the file input of stream, or nil.
func (c *Engine) fileInputOf(stream int32) *FileInput {
	for _, in := range c.cutters {
		if fi, ok := in.(*FileInput); ok && fi.OpID() == stream {
			return fi
		}
	}
	return nil
}

// FileOptions configure a file stream's input (dstream.FileStreamOptions,
// defaults applied).
type FileOptions struct {
	NewFilesOnly   bool
	MinRemember    time.Duration
	SplitBytes     int64
	MaxRecordBytes int
}

// AddFiles adds the input of file stream n, which reads the files that
// appear at location: a local folder, or the top level of a store when
// location is a URL (IsURL; stores.go, filefolder.go). The stream's
// datasets are Dataset's.
func (c *Engine) AddFiles(n Node, location string, opts FileOptions) *FileInput {
	fi := &FileInput{c: c, node: n, folder: c.folderAt(location), opts: opts, selected: map[int64][]manifest.File{}, taken: map[string]int64{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutters = append(c.cutters, fi)
	return fi
}

// Dataset is the file stream's dataset of interval t: the files it took.
func (fi *FileInput) Dataset(t time.Time) *rdd.Dataset[string] {
	files, _ := fi.filesAt(t.UnixMilli())
	return fi.dataset(files)
}
