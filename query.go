package dstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/rdd"
)

// Named queries on a running stream (issue #12). Go cannot ship a closure
// typed at run time to a worker, so a query is named when the graph is
// built, in every process, and takes its parameters at run time. It runs as
// a job on one interval's dataset (the latest completed one, or one the
// stream still remembers) beside the running stream, with a time limit and
// a bounded number at once. The built-in queries (TopQuery, CountQuery,
// GetQuery, ScanQuery) run a partition function where each partition is
// (rdd.RegisterPartitionFunc), so in a cluster only their small results
// cross to the master; Query runs any function of the dataset.

// QueryParam describes a query's parameter.
type QueryParam struct {
	Name     string `json:"name"`
	Doc      string `json:"doc"`
	Default  string `json:"default,omitempty"`
	Required bool   `json:"required,omitempty"`
}

// QueryInfo describes a registered query.
type QueryInfo struct {
	Name   string       `json:"name"`
	Stream string       `json:"stream"`
	Doc    string       `json:"doc"`
	Params []QueryParam `json:"params"`
}

// QueryArgs are a query's parameters by name, as given, with defaults
// filled in.
type QueryArgs map[string]string

// Int returns parameter name as an integer in [lo, hi], or a *QueryArgError.
func (a QueryArgs) Int(name string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(a[name])
	if err != nil || n < lo || n > hi {
		return 0, &QueryArgError{Param: name, Reason: fmt.Sprintf("%q: want an integer from %d to %d", a[name], lo, hi)}
	}
	return n, nil
}

// QueryResult is a query's answer, consistent with one interval.
type QueryResult struct {
	Name     string    `json:"name"`
	Interval time.Time `json:"-"`
	Result   any       `json:"result"`
}

// Errors of RunQuery (the HTTP API maps them to status codes).
var (
	ErrUnknownQuery   = errors.New("no such query")
	ErrIntervalGone   = errors.New("interval not available")
	ErrTooManyQueries = errors.New("too many queries at once")
)

// QueryArgError is a bad or missing query parameter.
type QueryArgError struct{ Param, Reason string }

func (e *QueryArgError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Param, e.Reason) }

// Query bounds: queries running at once, and waiting for a turn.
const (
	maxRunningQueries = 4
	maxWaitingQueries = 64
	// DefaultQueryTimeout bounds a query's run unless Config.QueryTimeout
	// says otherwise.
	DefaultQueryTimeout = 10 * time.Second
)

// query is a registered query, typed inside.
type query struct {
	info QueryInfo
	run  func(ctx context.Context, interval string, args QueryArgs) (any, time.Time, error)
}

// Query registers fn as query name on s: RunQuery (and the HTTP API) runs it
// on the dataset of one interval with the parameters given, checked against
// params (unknown ones refused, required ones present, defaults filled in).
// Register before Start; the name must be unique in the context. The stream
// then remembers at least two slides, so the latest interval's dataset (and
// what recomputes it) outlives the next interval: a query that starts on it
// just before the next one completes still finds everything it reads.
func Query[T, R any](s *Stream[T], name, doc string, params []QueryParam, fn func(ctx context.Context, ds *rdd.Dataset[T], args QueryArgs) (R, error)) {
	c := s.ctx
	s.rt.RememberAtLeast(2 * s.slide)
	q := &query{info: QueryInfo{Name: name, Stream: s.String(), Doc: doc, Params: params}}
	q.run = func(ctx context.Context, interval string, args QueryArgs) (any, time.Time, error) {
		ds, t, err := s.intervalDataset(interval)
		if err != nil {
			return nil, time.Time{}, err
		}
		r, err := fn(ctx, ds, args)
		return r, t, err
	}
	started := c.e.Started()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case started:
		c.setErr(fmt.Errorf("query %q: register queries before Start", name))
	case name == "" || c.queries[name] != nil:
		c.setErr(fmt.Errorf("query %q: the name is empty or taken", name))
	default:
		if c.queries == nil {
			c.queries = map[string]*query{}
		}
		c.queries[name] = q
	}
}

// intervalDataset returns the stream's dataset of interval ("latest", or a
// time in Unix ms it still remembers) and that interval's time.
func (s *Stream[T]) intervalDataset(interval string) (*rdd.Dataset[T], time.Time, error) {
	if interval == "" || interval == "latest" {
		ds, t, ok := s.Latest()
		if !ok {
			return nil, time.Time{}, fmt.Errorf("%w: %s has completed no interval yet", ErrIntervalGone, s)
		}
		return ds, t, nil
	}
	ms, err := strconv.ParseInt(interval, 10, 64)
	if err != nil {
		return nil, time.Time{}, &QueryArgError{Param: "interval", Reason: fmt.Sprintf("%q: want latest or an interval time in Unix ms", interval)}
	}
	t := time.UnixMilli(ms)
	dss, err := s.Slice(t, t)
	if err != nil || len(dss) != 1 {
		if err == nil {
			err = fmt.Errorf("%s produces no dataset at %d", s, ms)
		}
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrIntervalGone, err)
	}
	return dss[0], t, nil
}

// Queries lists the registered queries, by name.
func (c *Context) Queries() []QueryInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]QueryInfo, 0, len(c.queries))
	for _, q := range c.queries {
		out = append(out, q.info)
	}
	slices.SortFunc(out, func(a, b QueryInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RunQuery runs query name on interval ("latest" or "": the last completed
// one; else an interval time in Unix ms the stream still remembers) with
// args. Errors: ErrUnknownQuery, *QueryArgError, ErrIntervalGone,
// ErrTooManyQueries (more than a few run and many wait already),
// context.DeadlineExceeded (over Config.QueryTimeout), or the query's own.
// The stream goes on meanwhile; a query only shares its task slots.
func (c *Context) RunQuery(ctx context.Context, name, interval string, args map[string]string) (QueryResult, error) {
	c.mu.Lock()
	q := c.queries[name]
	c.mu.Unlock()
	if q == nil {
		return QueryResult{}, fmt.Errorf("%w: %q", ErrUnknownQuery, name)
	}
	full := QueryArgs{}
	for k, v := range args {
		if !slices.ContainsFunc(q.info.Params, func(p QueryParam) bool { return p.Name == k }) {
			return QueryResult{}, &QueryArgError{Param: k, Reason: fmt.Sprintf("query %s takes no such parameter", name)}
		}
		full[k] = v
	}
	for _, p := range q.info.Params {
		if _, ok := full[p.Name]; ok {
			continue
		}
		if p.Required {
			return QueryResult{}, &QueryArgError{Param: p.Name, Reason: "required"}
		}
		full[p.Name] = p.Default
	}
	release, err := c.queryTurn(ctx)
	if err != nil {
		return QueryResult{}, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
	defer cancel()
	r, t, err := q.run(ctx, interval, full)
	if err != nil {
		if ctx.Err() != nil {
			return QueryResult{}, fmt.Errorf("query %s: %w", name, ctx.Err())
		}
		return QueryResult{}, err
	}
	return QueryResult{Name: name, Interval: t, Result: r}, nil
}

// queryTurn waits for a query slot; it refuses at once when too many wait.
func (c *Context) queryTurn(ctx context.Context) (func(), error) {
	if c.queryWaiting.Add(1) > maxRunningQueries+maxWaitingQueries {
		c.queryWaiting.Add(-1)
		return nil, ErrTooManyQueries
	}
	select {
	case c.querySlots <- struct{}{}:
		return func() { <-c.querySlots; c.queryWaiting.Add(-1) }, nil
	case <-ctx.Done():
		c.queryWaiting.Add(-1)
		return nil, ctx.Err()
	}
}

// QueryLoad returns how many queries run now and how many wait for a turn.
func (c *Context) QueryLoad() (running, waiting int) {
	running = len(c.querySlots)
	return running, max(0, int(c.queryWaiting.Load())-running)
}
