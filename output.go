package dstream

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// addOutput registers an output named name that runs fn for every interval
// of s; open, if not nil, becomes the output's Start hook.
func addOutput[T any](s *Stream[T], name string, open func() error, fn func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error) *engine.Output {
	c := s.ctx
	op := &engine.Output{Name: name, Open: open, From: s.id, Elem: reflect.TypeFor[T]().String()}
	op.Run = func(t time.Time) (err error) {
		// Driver-side user code (Transform functions while the interval's
		// datasets are built, fn itself) fails the interval, not the process.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%s: panic in driver-side code: %v", name, r)
			}
		}()
		ds, err := s.At(t)
		if err != nil {
			return err
		}
		if ds == nil {
			return nil // the stream produces nothing at t
		}
		// Datasets fn builds are named in the output's scope for t, so they
		// are process-independent and forgotten after the interval.
		ctx := c.e.OutputContext(t)
		c.rctx().InScope(op.ID, t.UnixMilli(), func() { err = fn(ctx, ds, t) })
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	c.e.AddOutput(op)
	return op
}

// Rerun reports whether ctx, a ForeachRDD function's context, belongs to an
// interval that was started before a restart of the master and is run
// again: its output may already have been written, in part or whole, so an
// external write should be idempotent (keyed by the interval time).
func Rerun(ctx context.Context) bool { return engine.Rerun(ctx) }

// Epoch returns the epoch of the master's lease (Config.LeaseTTL) that a
// ForeachRDD function's context runs under: it grows with every change of
// master, so an external sink can fence (refuse a write that carries an
// epoch lower than one it has seen), as Kafka fences a producer. It is 0
// when the job has no lease (no checkpoint location).
func Epoch(ctx context.Context) uint64 { return engine.Epoch(ctx) }

// Holding returns nil while the master a ForeachRDD function's context
// belongs to still holds its lease, and otherwise a *LeaseLostError: check
// it just before an external commit. A master that lost its lease stops,
// but an output already running finishes unless it checks.
func Holding(ctx context.Context) error { return engine.Holding(ctx) }

// ForeachRDD runs fn on the driver for every interval's dataset, given the
// interval time and a context that is cancelled when the streaming context
// stops hard. fn typically runs actions on the dataset; its error fails the
// interval.
func ForeachRDD[T any](s *Stream[T], fn func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error) {
	_ = addOutput(s, "foreachRDD", nil, fn)
}

// Print writes the first n records of every interval to the context's Out,
// under a header naming the interval, as Spark's print does.
func (s *Stream[T]) Print(n int) {
	c := s.ctx
	_ = addOutput(s, "print", nil, func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		xs, err := ds.Take(ctx, n+1)
		if err != nil {
			return err
		}
		b := fmt.Appendf(nil, "-------------------------------------------\nTime: %d ms\n-------------------------------------------\n", t.UnixMilli())
		for i, x := range xs {
			if i == n {
				b = append(b, "...\n"...)
				break
			}
			b = fmt.Appendln(b, x)
		}
		b = append(b, '\n')
		_, err = c.cfg.Out.Write(b)
		return err
	})
}

// saveToFolder is SaveAsTextFiles to a local folder: each interval's
// parts are written to a temporary directory and renamed into place.
func saveToFolder[T any](s *Stream[T], prefix, suffix, ext string) {
	c := s.ctx
	// Every interval's directory is parent/stem<ms>ext.
	parent, stem := filepath.Dir(prefix+"-"), filepath.Base(prefix+"-")
	open := func() error {
		if err := checkSuffix(suffix); err != nil {
			return err
		}
		if err := checkOutputFolder(parent, stem+"0"+ext); err != nil {
			return err
		}
		removeStaleTemps(c.log, parent, stem, ext)
		return nil
	}
	dirOf := func(ms int64) string { return filepath.Join(parent, fmt.Sprintf("%s%d%s", stem, ms, ext)) }
	var op *engine.Output
	op = addOutput(s, "saveAsTextFiles", open, func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		return saveText(ctx, ds, op.ID, dirOf(t.UnixMilli()))
	})
	// The per-partition write is a named output: any process that built
	// the graph runs it from a task's spec (package rdd, RegisterOutput).
	rdd.RegisterOutput(c.rctx(), int(op.ID), func(tc *rdd.TaskContext, ms int64, p int, records []T) error {
		return writePart(tc, taskTemp(dirOf(ms)), p, records)
	})
}

// checkSuffix refuses a suffix with a path separator.
func checkSuffix(suffix string) error {
	if strings.ContainsAny(suffix, `/`+string(filepath.Separator)) {
		return fmt.Errorf("suffix %q contains a path separator; put folders in the prefix", suffix)
	}
	return nil
}

// taskTemp is the temporary directory an interval's output directory is
// written in: named after it, so every process's tasks find it, and in the
// pattern Start's clean-up recognises.
func taskTemp(dir string) string {
	return filepath.Join(filepath.Dir(dir), tempPattern(filepath.Base(dir))+"out")
}

// writePart is one task's share of an interval's output: it writes the
// partition under its attempt's name, then renames it to part-NNNNN (the
// task's commit). Attempts of a task write identical data (tasks are
// deterministic), so whichever rename lands last, the part is whole. The
// attempt's name is hidden (a leading dot, which readers of such folders
// skip), and the job's commit deletes those left by attempts that lost (a
// speculative copy, an attempt on a worker declared lost): one still
// writing when the folder is committed fails, as its folder is gone.
func writePart[T any](tc *rdd.TaskContext, tmp string, p int, records []T) error {
	b := textOf(records)
	name := filepath.Join(tmp, fmt.Sprintf("part-%05d", p))
	attempt := filepath.Join(tmp, fmt.Sprintf(".part-%05d.attempt-%d", p, tc.Attempt))
	if err := writeFileSync(attempt, b); err != nil {
		return err
	}
	return os.Rename(attempt, name)
}

// textOf is records as text, one per line (fmt.Sprint).
func textOf[T any](records []T) []byte {
	// A local slice, not a strings.Builder: fmt would move a Builder to the
	// heap, where another task's writes may share its cache line
	// (rdd/loop.go).
	var b []byte
	for _, r := range records {
		b = fmt.Appendln(b, r)
	}
	return b
}

// tempPattern is the os.MkdirTemp pattern of the temporary directory in
// which the output directory named name is written.
func tempPattern(name string) string { return "." + name + ".tmp-" }

// checkOutputFolder creates parent (0755) and checks that an output
// directory can be written in it, the way saveText writes one: a temporary
// directory named after name, holding a file. A crash leaves at most that
// directory, which removeStaleTemps removes.
func checkOutputFolder(parent, name string) error {
	fail := func(err error) error {
		return fmt.Errorf("output folder %s: %w; make it a folder this user can write or choose another output prefix", parent, err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fail(err)
	}
	probe, err := os.MkdirTemp(parent, tempPattern(name))
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(probe)
	if err := writeFileSync(filepath.Join(probe, "_SUCCESS"), nil); err != nil {
		return fail(err)
	}
	return nil
}

// removeStaleTemps removes the directories in parent named exactly like the
// temporary directory of an interval's output, "." + stem + <digits> + ext +
// ".tmp-" + anything, and logs what it removed. It leaves everything else
// alone, and only logs a directory it cannot remove (a leftover, not a loss).
func removeStaleTemps(log *slog.Logger, parent, stem, ext string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		log.Warn("cannot list output folder for stale temporary output", "folder", parent, "err", err)
		return
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !isTempName(e.Name(), stem, ext) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(parent, e.Name())); err != nil {
			log.Warn("cannot remove stale temporary output", "folder", parent, "name", e.Name(), "err", err)
			continue
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		const maxNames = 10
		log.Info("removed stale temporary output of a killed run", "folder", parent, "count", len(removed), "names", removed[:min(len(removed), maxNames)])
	}
}

// isTempName reports whether name is "." + stem + <digits> + ext + ".tmp-" +
// anything.
func isTempName(name, stem, ext string) bool {
	rest, ok := strings.CutPrefix(name, "."+stem)
	if !ok {
		return false
	}
	digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
	if digits == 0 {
		return false
	}
	return strings.HasPrefix(rest[digits:], ext+".tmp-")
}

func saveText[T any](ctx context.Context, ds *rdd.Dataset[T], op int32, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err == nil {
		return nil // already complete: exactly once
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	// A temporary directory left by an earlier attempt at the interval (or
	// a killed run) holds nothing complete: start afresh.
	tmp := taskTemp(dir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	// Mkdir applies the umask; the output is for its readers too.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if err := ds.RunOutput(ctx, int(op)); err != nil {
		return err
	}
	// The job's commit: drop what attempts that lost left, mark the
	// directory complete and move it in place.
	strays, _ := filepath.Glob(filepath.Join(tmp, ".part-*.attempt-*"))
	for _, s := range strays {
		_ = os.Remove(s)
	}
	if err := writeFileSync(filepath.Join(tmp, "_SUCCESS"), nil); err != nil {
		return err
	}
	// A partial directory left by a crash before the rename would block the
	// rename; it never has _SUCCESS, so it is safe to replace.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if d, err := os.Open(parent); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writeFileSync creates (or truncates) name with mode 0644 less the umask,
// writes data and syncs it.
func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
