package engine

import (
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/source"
)

func TestIsURL(t *testing.T) {
	for _, c := range []struct {
		loc  string
		want bool
	}{
		{"s3://bucket/prefix", true},
		{"file:///tmp/in", true},
		{"S3://bucket", true},
		{"git+ssh://host/x", true},
		{"x-y.z://a", true},
		{"/tmp/in", false},
		{"in", false},
		{"", false},
		{"://x", false},
		{"./a://b", false},
		{"1s3://b", false},
		{"s3:/bucket", false},
		{`C:\data`, false},
	} {
		if got := IsURL(c.loc); got != c.want {
			t.Errorf("IsURL(%q) = %v, want %v", c.loc, got, c.want)
		}
	}
}

// An objectReader reads as a bytes.Reader over the object's first size
// bytes would, whatever the window; an object shorter than size is an
// error wrapping source.ErrFileChanged, a missing one checkpoint.ErrNotFound.
func TestObjectReader(t *testing.T) {
	ctx := t.Context()
	d, err := checkpoint.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	if err := d.Put(ctx, "o", data); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, window := range []int64{1, 5, 7, 100} {
		for _, size := range []int64{int64(len(data)), 20} {
			r := &objectReader{ctx: ctx, store: d, name: "o", size: size, window: window}
			ref := strings.NewReader(string(data[:size]))
			for range 200 {
				off, n := rng.Int64N(size+3), rng.IntN(12)
				got, want := make([]byte, n), make([]byte, n)
				gn, gerr := r.ReadAt(got, off)
				wn, werr := ref.ReadAt(want, off)
				if gn != wn || !slices.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) {
					t.Fatalf("window %d, size %d: ReadAt(%d bytes at %d) = %q, %v; want %q, %v", window, size, n, off, got[:gn], gerr, want[:wn], werr)
				}
			}
		}
	}
	short := &objectReader{ctx: ctx, store: d, name: "o", size: int64(len(data)) + 10, window: 8}
	if _, err := short.ReadAt(make([]byte, 50), 0); !errors.Is(err, source.ErrFileChanged) {
		t.Errorf("reading an object shorter than selected: %v, want ErrFileChanged", err)
	}
	missing := &objectReader{ctx: ctx, store: d, name: "gone", size: 10, window: 8}
	if _, err := missing.ReadAt(make([]byte, 5), 0); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("reading a missing object: %v, want ErrNotFound", err)
	}
}

// A store's top level as a file stream's folder: candidate objects with
// their sizes and modification times, read split by split; the stores are
// opened once per location and closed at Stop.
func TestStoreFolder(t *testing.T) {
	ctx := t.Context()
	c := &Engine{log: slog.New(slog.DiscardHandler)}
	dir := t.TempDir()
	when := time.UnixMilli(1_700_000_000_500)
	for name, data := range map[string]string{
		"b": "b1\nb2\nb3\n", "a": "a1\n", "_tmp": "t\n", ".hidden": "h\n", "sub/x": "x\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	f := c.folderAt("file://" + dir)
	if _, ok := f.(storeFolder); !ok {
		t.Fatalf("folderAt(file://...) = %T, want a storeFolder", f)
	}
	if err := f.check(ctx); err != nil {
		t.Fatal(err)
	}
	files, err := f.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0] != (source.File{Name: "a", Size: 3, ModTime: when}) || files[1].Name != "b" || files[1].Size != 9 {
		t.Fatalf("list = %+v; want a (3 bytes) and b (9), modified at %v", files, when)
	}
	for _, chunk := range []int64{1, 4, 100} {
		var got []string
		for _, s := range source.Splits(files[1].Size, chunk) {
			if err := f.read(ctx, files[1], s, 0, nil, func(l string) bool { got = append(got, l); return true }); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, []string{"b1", "b2", "b3"}) {
			t.Errorf("splits of %d bytes read %q", chunk, got)
		}
	}
	grown := source.File{Name: "a", Size: 30}
	if err := f.read(ctx, grown, source.Split{Off: 0, End: 30}, 0, nil, func(string) bool { return true }); !errors.Is(err, source.ErrFileChanged) {
		t.Errorf("an object shorter than selected: %v", err)
	}
	if err := f.read(ctx, source.File{Name: "gone", Size: 3}, source.Split{Off: 0, End: 3}, 0, nil, func(string) bool { return true }); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("a vanished object: %v", err)
	}
	s1, _ := c.Store(ctx, "file://"+dir)
	s2, _ := c.Store(ctx, "file://"+dir)
	if s1 != s2 {
		t.Error("a location was opened twice")
	}
	if _, err := c.Store(ctx, "nope://x"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Store of an unknown scheme = %v", err)
	}
	c.closeStores()
	if _, err := s1.List(ctx, ""); err == nil {
		t.Error("a store is still open after closeStores")
	}
	if _, err := c.Store(ctx, "file://"+dir); !errors.Is(err, errStoresClosed) {
		t.Errorf("Store after closeStores = %v", err)
	}
	if err := c.folderAt("file://" + dir).check(ctx); err == nil {
		t.Error("check after closeStores succeeded")
	}
}

var _ io.ReaderAt = (*objectReader)(nil)
