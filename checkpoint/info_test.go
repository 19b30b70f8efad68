package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// ListInfo lists one level of names under a prefix, sorted, with each
// object's size and modification time; it agrees with List on what an
// object is (no temporaries, dot names, directories or links).
func TestDirListInfo(t *testing.T) {
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "store")
	d := openDir(t, root)
	for name, data := range map[string]string{
		"a": "1", "bb": "22", "b/x": "333", "b/y/z": "4", "b.c": "", "c/_SUCCESS": "",
	} {
		mustPut(t, d, name, []byte(data))
	}
	when := time.Unix(1_700_000_000, 123_000_000)
	if err := os.Chtimes(filepath.Join(root, "b", "x"), when, when); err != nil {
		t.Fatal(err)
	}
	// What a folder holds besides objects: a temporary, a dot file, a link.
	for _, p := range []string{"b/" + tmpPrefix + "x-1", "b/.hidden"} {
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(p)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "b", "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix string
		want   []string // name:size
	}{
		{"", []string{"a:1", "b.c:0", "bb:2"}},
		{"b", []string{"b.c:0", "bb:2"}},
		{"b/", []string{"b/x:3"}},
		{"b/y/", []string{"b/y/z:1"}},
		{"b/x", []string{"b/x:3"}},
		{"c/", []string{"c/_SUCCESS:0"}},
		{"missing/", nil},
		{"a/", nil}, // under a file
		{"z", nil},
	} {
		infos, err := d.ListInfo(ctx, c.prefix)
		if err != nil {
			t.Fatalf("ListInfo(%q): %v", c.prefix, err)
		}
		var got []string
		for _, in := range infos {
			got = append(got, fmt.Sprintf("%s:%d", in.Name, in.Size))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ListInfo(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
	infos, _ := d.ListInfo(ctx, "b/")
	if len(infos) != 1 || !infos[0].ModTime.Equal(when) {
		t.Errorf("ListInfo(b/) = %+v, want b/x modified at %v", infos, when)
	}
	if _, err := d.ListInfo(ctx, "../"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("ListInfo(../) = %v, want ErrInvalidName", err)
	}
}

func TestDirGetRange(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	mustPut(t, d, "o", []byte("0123456789"))
	mustPut(t, d, "dir/x", []byte("x"))
	for _, c := range []struct {
		off, n int64
		want   string
	}{
		{0, 10, "0123456789"},
		{0, 100, "0123456789"},
		{3, 4, "3456"},
		{9, 5, "9"},
		{10, 5, ""},
		{50, 5, ""},
		{2, 0, ""},
	} {
		got, err := d.GetRange(ctx, "o", c.off, c.n)
		if err != nil || string(got) != c.want || got == nil {
			t.Errorf("GetRange(o, %d, %d) = %q, %v; want %q", c.off, c.n, got, err, c.want)
		}
	}
	for _, name := range []string{"missing", "dir", "o/under-a-file"} {
		if _, err := d.GetRange(ctx, name, 0, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRange(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := d.GetRange(ctx, "o", -1, 1); err == nil {
		t.Error("GetRange at a negative offset succeeded")
	}
	if _, err := d.GetRange(ctx, ".tmp-x", 0, 1); !errors.Is(err, ErrInvalidName) {
		t.Errorf("GetRange(.tmp-x) = %v, want ErrInvalidName", err)
	}
	d.Close()
	if _, err := d.GetRange(ctx, "o", 0, 1); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("GetRange after Close = %v", err)
	}
	if _, err := d.ListInfo(ctx, ""); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ListInfo after Close = %v", err)
	}
}
