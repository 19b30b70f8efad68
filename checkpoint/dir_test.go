package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func openDir(t testing.TB, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mustPut(t testing.TB, s Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
}

func mustList(t testing.TB, s Store, prefix string) []string {
	t.Helper()
	names, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// filesUnder returns the regular files under root, relative, whatever
// their names.
func filesUnder(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && e.Name() != lockName {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		why  string
	}{
		{"a", true, ""},
		{"state/7/00000000001700000003000/part-00001", true, ""},
		{"a.b/c..d/_COMMIT", true, ""},
		{"", false, "empty"},
		{"/etc/passwd", false, "absolute"},
		{"a//b", false, "empty element"},
		{"a/", false, "empty element"},
		{"..", false, `".."`},
		{"a/../b", false, `".."`},
		{"./a", false, `"."`},
		{"a/.tmp-x", false, "reserved"},
		{".lock", false, "reserved"},
		{"a\\b", false, "backslash"},
		{"a\x00b", false, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidName(tt.name)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("ValidName = %v, want ErrInvalidName saying %q", err, tt.why)
			}
		})
	}
}

func TestDirRoundTrip(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, filepath.Join(t.TempDir(), "store"))
	if names := mustList(t, d, ""); len(names) != 0 {
		t.Fatalf("a new Dir lists %q", names)
	}
	objects := map[string]string{
		"a":         "1",
		"b/x":       "2",
		"b/y/z":     "3",
		"b.c":       "4",
		"bb":        "5",
		"c/_COMMIT": "",
	}
	for name, data := range objects {
		mustPut(t, d, name, []byte(data))
	}
	for name, data := range objects {
		got, err := d.Get(ctx, name)
		if err != nil || string(got) != data {
			t.Fatalf("Get(%q) = %q, %v; want %q", name, got, err, data)
		}
	}
	mustPut(t, d, "a", []byte("overwritten"))
	if got, _ := d.Get(ctx, "a"); string(got) != "overwritten" {
		t.Fatalf("after overwrite Get = %q", got)
	}

	lists := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a", "b.c", "b/x", "b/y/z", "bb", "c/_COMMIT"}},
		{"b", []string{"b.c", "b/x", "b/y/z", "bb"}},
		{"b/", []string{"b/x", "b/y/z"}},
		{"b/y", []string{"b/y/z"}},
		{"c/_", []string{"c/_COMMIT"}},
		{"nothing/", nil},
		{"z", nil},
	}
	for _, l := range lists {
		if got := mustList(t, d, l.prefix); !reflect.DeepEqual(got, l.want) {
			t.Errorf("List(%q) = %q, want %q", l.prefix, got, l.want)
		}
	}

	for _, name := range []string{"missing", "b", "b/y", "a/under-a-file"} {
		if _, err := d.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", name, err)
		}
	}
	for _, name := range []string{"b/y/z", "b/y/z", "missing", "b"} {
		if err := d.Delete(ctx, name); err != nil {
			t.Errorf("Delete(%q) = %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "b", "y")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Delete left the emptied directory b/y: %v", err)
	}
	if got := mustList(t, d, "b/"); !reflect.DeepEqual(got, []string{"b/x"}) {
		t.Errorf("after Delete, List(b/) = %q", got)
	}
}

func TestDirRefusesBadNamesAndClosedUse(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	for _, name := range []string{"", "/abs", "a/../b", "a//b", ".tmp-x"} {
		if err := d.Put(ctx, name, nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Put(%q) = %v", name, err)
		}
		if _, err := d.Get(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q) = %v", name, err)
		}
		if err := d.Delete(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Delete(%q) = %v", name, err)
		}
	}
	for _, prefix := range []string{"/abs/", "../", "a/../"} {
		if _, err := d.List(ctx, prefix); !errors.Is(err, ErrInvalidName) {
			t.Errorf("List(%q) = %v", prefix, err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Put(canceled, "a", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v", err)
	}
	d.Close()
	if _, err := d.Get(ctx, "a"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Get after Close = %v", err)
	}
}

func TestOpenDirRemovesLeftoversOnlyWhenAlone(t *testing.T) {
	root := t.TempDir()
	d1 := openDir(t, root)
	mustPut(t, d1, "ckpt/part", []byte("whole"))
	leftover := filepath.Join(root, "ckpt", tmpPrefix+"part-123")
	if err := os.WriteFile(leftover, []byte("wh"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, d1, ""); !reflect.DeepEqual(got, []string{"ckpt/part"}) {
		t.Fatalf("List shows a temporary: %q", got)
	}
	// Another opener while d1 is open must not touch temporaries: they
	// may be d1's Puts in flight.
	d2 := openDir(t, root)
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("OpenDir removed a temporary while another Dir had the directory open: %v", err)
	}
	d1.Close()
	d2.Close()
	d3 := openDir(t, root)
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a sole OpenDir left the temporary: %v", err)
	}
	if got, err := d3.Get(t.Context(), "ckpt/part"); err != nil || string(got) != "whole" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

// Goroutines writing, overwriting, deleting and reading concurrently: every
// Put succeeds, every read sees a whole object, and the end state is exact.
func TestDirConcurrentPuts(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	const writers, puts = 6, 30
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+1)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range puts {
				own := fmt.Sprintf("own/%d/%03d", g, i)
				if err := d.Put(ctx, own, Frame("own", g, []byte(own))); err != nil {
					errs <- err
					return
				}
				// All writers overwrite one name, and churn one shared
				// directory that Delete empties and removes.
				if err := d.Put(ctx, "shared/obj", Frame("shared", g, []byte(strings.Repeat("x", 100*i)))); err != nil {
					errs <- err
					return
				}
				churn := fmt.Sprintf("churn/%d", g)
				if err := d.Put(ctx, churn, Frame("churn", g, nil)); err != nil {
					errs <- err
					return
				}
				if err := d.Delete(ctx, churn); err != nil {
					errs <- err
					return
				}
				if i%2 == 1 {
					if err := d.Delete(ctx, own); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			names, err := d.List(ctx, "")
			if err != nil {
				errs <- err
				return
			}
			for _, n := range names {
				b, err := d.Get(ctx, n)
				if errors.Is(err, ErrNotFound) {
					continue // deleted since listed
				}
				if err == nil {
					_, _, _, err = Unframe(b)
				}
				if err != nil {
					errs <- fmt.Errorf("reading %s: %w", n, err)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want []string
	for g := range writers {
		for i := 0; i < puts; i += 2 {
			want = append(want, fmt.Sprintf("own/%d/%03d", g, i))
		}
	}
	want = append(want, "shared/obj")
	if got := mustList(t, d, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %q\nwant %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "churn")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the churned directory is left: %v", err)
	}
}

// Two OS processes (this test binary, re-run) write into one directory
// at once, each with its own Dir, while this process holds a third.
func TestDirTwoProcesses(t *testing.T) {
	root := t.TempDir()
	d := openDir(t, root)
	const per = 40
	var cmds []*exec.Cmd
	for k := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CHECKPOINT_TEST_WRITER="+strconv.Itoa(k), "CHECKPOINT_TEST_DIR="+root)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	names := mustList(t, d, "")
	if len(names) != 2*per+1 {
		t.Fatalf("%d objects, want %d: %q", len(names), 2*per+1, names)
	}
	for _, n := range names {
		b, err := d.Get(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := Unframe(b); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if left := filesUnder(t, root); len(left) != len(names) {
		t.Fatalf("files on disk %q, objects %q", left, names)
	}
}

// TestMain runs a writer child for TestDirTwoProcesses when asked.
func TestMain(m *testing.M) {
	if k := os.Getenv("CHECKPOINT_TEST_WRITER"); k != "" {
		if err := writeAsChild(k, os.Getenv("CHECKPOINT_TEST_DIR"), 40); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeAsChild(k, root string, n int) error {
	d, err := OpenDir(root)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprintf("ckpt/00001/part-%s-%03d", k, i)
		if err := d.Put(ctx, name, Frame("part", 1, []byte(name))); err != nil {
			return err
		}
		if err := d.Put(ctx, "ckpt/shared", Frame("shared", 1, []byte(name))); err != nil {
			return err
		}
	}
	return nil
}

func TestDirLongNames(t *testing.T) {
	d := openDir(t, t.TempDir())
	name := "ckpt/" + strings.Repeat("n", 250)
	mustPut(t, d, name, []byte("x"))
	if got, err := d.Get(t.Context(), name); err != nil || string(got) != "x" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

// TestScratchDir: a scratch folder (no syncs) is a Store like any Dir: a
// Put is visible at once, a Delete removes the object and its emptied
// folders.
func TestScratchDir(t *testing.T) {
	root := t.TempDir()
	d, err := OpenScratchDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if err := d.Put(ctx, "state/000001/x/part-00000", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, "state/000001/x/part-00000"); err != nil || string(b) != "data" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if err := d.Delete(ctx, "state/000001/x/part-00000"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "state")); !os.IsNotExist(err) {
		t.Fatalf("emptied folders left: %v", err)
	}
}

// Put makes an object's folders only when they are missing: into a folder
// that exists it creates the temporary at once; a missing folder (never
// made, or removed by a Delete of its last object) is made, and a path
// through an object fails with nothing left behind.
func TestDirPutMakesFoldersOnlyWhenMissing(t *testing.T) {
	ctx := t.Context()
	for _, scratch := range []bool{false, true} {
		root := filepath.Join(t.TempDir(), "store")
		d := openDir(t, root)
		d.scratch = scratch
		steps := []struct {
			name    string
			do      func() error
			wantErr bool
		}{
			{"a new nested folder", func() error { return d.Put(ctx, "s/1/t/part-0", []byte("a")) }, false},
			{"the same folder again", func() error { return d.Put(ctx, "s/1/t/part-1", []byte("b")) }, false},
			{"a folder emptied by Delete", func() error {
				for _, n := range []string{"s/1/t/part-0", "s/1/t/part-1"} {
					if err := d.Delete(ctx, n); err != nil {
						return err
					}
				}
				return d.Put(ctx, "s/1/t/part-2", []byte("c"))
			}, false},
			{"through an object", func() error { return d.Put(ctx, "s/1/t/part-2/x", []byte("d")) }, true},
		}
		for _, s := range steps {
			if err := s.do(); (err != nil) != s.wantErr {
				t.Fatalf("scratch %v, %s: err %v, want an error: %v", scratch, s.name, err, s.wantErr)
			}
		}
		if names := mustList(t, d, ""); !slices.Equal(names, []string{"s/1/t/part-2"}) {
			t.Fatalf("scratch %v: the store lists %q", scratch, names)
		}
		if got, err := d.Get(ctx, "s/1/t/part-2"); err != nil || string(got) != "c" {
			t.Fatalf("scratch %v: Get = %q, %v", scratch, got, err)
		}
		left, _ := filepath.Glob(filepath.Join(root, "s", "1", "t", tmpPrefix+"*"))
		if len(left) > 0 {
			t.Fatalf("scratch %v: temporaries left: %q", scratch, left)
		}
	}
}

// BenchmarkDirStateCheckpoint writes what a state checkpoint of 16 small
// partitions writes each interval (a new folder, its parts, the commit) and
// deletes the checkpoint it replaces, as a master does for its scratch
// folder (OpenScratchDir: nothing synced) or a checkpoint folder (synced).
// The folder is under $TMPDIR (b.TempDir): run it with TMPDIR on a disk and
// on a tmpfs to see what the filesystem's file creation costs.
func BenchmarkDirStateCheckpoint(b *testing.B) {
	const parts = 16
	part := make([]byte, 64)
	for _, tc := range []struct {
		name string
		open func(string) (*Dir, error)
	}{{"scratch", OpenScratchDir}, {"synced", OpenDir}} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := tc.open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				dir := fmt.Sprintf("state/000003/%020d", i)
				for p := range parts {
					if err := d.Put(ctx, fmt.Sprintf("%s/part-%05d", dir, p), part); err != nil {
						b.Fatal(err)
					}
				}
				if err := Commit(ctx, d, dir, nil); err != nil {
					b.Fatal(err)
				}
				if i > 0 {
					old := fmt.Sprintf("state/000003/%020d/", i-1)
					names, err := d.List(ctx, old)
					if err != nil {
						b.Fatal(err)
					}
					for _, n := range names {
						if err := d.Delete(ctx, n); err != nil {
							b.Fatal(err)
						}
					}
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*(parts+1)), "µs/object")
		})
	}
}
