package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/dstream/dstream/checkpoint"
)

// RunConditional runs the contract of [checkpoint.Conditional] as subtests
// of t. open returns a new, empty store each time it is called.
func RunConditional(t *testing.T, open func(t *testing.T) checkpoint.Conditional) {
	tests := []struct {
		name string
		run  func(t *testing.T, s checkpoint.Conditional)
	}{
		{"Sequence", testCondSequence},
		{"OneWinnerAmongRacers", testCondRace},
		{"BadName", testCondBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// testCondSequence walks one object through the conditions, one step at a
// time, each checked against the expected outcome.
func testCondSequence(t *testing.T, s checkpoint.Conditional) {
	ctx := t.Context()
	const name = "lease/master"
	if _, _, err := s.GetVersion(ctx, name); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("GetVersion of a missing object: err = %v, want ErrNotFound", err)
	}
	if _, err := s.PutIf(ctx, name, []byte("x"), "\"no-such-version\""); !errors.Is(err, checkpoint.ErrConflict) {
		t.Fatalf("PutIf at a version of a missing object: err = %v, want ErrConflict", err)
	}
	v1, err := s.PutIf(ctx, name, []byte("one"), "")
	if err != nil || v1 == "" {
		t.Fatalf("PutIf absent on a missing object = %q, %v; want a version", v1, err)
	}
	if _, err := s.PutIf(ctx, name, []byte("again"), ""); !errors.Is(err, checkpoint.ErrConflict) {
		t.Fatalf("PutIf absent on a present object: err = %v, want ErrConflict", err)
	}
	data, v, err := s.GetVersion(ctx, name)
	if err != nil || string(data) != "one" || v != v1 {
		t.Fatalf("GetVersion = %q, %q, %v; want \"one\", %q", data, v, err, v1)
	}
	v2, err := s.PutIf(ctx, name, []byte("two"), v1)
	if err != nil || v2 == "" || v2 == v1 {
		t.Fatalf("PutIf at the current version = %q, %v; want a new version (old %q)", v2, err, v1)
	}
	if _, err := s.PutIf(ctx, name, []byte("stale"), v1); !errors.Is(err, checkpoint.ErrConflict) {
		t.Fatalf("PutIf at a stale version: err = %v, want ErrConflict", err)
	}
	data, v, err = s.GetVersion(ctx, name)
	if err != nil || string(data) != "two" || v != v2 {
		t.Fatalf("GetVersion after the refused writes = %q, %q, %v; want \"two\", %q", data, v, err, v2)
	}
}

// testCondRace: racers that all saw one version try to replace it; exactly
// one wins, and the object holds the winner's data.
func testCondRace(t *testing.T, s checkpoint.Conditional) {
	ctx := t.Context()
	const name = "race"
	v0, err := s.PutIf(ctx, name, []byte("start"), "")
	if err != nil {
		t.Fatal(err)
	}
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = s.PutIf(ctx, name, []byte{byte('a' + i)}, v0)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, checkpoint.ErrConflict):
			t.Fatalf("racer %d: err = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer won")
	}
	data, _, err := s.GetVersion(ctx, name)
	if err != nil || string(data) != string(rune('a'+winner)) {
		t.Fatalf("object = %q, %v; want the winner's %q", data, err, string(rune('a'+winner)))
	}
}

func testCondBadName(t *testing.T, s checkpoint.Conditional) {
	ctx := t.Context()
	for _, name := range []string{"", "/abs", "a//b", ".hidden"} {
		if _, _, err := s.GetVersion(ctx, name); !errors.Is(err, checkpoint.ErrInvalidName) {
			t.Errorf("GetVersion(%q): err = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.PutIf(ctx, name, nil, ""); !errors.Is(err, checkpoint.ErrInvalidName) {
			t.Errorf("PutIf(%q): err = %v, want ErrInvalidName", name, err)
		}
	}
}
