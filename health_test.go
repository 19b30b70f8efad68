package dstream_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// get fetches url and returns the status and body; err for no answer.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestProbesServed runs a local job with Config.HealthListen on a real
// socket over the manual clock: the probes answer from Start, /healthz turns
// 503 once an interval has run for engine.StallAfter and 200 again when the
// loop moves, and the endpoint closes with the context.
func TestProbesServed(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.HealthListen = "127.0.0.1:0" }})
	entered, release := make(chan struct{}), make(chan struct{})
	stuck := dstreamtest.Start.Add(2 * time.Second)
	dstream.ForeachRDD(h.In, func(ctx context.Context, ds *rdd.Dataset[string], t time.Time) error {
		if t.Equal(stuck) {
			close(entered)
			<-release
		}
		return nil
	})
	if a := h.Ctx.HealthAddr(); a != "" {
		t.Fatalf("HealthAddr before Start = %q, want none", a)
	}
	h.Start()
	url := "http://" + h.Ctx.HealthAddr()
	expect := func(path string, status int, prefix string) {
		t.Helper()
		code, body, err := get(url + path)
		if err != nil || code != status || !strings.HasPrefix(body, prefix) {
			t.Errorf("GET %s: %d %q %v; want %d %q...", path, code, body, err, status, prefix)
		}
	}
	expect("/healthz", 200, "ok\n")
	expect("/readyz", 200, "ok\n")
	expect("/metrics", 404, "no such endpoint")
	h.Tick()

	// Interval 2 hangs in its output: nothing finishes for StallAfter.
	h.Clock.Advance(time.Second)
	<-entered
	h.Clock.Advance(engine.StallAfter - time.Second) // interval 1 finished a second ago
	expect("/healthz", 200, "ok\n")                  // exactly StallAfter: not yet
	h.Clock.Advance(time.Second)
	expect("/healthz", 503, "wedged: no interval finished for 5m1s (last finished 1700000001000")
	expect("/readyz", 200, "ok\n")
	if err := h.Ctx.Live(); err == nil || !strings.Contains(err.Error(), "wedged") {
		t.Errorf("Live() = %v, want wedged", err)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Ctx.AwaitBatch(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	expect("/healthz", 200, "ok\n")

	// A second context cannot take the address: its Start fails.
	other := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.HealthListen = h.Ctx.HealthAddr() }})
	dstreamtest.Collect(other.In)
	if err := other.Ctx.Start(); err == nil || !strings.Contains(err.Error(), "health: cannot listen") {
		t.Errorf("Start on a health address in use: %v, want it refused", err)
	}

	if err := h.Ctx.Stop(false); err != nil {
		t.Fatal(err)
	}
	if code, body, err := get(url + "/healthz"); err == nil {
		t.Errorf("GET /healthz after Stop: %d %q; want no answer", code, body)
	}
}

func TestHealthListenValidated(t *testing.T) {
	for _, addr := range []string{"4040", "localhost", ":x:y"} {
		if err := (dstream.Config{HealthListen: addr}).Validate(); err == nil || !strings.Contains(err.Error(), "want HOST:PORT") {
			t.Errorf("HealthListen %q: %v, want refused", addr, err)
		}
	}
	if err := (dstream.Config{HealthListen: "0.0.0.0:8081"}).Validate(); err != nil {
		t.Error(err)
	}
}
