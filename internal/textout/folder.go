package textout

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Folder is the interval folders Parent/Stem<ms>Ext on a local filesystem.
type Folder struct{ Parent, Stem, Ext string }

// NewFolder returns the folders of SaveAsTextFiles(prefix, suffix): ext is
// "." + suffix, or "".
func NewFolder(prefix, ext string) Folder {
	return Folder{Parent: filepath.Dir(prefix + "-"), Stem: filepath.Base(prefix + "-"), Ext: ext}
}

// Dir is interval ms's folder.
func (f Folder) Dir(ms int64) string {
	return filepath.Join(f.Parent, fmt.Sprintf("%s%d%s", f.Stem, ms, f.Ext))
}

// Open is the output's Start: it creates the parent folder, checks that an
// interval folder can be written in it, and removes the temporary folders
// of these intervals that a killed run left behind (nothing else).
func (f Folder) Open(log *slog.Logger) error {
	if err := checkOutputFolder(f.Parent, f.Stem+"0"+f.Ext); err != nil {
		return err
	}
	removeStaleTemps(log, f.Parent, f.Stem, f.Ext)
	return nil
}

// WritePart is one task's share of interval ms's output: it writes
// partition p's text under its attempt's name in the interval's temporary
// folder, then renames it to part-NNNNN (the task's commit). Attempts of a
// task write identical data (tasks are deterministic), so whichever rename
// lands last, the part is whole. The attempt's name is hidden (a leading
// dot, which readers of such folders skip), and the job's commit deletes
// those left by attempts that lost (a speculative copy, an attempt on a
// worker declared lost): one still writing when the folder is committed
// fails, as its folder is gone.
func (f Folder) WritePart(attempt int, ms int64, p int, data []byte) error {
	tmp := taskTemp(f.Dir(ms))
	name := filepath.Join(tmp, fmt.Sprintf("part-%05d", p))
	at := filepath.Join(tmp, fmt.Sprintf(".part-%05d.attempt-%d", p, attempt))
	if err := writeFileSync(at, data); err != nil {
		return err
	}
	return os.Rename(at, name)
}

// Save writes interval ms's folder unless it is complete (exactly once):
// run runs the job whose tasks call WritePart; then the folder is marked
// complete and renamed into place.
func (f Folder) Save(ctx context.Context, ms int64, run func(context.Context) error) error {
	dir := f.Dir(ms)
	if _, err := os.Stat(filepath.Join(dir, SuccessName)); err == nil {
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
	if err := run(ctx); err != nil {
		return err
	}
	// The job's commit: drop what attempts that lost left, mark the
	// directory complete and move it in place.
	strays, _ := filepath.Glob(filepath.Join(tmp, ".part-*.attempt-*"))
	for _, s := range strays {
		_ = os.Remove(s)
	}
	if err := writeFileSync(filepath.Join(tmp, SuccessName), nil); err != nil {
		return err
	}
	// A partial directory left by a crash before the rename would block the
	// rename; it never has the marker, so it is safe to replace.
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

// CheckSuffix refuses a suffix with a path separator.
func CheckSuffix(suffix string) error {
	if strings.ContainsAny(suffix, `/`+string(filepath.Separator)) {
		return fmt.Errorf("suffix %q contains a path separator; put folders in the prefix", suffix)
	}
	return nil
}

// taskTemp is the temporary directory an interval's output directory is
// written in: named after it, so every process's tasks find it, and in the
// pattern Open's clean-up recognises.
func taskTemp(dir string) string {
	return filepath.Join(filepath.Dir(dir), tempPattern(filepath.Base(dir))+"out")
}

// tempPattern is the os.MkdirTemp pattern of the temporary directory in
// which the output directory named name is written.
func tempPattern(name string) string { return "." + name + ".tmp-" }

// checkOutputFolder creates parent (0755) and checks that an output
// directory can be written in it, the way Save writes one: a temporary
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
	if err := writeFileSync(filepath.Join(probe, SuccessName), nil); err != nil {
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
		log.Info("removed stale temporary output of a killed run", "folder", parent, "count", len(removed), "names", firstNames(removed))
	}
}

// firstNames is at most the first ten of names, for a log line.
func firstNames(names []string) []string {
	const maxNames = 10
	return names[:min(len(names), maxNames)]
}

// isTempName reports whether name is "." + stem + <digits> + ext + ".tmp-" +
// anything.
func isTempName(name, stem, ext string) bool {
	rest, ok := cutInterval(strings.TrimPrefix(name, "."), stem)
	return ok && strings.HasPrefix(name, ".") && strings.HasPrefix(rest, ext+".tmp-")
}

// isIntervalName reports whether name is stem + <digits> + ext.
func isIntervalName(name, stem, ext string) bool {
	rest, ok := cutInterval(name, stem)
	return ok && rest == ext
}

// cutInterval cuts stem and at least one digit off the front of name and
// returns the rest.
func cutInterval(name, stem string) (rest string, ok bool) {
	rest, ok = strings.CutPrefix(name, stem)
	if !ok {
		return "", false
	}
	digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
	return rest[digits:], digits > 0
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

// Lines is records as text, one per line (fmt.Sprint).
func Lines[T any](records []T) []byte {
	// A local slice, not a strings.Builder: fmt would move a Builder to the
	// heap, where another task's writes may share its cache line
	// (rdd/loop.go).
	var b []byte
	for _, r := range records {
		b = fmt.Appendln(b, r)
	}
	return b
}
