// Package health serves a process's probes over HTTP: GET /healthz
// (liveness: the process is up and its loop is not wedged) and GET /readyz
// (readiness: it can do its job), for Kubernetes' livenessProbe and
// readinessProbe, or a load balancer's health check.
//
// Each answers 200 with "ok" or 503 with the reason, as text/plain; any other
// path is 404, any method but GET and HEAD 405. Nothing else is served: the
// endpoints may listen where the web UI (package ui), which shows the job's
// data, must not. What "live" and "ready" mean is the Checker's (a
// dstream.Context's Live and Ready).
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// The paths a Handler serves.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Checker is what the probes ask. Each method returns nil when the answer
// is yes and an error saying why not otherwise; it must be quick and safe
// for concurrent use.
type Checker interface {
	Live() error
	Ready() error
}

// Funcs is a Checker made of two functions; a nil one always answers yes.
type Funcs struct {
	LiveFunc, ReadyFunc func() error
}

// Live calls LiveFunc.
func (f Funcs) Live() error { return call(f.LiveFunc) }

// Ready calls ReadyFunc.
func (f Funcs) Ready() error { return call(f.ReadyFunc) }

func call(f func() error) error {
	if f == nil {
		return nil
	}
	return f()
}

// Handler returns the handler of LivePath and ReadyPath for c.
func Handler(c Checker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var check func() error
		switch r.URL.Path {
		case LivePath:
			check = c.Live
		case ReadyPath:
			check = c.Ready
		default:
			write(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s (%s, %s)", r.URL.Path, LivePath, ReadyPath))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			write(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s: use GET", r.Method, r.URL.Path))
			return
		}
		if err := check(); err != nil {
			write(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		write(w, http.StatusOK, "ok")
	})
}

func write(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

// ShutdownTimeout bounds Close: probes still running after it are cut off.
const ShutdownTimeout = 2 * time.Second

// Endpoint is a Handler listening on an address.
type Endpoint struct {
	addr   string
	srv    *http.Server
	served chan error
	once   sync.Once
	err    error
}

// Listen binds addr ("host:port"; port 0 picks a free port, Addr reports it)
// and serves Handler(c) there until Close. An address that cannot be bound
// is an error, and nothing is served. log receives the server's errors (nil:
// slog.Default()).
func Listen(addr string, c Checker, log *slog.Logger) (*Endpoint, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("health: listen address %q: want HOST:PORT", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health: cannot listen on %s: %w", addr, err)
	}
	if log == nil {
		log = slog.Default()
	}
	e := &Endpoint{
		addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           Handler(c),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
	}
	go func() { e.served <- e.srv.Serve(ln) }()
	return e, nil
}

// Addr returns the address the endpoint listens on, with the port chosen
// when port 0 was asked for.
func (e *Endpoint) Addr() string { return e.addr }

// Close stops serving, letting probes in flight finish (at most
// ShutdownTimeout), and returns the error that stopped serving before, if
// any. It is idempotent.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			_ = e.srv.Close()
		}
		if err := <-e.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.err = fmt.Errorf("health: serving on %s: %w", e.addr, err)
		}
	})
	return e.err
}
