//go:build unix

package dstream_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// TestSaveAsTextFilesModes runs with umask 0, so the modes seen are the
// modes asked for: folders 0755, files 0644.
func TestSaveAsTextFilesModes(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	out := filepath.Join(t.TempDir(), "out")
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstream.Repartition(h.In, 2).SaveAsTextFiles(filepath.Join(out, "words"), "txt")
	h.Input.Push("a", "b", "c")
	h.Start()
	at := h.Tick()
	checkMode(t, out, fs.ModeDir|0o755)
	d := filepath.Join(out, "words-"+itoa(at.UnixMilli())+".txt")
	checkMode(t, d, fs.ModeDir|0o755)
	files, _ := filepath.Glob(filepath.Join(d, "*"))
	if len(files) != 3 {
		t.Fatalf("%s holds %v, want 2 part files and _SUCCESS", d, files)
	}
	for _, f := range files {
		checkMode(t, f, 0o644)
	}
}

func checkMode(t *testing.T, name string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != want {
		t.Errorf("%s has mode %v, want %v", name, got, want)
	}
}
