package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/ui"
)

// `dstream query` against the UI of a running job: the list, a table of
// pairs, a page with its cursor, and errors as the API says them.
func TestQueryCommand(t *testing.T) {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	counts := dstream.CountByValue(h.In, 2)
	dstream.TopQuery(counts, "top", func(a, b dstream.Pair[string, int64]) bool {
		return a.Value > b.Value || a.Value == b.Value && a.Key < b.Key
	})
	dstream.ScanQuery(counts, "scan")
	dstream.ForeachRDD(counts, func(context.Context, *rdd.Dataset[dstream.Pair[string, int64]], time.Time) error { return nil })
	hs := httptest.NewServer(ui.NewServer(h.Ctx, ui.Options{}))
	t.Cleanup(hs.Close)
	h.Input.Push("go", "rust", "go", "tea", "go", "rust", "ruby")
	h.Start()
	at := h.Tick().UnixMilli()
	addr := strings.TrimPrefix(hs.URL, "http://")
	for _, c := range []struct {
		args []string
		want string
		err  string
	}{
		{args: []string{addr}, want: "QUERY  STREAM          PARAMETERS                WHAT\nscan   countByValue#2  prefix= after= limit=100  the pairs whose key has a prefix, in key order, a page at a time\ntop    countByValue#2  k=10                      the k records that rank first\n"},
		{args: []string{addr, "top", "k=2"}, want: "KEY   VALUE\ngo    3\nrust  2\n"},
		{args: []string{addr, "scan", "prefix=r", "limit=1"}, want: "KEY   VALUE\nruby  1\n# next page: after=ruby\n"},
		{args: []string{"--interval", "1", addr, "top"}, err: "interval not available"},
		{args: []string{addr, "nope"}, err: `no such query: "nope" (GET /api/v1/queries lists them) (HTTP 404)`},
		{args: []string{addr, "top", "k"}, err: `parameter "k": want name=value`},
		{args: nil, err: "ADDR is required"},
	} {
		var out bytes.Buffer
		err := runQuery(context.Background(), c.args, &out, &out)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("query %q: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("query %q: %v", c.args, err)
			continue
		}
		got := out.String()
		if i := strings.Index(got, "\n"); strings.HasPrefix(got, "# ") {
			if !strings.Contains(got[:i], strconv.FormatInt(at, 10)) {
				t.Errorf("query %q: header %q does not name interval %d", c.args, got[:i], at)
			}
			got = got[i+1:]
		}
		if got != c.want {
			t.Errorf("query %q:\n%s\nwant\n%s", c.args, got, c.want)
		}
	}
}
