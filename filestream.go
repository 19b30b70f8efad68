package dstream

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

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
// partition is lost. Each file is taken by one interval, once: with a
// checkpoint folder the selections are logged, and a master that restarts
// gives the intervals it runs again the files they took, and those it
// missed the files the fault-free run would have (see
// docs/ARCHITECTURE.md, "Master restart").
//
// dir is one of:
//   - a local path: a folder, which must exist when the graph is built
//     (Start returns the error otherwise). Every process reads the files:
//     in local-cluster the workers read the same folder; a standalone
//     cluster needs a folder shared by the master and every worker, at the
//     same path.
//   - a URL, s3://BUCKET/PREFIX or file:///PATH: the top level of the store
//     that checkpoint.Open opens there (objects directly under the prefix;
//     "subfolders" are not read). The master lists the objects with their
//     sizes and modification times, which the store must offer
//     (checkpoint.Lister; Start fails otherwise, or if the store cannot be
//     opened or listed); the tasks, on the workers, read the objects
//     themselves (by ranges where the store offers them). Nothing need
//     exist beforehand: an object store has no folders. file:// takes this
//     path over a local folder, opened as a checkpoint.Dir: it follows no
//     links, and when no other process has it open it deletes the files
//     named .tmp-* under it (its own leftovers): write files elsewhere.
//
// Files must be placed atomically and not change afterwards: write a file
// elsewhere on the same file system, or under a name starting with "." or
// "_" (ignored), then rename it in; an object store's Put is atomic. A file
// that vanishes, or shrinks or is modified, before the intervals that read
// it are processed fails the interval that reads it, naming the file (as
// in Spark, whose job then fails); in a store, an object replaced by one at
// least as long is not noticed. The master's clock and the modification
// times must agree. An object store's modification time can be when the
// upload began (S3's multipart uploads): an object whose upload takes
// longer than the remember window is never taken, so make MinRemember
// longer than the slowest upload.
//
// The files' lines are not counted as received records (the interval's
// records in the UI are those of receivers and queues).
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
	// A store (a URL) is opened and listed at Start, on the master, not
	// while every process builds the graph.
	if !engine.IsURL(dir) {
		if err := source.CheckDir(dir); err != nil {
			c.setErr(fmt.Errorf("TextFileStream (%s): source %w", caller(), err))
		}
	}
	var fi *engine.FileInput
	s := newStream(c, "file stream "+dir, c.cfg.BatchInterval, func(t time.Time) (*rdd.Dataset[string], error) {
		return fi.Dataset(t), nil
	})
	fi = c.e.AddFiles(s.rt, dir, engine.FileOptions(o))
	return s
}
