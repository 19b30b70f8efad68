package health_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dstream/dstream/health"
)

func TestHandler(t *testing.T) {
	down := health.Funcs{LiveFunc: func() error { return errors.New("wedged: stuck") }, ReadyFunc: func() error { return errors.New("no worker") }}
	for _, c := range []struct {
		name    string
		checker health.Checker
		method  string
		path    string
		status  int
		body    string
	}{
		{"live", health.Funcs{}, "GET", "/healthz", 200, "ok\n"},
		{"ready", health.Funcs{}, "GET", "/readyz", 200, "ok\n"},
		{"head", health.Funcs{}, "HEAD", "/readyz", 200, "ok\n"}, // a real server drops the body
		{"not live", down, "GET", "/healthz", 503, "wedged: stuck\n"},
		{"not ready", down, "GET", "/readyz", 503, "no worker\n"},
		{"unknown path", health.Funcs{}, "GET", "/api/v1/batches", 404, "no such endpoint: /api/v1/batches (/healthz, /readyz)\n"},
		{"method", health.Funcs{}, "POST", "/healthz", 405, "method POST not allowed on /healthz: use GET\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			health.Handler(c.checker).ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
			if rec.Code != c.status || rec.Body.String() != c.body {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, rec.Code, rec.Body.String(), c.status, c.body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
		})
	}
}

func TestListen(t *testing.T) {
	ep, err := health.Listen("127.0.0.1:0", health.Funcs{ReadyFunc: func() error { return errors.New("starting") }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + ep.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(b) != "starting\n" {
		t.Errorf("GET /readyz: %d %q, want 503 \"starting\\n\"", resp.StatusCode, b)
	}
	if _, err := health.Listen(ep.Addr(), health.Funcs{}, nil); err == nil || !strings.Contains(err.Error(), "cannot listen on "+ep.Addr()) {
		t.Errorf("a second Listen on %s: %v, want it refused", ep.Addr(), err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + ep.Addr() + "/healthz"); err == nil {
		t.Error("served after Close")
	}
	if _, err := health.Listen("8081", health.Funcs{}, nil); err == nil || !strings.Contains(err.Error(), "want HOST:PORT") {
		t.Errorf("Listen(\"8081\"): %v, want refused", err)
	}
}
