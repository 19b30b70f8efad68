package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/rdd"
)

// The query endpoints, exactly, and every error they answer.
func TestQueryEndpoints(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	f := newFixture(t, 0, func(c *dstream.Config) { c.QueryTimeout = 2 * time.Second }, func(in *dstream.Stream[string]) {
		counts := dstream.CountByValue(in, 2)
		dstream.TopQuery(counts, "top", func(a, b dstream.Pair[string, int64]) bool {
			return a.Value > b.Value || a.Value == b.Value && a.Key < b.Key
		})
		dstream.GetQuery(counts, "get")
		dstream.ForeachRDD(counts, func(context.Context, *rdd.Dataset[dstream.Pair[string, int64]], time.Time) error { return nil })
		// Waits for the test's word, or its time limit.
		dstream.Query(in, "held", "waits", nil, func(ctx context.Context, _ *rdd.Dataset[string], _ dstream.QueryArgs) (int, error) {
			select {
			case <-release:
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
		dstream.Query(in, "slow", "outlives its time limit", nil, func(ctx context.Context, _ *rdd.Dataset[string], _ dstream.QueryArgs) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
	})
	f.expect(t, "/api/v1/queries/top", 410, `{"error": "interval not available: countByValue#2 has completed no interval yet"}`)
	f.h.Input.Push("go", "rust", "go", "tea", "go", "rust")
	f.tick(t)
	t1 := f.h.Ctx.StartTime().Add(time.Second).UnixMilli()
	stamp := time.UnixMilli(t1).UTC().Format("2006-01-02T15:04:05.000Z")
	f.expect(t, "/api/v1/queries", 200, `[
		{"name": "get", "stream": "countByValue#2", "doc": "the values of a key", "params": [{"name": "key", "doc": "the key", "required": true}]},
		{"name": "held", "stream": "queue#1", "doc": "waits", "params": null},
		{"name": "slow", "stream": "queue#1", "doc": "outlives its time limit", "params": null},
		{"name": "top", "stream": "countByValue#2", "doc": "the k records that rank first", "params": [{"name": "k", "doc": "how many (1 to 10000)", "default": "10"}]}]`)
	f.expect(t, "/api/v1/queries/top?k=2", 200, fmt.Sprintf(`{"name": "top", "interval": %d, "intervalTime": %q, "result": [{"Key": "go", "Value": 3}, {"Key": "rust", "Value": 2}]}`, t1, stamp))
	f.expect(t, fmt.Sprintf("/api/v1/queries/get?key=tea&interval=%d", t1), 200, fmt.Sprintf(`{"name": "get", "interval": %d, "intervalTime": %q, "result": [1]}`, t1, stamp))
	f.expect(t, "/api/v1/queries/get?key=nope", 200, fmt.Sprintf(`{"name": "get", "interval": %d, "intervalTime": %q, "result": []}`, t1, stamp))
	f.expect(t, "/api/v1/queries/nope", 404, `{"error": "no such query: \"nope\" (GET /api/v1/queries lists them)"}`)
	f.expect(t, "/api/v1/queries/get", 400, `{"error": "parameter key: required"}`)
	f.expect(t, "/api/v1/queries/top?k=x", 400, `{"error": "parameter k: \"x\": want an integer from 1 to 10000"}`)
	f.expect(t, "/api/v1/queries/top?color=red", 400, `{"error": "parameter color: query top takes no such parameter"}`)
	f.expect(t, "/api/v1/queries/top?k=1&k=2", 400, `{"error": "parameter k is given more than once"}`)
	f.expect(t, "/api/v1/queries/top?interval=1", 410, `{"error": "interval not available: countByValue#2 produces no dataset at 1"}`)
	f.expect(t, "/api/v1/queries/slow", 504, `{"error": "query slow: context deadline exceeded"}`)
	if code, _, hdr := request(t, http.MethodPost, f.url+"/api/v1/queries/top"); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", code, hdr)
	}

	// Bounded: 4 run and 64 wait; the next is refused with 429 at once.
	var wg sync.WaitGroup
	codes := make(chan int, 68)
	for range 68 {
		wg.Go(func() {
			code, _, _, err := try(http.MethodGet, f.url+"/api/v1/queries/held")
			if err == nil {
				codes <- code
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if run, wait := f.h.Ctx.QueryLoad(); run == 4 && wait == 64 {
			break
		}
		if time.Now().After(deadline) {
			run, wait := f.h.Ctx.QueryLoad()
			t.Fatalf("%d queries run and %d wait, want 4 and 64", run, wait)
		}
		time.Sleep(5 * time.Millisecond) // the held requests are still arriving
	}
	code, body, hdr := request(t, http.MethodGet, f.url+"/api/v1/queries/top")
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "too many queries") {
		t.Errorf("the 69th query: %d %v %s; want 429 with Retry-After", code, hdr, body)
	}
	releaseOnce.Do(func() { close(release) })
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 && code != 504 {
			t.Errorf("a held query ended %d", code)
		}
	}
	// The stream is unharmed.
	f.h.Input.Push("go")
	f.tick(t)
	f.expect(t, "/api/v1/queries/top?k=1", 200, fmt.Sprintf(`{"name": "top", "interval": %d, "intervalTime": %q, "result": [{"Key": "go", "Value": 1}]}`,
		t1+1000, time.UnixMilli(t1+1000).UTC().Format("2006-01-02T15:04:05.000Z")))
}
