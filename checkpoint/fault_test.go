package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestInjectors(t *testing.T) {
	// pattern runs ops through inj and returns which failed.
	pattern := func(inj Injector, ops []Op) string {
		var b strings.Builder
		for i, op := range ops {
			err := inj(op, fmt.Sprintf("x/%d", i))
			switch {
			case err == nil:
				b.WriteByte('.')
			case errors.Is(err, ErrInjected) && strings.Contains(err.Error(), op.String()):
				b.WriteByte('F')
			default:
				b.WriteString("?" + err.Error())
			}
		}
		return b.String()
	}
	puts := []Op{OpPut, OpPut, OpPut, OpPut, OpPut}
	mixed := []Op{OpGet, OpPut, OpList, OpPut, OpDelete, OpPut}
	tests := []struct {
		name string
		inj  Injector
		ops  []Op
		want string
	}{
		{"3rd put", FailNth(OpPut, 3), puts, "..F.."},
		{"2nd put among others", FailNth(OpPut, 2), mixed, "...F.."},
		{"never", FailNth(OpPut, 0), puts, "....."},
		{"prefix", FailPrefix(OpPut, "x/1"), puts, ".F..."},
		{"prefix of another op", FailPrefix(OpGet, "x/"), mixed, "F....."},
		{"random p=0", FailRandomly(rand.New(rand.NewPCG(1, 2)), 0), mixed, "......"},
		{"random p=1", FailRandomly(rand.New(rand.NewPCG(1, 2)), 1), mixed, "FFFFFF"},
		{"random p=1, deletes only", FailRandomly(rand.New(rand.NewPCG(1, 2)), 1, OpDelete), mixed, "....F."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pattern(tt.inj, tt.ops); got != tt.want {
				t.Fatalf("failures %s, want %s", got, tt.want)
			}
		})
	}
	// The same seed fails the same operations.
	many := make([]Op, 200)
	for i := range many {
		many[i] = Op(1 + i%4)
	}
	a := pattern(FailRandomly(rand.New(rand.NewPCG(7, 7)), 0.3), many)
	b := pattern(FailRandomly(rand.New(rand.NewPCG(7, 7)), 0.3), many)
	c := pattern(FailRandomly(rand.New(rand.NewPCG(8, 8)), 0.3), many)
	if a != b || a == c || !strings.Contains(a, "F") || !strings.Contains(a, ".") {
		t.Fatalf("seeded failures not deterministic per seed:\n%s\n%s\n%s", a, b, c)
	}
}

// FaultStore with seeded random failures under a checkpoint and log
// workload: whatever fails, what is committed is complete and the log
// replays exactly the acknowledged appends.
func TestFaultStoreRandomWorkload(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx := t.Context()
			d := openDir(t, t.TempDir())
			fs := &FaultStore{Store: d, Inject: FailRandomly(rand.New(rand.NewPCG(seed, 0)), 0.15, OpPut, OpDelete)}
			l, err := OpenLog(ctx, d, "meta/log")
			if err != nil {
				t.Fatal(err)
			}
			l.s = fs // appends through the faulty store
			var acked []record
			lastCommitted := 0
			for i := 1; i <= 12; i++ {
				payload := fmt.Sprint("interval ", i)
				if seq, err := l.Append(ctx, "manifest", []byte(payload)); err == nil {
					acked = append(acked, record{seq, "manifest", payload})
				}
				if writeCheckpoint(ctx, fs, i, 3, true) == nil {
					lastCommitted = i
				}
				Retain(ctx, fs, "state", 2) // may fail part way
			}
			got, err := replay(openLog(t, d))
			if err != nil || !reflect.DeepEqual(got, acked) {
				t.Fatalf("Replay = %v, %v\nacked %v", got, err, acked)
			}
			c, skipped, err := Latest(ctx, d, "state", verifyParts(ctx, d))
			if lastCommitted == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("nothing committed, Latest = %v, %v", c, err)
				}
				return
			}
			if err != nil || c.Dir != ckptDir(lastCommitted) {
				t.Fatalf("Latest = %+v, %v (skipped %v), want checkpoint %d", c, err, skipped, lastCommitted)
			}
			for _, s := range skipped { // newer ones whose Commit failed
				if s.Dir <= c.Dir || !errors.Is(s.Err, ErrIncomplete) {
					t.Errorf("skipped %v", s)
				}
			}
		})
	}
}

// A CrashDir leaves on disk what a process killed at each stage of a Put
// leaves, and OpenDir recovers from it.
func TestCrashDirLeavesWhatAKilledProcessLeaves(t *testing.T) {
	old, next := Frame("v", 1, []byte("old")), Frame("v", 2, []byte("the new contents"))
	tests := []struct {
		stage   CrashStage
		tmp     []byte // the temporary left on disk, if any
		visible []byte // a/b before reopening, and after
	}{
		{CrashBeforeWrite, nil, old},
		{CrashMidWrite, next[:len(next)/2], old},
		{CrashBeforeRename, next, old},
		{CrashAfterRename, nil, next},
	}
	for _, tt := range tests {
		t.Run(tt.stage.String(), func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			c, err := OpenCrashDir(root)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			mustPut(t, c, "a/b", old)
			c.CrashAt(2, tt.stage)
			if err := c.Put(ctx, "a/b", next); !errors.Is(err, ErrCrashed) {
				t.Fatalf("the crashing Put returned %v", err)
			}
			if !c.Crashed() || c.Writes() != 2 {
				t.Fatalf("Crashed = %v, Writes = %d", c.Crashed(), c.Writes())
			}
			for _, err := range []error{
				c.Put(ctx, "x", nil),
				c.Delete(ctx, "a/b"),
				func() error { _, err := c.Get(ctx, "a/b"); return err }(),
				func() error { _, err := c.List(ctx, ""); return err }(),
			} {
				if !errors.Is(err, ErrCrashed) {
					t.Fatalf("an operation after the crash returned %v", err)
				}
			}
			// On disk, as the process left it.
			files := filesUnder(t, root)
			var tmps []string
			for _, f := range files {
				if strings.HasPrefix(filepath.Base(f), tmpPrefix) {
					tmps = append(tmps, f)
				}
			}
			if (tt.tmp != nil) != (len(tmps) == 1) || len(tmps) > 1 {
				t.Fatalf("files on disk after the crash: %q", files)
			}
			if tt.tmp != nil {
				b, _ := os.ReadFile(filepath.Join(root, tmps[0]))
				if string(b) != string(tt.tmp) {
					t.Fatalf("temporary holds %q, want %q", b, tt.tmp)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(root, "a", "b")); string(b) != string(tt.visible) {
				t.Fatalf("a/b holds %q, want %q", b, tt.visible)
			}
			// Reopened: only complete objects, no temporaries.
			d := openDir(t, root)
			if got := mustList(t, d, ""); !reflect.DeepEqual(got, []string{"a/b"}) {
				t.Fatalf("List after reopening = %q", got)
			}
			if b, err := d.Get(ctx, "a/b"); err != nil || string(b) != string(tt.visible) {
				t.Fatalf("Get after reopening = %q, %v", b, err)
			}
			if files := filesUnder(t, root); !reflect.DeepEqual(files, []string{"a/b"}) {
				t.Fatalf("files after reopening: %q", files)
			}
		})
	}
}

// crashState is what a workload got acknowledged before it crashed.
type crashState struct {
	appended   []record // appends acknowledged
	attempted  record   // the append that crashed, if one did
	committed  int      // newest checkpoint whose Commit returned nil
	committing int      // the checkpoint being committed, if one is
	truncating uint64   // the log is being or was truncated before this
}

// workload appends to the log, writes and commits checkpoints, retains
// two and truncates the log, stopping at the first error.
func workload(ctx context.Context, s Store, st *crashState) error {
	l, err := OpenLog(ctx, s, "meta/log")
	if err != nil {
		return err
	}
	for i := 1; i <= 4; i++ {
		st.attempted = record{l.Next(), "manifest", fmt.Sprint("interval ", i)}
		seq, err := l.Append(ctx, "manifest", []byte(st.attempted.Payload))
		if err != nil {
			return err
		}
		st.appended = append(st.appended, record{seq, "manifest", st.attempted.Payload})
		st.attempted = record{}
		if err := writeCheckpoint(ctx, s, i, 3, false); err != nil {
			return err
		}
		st.committing = i
		if err := Commit(ctx, s, ckptDir(i), []byte(fmt.Sprint("meta ", i))); err != nil {
			return err
		}
		st.committed, st.committing = i, 0
		if err := Retain(ctx, s, "state", 2); err != nil {
			return err
		}
		if i == 3 {
			st.truncating = 2
			if err := l.Truncate(ctx, 2); err != nil {
				return err
			}
		}
	}
	return nil
}

// A crash at every write of the workload, at every stage of that write:
// reopened, the directory holds only complete objects, the log replays a
// prefix of what was appended (with every acknowledged record) and goes on
// after it, and Latest finds the newest committed checkpoint, whole.
func TestCrashAtEveryWrite(t *testing.T) {
	ctx := t.Context()
	c, err := OpenCrashDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := workload(ctx, c, &crashState{}); err != nil {
		t.Fatal(err)
	}
	writes := c.Writes()
	c.Close()
	if writes < 20 {
		t.Fatalf("the workload does only %d writes", writes)
	}
	for n := 1; n <= writes; n++ {
		for _, stage := range CrashStages {
			t.Run(fmt.Sprintf("write %d %s", n, stage), func(t *testing.T) {
				t.Parallel() // the time is fsync's, not CPU's
				root := t.TempDir()
				c, err := OpenCrashDir(root)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.CrashAt(n, stage)
				var st crashState
				if err := workload(t.Context(), c, &st); !errors.Is(err, ErrCrashed) {
					t.Fatalf("workload = %v, want ErrCrashed", err)
				}
				checkRecovery(t, root, stage, &st)
			})
		}
	}
}

func checkRecovery(t *testing.T, root string, stage CrashStage, st *crashState) {
	ctx := t.Context()
	d := openDir(t, root)

	// Every object present is complete; no temporary is left.
	names := mustList(t, d, "")
	for _, n := range names {
		b, err := d.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := Unframe(b); err != nil {
			t.Fatalf("object %s after the crash: %v", n, err)
		}
	}
	if files := filesUnder(t, root); len(files) != len(names) {
		t.Fatalf("files on disk %q, objects %q", files, names)
	}

	// The log replays a contiguous run of the appends: every
	// acknowledged one not truncated, and perhaps the one that crashed.
	l := openLog(t, d)
	got, err := replay(l)
	if err != nil {
		t.Fatalf("Replay after the crash: %v", err)
	}
	all := st.appended
	if st.attempted.Seq != 0 {
		all = append(all, st.attempted)
	}
	if len(got) > 0 {
		first := int(got[0].Seq) - 1
		if first > len(all) || !reflect.DeepEqual(got, all[first:min(first+len(got), len(all))]) {
			t.Fatalf("Replay = %v, not a run of the appends %v", got, all)
		}
	}
	lastSeq := uint64(0)
	if len(got) > 0 {
		lastSeq = got[len(got)-1].Seq
	}
	if lastSeq < uint64(len(st.appended)) {
		t.Fatalf("Replay = %v lost acknowledged appends %v", got, st.appended)
	}
	if lastSeq > uint64(len(st.appended)) && stage != CrashAfterRename {
		t.Fatalf("Replay = %v shows an append that crashed before its rename", got)
	}
	if len(got) > 0 && got[0].Seq != 1 && got[0].Seq > st.truncating {
		t.Fatalf("Replay = %v lost records truncation did not delete", got)
	}
	if l.Next() != lastSeq+1 {
		t.Fatalf("reopened log's Next = %d, want %d", l.Next(), lastSeq+1)
	}

	// No committed checkpoint lacks a part.
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
			t.Fatalf("committed checkpoint lost a part: %v", err)
		}
	}
	// Latest is the newest acknowledged commit, or the one whose commit
	// record crashed after its rename.
	newest := st.committed
	if st.committing != 0 && stage == CrashAfterRename {
		newest = st.committing
	}
	c, skipped, err := Latest(ctx, d, "state", verifyParts(ctx, d))
	switch {
	case err != nil && errors.Is(err, ErrNotFound) && newest == 0:
	case err != nil:
		t.Fatalf("Latest: %v (skipped %v; want checkpoint %d)", err, skipped, newest)
	case c.Dir != ckptDir(newest):
		t.Fatalf("Latest = %s, want checkpoint %d", c.Dir, newest)
	}
	if err == nil {
		for _, p := range c.Parts {
			b, err := d.Get(ctx, c.Dir+"/"+p)
			var i, k int
			fmt.Sscanf(c.Dir+"/"+p, "state/%d/part-%d", &i, &k)
			if err != nil || string(b) != string(partData(i/1000, k)) {
				t.Fatalf("part %s/%s = %q, %v", c.Dir, p, b, err)
			}
		}
	}

	// Work goes on: Retain cleans up, the log appends after its last
	// record, a new checkpoint commits.
	if err := Retain(ctx, d, "state", 2); err != nil {
		t.Fatal(err)
	}
	if seq, err := l.Append(ctx, "manifest", []byte("after")); err != nil || seq != lastSeq+1 {
		t.Fatalf("Append after recovery = %d, %v", seq, err)
	}
	if err := writeCheckpoint(ctx, d, 9, 2, true); err != nil {
		t.Fatal(err)
	}
	if c, _, err := Latest(ctx, d, "state", nil); err != nil || c.Dir != ckptDir(9) {
		t.Fatalf("Latest after recovery = %v, %v", c, err)
	}
}
