package dstream

import (
	"context"
	"fmt"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/internal/textout"
	"github.com/dstream/dstream/rdd"
)

// SaveAsTextFiles writes every interval's dataset as text, one record per
// line (fmt.Sprint), into the folder "prefix-<interval ms>[.suffix]" holding
// one part-NNNNN file per partition and an empty _SUCCESS marker, as Spark
// lays them out. An interval's output appears once, whole: an interval
// whose output is complete is not written again, so re-running an interval
// after a failure or a restart of the master leaves exactly one copy of
// its output.
//
// prefix is one of:
//   - a local path. Interval folders are 0755 and files 0644 (less the
//     umask). A folder appears atomically (written under a temporary name,
//     ".<name>.tmp-<random>" beside it, then renamed): readers see it whole
//     or not at all. Start creates the parent folder and fails, naming it,
//     if it cannot be written; it then removes the temporary directories of
//     this prefix and suffix that a killed run left behind, and nothing
//     else.
//   - a URL, s3://BUCKET/PATH/NAME or file:///PATH/NAME: objects
//     "NAME-<ms>[.suffix]/part-NNNNN" and ".../_SUCCESS" in the store that
//     checkpoint.Open opens at the URL's part before NAME (s3://BUCKET/PATH).
//     A store has no rename: the tasks write their parts in place (a retried
//     or speculative task writes the same bytes to the same object), and
//     the _SUCCESS marker is written last, once every part is. An interval's
//     output is there when its marker is, and only then: readers must
//     look for the marker (Spark's do). An interval run again before its
//     marker was written has its parts written again and anything else in
//     its folder deleted. With a checkpoint location (the master's lease)
//     the marker holds {"epoch":N,"parts":P}, and an interval run again
//     after a change of master whose marker lacks some of its parts (a late
//     commit of a master that lost the lease) is written again. Start fails if the store cannot be opened or written (it
//     writes and deletes an object under NAME-0), then deletes the objects
//     of this prefix's and suffix's interval folders that have no marker
//     (left by a killed run). file:// takes this path over a local folder
//     (a checkpoint.Dir): its interval folders are not renamed into place.
//
// One running job at a time owns a prefix and suffix. suffix must not
// contain a path separator.
func (s *Stream[T]) SaveAsTextFiles(prefix, suffix string) {
	ext := ""
	if suffix != "" {
		ext = "." + suffix
	}
	if engine.IsURL(prefix) {
		saveToStore(s, prefix, suffix, ext)
		return
	}
	saveToFolder(s, prefix, suffix, ext)
}

// saveToStore is SaveAsTextFiles(prefix, suffix) for a URL prefix; ext is
// "." + suffix, or "". The commit protocol is textout.Objects'.
func saveToStore[T any](s *Stream[T], prefix, suffix, ext string) {
	c := s.ctx
	objs, prefixErr := textout.ParseObjects(prefix, ext)
	open := func() error {
		if err := textout.CheckSuffix(suffix); err != nil {
			return err
		}
		if prefixErr != nil {
			return prefixErr
		}
		ctx := context.Background()
		store, err := c.e.Store(ctx, objs.Loc)
		if err != nil {
			return fmt.Errorf("output location %s: %w", objs.Loc, err)
		}
		return objs.Open(ctx, c.log, store)
	}
	var op *engine.Output
	op = addOutput(s, "saveAsTextFiles", open, func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		store, err := c.e.Store(ctx, objs.Loc)
		if err != nil {
			return fmt.Errorf("output location %s: %w", objs.Loc, err)
		}
		return objs.Save(ctx, c.log, store, t.UnixMilli(), ds.NumPartitions(), func(ctx context.Context) error {
			return ds.RunOutput(ctx, int(op.ID))
		})
	})
	// Any process that built the graph writes a part (a task's spec names
	// the output: package rdd, RegisterOutput), opening the store once.
	rdd.RegisterOutput(c.rctx(), int(op.ID), func(tc *rdd.TaskContext, ms int64, p int, records []T) error {
		store, err := c.e.Store(tc.Ctx, objs.Loc)
		if err != nil {
			return fmt.Errorf("output location %s: %w", objs.Loc, err)
		}
		return store.Put(tc.Ctx, objs.Part(ms, p), textout.Lines(records))
	})
}

// saveToFolder is SaveAsTextFiles to a local folder: each interval's
// parts are written to a temporary directory and renamed into place
// (textout.Folder).
func saveToFolder[T any](s *Stream[T], prefix, suffix, ext string) {
	c := s.ctx
	folder := textout.NewFolder(prefix, ext)
	open := func() error {
		if err := textout.CheckSuffix(suffix); err != nil {
			return err
		}
		return folder.Open(c.log)
	}
	var op *engine.Output
	op = addOutput(s, "saveAsTextFiles", open, func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		return folder.Save(ctx, t.UnixMilli(), func(ctx context.Context) error { return ds.RunOutput(ctx, int(op.ID)) })
	})
	// The per-partition write is a named output: any process that built
	// the graph runs it from a task's spec (package rdd, RegisterOutput).
	rdd.RegisterOutput(c.rctx(), int(op.ID), func(tc *rdd.TaskContext, ms int64, p int, records []T) error {
		return folder.WritePart(tc.Attempt, ms, p, textout.Lines(records))
	})
}
