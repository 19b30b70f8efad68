package source

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRememberFor(t *testing.T) {
	for _, c := range []struct {
		batch, min, want time.Duration
	}{
		{time.Second, 0, time.Minute},
		{time.Second, 10 * time.Second, 10 * time.Second},
		{7 * time.Second, 0, 63 * time.Second}, // rounded up to a multiple of the batch
		{100 * time.Millisecond, 0, time.Minute},
		{2 * time.Minute, 0, 2 * time.Minute},
		{time.Second, 1500 * time.Millisecond, 2 * time.Second},
	} {
		if got := RememberFor(c.batch, c.min); got != c.want {
			t.Errorf("RememberFor(%v, %v) = %v, want %v", c.batch, c.min, got, c.want)
		}
	}
}

// The selection rule, interval by interval: a file is taken by the interval
// its modification time falls in, (t-batch, t]; a late one (listed after its
// interval was cut) by the first interval that lists it within the remember
// window; never twice; never when older than the window or, with
// NotBefore, modified at or before the job's start.
func TestFileRuleSelect(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	at := func(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	f := func(name string, ms int64) File { return File{Name: name, Size: 1, ModTime: at(ms)} }
	rule := FileRule{Remember: 3 * time.Second}
	cases := []struct {
		name    string
		rule    FileRule
		listing []File
		t       int64 // interval end, ms after t0
		taken   []string
		want    []string
	}{
		{name: "in the interval", rule: rule, t: 2000,
			listing: []File{f("b", 1500), f("a", 2000), f("c", 1001)}, want: []string{"a", "b", "c"}},
		{name: "the interval's end is in, its start out (without remember)", rule: FileRule{Remember: time.Second}, t: 2000,
			listing: []File{f("start", 1000), f("end", 2000), f("after", 2001)}, want: []string{"end"}},
		{name: "future files wait", rule: rule, t: 2000,
			listing: []File{f("now", 2000), f("later", 2001), f("much-later", 9000)}, want: []string{"now"}},
		{name: "late files within remember", rule: rule, t: 5000,
			listing: []File{f("late", 2500), f("edge", 2001), f("too-old", 2000), f("new", 4500)}, want: []string{"edge", "late", "new"}},
		{name: "taken before", rule: rule, t: 5000, taken: []string{"late"},
			listing: []File{f("late", 2500), f("new", 4500)}, want: []string{"new"}},
		{name: "new files only", rule: FileRule{Remember: 3 * time.Second, NotBefore: at(1000)}, t: 2000,
			listing: []File{f("old", 500), f("at-start", 1000), f("new", 1001)}, want: []string{"new"}},
		{name: "NotBefore older than the window", rule: FileRule{Remember: 3 * time.Second, NotBefore: at(-10000)}, t: 5000,
			listing: []File{f("old", 1999), f("in", 2001)}, want: []string{"in"}},
		{name: "ignored names", rule: rule, t: 2000,
			listing: []File{f(".hidden", 1500), f("_tmp", 1500), f("ok", 1500)}, want: []string{"ok"}},
		{name: "sorted, each name once", rule: rule, t: 2000,
			listing: []File{f("z", 1500), f("a", 1500), f("m", 1500), f("a", 1600)}, want: []string{"a", "m", "z"}},
		{name: "empty folder", rule: rule, t: 2000, want: nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.rule.Select(c.listing, at(c.t), func(n string) bool { return slices.Contains(c.taken, n) })
			var names []string
			for _, f := range got {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, c.want) {
				t.Errorf("Select = %v, want %v", names, c.want)
			}
		})
	}
}

// Run over consecutive intervals, the rule takes every file once, whatever
// the order the files appear in (as long as each appears within the
// remember window of its modification time), and a file placed before its
// interval is cut goes to the interval its modification time is in.
func TestFileRuleTakesEachFileOnce(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	const batch = time.Second
	rule := FileRule{Remember: RememberFor(batch, 5*time.Second)}
	rng := rand.New(rand.NewPCG(1, 2))
	type placed struct {
		f      File
		appear int // the interval before whose cut it is listed
	}
	var all []placed
	for i := range 200 {
		k := 1 + rng.IntN(20)
		mt := t0.Add(time.Duration(k-1)*batch + time.Duration(1+rng.IntN(1000))*time.Millisecond)
		appear := k
		if rng.IntN(4) == 0 {
			appear += rng.IntN(4) // late, within the window
		}
		all = append(all, placed{File{Name: "f" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), ModTime: mt}, appear})
	}
	taken := map[string]int{}
	for k := 1; k <= 30; k++ {
		tk := t0.Add(time.Duration(k) * batch)
		var listing []File
		for _, p := range all {
			if p.appear <= k {
				listing = append(listing, p.f)
			}
		}
		for _, f := range rule.Select(listing, tk, func(n string) bool { _, ok := taken[n]; return ok }) {
			taken[f.Name] = k
		}
	}
	for _, p := range all {
		k, ok := taken[p.f.Name]
		if !ok {
			t.Fatalf("%s (modified %v, listed from interval %d) never taken", p.f.Name, p.f.ModTime.Sub(t0), p.appear)
		}
		own := int((p.f.ModTime.Sub(t0) + batch - 1) / batch)
		if want := max(own, p.appear); k != want {
			t.Errorf("%s taken by interval %d, want %d", p.f.Name, k, want)
		}
	}
}

func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b"), "bb\n")
	writeFile(t, filepath.Join(dir, "a"), "a\n")
	writeFile(t, filepath.Join(dir, ".hidden"), "h\n")
	writeFile(t, filepath.Join(dir, "_tmp"), "t\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	mt := time.UnixMilli(1_700_000_000_000)
	if err := os.Chtimes(filepath.Join(dir, "b"), mt, mt); err != nil {
		t.Fatal(err)
	}
	files, err := ListFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if want := []string{"a", "b", "link"}; !slices.Equal(names, want) {
		t.Fatalf("ListFiles = %v, want %v", names, want)
	}
	if files[1].Size != 3 || !files[1].ModTime.Equal(mt) {
		t.Errorf("b = %+v, want 3 bytes modified at %v", files[1], mt)
	}
	if _, err := ListFiles(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ListFiles of a missing folder = %v", err)
	}
	if err := CheckDir(filepath.Join(dir, "a")); !errors.Is(err, ErrNotADirectory) {
		t.Errorf("CheckDir of a file = %v", err)
	}
	if err := CheckDir(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such directory") {
		t.Errorf("CheckDir of a missing folder = %v", err)
	}
}

func TestSplits(t *testing.T) {
	if got := Splits(0, 10); got != nil {
		t.Errorf("Splits(0) = %v", got)
	}
	if got, want := Splits(25, 10), []Split{{0, 10}, {10, 20}, {20, 25}}; !slices.Equal(got, want) {
		t.Errorf("Splits(25, 10) = %v, want %v", got, want)
	}
	if got, want := Splits(25, 0), []Split{{0, 25}}; !slices.Equal(got, want) {
		t.Errorf("Splits(25, 0) = %v, want %v", got, want)
	}
}

// Every split size gives every line of a file exactly once, in order, as
// the line reader reads the whole file (long lines dropped, "\r\n" and an
// unterminated last line included).
func TestReadLinesSplitsGiveEveryLineOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const maxRec = 40
	for trial := range 60 {
		var b strings.Builder
		for range rng.IntN(30) {
			switch rng.IntN(6) {
			case 0:
				b.WriteString("\n") // an empty line
			case 1:
				b.WriteString(strings.Repeat("L", maxRec+1+rng.IntN(30)) + "\n") // too long
			case 2:
				b.WriteString("crlf\r\n")
			default:
				b.WriteString(strings.Repeat(string(rune('a'+rng.IntN(26))), 1+rng.IntN(15)) + "\n")
			}
		}
		if rng.IntN(2) == 0 {
			b.WriteString("unterminated")
		}
		data := b.String()
		path := filepath.Join(t.TempDir(), "f")
		writeFile(t, path, data)
		want := refLines([]byte(data), maxRec, false)
		for _, chunk := range []int64{1, 2, 3, 7, 16, 41, 1000} {
			var got []string
			var tooLong []int
			for _, s := range Splits(int64(len(data)), chunk) {
				err := ReadLines(filepath.Dir(path), File{Name: "f", Size: int64(len(data))}, s, maxRec, func(n int) { tooLong = append(tooLong, n) }, func(l string) bool {
					got = append(got, l)
					return true
				})
				if err != nil {
					t.Fatalf("trial %d, chunk %d, split %v: %v", trial, chunk, s, err)
				}
			}
			if !slices.Equal(got, want.lines) || !slices.Equal(tooLong, want.tooLong) {
				t.Fatalf("trial %d, chunk %d of %q:\ngot  %q (too long %v)\nwant %q (too long %v)", trial, chunk, data, got, tooLong, want.lines, want.tooLong)
			}
		}
	}
}

func TestReadLinesErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, "a\nb\n")
	yield := func(string) bool { return true }
	if err := ReadLines(dir, File{Name: "gone", Size: 4}, Split{0, 4}, 0, nil, yield); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	if err := ReadLines(dir, File{Name: "f", Size: 10}, Split{0, 10}, 0, nil, yield); !errors.Is(err, ErrFileChanged) {
		t.Errorf("a file shorter than selected: %v", err)
	}
	mt := time.UnixMilli(1_700_000_000_000)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := ReadLines(dir, File{Name: "f", Size: 4, ModTime: mt.Add(time.Second)}, Split{0, 4}, 0, nil, yield); !errors.Is(err, ErrFileChanged) {
		t.Errorf("a file modified since it was selected: %v", err)
	}
	// A file that grew (without the rule's modification time) is read as
	// it was when selected.
	writeFile(t, path, "a\nb\nc\n")
	var got []string
	if err := ReadLines(dir, File{Name: "f", Size: 4}, Split{0, 4}, 0, nil, func(l string) bool { got = append(got, l); return true }); err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a file that grew: %q, %v", got, err)
	}
}

// A line longer than the read buffer that crosses splits is read once, by
// the split it starts in; the next split skips it.
func TestReadLinesLongLineAcrossSplits(t *testing.T) {
	long := strings.Repeat("x", 3*readBufferSize)
	data := "a\n" + long + "\nb\n"
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, data)
	var got []string
	for _, s := range Splits(int64(len(data)), readBufferSize) {
		if err := ReadLines(filepath.Dir(path), File{Name: "f", Size: int64(len(data))}, s, 1<<20, nil, func(l string) bool { got = append(got, l); return true }); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []string{"a", long, "b"}) {
		t.Errorf("got %d lines, want a, the long line and b", len(got))
	}
}

// ReadLinesAt reads the first size bytes of any ReaderAt as ReadLines reads
// a file, split by split; a reader that ends before size fails with
// ErrFileChanged instead of yielding a truncated line.
func TestReadLinesAt(t *testing.T) {
	const data = "one\ntwo\nthree\nfour"
	for _, c := range []struct {
		name  string
		data  string
		size  int64
		split Split
		want  []string
		err   error
	}{
		{name: "whole", data: data, size: int64(len(data)), split: Split{0, int64(len(data))}, want: []string{"one", "two", "three", "four"}},
		{name: "a middle split owns the lines starting in it", data: data, size: int64(len(data)), split: Split{4, 9}, want: []string{"two", "three"}},
		{name: "a split starting mid-line skips it", data: data, size: int64(len(data)), split: Split{5, 14}, want: []string{"three"}},
		{name: "bytes past size are not read", data: data + "\nfive\n", size: int64(len(data)), split: Split{0, 100}, want: []string{"one", "two", "three", "four"}},
		{name: "shorter than size", data: data[:10], size: int64(len(data)), split: Split{0, int64(len(data))}, want: []string{"one", "two"}, err: ErrFileChanged},
		{name: "empty split", data: data, size: 4, split: Split{4, 8}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			err := ReadLinesAt(strings.NewReader(c.data), "obj", c.size, c.split, 0, nil, func(l string) bool { got = append(got, l); return true })
			if !errors.Is(err, c.err) || (err != nil && !strings.Contains(err.Error(), "obj")) {
				t.Errorf("error %v, want %v naming obj", err, c.err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("lines %q, want %q", got, c.want)
			}
		})
	}
}
