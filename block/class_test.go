package block

import (
	"context"
	"errors"
	"testing"
	"time"
)

type put struct {
	key   string
	size  int64
	class Class
	err   error // want
}

// TestClassShares is the memory split as a table: a store of 100 bytes, 50
// for input, 70 for pinned blocks (30 reserved for execution).
func TestClassShares(t *testing.T) {
	tests := []struct {
		name     string
		puts     []put
		present  []string
		evicted  []string
		absent   []string
		wantPeak int64
	}{
		{
			name:    "input never evicts shuffle outputs",
			puts:    []put{{"s1", 40, Shuffle, nil}, {"s2", 40, Shuffle, nil}, {"in", 30, Input, ErrFull}},
			present: []string{"s1", "s2"}, absent: []string{"in"},
		},
		{
			name:    "input evicts cached partitions",
			puts:    []put{{"c1", 40, Cache, nil}, {"s1", 40, Shuffle, nil}, {"in", 30, Input, nil}},
			present: []string{"s1", "in"}, evicted: []string{"c1"},
		},
		{
			name:    "input share",
			puts:    []put{{"in1", 30, Input, nil}, {"in2", 25, Input, ErrFull}, {"st", 25, State, nil}},
			present: []string{"in1", "st"}, absent: []string{"in2"},
		},
		{
			name:    "pinned share",
			puts:    []put{{"st", 40, State, nil}, {"in", 30, Input, nil}, {"st2", 1, State, ErrFull}, {"s", 30, Shuffle, nil}},
			present: []string{"st", "in", "s"},
		},
		{
			name:    "state evicts shuffle outputs, least recently used first",
			puts:    []put{{"s1", 30, Shuffle, nil}, {"s2", 30, Shuffle, nil}, {"s3", 30, Shuffle, nil}, {"st", 20, State, nil}},
			present: []string{"s2", "s3", "st"}, evicted: []string{"s1"},
		},
		{
			name:    "a cached partition never evicts shuffle outputs",
			puts:    []put{{"s1", 50, Shuffle, nil}, {"s2", 40, Shuffle, nil}, {"c", 20, Cache, ErrFull}},
			present: []string{"s1", "s2"},
		},
		{
			name:    "shuffle evicts cache before shuffle",
			puts:    []put{{"s1", 40, Shuffle, nil}, {"c", 40, Cache, nil}, {"s2", 40, Shuffle, nil}},
			present: []string{"s1", "s2"}, evicted: []string{"c"},
		},
		{
			name:   "blocks that can never fit",
			puts:   []put{{"in", 51, Input, ErrTooLarge}, {"st", 71, State, ErrTooLarge}, {"s", 101, Shuffle, ErrTooLarge}},
			absent: []string{"in", "st", "s"},
		},
		{
			name:     "peak",
			puts:     []put{{"s1", 60, Shuffle, nil}, {"s2", 40, Shuffle, nil}, {"s3", 10, Shuffle, nil}},
			present:  []string{"s2", "s3"},
			evicted:  []string{"s1"},
			wantPeak: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evicted []string
			s := New(Options{MaxBytes: 100, OnEvict: func(k string) { evicted = append(evicted, k) }})
			for _, p := range tt.puts {
				err := s.Put(p.key, p.key, p.size, p.class)
				if !errors.Is(err, p.err) || (p.err == nil) != (err == nil) {
					t.Fatalf("Put(%s, %d, %s) = %v, want %v", p.key, p.size, p.class, err, p.err)
				}
				if err := s.checkInvariants(); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range tt.present {
				if !s.Contains(k) {
					t.Errorf("%s missing", k)
				}
			}
			for _, k := range tt.absent {
				if s.Contains(k) {
					t.Errorf("%s present", k)
				}
			}
			if len(evicted) != len(tt.evicted) {
				t.Fatalf("evicted %v, want %v", evicted, tt.evicted)
			}
			for i := range evicted {
				if evicted[i] != tt.evicted[i] {
					t.Fatalf("evicted %v, want %v", evicted, tt.evicted)
				}
			}
			if tt.wantPeak != 0 {
				if st := s.Stats(); st.PeakBytes != tt.wantPeak {
					t.Errorf("peak %d, want %d", st.PeakBytes, tt.wantPeak)
				}
			}
		})
	}
}

// PutWait holds an input block back while the input share is full and
// stores it once an interval's input is removed; a done context ends the
// wait with its cause.
func TestPutWaitIsBackpressure(t *testing.T) {
	s := New(Options{MaxBytes: 100})
	if err := s.Put("in1", nil, 40, Input); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.PutWait(context.Background(), "in2", nil, 40, Input) }()
	select {
	case err := <-done:
		t.Fatalf("PutWait returned %v with the input share full", err)
	case <-time.After(50 * time.Millisecond): // a wait, not a timing assertion: it must still be blocked
	}
	s.Remove("in1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !s.Contains("in2") {
		t.Fatal("in2 not stored")
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { done <- s.PutWait(ctx, "in3", nil, 40, Input) }()
	stop := errors.New("stopping")
	cancel(stop)
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("cancelled PutWait = %v, want the cause", err)
	}
	if s.Contains("in3") {
		t.Fatal("a cancelled PutWait stored its block")
	}
}
