// Package storetest holds the contract every [checkpoint.Store] must keep,
// as tests any implementation runs against itself: Run(t, open) with a
// function that opens a new, empty store. package checkpoint runs it over
// [checkpoint.Dir], package checkpoint/s3store over S3 (a real S3 server in
// the test process).
//
// The contract is what the Store interface's doc comments promise, on names
// both a file system and an object store can hold: no object is named by
// another's prefix up to a slash ("a" beside "a/b"), which [checkpoint.Dir]
// refuses and an object store allows.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/checkpoint"
)

// Run runs the contract's tests as subtests of t. open returns a new,
// empty store each time it is called; closing it is open's concern
// (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) checkpoint.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s checkpoint.Store)
	}{
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"List", testList},
		{"GetMissing", testGetMissing},
		{"Delete", testDelete},
		{"BadNames", testBadNames},
		{"Canceled", testCanceled},
		{"Ownership", testOwnership},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

func put(t *testing.T, s checkpoint.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), name, data); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

func list(t *testing.T, s checkpoint.Store, prefix string) []string {
	t.Helper()
	names, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return names
}

func testEmpty(t *testing.T, s checkpoint.Store) {
	for _, prefix := range []string{"", "a", "a/"} {
		if names := list(t, s, prefix); len(names) != 0 {
			t.Errorf("a new store lists %q under %q", names, prefix)
		}
	}
}

// allBytes is every byte value, twice.
var allBytes = func() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func testRoundTrip(t *testing.T, s checkpoint.Store) {
	objects := []struct {
		name string
		data []byte
	}{
		{"a", []byte("1")},
		{"empty", nil},
		{"binary", allBytes},
		{"big/object", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}, // 1 MiB
		{"state/7/00000000001700000003000/part-00001", []byte("part")},
		{"c/_COMMIT", []byte("commit")},
		{"odd/a b+c%20d?e#f&g=h;i,j'k", []byte("url-special characters")},
		{"odd/日本語/ünïcödé", []byte("utf-8")},
		{"odd/" + strings.Repeat("n", 200), []byte("long")},
	}
	for _, o := range objects {
		put(t, s, o.name, o.data)
	}
	for _, o := range objects {
		got, err := s.Get(t.Context(), o.name)
		if err != nil || !bytes.Equal(got, o.data) {
			t.Errorf("Get(%q) = %d bytes, %v; want the %d put", o.name, len(got), err, len(o.data))
		}
	}
	put(t, s, "a", []byte("overwritten"))
	if got, err := s.Get(t.Context(), "a"); err != nil || string(got) != "overwritten" {
		t.Errorf("after an overwrite Get = %q, %v", got, err)
	}
	put(t, s, "a", nil)
	if got, err := s.Get(t.Context(), "a"); err != nil || len(got) != 0 {
		t.Errorf("after an overwrite with nothing Get = %q, %v", got, err)
	}
	var want []string
	for _, o := range objects {
		want = append(want, o.name)
	}
	slices.Sort(want)
	if got := list(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("List = %q\nwant %q", got, want)
	}
}

func testList(t *testing.T, s checkpoint.Store) {
	for _, name := range []string{"a", "b/x", "b/y/z", "b.c", "bb", "c/_COMMIT", "o/~", "o/B", "o/a", "o/é", "o/a-", "o/a0"} {
		put(t, s, name, []byte(name))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		// Byte order: '-' < '.' < '/' < '0' < 'B' < 'a' < '~' < 0xc3 (é).
		{"", []string{"a", "b.c", "b/x", "b/y/z", "bb", "c/_COMMIT", "o/B", "o/a", "o/a-", "o/a0", "o/~", "o/é"}},
		{"b", []string{"b.c", "b/x", "b/y/z", "bb"}},
		{"b/", []string{"b/x", "b/y/z"}},
		{"b/y", []string{"b/y/z"}},
		{"b/y/z", []string{"b/y/z"}},
		{"c/_", []string{"c/_COMMIT"}},
		{"o/a", []string{"o/a", "o/a-", "o/a0"}},
		{"nothing/", nil},
		{"z", nil},
		{"b/x/", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			if got := list(t, s, tt.prefix); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func testGetMissing(t *testing.T, s checkpoint.Store) {
	put(t, s, "b/y/z", []byte("1"))
	put(t, s, "a", []byte("2"))
	// Never written; a prefix of an object; an object's name extended.
	for _, name := range []string{"missing", "b", "b/y", "a/under-a", "aa"} {
		t.Run(name, func(t *testing.T) {
			got, err := s.Get(t.Context(), name)
			if !errors.Is(err, checkpoint.ErrNotFound) {
				t.Errorf("Get(%q) = %q, %v; want ErrNotFound", name, got, err)
			}
		})
	}
}

func testDelete(t *testing.T, s checkpoint.Store) {
	for _, name := range []string{"a", "b/x", "b/y/z"} {
		put(t, s, name, []byte(name))
	}
	tests := []struct {
		name string
		want []string // List("") after the Delete
	}{
		{"b/y/z", []string{"a", "b/x"}},
		{"b/y/z", []string{"a", "b/x"}}, // again: not an error
		{"missing", []string{"a", "b/x"}},
		{"b", []string{"a", "b/x"}}, // a prefix names no object
		{"a", []string{"b/x"}},
		{"b/x", nil},
	}
	for _, tt := range tests {
		if err := s.Delete(t.Context(), tt.name); err != nil {
			t.Fatalf("Delete(%q) = %v", tt.name, err)
		}
		if got := list(t, s, ""); !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("after Delete(%q) List = %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := s.Get(t.Context(), "a"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("Get of a deleted object = %v, want ErrNotFound", err)
	}
	put(t, s, "b/y/z", []byte("again"))
	if got, err := s.Get(t.Context(), "b/y/z"); err != nil || string(got) != "again" {
		t.Errorf("Get after Delete and Put = %q, %v", got, err)
	}
}

func testBadNames(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	for _, name := range []string{"", "/abs", "a/../b", "a//b", "a/", ".tmp-x", "a/.hidden", "a\\b", "a\x00b"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			if err := s.Put(ctx, name, []byte("x")); !errors.Is(err, checkpoint.ErrInvalidName) {
				t.Errorf("Put = %v", err)
			}
			if _, err := s.Get(ctx, name); !errors.Is(err, checkpoint.ErrInvalidName) {
				t.Errorf("Get = %v", err)
			}
			if err := s.Delete(ctx, name); !errors.Is(err, checkpoint.ErrInvalidName) {
				t.Errorf("Delete = %v", err)
			}
		})
	}
	for _, prefix := range []string{"/abs/", "../", "a/../", "a//", "a\\", "\x00"} {
		if _, err := s.List(ctx, prefix); !errors.Is(err, checkpoint.ErrInvalidName) {
			t.Errorf("List(%q) = %v", prefix, err)
		}
	}
	if names := list(t, s, ""); len(names) != 0 {
		t.Errorf("refused names left objects: %q", names)
	}
}

func testCanceled(t *testing.T, s checkpoint.Store) {
	put(t, s, "a", []byte("1"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "b", []byte("2")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List = %v", err)
	}
	if err := s.Delete(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete = %v", err)
	}
	if got := list(t, s, ""); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("canceled operations changed the store: List = %q", got)
	}
}

// The caller owns what it put and what Get returned.
func testOwnership(t *testing.T, s checkpoint.Store) {
	data := []byte("original")
	put(t, s, "a", data)
	copy(data, "CHANGED!")
	got, err := s.Get(t.Context(), "a")
	if err != nil || string(got) != "original" {
		t.Fatalf("Get after the caller changed its slice = %q, %v", got, err)
	}
	copy(got, "CHANGED!")
	if again, err := s.Get(t.Context(), "a"); err != nil || string(again) != "original" {
		t.Fatalf("Get after the caller changed the returned slice = %q, %v", again, err)
	}
}

// Goroutines writing their own names and one shared name while another
// lists and reads: every operation succeeds, every read is a whole object,
// and the end state is exact.
func testConcurrent(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	const writers, puts = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	done := make(chan struct{})
	whole := func(b []byte) bool { // shared objects are a digit repeated
		return len(b) > 0 && bytes.Count(b, b[:1]) == len(b)
	}
	for g := range writers {
		wg.Go(func() {
			for i := range puts {
				own := fmt.Sprintf("own/%d/%02d", g, i)
				if err := s.Put(ctx, own, []byte(own)); err != nil {
					errs <- err
					return
				}
				if err := s.Put(ctx, "shared", bytes.Repeat([]byte{byte('0' + g)}, 1000*(i+1))); err != nil {
					errs <- err
					return
				}
				if i%2 == 1 {
					if err := s.Delete(ctx, own); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			names, err := s.List(ctx, "")
			if err != nil {
				errs <- err
				return
			}
			for _, n := range names {
				b, err := s.Get(ctx, n)
				switch {
				case errors.Is(err, checkpoint.ErrNotFound):
					// deleted since listed
				case err != nil:
					errs <- err
					return
				case n == "shared" && !whole(b):
					errs <- fmt.Errorf("read a mixture of writes to %q", n)
					return
				case n != "shared" && string(b) != n:
					errs <- fmt.Errorf("read %q from %q", b, n)
					return
				}
			}
		}
	})
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
			want = append(want, fmt.Sprintf("own/%d/%02d", g, i))
		}
	}
	want = append(want, "shared")
	if got := list(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %q\nwant %q", got, want)
	}
}
