package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File streams (Spark's FileInputDStream): the master lists a folder at
// every interval and selects the files that interval takes with a rule of
// their modification times and names (FileRule); the interval's manifest
// names them (name, size, modification time), and every process builds the
// interval's dataset by reading the named files (ReadLines, one partition
// per split of a file: Splits). Nothing is received or stored: a lost
// partition is read again from its file, and a master that restarts selects
// the files of the intervals it missed with the same rule.

// File is a file of a watched folder as a file stream selects it.
type File struct {
	Name    string    // its name in the folder
	Size    int64     // bytes
	ModTime time.Time // its modification time
}

// Candidate reports whether a name in a watched folder can be selected:
// names starting with "." or "_" are ignored, so a file written under such a
// name (or elsewhere on the same file system) and then renamed in is never
// read half-written.
func Candidate(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "_")
}

// ListFiles lists the candidate files of dir: regular files, or links to
// regular files, with a name Candidate accepts, sorted by name.
// Subfolders are not read. A file that vanishes while it is listed is left
// out.
func ListFiles(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		n := e.Name()
		if !Candidate(n) {
			continue
		}
		// os.Stat follows a link: a link to a regular file counts as one.
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		files = append(files, File{Name: n, Size: st.Size(), ModTime: st.ModTime()})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}

// DefaultMinRemember is how long after its modification time a file may
// still be selected, at least (Spark's
// spark.streaming.fileStream.minRememberDuration, 60 s).
const DefaultMinRemember = time.Minute

// FileRule is the selection rule of a file stream, Spark's: interval t
// (ending at t) takes every listed file modified in (lo, t], where lo is
// the later of t - Remember and NotBefore, that no interval took before.
// A file placed in time (modified and renamed in before its interval is
// cut) is therefore taken by the interval its modification time falls in,
// (t - batch, t]; one that appears late, with an older modification time,
// is taken by the first interval that lists it, as long as its
// modification time is within Remember; older than that, it is ignored.
// Given the same folder and the names taken before, the rule gives the same
// files: that is how a restarted master selects the files of the intervals
// it missed.
type FileRule struct {
	// Remember is how long after its modification time a file may be
	// selected: a multiple of the batch interval (RememberFor).
	Remember time.Duration
	// NotBefore, when not zero, ignores files modified at or before it
	// (the job's start, when the stream takes new files only).
	NotBefore time.Time
}

// RememberFor is Spark's remember window for a file stream: minRemember
// rounded up to a multiple of the batch interval (DefaultMinRemember when
// minRemember <= 0).
func RememberFor(batch, minRemember time.Duration) time.Duration {
	if minRemember <= 0 {
		minRemember = DefaultMinRemember
	}
	if batch <= 0 {
		return minRemember
	}
	return batch * ((minRemember + batch - 1) / batch)
}

// Lo is the exclusive lower bound of the modification times interval t may
// take.
func (r FileRule) Lo(t time.Time) time.Time {
	lo := t.Add(-r.Remember)
	if !r.NotBefore.IsZero() && r.NotBefore.After(lo) {
		lo = r.NotBefore
	}
	return lo
}

// Select returns the files of listing that interval t takes, sorted by
// name: modified in (Lo(t), t] and not taken before (taken reports whether
// a name was taken by an earlier interval within Remember; nil: none was).
// Names are compared as listed: a name is taken at most once while files
// of that name are within the remember window.
func (r FileRule) Select(listing []File, t time.Time, taken func(name string) bool) []File {
	lo := r.Lo(t)
	var out []File
	for _, f := range listing {
		if !Candidate(f.Name) || !f.ModTime.After(lo) || f.ModTime.After(t) {
			continue
		}
		if taken != nil && taken(f.Name) {
			continue
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b File) bool { return a.Name == b.Name })
}

// Split is a byte range [Off, End) of a file: the lines that start in it.
type Split struct {
	Off, End int64
}

// Splits cuts a file of size bytes into ranges of at most chunk bytes (the
// whole file when chunk <= 0); an empty file has none.
func Splits(size, chunk int64) []Split {
	if size <= 0 {
		return nil
	}
	if chunk <= 0 {
		chunk = size
	}
	out := make([]Split, 0, (size+chunk-1)/chunk)
	for off := int64(0); off < size; off += chunk {
		out = append(out, Split{Off: off, End: min(off+chunk, size)})
	}
	return out
}

// ErrFileChanged is wrapped by ReadLines' error when the file is shorter
// than when it was selected: files in a watched folder must not change once
// placed.
var ErrFileChanged = errors.New("file changed after it was selected")

// ReadLines calls yield with every line of file (in folder dir) that starts
// in [s.Off, s.End), reading no further than file.Size, its size when it was
// selected (Hadoop's rule for line records over splits: every line belongs
// to the split its first byte is in, so the splits of a file give each of
// its lines once). Lines follow the socket's rules (a final "\r" is
// dropped; a line longer than maxRecordBytes is dropped and reported to
// tooLong, which may be nil). It returns an error when the file cannot be
// opened or read, or is shorter than when it was selected or modified since
// (when file.ModTime is set), wrapping ErrFileChanged; nil when yield stops
// early.
func ReadLines(dir string, file File, s Split, maxRecordBytes int, tooLong func(int), yield func(string) bool) error {
	path, size := filepath.Join(dir, file.Name), file.Size
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	switch {
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: %w: not a regular file", path, ErrFileChanged)
	case st.Size() < size:
		return fmt.Errorf("%s: %w: %d bytes now, %d when selected", path, ErrFileChanged, st.Size(), size)
	case !file.ModTime.IsZero() && !st.ModTime().Equal(file.ModTime):
		return fmt.Errorf("%s: %w: modified at %v, %v when selected", path, ErrFileChanged, st.ModTime(), file.ModTime)
	}
	return ReadLinesAt(f, path, size, s, maxRecordBytes, tooLong, yield)
}

// ReadLinesAt is ReadLines over the first size bytes of r, the contents of
// the file (or object) called name in its errors: it calls yield with every
// line that starts in [s.Off, s.End). It reads r in order, from just before
// s.Off to the end of the last line it yields. A read error is returned,
// naming name and wrapping the reader's error; an end of r before size
// wraps ErrFileChanged (the file is shorter than when it was selected).
func ReadLinesAt(r io.ReaderAt, name string, size int64, s Split, maxRecordBytes int, tooLong func(int), yield func(string) bool) error {
	path := name
	r = sizedReaderAt{r, size}
	end := min(s.End, size)
	if s.Off >= end {
		return nil
	}
	if maxRecordBytes <= 0 {
		maxRecordBytes = 16 << 20
	}
	start := s.Off
	if start > 0 {
		start-- // to see whether a line starts at s.Off
	}
	lr := newLineReader(io.NewSectionReader(r, start, size-start), maxRecordBytes, tooLong)
	lr.pos, lr.stop = start, end
	if s.Off > 0 {
		b, err := lr.r.ReadByte()
		if err != nil {
			return readErr(path, err)
		}
		lr.pos++
		if b != '\n' {
			// The line under way belongs to the split before.
			for {
				chunk, err := lr.r.ReadSlice('\n')
				lr.pos += int64(len(chunk))
				if err == bufio.ErrBufferFull {
					continue
				}
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return readErr(path, err)
				}
				break
			}
		}
	}
	for {
		line, ok, _, err := lr.next()
		if ok && !yield(line) {
			return nil
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return readErr(path, err)
		}
	}
}

// sizedReaderAt is a ReaderAt whose data must be size bytes long: an end
// before that is an error wrapping ErrFileChanged.
type sizedReaderAt struct {
	r    io.ReaderAt
	size int64
}

func (s sizedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.r.ReadAt(p, off)
	if errors.Is(err, io.EOF) && off+int64(n) < s.size {
		err = fmt.Errorf("%w: it ends at byte %d, %d bytes when selected", ErrFileChanged, off+int64(n), s.size)
	}
	return n, err
}

func readErr(path string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %s: %w", path, err)
}

// ErrNotADirectory is returned by CheckDir for a path that is not a folder.
var ErrNotADirectory = errors.New("not a directory")

// CheckDir checks that dir exists and is a folder that can be listed.
func CheckDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such directory", dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s: %w", dir, ErrNotADirectory)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return err
	}
	return nil
}
