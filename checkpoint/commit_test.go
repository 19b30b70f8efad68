package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// ckptDir names the checkpoint of interval i under prefix "state".
func ckptDir(i int) string { return fmt.Sprintf("state/%020d", int64(i)*1000) }

// partData is the content of part p of checkpoint i: a frame, so a reader
// can tell it whole.
func partData(i, p int) []byte {
	return Frame("part", 1, []byte(fmt.Sprintf("checkpoint %d part %d", i, p)))
}

// writeCheckpoint writes parts parts of checkpoint i and, if commit, its
// commit record with meta "meta i".
func writeCheckpoint(ctx context.Context, s Store, i, parts int, commit bool) error {
	for p := range parts {
		if err := s.Put(ctx, fmt.Sprintf("%s/part-%05d", ckptDir(i), p), partData(i, p)); err != nil {
			return err
		}
	}
	if !commit {
		return nil
	}
	return Commit(ctx, s, ckptDir(i), []byte(fmt.Sprint("meta ", i)))
}

// verifyParts is a Latest verify function that reads every part.
func verifyParts(ctx context.Context, s Store) func(context.Context, *CommitRecord) error {
	return func(ctx context.Context, c *CommitRecord) error {
		for _, p := range c.Parts {
			b, err := s.Get(ctx, c.Dir+"/"+p)
			if err != nil {
				return err
			}
			if _, _, _, err := Unframe(b); err != nil {
				return fmt.Errorf("%s/%s: %w", c.Dir, p, err)
			}
		}
		return nil
	}
}

func TestCommitRoundTrip(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	if _, err := ReadCommit(ctx, d, ckptDir(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadCommit of nothing = %v, want ErrNotFound", err)
	}
	mustPut(t, d, ckptDir(1)+"/nested/part-b", partData(1, 1))
	if err := writeCheckpoint(ctx, d, 1, 2, true); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCommit(ctx, d, ckptDir(1)+"/")
	if err != nil {
		t.Fatal(err)
	}
	want := &CommitRecord{Dir: ckptDir(1), Parts: []string{"nested/part-b", "part-00000", "part-00001"}, Meta: []byte("meta 1")}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("ReadCommit = %+v, want %+v", c, want)
	}
	if err := Verify(ctx, d, c); err != nil {
		t.Fatal(err)
	}
	// Committing again replaces the record (and lists the parts anew).
	if err := Commit(ctx, d, ckptDir(1), nil); err != nil {
		t.Fatal(err)
	}
	if c, err := ReadCommit(ctx, d, ckptDir(1)); err != nil || len(c.Meta) != 0 || len(c.Parts) != 3 {
		t.Fatalf("recommitted: %+v, %v", c, err)
	}
	if err := Commit(ctx, d, "../x", nil); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Commit(../x) = %v", err)
	}
	// A zero-part checkpoint is valid.
	if err := writeCheckpoint(ctx, d, 2, 0, true); err != nil {
		t.Fatal(err)
	}
	got, err := Committed(ctx, d, "state")
	if err != nil || !reflect.DeepEqual(got, []string{ckptDir(1), ckptDir(2)}) {
		t.Fatalf("Committed = %q, %v", got, err)
	}
}

func TestRetainKeepsExactlyK(t *testing.T) {
	// Checkpoints 1..6; some uncommitted (crash leftovers or in progress),
	// one whose commit record is corrupt.
	tests := []struct {
		name        string
		uncommitted []int
		corrupt     []int
		keep        int
		want        []int // directories left
	}{
		{"keep 1", nil, nil, 1, []int{6}},
		{"keep 3", nil, nil, 3, []int{4, 5, 6}},
		{"keep all", nil, nil, 6, []int{1, 2, 3, 4, 5, 6}},
		{"keep more than there are", nil, nil, 10, []int{1, 2, 3, 4, 5, 6}},
		{"old leftovers go, newer in-progress stays", []int{2, 6}, nil, 2, []int{4, 5, 6}},
		{"a leftover among the kept stays", []int{4}, nil, 3, []int{3, 4, 5, 6}},
		{"a corrupt commit is not committed", nil, []int{5}, 2, []int{4, 5, 6}},
		{"nothing committed: nothing deleted", []int{1, 2, 3, 4, 5, 6}, nil, 1, []int{1, 2, 3, 4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			d := openDir(t, t.TempDir())
			mustPut(t, d, "state/not-a-checkpoint", []byte("x"))
			for i := 1; i <= 6; i++ {
				commit := !contains(tt.uncommitted, i)
				if err := writeCheckpoint(ctx, d, i, 2, commit); err != nil {
					t.Fatal(err)
				}
				if contains(tt.corrupt, i) {
					mustPut(t, d, ckptDir(i)+"/"+CommitName, []byte("garbage"))
				}
			}
			if err := Retain(ctx, d, "state/", tt.keep); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, ckptDir(i))
			}
			dirs, _, err := checkpointDirs(ctx, d, "state")
			if err != nil || !reflect.DeepEqual(dirs, want) {
				t.Fatalf("left %q, %v; want %q", dirs, err, want)
			}
			for _, dir := range dirs {
				if n := len(mustList(t, d, dir+"/")); n < 2 {
					t.Errorf("%s lost parts: %d objects", dir, n)
				}
			}
			if got := mustList(t, d, "state/not"); len(got) != 1 {
				t.Error("Retain deleted an object that is not in a checkpoint")
			}
		})
	}
	d := openDir(t, t.TempDir())
	if err := Retain(t.Context(), d, "state", 0); err == nil {
		t.Error("Retain(keep 0) deleted everything without complaint")
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// A Retain that fails part way (here: the third Delete) leaves no
// committed checkpoint with missing parts, and the next Retain finishes.
func TestRetainInterrupted(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	for i := 1; i <= 3; i++ {
		if err := writeCheckpoint(ctx, d, i, 3, true); err != nil {
			t.Fatal(err)
		}
	}
	fs := &FaultStore{Store: d, Inject: FailNth(OpDelete, 3)}
	if err := Retain(ctx, fs, "state", 1); !errors.Is(err, ErrInjected) {
		t.Fatalf("Retain = %v, want the injected fault", err)
	}
	committed, err := Committed(ctx, d, "state")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range committed {
		c, err := ReadCommit(ctx, d, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(ctx, d, c); err != nil {
			t.Fatalf("a committed checkpoint lost parts: %v", err)
		}
	}
	if err := Retain(ctx, d, "state", 1); err != nil {
		t.Fatal(err)
	}
	if dirs, _, _ := checkpointDirs(ctx, d, "state"); !reflect.DeepEqual(dirs, []string{ckptDir(3)}) {
		t.Fatalf("after a second Retain: %q", dirs)
	}
}

func TestLatestFallsBack(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// break_ damages checkpoint 3, the newest of three.
		break_   func(t *testing.T, s Store)
		want     int   // checkpoint Latest returns (0: none)
		skipWhy  error // what the skipped checkpoint's error wraps
		hardFail error // Latest fails with this instead
	}{
		{"newest is good", func(*testing.T, Store) {}, 3, nil, nil},
		{"newest commit corrupt", func(t *testing.T, s Store) {
			b, _ := s.Get(ctx, ckptDir(3)+"/"+CommitName)
			b[len(b)/2] ^= 1
			mustPut(t, s, ckptDir(3)+"/"+CommitName, b)
		}, 2, ErrCorrupt, nil},
		{"newest commit truncated", func(t *testing.T, s Store) {
			b, _ := s.Get(ctx, ckptDir(3)+"/"+CommitName)
			mustPut(t, s, ckptDir(3)+"/"+CommitName, b[:len(b)-3])
		}, 2, ErrCorrupt, nil},
		{"newest commit of another kind", func(t *testing.T, s Store) {
			mustPut(t, s, ckptDir(3)+"/"+CommitName, partData(3, 0))
		}, 2, ErrCorrupt, nil},
		{"newest lost a part", func(t *testing.T, s Store) {
			s.Delete(ctx, ckptDir(3)+"/part-00001")
		}, 2, ErrIncomplete, nil},
		{"newest has a corrupt part", func(t *testing.T, s Store) {
			mustPut(t, s, ckptDir(3)+"/part-00001", partData(3, 1)[:9])
		}, 2, ErrCorrupt, nil},
		{"newest never committed", func(t *testing.T, s Store) {
			s.Delete(ctx, ckptDir(3)+"/"+CommitName)
		}, 2, ErrIncomplete, nil},
		{"newest from a newer program", func(t *testing.T, s Store) {
			mustPut(t, s, ckptDir(3)+"/"+CommitName, Frame(commitKind, commitVersion+1, nil))
		}, 0, nil, ErrUnknownVersion},
		{"two newest broken", func(t *testing.T, s Store) {
			s.Delete(ctx, ckptDir(3)+"/part-00000")
			mustPut(t, s, ckptDir(2)+"/"+CommitName, nil)
		}, 1, ErrIncomplete, nil},
		{"all broken", func(t *testing.T, s Store) {
			for i := 1; i <= 3; i++ {
				s.Delete(ctx, ckptDir(i)+"/part-00000")
			}
		}, 0, ErrIncomplete, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir())
			for i := 1; i <= 3; i++ {
				if err := writeCheckpoint(ctx, d, i, 2, true); err != nil {
					t.Fatal(err)
				}
			}
			tt.break_(t, d)
			c, skipped, err := Latest(ctx, d, "state", verifyParts(ctx, d))
			if tt.hardFail != nil {
				if !errors.Is(err, tt.hardFail) {
					t.Fatalf("Latest = %v, want %v", err, tt.hardFail)
				}
				return
			}
			if err != nil {
				t.Fatalf("Latest: %v (skipped %v)", err, skipped)
			}
			if c.Dir != ckptDir(tt.want) || string(c.Meta) != fmt.Sprint("meta ", tt.want) {
				t.Fatalf("Latest = %+v, want checkpoint %d", c, tt.want)
			}
			if len(skipped) != 3-tt.want {
				t.Fatalf("skipped %v, want %d", skipped, 3-tt.want)
			}
			for _, s := range skipped {
				if s.Dir != ckptDir(3) && s.Dir != ckptDir(2) {
					t.Errorf("skipped %s", s.Dir)
				}
			}
			if len(skipped) > 0 {
				if !errors.Is(skipped[0].Err, tt.skipWhy) || !strings.Contains(skipped[0].String(), skipped[0].Dir) {
					t.Errorf("skipped %v, want an error wrapping %v", skipped[0], tt.skipWhy)
				}
			}
		})
	}
}

func TestCommitPayloadRefusesNonsense(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	for i, payload := range [][]byte{
		nil,
		{0xff},
		{2, 1, 'a'},
		append([]byte{1, 5}, "../xy"...),
		append([]byte{2, 1, 'b', 1}, 'a'), // not sorted
	} {
		mustPut(t, d, ckptDir(i)+"/"+CommitName, Frame(commitKind, commitVersion, payload))
		if _, err := ReadCommit(ctx, d, ckptDir(i)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("payload %q: ReadCommit = %v, want ErrCorrupt", payload, err)
		}
	}
	// And a good one decodes.
	mustPut(t, d, "x/"+CommitName, Frame(commitKind, commitVersion, encodeCommit([]string{"a", "b/c"}, []byte("m"))))
	if c, err := ReadCommit(ctx, d, "x"); err != nil || !reflect.DeepEqual(c.Parts, []string{"a", "b/c"}) || !bytes.Equal(c.Meta, []byte("m")) {
		t.Fatalf("ReadCommit = %+v, %v", c, err)
	}
}
