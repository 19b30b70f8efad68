// Package queries is the registry of a running job's named queries
// (dstream.Query and the built-in ones): it checks a call's arguments
// against the query's parameters, bounds how many run and wait at once,
// and bounds each run's time. What a query computes, and on which
// interval's dataset, is the registering stream's.
package queries

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Param describes a query's parameter.
type Param struct {
	Name     string `json:"name"`
	Doc      string `json:"doc"`
	Default  string `json:"default,omitempty"`
	Required bool   `json:"required,omitempty"`
}

// Info describes a registered query.
type Info struct {
	Name   string  `json:"name"`
	Stream string  `json:"stream"`
	Doc    string  `json:"doc"`
	Params []Param `json:"params"`
}

// Args are a query's parameters by name, as given, with defaults filled in.
type Args map[string]string

// Int returns parameter name as an integer in [lo, hi], or an *ArgError.
func (a Args) Int(name string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(a[name])
	if err != nil || n < lo || n > hi {
		return 0, &ArgError{Param: name, Reason: fmt.Sprintf("%q: want an integer from %d to %d", a[name], lo, hi)}
	}
	return n, nil
}

// Result is a query's answer, consistent with one interval.
type Result struct {
	Name     string    `json:"name"`
	Interval time.Time `json:"-"`
	Result   any       `json:"result"`
}

// Errors of Run (the HTTP API maps them to status codes).
var (
	ErrUnknown      = errors.New("no such query")
	ErrIntervalGone = errors.New("interval not available")
	ErrTooMany      = errors.New("too many queries at once")
)

// ArgError is a bad or missing query parameter.
type ArgError struct{ Param, Reason string }

func (e *ArgError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Param, e.Reason) }

// Bounds: queries running at once, and waiting for a turn.
const (
	MaxRunning = 4
	MaxWaiting = 64
)

// Func runs a query on interval ("latest", "" or a time in Unix ms) with
// its checked arguments, and returns the answer and the interval's time.
type Func func(ctx context.Context, interval string, args Args) (any, time.Time, error)

type query struct {
	info Info
	run  Func
}

// Registry holds a job's queries. The zero value is not usable: use New.
type Registry struct {
	timeout time.Duration
	mu      sync.Mutex
	queries map[string]*query
	slots   chan struct{} // queries running
	waiting atomic.Int64  // queries running or waiting
}

// New returns an empty registry whose runs last at most timeout.
func New(timeout time.Duration) *Registry {
	return &Registry{timeout: timeout, queries: map[string]*query{}, slots: make(chan struct{}, MaxRunning)}
}

// Add registers run as query info.Name; a name that is empty or taken is
// an error.
func (r *Registry) Add(info Info, run Func) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if info.Name == "" || r.queries[info.Name] != nil {
		return fmt.Errorf("query %q: the name is empty or taken", info.Name)
	}
	r.queries[info.Name] = &query{info: info, run: run}
	return nil
}

// List lists the registered queries, by name.
func (r *Registry) List() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.queries))
	for _, q := range r.queries {
		out = append(out, q.info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Run runs query name on interval with args. Errors: ErrUnknown, *ArgError
// (a parameter the query does not take, or a required one missing),
// ErrTooMany (MaxRunning run and MaxWaiting wait already),
// context.DeadlineExceeded (over the registry's timeout), or the query's
// own.
func (r *Registry) Run(ctx context.Context, name, interval string, args map[string]string) (Result, error) {
	r.mu.Lock()
	q := r.queries[name]
	r.mu.Unlock()
	if q == nil {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	full := Args{}
	for k, v := range args {
		if !slices.ContainsFunc(q.info.Params, func(p Param) bool { return p.Name == k }) {
			return Result{}, &ArgError{Param: k, Reason: fmt.Sprintf("query %s takes no such parameter", name)}
		}
		full[k] = v
	}
	for _, p := range q.info.Params {
		if _, ok := full[p.Name]; ok {
			continue
		}
		if p.Required {
			return Result{}, &ArgError{Param: p.Name, Reason: "required"}
		}
		full[p.Name] = p.Default
	}
	release, err := r.turn(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, t, err := q.run(ctx, interval, full)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("query %s: %w", name, ctx.Err())
		}
		return Result{}, err
	}
	return Result{Name: name, Interval: t, Result: res}, nil
}

// turn waits for a query slot; it refuses at once when too many wait.
func (r *Registry) turn(ctx context.Context) (func(), error) {
	if r.waiting.Add(1) > MaxRunning+MaxWaiting {
		r.waiting.Add(-1)
		return nil, ErrTooMany
	}
	select {
	case r.slots <- struct{}{}:
		return func() { <-r.slots; r.waiting.Add(-1) }, nil
	case <-ctx.Done():
		r.waiting.Add(-1)
		return nil, ctx.Err()
	}
}

// Load returns how many queries run now and how many wait for a turn.
func (r *Registry) Load() (running, waiting int) {
	running = len(r.slots)
	return running, max(0, int(r.waiting.Load())-running)
}
