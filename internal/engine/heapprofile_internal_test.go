package engine

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/pprof/profile"
)

// The heap profiles of a process: one at stop when asked, readable by
// pprof, and on a long run only the first and the latest stay on disk.
func TestHeapProfiles(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "heap")
	t.Setenv(EnvHeapProfile, prefix)
	t.Setenv(EnvHeapProfilePeriod, "1h") // only the profile at stop
	stop := profileHeap("w1", slog.New(slog.DiscardHandler))
	stop()
	f, err := os.Open(prefix + "-w1-1")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("the profile does not parse: %v", err)
	}
	if !slices.ContainsFunc(p.SampleType, func(s *profile.ValueType) bool { return s.Type == "inuse_space" }) {
		t.Fatalf("sample types %v, want inuse_space", p.SampleType)
	}

	hp := &heapProfiler{prefix: filepath.Join(dir, "long-"), log: slog.New(slog.DiscardHandler), id: "w2"}
	for range 3 * keepHeapProfiles {
		hp.write()
	}
	names, err := filepath.Glob(filepath.Join(dir, "long-*"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []int
	for _, n := range names {
		i, _ := strconv.Atoi(filepath.Base(n)[len("long-"):])
		kept = append(kept, i)
	}
	slices.Sort(kept)
	want := []int{1}
	for i := 3*keepHeapProfiles - keepHeapProfiles + 2; i <= 3*keepHeapProfiles; i++ {
		want = append(want, i)
	}
	if !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}

	t.Setenv(EnvHeapProfile, "")
	profileHeap("w3", slog.New(slog.DiscardHandler))() // not asked: nothing
	if names, _ := filepath.Glob(filepath.Join(dir, "heap-w3*")); len(names) != 0 {
		t.Fatalf("profiles written unasked: %v", names)
	}
}
