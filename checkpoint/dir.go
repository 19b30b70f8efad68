package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// Dir is a Store in a local directory: object "a/b" is the file a/b under
// the root. It is safe for concurrent use by several goroutines, and by
// several processes (each with its own Dir) that write different names;
// writers of one name race, and the last rename wins, whole.
//
// Put writes a temporary file (its name begins with tmpPrefix, which List
// never returns and ValidName refuses) in the object's directory, syncs it,
// renames it over the name and syncs the directory, so an object is either
// absent or complete, even after a crash of the process or the machine.
//
// Because a file system has directories, "a" cannot be an object while
// "a/b" is one: the Put of one of them fails while the other exists, and a
// Get or Delete of "a" treats the directory as no object.
type Dir struct {
	root   string
	lock   *os.File // shared lock held while open; see lockShared
	closed atomic.Bool
	// scratch: writes are not synced (OpenScratchDir).
	scratch bool
}

const (
	tmpPrefix = ".tmp-"
	lockName  = ".lock"
)

// OpenDir opens the directory path as a Store, creating it (and its
// parents) if needed. If no other Dir, in this process or another, has the
// directory open, OpenDir removes the temporary files left by writers that
// crashed mid-Put; with others open it leaves them, since they may be
// theirs, to the next sole opener. Leftovers are never visible: List skips
// them.
//
// Close the Dir when done.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: open dir: %w", err)
	}
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open dir: %w", err)
	}
	d := &Dir{root: root}
	alone, lock, err := lockShared(filepath.Join(root, lockName))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: open dir %s: %w", root, err)
	}
	d.lock = lock
	if alone {
		if err := removeTemporaries(root); err != nil {
			d.Close()
			return nil, fmt.Errorf("checkpoint: open dir %s: removing leftover temporaries: %w", root, err)
		}
	}
	return d, nil
}

// OpenScratchDir is OpenDir for a folder that lives and dies with its
// process, such as a temporary folder the process deletes when it stops: a
// Put is atomic and visible to every reader when it returns, as in any Dir,
// but nothing is synced to the disk (neither the file nor its directories),
// since nothing is ever read from the folder after a crash of the machine.
// A local-cluster master's checkpoints of a job with no checkpoint location
// go to such a folder.
func OpenScratchDir(path string) (*Dir, error) {
	d, err := OpenDir(path)
	if err != nil {
		return nil, err
	}
	d.scratch = true
	return d, nil
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.root }

// Close releases the directory. Operations on a closed Dir return an error
// wrapping fs.ErrClosed. Close is idempotent.
func (d *Dir) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if d.lock != nil {
		return d.lock.Close()
	}
	return nil
}

func (d *Dir) check(ctx context.Context, op, name string) error {
	if d.closed.Load() {
		return fmt.Errorf("checkpoint: %s %q in %s: %w", op, name, d.root, fs.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if op == "list" {
		return ValidPrefix(name)
	}
	return ValidName(name)
}

func (d *Dir) path(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }

// Put implements Store.
func (d *Dir) Put(ctx context.Context, name string, data []byte) error {
	if err := d.check(ctx, "put", name); err != nil {
		return err
	}
	return d.put(name, data, nil)
}

// putStage names the points of a Put at which a crash can be simulated.
type putStage int

const (
	stageBegin        putStage = iota // nothing done yet
	stageMidWrite                     // the temporary is created, nothing written
	stageBeforeRename                 // the temporary is complete and synced
	stageAfterRename                  // the object is in place, directories not synced
)

// put does Put's work. If stop is not nil, put asks it at each stage
// whether to stop there, as a crashed process would: at stageMidWrite it
// writes half of data first, unsynced. A stopped put returns errStopped.
func (d *Dir) put(name string, data []byte, stop func(putStage) bool) error {
	return d.putGuarded(name, data, stop, nil)
}

// putGuarded is put with guard, if not nil, called once the temporary is
// complete and synced, just before the rename: it returns an error to give
// the write up (the temporary is removed), or a release function called
// right after the rename, before the directories are synced. PutIf locks
// and compares there, so its lock is held for a read and a rename only.
func (d *Dir) putGuarded(name string, data []byte, stop func(putStage) bool, guard func() (release func(), err error)) (err error) {
	if stop != nil && stop(stageBegin) {
		return errStopped
	}
	full := d.path(name)
	parent := filepath.Dir(full)
	var created []string // directories Put created, whose parents need a sync
	var f *os.File
	// The object's directory most often exists (an earlier object is in
	// it): the temporary is created first, and the directories made only
	// when it is missing. A concurrent Delete may remove an emptied
	// directory between our mkdir and create; make it again.
	for attempt := 0; ; attempt++ {
		var err error
		f, err = os.CreateTemp(parent, tmpPattern(filepath.Base(full)))
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			return fmt.Errorf("checkpoint: put %q: %w", name, err)
		}
		c, err := d.mkdirs(parent)
		created = append(created, c...)
		if err != nil {
			return fmt.Errorf("checkpoint: put %q: %w", name, err)
		}
	}
	tmp := f.Name()
	if stop != nil && stop(stageMidWrite) {
		f.Write(data[:len(data)/2])
		f.Close() // the kernel closes a dead process's files
		return errStopped
	}
	defer func() {
		if err != nil && err != errStopped { // a crash leaves tmp
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil && !d.scratch {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint: put %q: %w", name, err)
	}
	if stop != nil && stop(stageBeforeRename) {
		return errStopped // leave tmp, as a crash would
	}
	release := func() {}
	if guard != nil {
		if release, err = guard(); err != nil {
			return err
		}
	}
	err = os.Rename(tmp, full)
	release()
	if err != nil {
		return fmt.Errorf("checkpoint: put %q: %w", name, err)
	}
	if stop != nil && stop(stageAfterRename) {
		return errStopped
	}
	// The rename is durable once the parent is synced; a directory Put
	// created is durable once its own parent is.
	if d.scratch {
		return nil
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("checkpoint: put %q: %w", name, err)
	}
	for _, dir := range created {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("checkpoint: put %q: %w", name, err)
		}
	}
	return nil
}

// tmpPattern is the os.CreateTemp pattern of a temporary for base, which
// it shortens so that the name stays within a file system's limit.
func tmpPattern(base string) string {
	const keep = 100
	if len(base) > keep {
		base = base[:keep]
	}
	return tmpPrefix + base + "-*"
}

// errStopped is returned by a put stopped by its hook; CrashDir turns it
// into ErrCrashed.
var errStopped = errors.New("checkpoint: stopped")

// mkdirs makes dir and its missing parents under the root and returns the
// ones it made, outermost first. Most often only dir is missing (a new
// checkpoint's folder in its stream's): one mkdir, parents only when it
// fails for want of one.
func (d *Dir) mkdirs(dir string) ([]string, error) {
	rel, err := filepath.Rel(d.root, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, err
	}
	err = os.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		return []string{dir}, nil
	case errors.Is(err, fs.ErrExist):
		return nil, nil // a file of that name makes the caller's create fail with ENOTDIR
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	created, err := d.mkdirs(filepath.Dir(dir))
	if err != nil {
		return created, err
	}
	switch err := os.Mkdir(dir, 0o755); {
	case err == nil:
		created = append(created, dir)
	case errors.Is(err, fs.ErrExist): // made meanwhile by a concurrent Put
	default:
		return created, err
	}
	return created, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements Store.
func (d *Dir) Get(ctx context.Context, name string) ([]byte, error) {
	if err := d.check(ctx, "get", name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(d.path(name))
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("checkpoint: get %q: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("checkpoint: get %q: %w", name, err)
	}
	return b, nil
}

// notFound reports whether err means that no object exists: no file, a
// directory, or a path through a file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR)
}

// List implements Store. Objects created or deleted during List may or may
// not be listed; the others are.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	if err := d.check(ctx, "list", prefix); err != nil {
		return nil, err
	}
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = d.path(prefix[:i])
	}
	var names []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) {
				return nil // removed under us, or no such prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != start {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(rel); strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %q: %w", prefix, err)
	}
	slices.Sort(names)
	return names, nil
}

// Delete implements Store. It also removes the directories the deletion
// left empty, up to the root.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := d.check(ctx, "delete", name); err != nil {
		return err
	}
	return d.delete(name, nil)
}

func (d *Dir) delete(name string, stop func(putStage) bool) error {
	if stop != nil && stop(stageBegin) {
		return errStopped
	}
	full := d.path(name)
	if fi, err := os.Lstat(full); err != nil || fi.IsDir() {
		if err == nil || notFound(err) {
			return nil
		}
		return fmt.Errorf("checkpoint: delete %q: %w", name, err)
	}
	if err := os.Remove(full); err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("checkpoint: delete %q: %w", name, err)
	}
	if stop != nil && stop(stageAfterRename) {
		return errStopped
	}
	parent := filepath.Dir(full)
	if !d.scratch {
		if err := syncDir(parent); err != nil && !notFound(err) {
			return fmt.Errorf("checkpoint: delete %q: %w", name, err)
		}
	}
	// Remove emptied directories; Remove fails, harmlessly, on the first
	// that is not empty (or that a concurrent Put is filling).
	for dir := parent; dir != d.root && strings.HasPrefix(dir, d.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// removeTemporaries removes the files under root whose names begin with
// tmpPrefix.
func removeTemporaries(root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) {
				return nil
			}
			return err
		}
		if !e.IsDir() && strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(p); err != nil && !notFound(err) {
				return err
			}
		}
		return nil
	})
}
