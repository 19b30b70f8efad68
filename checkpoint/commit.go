package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A checkpoint is a directory of objects (its parts: one per partition,
// say, written by different processes) made valid by a commit record,
// CommitName, written last. Checkpoints of one stream are directories
// under a common prefix whose names sort in the order they were taken
// (embed a zero-padded interval time).
//
// The commit record lists the parts present when it was written, so a
// checkpoint that lost a part is detectable (Verify), and carries the
// caller's metadata.

// CommitName is the name, within a checkpoint's directory, of its commit
// record.
const CommitName = "_COMMIT"

const (
	commitKind    = "dstream.commit"
	commitVersion = 1
)

// ErrIncomplete is wrapped by the errors of Verify and Latest for a
// checkpoint that is not committed or lost a part.
var ErrIncomplete = errors.New("checkpoint: incomplete")

// A CommitRecord is a checkpoint's commit record, as ReadCommit returns it.
type CommitRecord struct {
	Dir   string   // the checkpoint's directory
	Parts []string // the parts' names relative to Dir, sorted
	Meta  []byte   // the caller's metadata
}

// Commit commits the checkpoint in dir: it writes dir/CommitName, framed,
// listing the objects then under dir/ as the checkpoint's parts and holding
// meta. Call it once every part is written (Puts returned): a part written
// later is not part of the checkpoint. Committing a directory again
// replaces its record.
func Commit(ctx context.Context, s Store, dir string, meta []byte) error {
	dir = strings.TrimSuffix(dir, "/")
	if err := ValidName(dir); err != nil {
		return fmt.Errorf("checkpoint: commit: %w", err)
	}
	names, err := s.List(ctx, dir+"/")
	if err != nil {
		return fmt.Errorf("checkpoint: commit %s: %w", dir, err)
	}
	var parts []string
	for _, n := range names {
		if p := n[len(dir)+1:]; p != CommitName {
			parts = append(parts, p)
		}
	}
	if err := s.Put(ctx, dir+"/"+CommitName, Frame(commitKind, commitVersion, encodeCommit(parts, meta))); err != nil {
		return fmt.Errorf("checkpoint: commit %s: %w", dir, err)
	}
	return nil
}

// encodeCommit lays out a commit's payload: uvarint count of parts, each
// part as uvarint length and bytes, then meta to the end.
func encodeCommit(parts []string, meta []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(parts)))
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return append(b, meta...)
}

func decodeCommit(b []byte) (parts []string, meta []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errors.New("bad part count")
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, errors.New("bad part name")
		}
		p := string(b[k : k+int(l)])
		if err := ValidName(p); err != nil {
			return nil, nil, err
		}
		if len(parts) > 0 && parts[len(parts)-1] >= p {
			return nil, nil, errors.New("parts not sorted")
		}
		parts = append(parts, p)
		b = b[k+int(l):]
	}
	return parts, b, nil
}

// ReadCommit reads the commit record of the checkpoint in dir. If there is
// none, the error wraps ErrNotFound; if it is damaged, ErrCorrupt; if a
// newer program wrote it, ErrUnknownVersion.
func ReadCommit(ctx context.Context, s Store, dir string) (*CommitRecord, error) {
	dir = strings.TrimSuffix(dir, "/")
	b, err := s.Get(ctx, dir+"/"+CommitName)
	if err != nil {
		return nil, err
	}
	kind, v, payload, err := Unframe(b)
	switch {
	case err != nil:
	case kind != commitKind:
		err = frameErr(FrameWrongKind, "%q, not %q", kind, commitKind)
	case v != commitVersion:
		err = frameErr(FrameUnknownVersion, "commit version %d, this program reads version %d", v, commitVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: commit of %s: %w", dir, err)
	}
	parts, meta, err := decodeCommit(payload)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: commit of %s: %w: %v", dir, ErrCorrupt, err)
	}
	return &CommitRecord{Dir: dir, Parts: parts, Meta: meta}, nil
}

// Verify checks that every part c lists is present. The error, for a
// missing part, wraps ErrIncomplete. Verify does not read the parts.
func Verify(ctx context.Context, s Store, c *CommitRecord) error {
	names, err := s.List(ctx, c.Dir+"/")
	if err != nil {
		return err
	}
	for _, p := range c.Parts {
		if _, ok := slices.BinarySearch(names, c.Dir+"/"+p); !ok {
			return fmt.Errorf("%w: %s: part %q missing", ErrIncomplete, c.Dir, p)
		}
	}
	return nil
}

// checkpointDirs returns the directories immediately under prefix, sorted,
// and which of them hold a commit record (valid or not).
func checkpointDirs(ctx context.Context, s Store, prefix string) (dirs []string, hasCommit map[string]bool, err error) {
	p := strings.TrimSuffix(prefix, "/")
	if p != "" {
		p += "/"
	}
	names, err := s.List(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	hasCommit = map[string]bool{}
	for _, n := range names {
		rest := n[len(p):]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			continue // an object directly under prefix: not a checkpoint
		}
		dir := p + rest[:i]
		if len(dirs) == 0 || dirs[len(dirs)-1] != dir {
			dirs = append(dirs, dir)
		}
		if rest[i+1:] == CommitName {
			hasCommit[dir] = true
		}
	}
	// Names sort "a/x" after "a.b/x" but dirs sort "a" first: sort again.
	slices.Sort(dirs)
	return slices.Compact(dirs), hasCommit, nil
}

// Committed returns the directories immediately under prefix that hold a
// valid commit record, sorted by name. A directory whose record is corrupt
// is left out; any other error reading a record (I/O, ErrUnknownVersion)
// is returned.
func Committed(ctx context.Context, s Store, prefix string) ([]string, error) {
	dirs, hasCommit, err := checkpointDirs(ctx, s, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		if !hasCommit[d] {
			continue
		}
		switch _, err := ReadCommit(ctx, s, d); {
		case err == nil:
			out = append(out, d)
		case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound):
		default:
			return nil, err
		}
	}
	return out, nil
}

// Retain deletes all but the newest keep committed checkpoints under
// prefix, and every directory under prefix without a valid commit record
// that sorts before the oldest one kept (a checkpoint a crash left half
// written). Uncommitted directories after it are left alone: they may be
// being written. With no committed checkpoint, Retain deletes nothing.
//
// Retain deletes a checkpoint's commit record before its parts, so a
// crash mid-Retain leaves an uncommitted directory, which the next Retain
// deletes, never a committed one with parts missing.
func Retain(ctx context.Context, s Store, prefix string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("checkpoint: retain %d checkpoints of %q: must keep at least one", keep, prefix)
	}
	committed, err := Committed(ctx, s, prefix)
	if err != nil {
		return err
	}
	if len(committed) == 0 {
		return nil
	}
	oldest := committed[max(0, len(committed)-keep)]
	dirs, _, err := checkpointDirs(ctx, s, prefix)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if d >= oldest {
			break
		}
		if err := deleteDir(ctx, s, d); err != nil {
			return fmt.Errorf("checkpoint: retain: %w", err)
		}
	}
	return nil
}

// deleteDir deletes every object under dir/, the commit record first.
func deleteDir(ctx context.Context, s Store, dir string) error {
	if err := s.Delete(ctx, dir+"/"+CommitName); err != nil {
		return err
	}
	names, err := s.List(ctx, dir+"/")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := s.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Skipped describes a checkpoint Latest passed over, and why.
type Skipped struct {
	Dir string
	Err error // wraps ErrCorrupt, ErrIncomplete or ErrNotFound
}

func (s Skipped) String() string { return s.Dir + ": " + s.Err.Error() }

// Latest returns the commit record of the newest usable checkpoint under
// prefix, and the newer ones it skipped, newest first, for the caller to
// log.
//
// A checkpoint is usable if its commit record is valid, every part it
// lists is present (Verify) and verify, if not nil, returns nil for it
// (verify may read the parts and check them). Latest skips a checkpoint
// whose check fails with an error wrapping ErrCorrupt, ErrIncomplete or
// ErrNotFound, and uncommitted directories; it stops at any other error
// (I/O, ErrUnknownVersion, the context's) and returns it, since falling
// back past a checkpoint that may be good would silently lose state.
//
// With no usable checkpoint the error wraps ErrNotFound.
func Latest(ctx context.Context, s Store, prefix string, verify func(context.Context, *CommitRecord) error) (*CommitRecord, []Skipped, error) {
	dirs, hasCommit, err := checkpointDirs(ctx, s, prefix)
	if err != nil {
		return nil, nil, err
	}
	var skipped []Skipped
	for _, d := range slices.Backward(dirs) {
		c, err := usable(ctx, s, d, hasCommit[d], verify)
		if err == nil {
			return c, skipped, nil
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrNotFound) {
			return nil, skipped, err
		}
		skipped = append(skipped, Skipped{Dir: d, Err: err})
	}
	return nil, skipped, fmt.Errorf("checkpoint: no usable checkpoint under %q: %w", prefix, ErrNotFound)
}

func usable(ctx context.Context, s Store, dir string, committed bool, verify func(context.Context, *CommitRecord) error) (*CommitRecord, error) {
	if !committed {
		return nil, fmt.Errorf("%w: %s: no commit record", ErrIncomplete, dir)
	}
	c, err := ReadCommit(ctx, s, dir)
	if err != nil {
		return nil, err
	}
	if err := Verify(ctx, s, c); err != nil {
		return nil, err
	}
	if verify != nil {
		if err := verify(ctx, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}
