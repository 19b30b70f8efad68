package dstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// SaveAsTextFiles into a store (a prefix given as a URL). A store has no
// rename, so an interval's output cannot appear at once; instead it counts
// as written when its marker object, written last, exists:
//
//  1. the master (saveTextToStore) finds the marker: the interval is
//     written, nothing is done (a re-run after a restart of the master);
//  2. otherwise it deletes what the interval's folder holds (parts of an
//     attempt cut short, perhaps of other partitions), and runs the job:
//     every task Puts its part, named by interval and partition, so a
//     retried or speculative attempt replaces it with the same bytes;
//  3. once every task has succeeded, the master Puts the marker.
//
// Put is atomic and durable once it returns (checkpoint.Store), so when the
// marker exists every part does, whole.

// successName is the marker of a complete interval folder.
const successName = "_SUCCESS"

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
// "." + suffix, or "".
func saveToStore[T any](s *Stream[T], prefix, suffix, ext string) {
	c := s.ctx
	loc, stem, prefixErr := storePrefix(prefix)
	folderOf := func(ms int64) string { return fmt.Sprintf("%s%d%s", stem, ms, ext) }
	open := func() error {
		if prefixErr != nil {
			return prefixErr
		}
		if err := checkSuffix(suffix); err != nil {
			return err
		}
		if err := checkpoint.ValidName(partName(folderOf(0), 0)); err != nil {
			return fmt.Errorf("output prefix %q: %w", prefix, err)
		}
		ctx := context.Background()
		store, err := c.e.Store(ctx, loc)
		if err != nil {
			return fmt.Errorf("output location %s: %w", loc, err)
		}
		if err := checkStoreWritable(ctx, store, folderOf(0)); err != nil {
			return fmt.Errorf("output location %s cannot be written: %w; fix its permissions or choose another output prefix", loc, err)
		}
		removePartialIntervals(ctx, c.log, store, loc, stem, ext)
		return nil
	}
	var op *engine.Output
	op = addOutput(s, "saveAsTextFiles", open, func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		store, err := c.e.Store(ctx, loc)
		if err != nil {
			return fmt.Errorf("output location %s: %w", loc, err)
		}
		return saveTextToStore(ctx, c.log, store, loc, ds, op.ID, folderOf(t.UnixMilli()))
	})
	// Any process that built the graph writes a part (a task's spec names
	// the output: package rdd, RegisterOutput), opening the store once.
	rdd.RegisterOutput(c.rctx(), int(op.ID), func(tc *rdd.TaskContext, ms int64, p int, records []T) error {
		store, err := c.e.Store(tc.Ctx, loc)
		if err != nil {
			return fmt.Errorf("output location %s: %w", loc, err)
		}
		return store.Put(tc.Ctx, partName(folderOf(ms), p), textOf(records))
	})
}

// storePrefix splits a URL output prefix at its last slash: the store's
// location before it, and the stem of the interval folders' names after it
// (with "-" appended, as a local prefix's).
func storePrefix(prefix string) (loc, stem string, err error) {
	scheme, rest, _ := strings.Cut(prefix, "://")
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", "", fmt.Errorf("output prefix %q: want %s://LOCATION/NAME: the store at LOCATION holds the folders NAME-<interval ms>", prefix, scheme)
	}
	return scheme + "://" + rest[:i], rest[i+1:] + "-", nil
}

// partName is the object of partition p in an interval's folder.
func partName(folder string, p int) string { return fmt.Sprintf("%s/part-%05d", folder, p) }

// checkStoreWritable writes an object in folder, which never gets a
// marker, and deletes it.
func checkStoreWritable(ctx context.Context, store checkpoint.Store, folder string) error {
	name := folder + "/_write-check"
	if err := store.Put(ctx, name, nil); err != nil {
		return err
	}
	return store.Delete(ctx, name)
}

// saveTextToStore writes the interval's output in folder unless its marker
// is there (the protocol at the top of this file).
func saveTextToStore[T any](ctx context.Context, log *slog.Logger, store checkpoint.Store, loc string, ds *rdd.Dataset[T], op int32, folder string) error {
	marker := folder + "/" + successName
	parts := ds.NumPartitions()
	var overwrite *string // the version of a broken marker to replace
	switch data, version, err := getMarker(ctx, store, marker); {
	case errors.Is(err, checkpoint.ErrNotFound):
	case err != nil:
		return fmt.Errorf("output location %s: %w", loc, err)
	case !engine.Rerun(ctx):
		return nil // already complete: exactly once
	default:
		// An interval run again after a change of master: its marker may
		// be a late write of the master before, one that reached the store
		// after this master had cleared the folder. A marker is only good
		// with its parts.
		ok, err := markerHolds(ctx, store, folder, data, parts)
		if err != nil {
			return fmt.Errorf("output location %s: %w", loc, err)
		}
		if ok {
			return nil
		}
		log.Warn("output: an interval's marker without all its parts (a late commit of a master that lost its lease); writing the interval again", "folder", loc+"/"+folder, "marker", string(data))
		overwrite = &version
	}
	// No marker (or a broken one): what the folder holds is an attempt's
	// that was cut short. Parts this run writes are overwritten with the
	// same bytes; anything else goes (a part of another partitioning).
	// Deleting only what this run does not write means that a late marker
	// of the master before, which it sent once all its parts were written,
	// still commits whole parts. This master acts only as the holder of
	// its lease (a master that lost it may not touch what its successor
	// writes).
	cctx, cancel, err := engine.Committing(ctx)
	if err != nil {
		return err
	}
	keep := make(map[string]bool, parts+1)
	for p := range parts {
		keep[partName(folder, p)] = true
	}
	if overwrite != nil {
		keep[marker] = true
	}
	_, err = deleteUnder(cctx, store, folder+"/", func(name string) bool { return !keep[name] })
	cancel()
	if err != nil {
		return fmt.Errorf("output location %s: %w", loc, err)
	}
	if err := ds.RunOutput(ctx, int(op)); err != nil {
		return err
	}
	if err := commitMarker(ctx, store, marker, parts, overwrite); err != nil {
		return fmt.Errorf("output location %s: %w", loc, err)
	}
	return nil
}

// getMarker reads a marker and, in a store with conditional writes, its
// version.
func getMarker(ctx context.Context, store checkpoint.Store, marker string) ([]byte, string, error) {
	if cond, ok := store.(checkpoint.Conditional); ok {
		return cond.GetVersion(ctx, marker)
	}
	data, err := store.Get(ctx, marker)
	return data, "", err
}

// markerInfo is a marker's content under a master's lease.
type markerInfo struct {
	Epoch uint64 `json:"epoch"`
	Parts int    `json:"parts"`
}

// markerHolds reports whether the folder holds every part its marker
// (data) commits: the parts it names, or, for an empty marker (no lease)
// or one without the count, the parts this run would write.
func markerHolds(ctx context.Context, store checkpoint.Store, folder string, data []byte, parts int) (bool, error) {
	var info markerInfo
	if len(data) > 0 && json.Unmarshal(data, &info) == nil && info.Parts > 0 {
		parts = info.Parts
	}
	names, err := store.List(ctx, folder+"/")
	if err != nil {
		return false, err
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	for p := range parts {
		if !have[partName(folder, p)] {
			return false, nil
		}
	}
	return true, nil
}

// commitMarker writes an interval folder's marker, the commit. Under a
// master's lease it holds the epoch and the number of parts,
// {"epoch":N,"parts":P} (as Hadoop's S3A committers write a manifest into
// _SUCCESS), so that a marker without its parts is recognized; it is
// written only while the lease is held (a write still in flight at the
// lease's deadline is abandoned: engine.Committing), and in a store with
// conditional writes only if absent, or in place of the broken marker at
// version overwrite: a second commit of the interval (a master that took
// over, writing the same parts) is refused and changes nothing. Without a
// lease it is empty, as Spark's.
func commitMarker(ctx context.Context, store checkpoint.Store, marker string, parts int, overwrite *string) error {
	epoch := engine.Epoch(ctx)
	if epoch == 0 {
		return store.Put(ctx, marker, nil)
	}
	ctx, cancel, err := engine.Committing(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	data, err := json.Marshal(markerInfo{Epoch: epoch, Parts: parts})
	if err != nil {
		return err
	}
	cond, ok := store.(checkpoint.Conditional)
	if !ok {
		return store.Put(ctx, marker, data)
	}
	version := ""
	if overwrite != nil {
		version = *overwrite
	}
	if _, err := cond.PutIf(ctx, marker, data, version); err != nil && !errors.Is(err, checkpoint.ErrConflict) {
		return err
	}
	return nil
}

// deleteUnder deletes the objects named with prefix that del accepts and
// returns how many it deleted.
func deleteUnder(ctx context.Context, store checkpoint.Store, prefix string, del func(name string) bool) (int, error) {
	names, err := store.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if !del(name) {
			continue
		}
		if err := store.Delete(ctx, name); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// removePartialIntervals deletes the objects of the interval folders of
// stem and ext (stem<digits>ext/...) that have no marker, and logs what it
// removed; it leaves everything else alone and only logs a failure (a
// leftover, not a loss).
func removePartialIntervals(ctx context.Context, log *slog.Logger, store checkpoint.Store, loc, stem, ext string) {
	names, err := store.List(ctx, stem)
	if err != nil {
		log.Warn("cannot list the output location for partial output", "location", loc, "err", err)
		return
	}
	complete := map[string]bool{}
	for _, n := range names {
		if folder, rest, ok := strings.Cut(n, "/"); ok && rest == successName {
			complete[folder] = true
		}
	}
	partial := map[string]bool{}
	n, err := deleteUnder(ctx, store, stem, func(name string) bool {
		folder, _, ok := strings.Cut(name, "/")
		if !ok || complete[folder] || !isIntervalName(folder, stem, ext) {
			return false
		}
		partial[folder] = true
		return true
	})
	if err != nil {
		log.Warn("cannot delete partial output of a killed run", "location", loc, "err", err)
	}
	if n > 0 {
		const maxNames = 10
		folders := slices.Sorted(maps.Keys(partial))
		log.Info("removed partial output of a killed run (interval folders without "+successName+")", "location", loc, "objects", n, "folders", len(folders), "names", folders[:min(len(folders), maxNames)])
	}
}

// isIntervalName reports whether name is stem + <digits> + ext.
func isIntervalName(name, stem, ext string) bool {
	rest, ok := strings.CutPrefix(name, stem)
	if !ok {
		return false
	}
	digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
	return digits > 0 && rest[digits:] == ext
}
