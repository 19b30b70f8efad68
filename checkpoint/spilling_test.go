package checkpoint

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// What Spilling holds in memory stays within its budget; what does not fit
// is in the folder, and only there; replacing and deleting move and free
// bytes; objects the folder held before are listed and read.
func TestSpillingHoldsWithinItsBudget(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d := openDir(t, root)
	mustPut(t, d, "old/x", []byte("before"))
	s, err := NewSpilling(ctx, d, 100)
	if err != nil {
		t.Fatal(err)
	}
	inFolder := func() []string {
		t.Helper()
		names, err := d.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	held := func(wantBytes int64, wantSpilled int) {
		t.Helper()
		if b, n := s.Held(); b != wantBytes || n != wantSpilled {
			t.Fatalf("Held = %d bytes, %d spilled; want %d, %d", b, n, wantBytes, wantSpilled)
		}
	}
	held(0, 1)
	steps := []struct {
		op, name string
		size     int
		bytes    int64    // held in memory after
		folder   []string // the folder's objects after
	}{
		{"put", "a", 60, 60, []string{"old/x"}},
		{"put", "a", 90, 90, []string{"old/x"}}, // fits counting the 60 it replaces
		{"put", "a", 60, 60, []string{"old/x"}},
		{"put", "b", 60, 60, []string{"b", "old/x"}},       // does not fit: the folder
		{"put", "c", 200, 60, []string{"b", "c", "old/x"}}, // larger than the budget
		{"put", "a", 10, 10, []string{"b", "c", "old/x"}},  // replaced: 50 bytes freed
		{"put", "b", 50, 60, []string{"c", "old/x"}},       // fits now: out of the folder
		{"put", "a", 90, 50, []string{"a", "c", "old/x"}},  // a grows past the budget: spilled, its bytes freed
		{"delete", "b", 0, 0, []string{"a", "c", "old/x"}}, // frees
		{"delete", "c", 0, 0, []string{"a", "old/x"}},      // from the folder
		{"put", "old/x", 5, 5, []string{"a"}},              // an object it found moves to memory
	}
	for i, st := range steps {
		var err error
		if st.op == "put" {
			err = s.Put(ctx, st.name, []byte(strings.Repeat(st.name[:1], st.size)))
		} else {
			err = s.Delete(ctx, st.name)
		}
		if err != nil {
			t.Fatalf("step %d: %s %s: %v", i, st.op, st.name, err)
		}
		if b, _ := s.Held(); b != st.bytes {
			t.Fatalf("step %d: %s %s: %d bytes in memory, want %d", i, st.op, st.name, b, st.bytes)
		}
		if got := inFolder(); !reflect.DeepEqual(got, st.folder) {
			t.Fatalf("step %d: %s %s: the folder holds %q, want %q", i, st.op, st.name, got, st.folder)
		}
	}
	held(5, 1)
	if got, err := s.List(ctx, ""); err != nil || !reflect.DeepEqual(got, []string{"a", "old/x"}) {
		t.Fatalf("List = %q, %v", got, err)
	}
	for name, want := range map[string]string{"a": strings.Repeat("a", 90), "old/x": "ooooo"} {
		if got, err := s.Get(ctx, name); err != nil || string(got) != want {
			t.Fatalf("Get(%q) = %q, %v", name, got, err)
		}
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a deleted object = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "z", []byte("1")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("List after Close = %v", err)
	}
}
