package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStepAt(t *testing.T) {
	steps := []rateStep{{1, 100}, {7, 500}, {13, 250}}
	tests := []struct {
		k    int64
		want int
	}{
		{0, 100}, {1, 100}, {6, 100}, {7, 500}, {12, 500}, {13, 250}, {1000, 250},
	}
	for _, tt := range tests {
		if got := stepAt(steps, tt.k); got != tt.want {
			t.Errorf("stepAt(%d) = %d, want %d", tt.k, got, tt.want)
		}
	}
	if got := stepAt(nil, 3); got != 0 {
		t.Errorf("stepAt of no steps = %d, want 0", got)
	}
}

func TestParseRates(t *testing.T) {
	tests := []struct {
		name, text string
		want       []rateStep
		err        string
	}{
		{"steps", "1 100\n7 500\n", []rateStep{{1, 100}, {7, 500}}, ""},
		{"blank lines", "\n1 100\n\n", []rateStep{{1, 100}}, ""},
		{"not increasing", "1 100\n1 200\n", nil, "not past"},
		{"three fields", "1 100 3\n", nil, "want"},
		{"negative records", "1 -5\n", nil, "want"},
		{"not a number", "one 100\n", nil, "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRates(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestRatesFile: what the master sets, a worker reading the file sees,
// step by step, as the search's probes change the rate.
func TestRatesFile(t *testing.T) {
	dir := t.TempDir()
	r, err := newRates(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newRatesFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.set(1, 2000); err != nil { // the first probe replaces the start's step
		t.Fatal(err)
	}
	if err := r.set(7, 3000); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[int64]int{1: 2000, 6: 2000, 7: 3000, 50: 3000} {
		if got, mine := f.at(k), r.at(k); got != want || mine != want {
			t.Errorf("interval %d: worker %d, master %d, want %d", k, got, mine, want)
		}
	}
	if err := r.set(3, 10); err == nil {
		t.Error("a step before the last one was taken")
	}
	if err := r.set(9, -1); err == nil {
		t.Error("a negative rate was taken")
	}
	// A file gone keeps the last steps read.
	if err := os.Remove(r.path); err != nil {
		t.Fatal(err)
	}
	if got := f.at(8); got != 3000 {
		t.Errorf("after the file is gone: %d, want 3000", got)
	}
	if _, err := newRatesFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a worker started on a missing schedule")
	}
}

// TestSearchRunKeepsOneContext: the search's probes run on one context, each
// at its own rate, the interval count carrying on from probe to probe.
func TestSearchRunKeepsOneContext(t *testing.T) {
	// The clock is manual, so a long interval costs no time; it keeps a slow
	// machine (or -race) from ending a probe early as plainly behind.
	cfg := Config{Workload: "wordcount", Batch: 10 * time.Second, Master: "local[2]", Window: 20 * time.Second}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	s, err := startSearch(Workloads[cfg.Workload], cfg, NewPool(1<<16), 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	ctx := s.ctx
	for i, n := range []int{1000, 20_000, 500} {
		took, err := s.probe(n, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if took <= 0 {
			t.Fatalf("probe %d: median interval %v", i, took)
		}
		if s.ctx != ctx {
			t.Fatal("a probe started a new context")
		}
		if s.i != 5*(i+1) {
			t.Fatalf("after probe %d: %d intervals run, want %d", i, s.i, 5*(i+1))
		}
		if got := s.rates.at(int64(s.i)); got != n {
			t.Fatalf("probe %d ran at %d records, want %d", i, got, n)
		}
	}
}

// TestSearchProbeEndsWhenPlainlyBehind: a probe whose interval takes over 3
// times the target ends there, not after all its intervals.
func TestSearchProbeEndsWhenPlainlyBehind(t *testing.T) {
	cfg := Config{Workload: "wordcount", Batch: 10 * time.Millisecond, Master: "local[2]", Window: 100 * time.Millisecond}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	s, err := startSearch(Workloads[cfg.Workload], cfg, NewPool(1<<16), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	// 200k records of WordCount take far over 27 ms on any machine.
	took, err := s.probe(200_000, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if took <= 27*time.Millisecond || s.i != 1 {
		t.Fatalf("probe took %v after %d intervals; want over 27 ms after 1", took, s.i)
	}
}
