package source

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameIn writes a file under an ignored name and renames it in, as writers
// into a watched folder must: the receiver may list the folder at any time.
func renameIn(t *testing.T, dir, name, data string) {
	t.Helper()
	tmp := filepath.Join(dir, "_"+name)
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// runDirectory opens a folder receiver under a manual clock and runs it into
// a collector; stop cancels it and returns Receive's result.
func runDirectory(t *testing.T, dir string, opts DirectoryOptions) (*clock.Manual, *collect, func() error) {
	t.Helper()
	clk := clock.NewManual(epoch)
	opts.Clock, opts.Poll, opts.Logger = clk, time.Second, quiet
	d := NewDirectory(dir, opts)
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Receive(ctx, c) }()
	stop := func() error { cancel(); return <-done }
	return clk, c, stop
}

func TestDirectoryReadsNewFilesOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "old.txt"), "o1\no2\n")
	clk, c, stop := runDirectory(t, dir, DirectoryOptions{})
	eventually(t, "the file there at Open", func() bool { return c.len() == 2 })
	writeFile(t, filepath.Join(dir, ".hidden"), "h\n")
	writeFile(t, filepath.Join(dir, "_tmp"), "t\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub", "nested"), "s\n")
	renameIn(t, dir, "new.txt", "n1\r\n\nn2")
	clk.Advance(time.Second)
	eventually(t, "the new file", func() bool { return c.len() == 5 })
	// Written under an ignored name, then renamed in: read once, whole.
	if err := os.Rename(filepath.Join(dir, "_tmp"), filepath.Join(dir, "renamed")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	eventually(t, "the renamed file", func() bool { return c.len() == 6 })
	clk.Advance(time.Second)
	clk.Advance(time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := c.get()
	slices.Sort(got)
	if want := []string{"", "n1", "n2", "o1", "o2", "t"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDirectoryForgetsDeletedNames(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a")
	writeFile(t, f, "1\n")
	clk, c, stop := runDirectory(t, dir, DirectoryOptions{})
	defer stop()
	eventually(t, "a", func() bool { return c.len() == 1 })
	os.Remove(f)
	// A marker file shows when a poll has run (and forgotten "a").
	renameIn(t, dir, "marker", "m\n")
	clk.Advance(time.Second)
	eventually(t, "the marker", func() bool { return c.len() == 2 })
	renameIn(t, dir, "a", "2\n")
	clk.Advance(time.Second)
	eventually(t, "a again", func() bool { return c.len() == 3 })
}

func TestDirectorySkipExisting(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "old"), "old\n")
	clk, c, stop := runDirectory(t, dir, DirectoryOptions{SkipExisting: true})
	renameIn(t, dir, "new", "new\n")
	clk.Advance(time.Second)
	eventually(t, "new", func() bool { return c.len() == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := c.get(); !slices.Equal(got, []string{"new"}) {
		t.Errorf("got %q", got)
	}
}

func TestDirectoryUnreadableFileIsSkipped(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "a\n")
	if err := os.Chmod(filepath.Join(dir, "a"), 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "b"), "b\n")
	_, c, stop := runDirectory(t, dir, DirectoryOptions{})
	eventually(t, "b", func() bool { return c.len() == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestDirectoryWriterFailureStopsReceive(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "1\n2\n3\n")
	d := NewDirectory(dir, DirectoryOptions{Clock: clock.NewManual(epoch), Logger: quiet})
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	if err := d.Receive(context.Background(), &collect{failAfter: 1}); err == nil || !strings.Contains(err.Error(), "directory "+dir) {
		t.Errorf("Receive = %v, want the writer's error naming the source", err)
	}
}

func TestDirectoryOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if err := NewDirectory(missing, DirectoryOptions{}).Open(); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "no such directory") {
		t.Errorf("Open of a missing folder = %v", err)
	}
	file := filepath.Join(dir, "file")
	writeFile(t, file, "")
	if err := NewDirectory(file, DirectoryOptions{}).Open(); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open of a file = %v", err)
	}
}
