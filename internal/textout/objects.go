package textout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/engine"
)

// Objects is the interval folders Stem<ms>Ext in the store at Loc. A store
// has no rename, so an interval's output cannot appear at once; instead it
// counts as written when its marker object, written last, exists:
//
//  1. the master (Save) finds the marker: the interval is written,
//     nothing is done (a re-run after a restart of the master);
//  2. otherwise it deletes what the interval's folder holds that this run
//     does not write (parts of an attempt cut short, perhaps of another
//     partitioning), and runs the job: every task Puts its part (Part),
//     named by interval and partition, so a retried or speculative
//     attempt replaces it with the same bytes;
//  3. once every task has succeeded, the master Puts the marker.
//
// Put is atomic and durable once it returns (checkpoint.Store), so when the
// marker exists every part does, whole.
type Objects struct{ Loc, Stem, Ext string }

// ParseObjects splits a URL output prefix at its last slash: the store's
// location before it, and the stem of the interval folders' names after it
// (with "-" appended, as a local prefix's). ext is "." + suffix, or "".
func ParseObjects(prefix, ext string) (Objects, error) {
	scheme, rest, _ := strings.Cut(prefix, "://")
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return Objects{}, fmt.Errorf("output prefix %q: want %s://LOCATION/NAME: the store at LOCATION holds the folders NAME-<interval ms>", prefix, scheme)
	}
	o := Objects{Loc: scheme + "://" + rest[:i], Stem: rest[i+1:] + "-", Ext: ext}
	if err := checkpoint.ValidName(o.Part(0, 0)); err != nil {
		return Objects{}, fmt.Errorf("output prefix %q: %w", prefix, err)
	}
	return o, nil
}

// folder is interval ms's folder.
func (o Objects) folder(ms int64) string { return fmt.Sprintf("%s%d%s", o.Stem, ms, o.Ext) }

// Part is the object of partition p in interval ms's folder.
func (o Objects) Part(ms int64, p int) string { return partName(o.folder(ms), p) }

func partName(folder string, p int) string { return fmt.Sprintf("%s/part-%05d", folder, p) }

// Open is the output's Start: it checks that store can be written (it
// writes and deletes an object in a folder that never gets a marker), then
// deletes the objects of these interval folders that have no marker (left
// by a killed run).
func (o Objects) Open(ctx context.Context, log *slog.Logger, store checkpoint.Store) error {
	name := o.folder(0) + "/_write-check"
	err := store.Put(ctx, name, nil)
	if err == nil {
		err = store.Delete(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("output location %s cannot be written: %w; fix its permissions or choose another output prefix", o.Loc, err)
	}
	o.removePartial(ctx, log, store)
	return nil
}

// Save writes interval ms's folder of parts partitions unless its marker
// is there (the protocol at the top): run runs the job whose tasks Put the
// parts.
func (o Objects) Save(ctx context.Context, log *slog.Logger, store checkpoint.Store, ms int64, parts int, run func(context.Context) error) error {
	if err := o.save(ctx, log, store, o.folder(ms), parts, run); err != nil {
		return fmt.Errorf("output location %s: %w", o.Loc, err)
	}
	return nil
}

func (o Objects) save(ctx context.Context, log *slog.Logger, store checkpoint.Store, folder string, parts int, run func(context.Context) error) error {
	marker := folder + "/" + SuccessName
	var overwrite *string // the version of a broken marker to replace
	switch data, version, err := getMarker(ctx, store, marker); {
	case errors.Is(err, checkpoint.ErrNotFound):
	case err != nil:
		return err
	case !engine.Rerun(ctx):
		return nil // already complete: exactly once
	default:
		// An interval run again after a change of master: its marker may
		// be a late write of the master before, one that reached the store
		// after this master had cleared the folder. A marker is only good
		// with its parts.
		ok, err := markerHolds(ctx, store, folder, data, parts)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		log.Warn("output: an interval's marker without all its parts (a late commit of a master that lost its lease); writing the interval again", "folder", o.Loc+"/"+folder, "marker", string(data))
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
		return err
	}
	if err := run(ctx); err != nil {
		return err
	}
	return commitMarker(ctx, store, marker, parts, overwrite)
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

// removePartial deletes the objects of the interval folders that have no
// marker, and logs what it removed; it leaves everything else alone and
// only logs a failure (a leftover, not a loss).
func (o Objects) removePartial(ctx context.Context, log *slog.Logger, store checkpoint.Store) {
	names, err := store.List(ctx, o.Stem)
	if err != nil {
		log.Warn("cannot list the output location for partial output", "location", o.Loc, "err", err)
		return
	}
	complete := map[string]bool{}
	for _, n := range names {
		if folder, rest, ok := strings.Cut(n, "/"); ok && rest == SuccessName {
			complete[folder] = true
		}
	}
	partial := map[string]bool{}
	n, err := deleteUnder(ctx, store, o.Stem, func(name string) bool {
		folder, _, ok := strings.Cut(name, "/")
		if !ok || complete[folder] || !isIntervalName(folder, o.Stem, o.Ext) {
			return false
		}
		partial[folder] = true
		return true
	})
	if err != nil {
		log.Warn("cannot delete partial output of a killed run", "location", o.Loc, "err", err)
	}
	if n > 0 {
		folders := slices.Sorted(maps.Keys(partial))
		log.Info("removed partial output of a killed run (interval folders without "+SuccessName+")", "location", o.Loc, "objects", n, "folders", len(folders), "names", firstNames(folders))
	}
}
