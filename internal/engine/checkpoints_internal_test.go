package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
)

// TestCommittedReaderReadsTheCommitLate: a reader of a committed checkpoint
// costs nothing until its first read (a worker adopts a new one every
// interval and reads few); a read before the commit exists fails clearly
// and the next read tries again.
func TestCommittedReaderReadsTheCommitLate(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t, Config{BatchInterval: time.Second, CheckpointDir: t.TempDir()})
	store, err := e.CheckpointStore()
	if err != nil {
		t.Fatal(err)
	}
	dir := CheckpointDir(7, "", 1_700_000_001_000)
	read := e.CommittedReader(dir) // nothing there yet: no error now
	if _, err := read(ctx, 0); err == nil {
		t.Fatal("read a checkpoint with no commit")
	}
	parts := []string{dir + "/part-00000", dir + "/part-00001"}
	for i, p := range parts {
		if err := store.Put(ctx, p, checkpoint.Frame("state-part", 1, []byte{byte('a' + i)})); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := json.Marshal(CommitMeta{Stream: 7, Partitions: 2, Parts: parts})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Commit(ctx, store, dir, meta); err != nil {
		t.Fatal(err)
	}
	for p, want := range []string{"a", "b"} {
		got, err := read(ctx, p)
		if err != nil || string(got) != want {
			t.Fatalf("partition %d: %q, %v; want %q", p, got, err, want)
		}
	}
	if _, err := read(ctx, 2); err == nil {
		t.Fatal("read a partition the checkpoint does not have")
	}
}
