package dstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
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
// interval the master lists the stream's folder and selects the files the
// interval takes (source.FileRule: modified in (t - batch, t], or later
// within the remember window, each name once); the interval's manifest names
// them (name, size, modification time), and every process builds the
// interval's dataset from the named files, one partition per split of each
// file, read from the folder where the task runs: a lost partition is read
// again. With a checkpoint folder the master also writes each non-empty
// selection under files/ when it cuts the interval (before the interval is
// queued), keeps them as long as the remember window or a window over the
// stream needs them, and a restarted master replays them: the intervals
// logged but not completed, or cut but not yet run, take the files they
// took; the intervals missed while it was down select with the same rule.

// FileStreamOptions configure TextFileStream. Every process of a job must
// use the same options (they are part of the program).
type FileStreamOptions struct {
	// NewFilesOnly ignores the files modified at or before the job's
	// start (Spark's textFileStream does). By default the first intervals
	// also take the files already in the folder that were modified within
	// the remember window before them.
	NewFilesOnly bool
	// MinRemember is how long after its modification time a file may
	// still be taken, when it appears late (renamed in after the interval
	// its modification time falls in was cut); older files are ignored.
	// Rounded up to a multiple of the batch interval. Default 60 s
	// (Spark's spark.streaming.fileStream.minRememberDuration).
	MinRemember time.Duration
	// SplitBytes is the most a partition reads: a larger file is read as
	// several partitions, each owning the lines that start in its byte
	// range. Default 32 MiB.
	SplitBytes int64
	// MaxRecordBytes drops longer lines, with a warning. Default 16 MiB.
	MaxRecordBytes int
}

// DefaultFileSplitBytes is the default FileStreamOptions.SplitBytes.
const DefaultFileSplitBytes = 32 << 20

// TextFileStream is a stream of the lines of the files that appear in
// folder dir, as Spark's textFileStream. At each interval the master lists
// the folder and the interval takes every file modified within it (a
// modification time in (t - batch, t]) that no interval took before, and
// late files (modified earlier, renamed in after their interval was cut)
// while their modification time is within the remember window (60 s; see
// FileStreamOptions). The interval's manifest names the files taken (name,
// size, modification time), and its dataset reads them: one partition per
// file (per 32 MiB split of a larger one), read again from the file if a
// partition is lost.
//
// Files must be placed atomically and not change afterwards: write a file
// elsewhere on the same file system, or under a name starting with "." or
// "_" (ignored), then rename it in; a file that vanishes, or shrinks or is
// modified, before the intervals that read it are processed fails the
// interval that reads it, naming the file (as in Spark, whose job then
// fails). Subfolders are not read. Every process reads the files: in
// local-cluster the workers read the same folder; a standalone cluster
// needs a folder shared by the master and every worker, at the same path
// (the master's clock and the file system's modification times must
// agree). With a checkpoint folder the stream is replayable: a master that
// restarts gives the intervals it missed the files the fault-free run
// would have (see docs/ARCHITECTURE.md, "Master restart").
//
// The folder must exist when the graph is built (Start returns the error
// otherwise). The files' lines are not counted as received records (the
// interval's records in the UI are those of receivers and queues).
func TextFileStream(c *Context, dir string, opts ...FileStreamOptions) *Stream[string] {
	var o FileStreamOptions
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	if o.SplitBytes <= 0 {
		o.SplitBytes = DefaultFileSplitBytes
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = 16 << 20
	}
	if o.MinRemember < 0 {
		c.setErr(fmt.Errorf("TextFileStream (%s): MinRemember %v must not be negative", caller(), o.MinRemember))
	}
	if err := source.CheckDir(dir); err != nil {
		c.setErr(fmt.Errorf("TextFileStream (%s): source %w", caller(), err))
	}
	fi := &fileInput{dir: dir, opts: o, selected: map[int64][]manifest.File{}, taken: map[string]int64{}}
	fi.stream = newStream(c, "file stream "+dir, c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[string], error) {
		files, _ := fi.filesAt(t.UnixMilli())
		return fi.dataset(files), nil
	})
	c.mu.Lock()
	c.cutters = append(c.cutters, fi)
	c.mu.Unlock()
	return fi.stream
}

// fileInput is a file stream's input: on the master it selects each
// interval's files when the interval is cut; in every process it remembers
// the files of the intervals it knows (from its cuts or their manifests).
type fileInput struct {
	stream *Stream[string]
	dir    string
	opts   FileStreamOptions

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

func (fi *fileInput) opID() int32                     { return fi.stream.id }
func (fi *fileInput) rememberDuration() time.Duration { return fi.stream.rememberDuration() }

// remember is the stream's remember window for late files.
func (fi *fileInput) remember() time.Duration {
	return source.RememberFor(fi.stream.ctx.cfg.BatchInterval, fi.opts.MinRemember)
}

// keep is how long before the latest interval a selection is kept: as
// long as the rule needs the names taken, and as long as the stream
// remembers its datasets (a window recomputes them from the files).
func (fi *fileInput) keep() time.Duration {
	return max(fi.remember(), fi.stream.rememberDuration()) + 2*fi.stream.ctx.cfg.BatchInterval
}

// rule is the selection rule in force.
func (fi *fileInput) rule() source.FileRule {
	r := source.FileRule{Remember: fi.remember()}
	if fi.opts.NewFilesOnly {
		r.NotBefore = fi.stream.ctx.zero
	}
	return r
}

// filesAt returns the files of interval ms and whether the interval is known.
func (fi *fileInput) filesAt(ms int64) ([]manifest.File, bool) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	files, ok := fi.selected[ms]
	return files, ok
}

// record makes files the selection of interval ms (files sorted by name),
// and forgets what no interval needs any more.
func (fi *fileInput) record(ms int64, files []manifest.File) {
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
func (fi *fileInput) isTakenLocked(name string) bool {
	_, ok := fi.taken[name]
	return ok
}

// cut selects interval t's files on the master: those it took before a
// restart, if it was cut then; otherwise those the rule selects from the
// folder now. With a checkpoint folder the selection is written before the
// interval is queued.
func (fi *fileInput) cut(ctx context.Context, t time.Time) error {
	ms := t.UnixMilli()
	c := fi.stream.ctx
	if files, ok := fi.filesAt(ms); ok {
		c.log.Debug("file stream: interval replays the files it took before the restart", "stream", fi.opID(), "time", ms, "files", len(files))
		return nil
	}
	listing, err := source.ListFiles(fi.dir)
	if err != nil {
		// As Spark: the interval takes no file; a later one takes them
		// while they are within the remember window.
		c.log.Warn("file stream cannot list its folder: the interval takes no file", "stream", fi.opID(), "dir", fi.dir, "time", ms, "err", err)
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
		c.log.Debug("file stream: interval takes files", "stream", fi.opID(), "time", ms, "files", len(files))
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
func (fi *fileInput) prefix() string { return fmt.Sprintf("files/%06d/", fi.opID()) }

// persist writes a non-empty selection to the checkpoint store, when the
// master has a metadata log, and now and then deletes those no restart can
// need. A failure is logged: a restart then selects that interval's files
// with the rule again.
func (fi *fileInput) persist(ctx context.Context, ms int64, files []manifest.File) {
	c := fi.stream.ctx
	if !c.metaOpen() {
		return
	}
	store, err := c.checkpointStore()
	if err != nil {
		return
	}
	if len(files) > 0 {
		b, _ := json.Marshal(fileSelection{Stream: fi.opID(), Time: ms, Files: files})
		if err := store.Put(ctx, fmt.Sprintf("%s%020d", fi.prefix(), ms), checkpoint.Frame(fileSelectionKind, 1, b)); err != nil {
			c.log.Warn("file stream: selection not written to the checkpoint folder; a restart selects the interval's files again", "stream", fi.opID(), "time", ms, "err", err)
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
func (fi *fileInput) deleteOld(ctx context.Context, store checkpoint.Store, from int64) {
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
			fi.stream.ctx.log.Warn("file stream: old selection not deleted", "name", n, "err", err)
		}
	}
}

// resume gives a restarted master the selections it made before: the
// written ones, and those of the manifests logged for intervals not
// completed (what the interval ran with, even when it took no file).
// Intervals the restart runs again take exactly those files; the names
// taken within the remember window are not taken again.
func (fi *fileInput) resume(ctx context.Context, store checkpoint.Store, logged map[int64]loggedManifest, first time.Time) error {
	c := fi.stream.ctx
	from := first.UnixMilli() - fi.keep().Milliseconds()
	names, err := store.List(ctx, fi.prefix())
	if err != nil {
		return fmt.Errorf("file stream %d: %w", fi.opID(), err)
	}
	for _, n := range names {
		t, err := strconv.ParseInt(strings.TrimPrefix(n, fi.prefix()), 10, 64)
		if err != nil || t < from {
			continue
		}
		b, err := store.Get(ctx, n)
		if errors.Is(err, checkpoint.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("file stream %d: %w", fi.opID(), err)
		}
		kind, _, payload, err := checkpoint.Unframe(b)
		var sel fileSelection
		if err == nil && kind != fileSelectionKind {
			err = fmt.Errorf("holds a %q record", kind)
		}
		if err == nil {
			err = json.Unmarshal(payload, &sel)
		}
		if err != nil || sel.Time != t || sel.Stream != fi.opID() {
			// The interval selects again by the rule (a file taken in
			// it before may be taken again: said here).
			c.log.Warn("file stream: a written selection is unreadable; its interval's files are selected again", "name", n, "err", err)
			continue
		}
		fi.record(t, sel.Files)
	}
	for _, t := range slices.Sorted(maps.Keys(logged)) {
		var files []manifest.File
		for _, in := range logged[t].m.Inputs {
			if in.Stream == fi.opID() {
				files = in.Files
			}
		}
		fi.record(t, files)
	}
	fi.mu.Lock()
	n := len(fi.selected)
	fi.mu.Unlock()
	if n > 0 {
		c.log.Info("file stream: selections made before the restart restored", "stream", fi.opID(), "intervals", n)
	}
	return nil
}

// learn records the files a manifest names (a worker's Materialize).
func (fi *fileInput) learn(ms int64, files []manifest.File) { fi.record(ms, files) }

// dataset reads files: one partition per split of each.
func (fi *fileInput) dataset(files []manifest.File) *rdd.Dataset[string] {
	c := fi.stream.ctx
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
	dir, maxRec := fi.dir, fi.opts.MaxRecordBytes
	return rdd.FromFunc(c.rctx, "file input", len(parts), func(tc *rdd.TaskContext, p int) iter.Seq[string] {
		return func(yield func(string) bool) {
			pt := parts[p]
			tooLong := func(size int) {
				c.log.Warn("file stream dropped an over-long record", "dir", dir, "file", pt.file.Name, "bytes", size, "max", maxRec)
			}
			if err := source.ReadLines(dir, pt.file, pt.split, maxRec, tooLong, yield); err != nil {
				tc.Fail(fmt.Errorf("file stream %s: file %s (selected with %d bytes, modified %s): %w",
					dir, pt.file.Name, pt.file.Size, pt.file.ModTime.UTC().Format(time.RFC3339Nano), err))
			}
		}
	})
}

// fileInputOf returns the file input of stream, or nil.
func (c *Context) fileInputOf(stream int32) *fileInput {
	for _, in := range c.cutters {
		if fi, ok := in.(*fileInput); ok && fi.opID() == stream {
			return fi
		}
	}
	return nil
}

// resumeFileInputs restores every file stream's selections after a restart.
func (c *Context) resumeFileInputs(ctx context.Context, store checkpoint.Store, logged map[int64]loggedManifest, first time.Time) error {
	for _, in := range c.cutters {
		if fi, ok := in.(*fileInput); ok {
			if err := fi.resume(ctx, store, logged, first); err != nil {
				return err
			}
		}
	}
	return nil
}
