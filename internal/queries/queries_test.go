package queries

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestRunChecksArguments(t *testing.T) {
	r := New(time.Second)
	echo := func(_ context.Context, interval string, args Args) (any, time.Time, error) {
		return map[string]string(args), time.UnixMilli(7), nil
	}
	if err := r.Add(Info{Name: "q", Params: []Param{{Name: "k", Default: "10"}, {Name: "key", Required: true}}}, echo); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(Info{Name: "q"}, echo); err == nil {
		t.Error("a second query named q was added")
	}
	for _, c := range []struct {
		name string
		args map[string]string
		want map[string]string
		err  string // the *ArgError's parameter, or "unknown"
	}{
		{"q", map[string]string{"key": "a"}, map[string]string{"k": "10", "key": "a"}, ""},
		{"q", map[string]string{"key": "a", "k": "3"}, map[string]string{"k": "3", "key": "a"}, ""},
		{"q", map[string]string{"k": "3"}, nil, "key"},
		{"q", map[string]string{"key": "a", "x": "1"}, nil, "x"},
		{"nope", nil, nil, "unknown"},
	} {
		res, err := r.Run(context.Background(), c.name, "latest", c.args)
		var ae *ArgError
		switch {
		case c.err == "unknown":
			if !errors.Is(err, ErrUnknown) {
				t.Errorf("%s %v: %v, want ErrUnknown", c.name, c.args, err)
			}
		case c.err != "":
			if !errors.As(err, &ae) || ae.Param != c.err {
				t.Errorf("%s %v: %v, want an ArgError on %s", c.name, c.args, err, c.err)
			}
		case err != nil:
			t.Errorf("%s %v: %v", c.name, c.args, err)
		default:
			got := res.Result.(map[string]string)
			if len(got) != len(c.want) || got["k"] != c.want["k"] || got["key"] != c.want["key"] || !res.Interval.Equal(time.UnixMilli(7)) {
				t.Errorf("%s %v: %+v, want %v", c.name, c.args, res, c.want)
			}
		}
	}
}

func TestRunBoundsWaiting(t *testing.T) { synctest.Test(t, testRunBoundsWaiting) }

func testRunBoundsWaiting(t *testing.T) {
	r := New(time.Minute)
	release := make(chan struct{})
	started := make(chan struct{}, MaxRunning)
	block := func(ctx context.Context, _ string, _ Args) (any, time.Time, error) {
		started <- struct{}{}
		<-release
		return nil, time.Time{}, nil
	}
	if err := r.Add(Info{Name: "b"}, block); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, MaxRunning+MaxWaiting)
	for range MaxRunning {
		go func() { _, err := r.Run(context.Background(), "b", "", nil); done <- err }()
	}
	for range MaxRunning {
		<-started
	}
	ctx, cancel := context.WithCancel(context.Background())
	for range MaxWaiting {
		go func() { _, err := r.Run(ctx, "b", "", nil); done <- err }()
	}
	synctest.Wait() // every query runs or waits for a turn
	if running, waiting := r.Load(); running != MaxRunning || waiting != MaxWaiting {
		t.Fatalf("load: %d running, %d waiting; want %d, %d", running, waiting, MaxRunning, MaxWaiting)
	}
	if _, err := r.Run(context.Background(), "b", "", nil); !errors.Is(err, ErrTooMany) {
		t.Errorf("a query past the bounds: %v, want ErrTooMany", err)
	}
	cancel() // the waiting ones give up
	for range MaxWaiting {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("a waiting query: %v, want context.Canceled", err)
		}
	}
	close(release)
	for range MaxRunning {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if running, waiting := r.Load(); running != 0 || waiting != 0 {
		t.Errorf("load after all ended: %d running, %d waiting", running, waiting)
	}
}
