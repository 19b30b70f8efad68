package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ShutdownTimeout bounds a graceful shutdown: requests still running after
// it are cut off.
const ShutdownTimeout = 5 * time.Second

// Endpoint is a Server listening on an address.
type Endpoint struct {
	addr string
	srv  *http.Server
	stop chan struct{} // closed by Close
	once sync.Once
	done chan struct{} // closed once shut down
	err  error         // set before done is closed
}

// Listen binds addr ("host:port"; port 0 picks a free port, Addr reports
// it) and serves s there until ctx is done or Close is called, then shuts
// down gracefully: it stops accepting, lets requests in flight finish (at
// most ShutdownTimeout) and closes. An address that cannot be bound (a port
// in use, a malformed address) is returned as an error and nothing is
// served.
func (s *Server) Listen(ctx context.Context, addr string) (*Endpoint, error) {
	return s.ListenNear(ctx, addr, 0)
}

// ListenNear is Listen that, when addr's port is in use, tries the next
// ports, up to tries more (Spark's UI moves from 4040 to 4041 and on the
// same way); it logs the port it settled on. Commands use it for their
// default address, and Listen for one the user chose.
//
// In a worker process of a cluster (the program started by its master) it
// binds nothing and returns an endpoint already shut down: the master's UI
// shows the whole job.
func (s *Server) ListenNear(ctx context.Context, addr string, tries int) (*Endpoint, error) {
	if s.sctx.IsWorker() {
		e := &Endpoint{stop: make(chan struct{}), done: make(chan struct{})}
		close(e.done)
		return e, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) && tries > 0 {
		host, portText, _ := net.SplitHostPort(addr)
		if port, perr := strconv.Atoi(portText); perr == nil && port > 0 {
			for next := port + 1; next <= port+tries && next <= 65535 && err != nil; next++ {
				var lerr error
				if ln, lerr = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(next))); lerr == nil {
					err = nil
					s.log.Info("UI port in use; serving on the next free one", "wanted", addr, "address", ln.Addr().String())
				}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ui: cannot listen on %s: %w", addr, err)
	}
	e := &Endpoint{
		addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	go func() {
		defer close(e.done)
		select {
		case <-ctx.Done():
		case <-e.stop:
		case err := <-served: // Serve failed by itself (an accept error)
			e.err = fmt.Errorf("ui: serving on %s: %w", e.addr, err)
			_ = e.srv.Close()
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := e.srv.Shutdown(sctx); err != nil {
			_ = e.srv.Close() // the timeout passed: cut off what is left
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.err = fmt.Errorf("ui: serving on %s: %w", e.addr, err)
		}
	}()
	return e, nil
}

// Addr returns the address the endpoint listens on, with the port chosen
// when port 0 was asked for ("127.0.0.1:40123").
func (e *Endpoint) Addr() string { return e.addr }

// URL returns the endpoint's base URL ("http://127.0.0.1:4040"); the API is
// under URL()+"/api/v1/".
func (e *Endpoint) URL() string { return "http://" + e.addr }

// Done returns a channel closed once the endpoint has shut down.
func (e *Endpoint) Done() <-chan struct{} { return e.done }

// Close shuts the endpoint down gracefully, as when Listen's context is
// done, and waits until it has. It returns the error that stopped serving,
// if serving failed by itself; it is idempotent.
func (e *Endpoint) Close() error {
	e.once.Do(func() { close(e.stop) })
	<-e.done
	return e.err
}
