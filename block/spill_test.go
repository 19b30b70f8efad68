package block

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func encodeForTest(v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return []byte("enc:" + s), nil
	}
	return nil, errors.New("not a string")
}

func TestShuffleOutputsSpillInsteadOfVanishing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	s := New(Options{MaxBytes: 100, SpillDir: dir, Encode: encodeForTest, MaxSpillBytes: 30})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put("shuffle_a", "aaaa", 60, Shuffle))
	must(s.Put("cache_c", "cccc", 30, Cache))
	must(s.Put("shuffle_b", "bbbb", 60, Shuffle)) // evicts the cache block (dropped), then shuffle_a (spilled)
	if s.Contains("cache_c") {
		t.Error("a cached partition was kept; it should be dropped, not spilled")
	}
	v, ok := s.Get("shuffle_a")
	if !ok || string(v.(Encoded)) != "enc:aaaa" {
		t.Fatalf("Get(spilled) = %v, %v; want the encoded block", v, ok)
	}
	if !s.Contains("shuffle_a") {
		t.Error("Contains(spilled) = false")
	}
	st := s.Stats()
	if st.SpilledBlocks != 1 || st.SpilledBytes != 8 || st.Spills != 1 || st.Bytes != 60 {
		t.Errorf("stats %+v: want one 8-byte block on disk, 60 bytes in memory", st)
	}
	must(s.checkInvariants())

	// Past MaxSpillBytes, an evicted output is dropped (recomputed from
	// lineage), never written.
	must(s.Put("shuffle_x", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 60, Shuffle)) // spills b (8 bytes: 16 on disk)
	must(s.Put("shuffle_y", "y", 60, Shuffle))                              // x would take 34 more bytes: dropped
	if s.Contains("shuffle_x") {
		t.Error("a block past the spill limit was kept")
	}
	if st := s.Stats(); st.SpilledBlocks != 2 || st.SpilledBytes != 16 {
		t.Errorf("stats %+v: want two blocks, 16 bytes on disk", st)
	}

	// Putting a key again replaces its spilled copy; Remove and RemoveIf
	// delete the files.
	must(s.Put("shuffle_a", "AAAA", 10, Shuffle))
	if v, _ := s.Get("shuffle_a"); v != "AAAA" {
		t.Errorf("after a new Put, Get = %v", v)
	}
	if !s.Remove("shuffle_a") || s.Contains("shuffle_a") {
		t.Error("Remove of a replaced block")
	}
	if n := s.RemoveIf(func(k string) bool { return k == "shuffle_b" }); n != 1 {
		t.Errorf("RemoveIf removed %d, want the spilled block", n)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("files left in the spill folder: %v", files)
	}
	must(s.Close())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left the spill folder: %v", err)
	}
}

// A value the encoder refuses, or a folder that cannot be written, means
// the block is dropped as without spilling: never an error for the put.
func TestSpillFailuresDropTheBlock(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]Options{
		"encoder refuses":  {MaxBytes: 100, SpillDir: t.TempDir(), Encode: encodeForTest},
		"folder is a file": {MaxBytes: 100, SpillDir: filepath.Join(file, "spill"), Encode: encodeForTest},
	} {
		s := New(opts)
		if err := s.Put("shuffle_a", 42, 60, Shuffle); err != nil {
			t.Fatal(err)
		}
		var v any = "bbbb"
		if name == "encoder refuses" {
			v = 43
		}
		if err := s.Put("shuffle_b", v, 60, Shuffle); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "folder is a file" {
			if s.Contains("shuffle_a") {
				t.Errorf("%s: the block survived a failed write", name)
			}
		} else if s.Contains("shuffle_a") {
			t.Errorf("%s: a block the encoder refused is on disk", name)
		}
		if st := s.Stats(); st.Evictions != 1 || st.SpilledBlocks != 0 {
			t.Errorf("%s: stats %+v, want one eviction and nothing spilled", name, st)
		}
	}
}
