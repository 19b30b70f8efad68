package dstream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dstream/dstream/internal/queries"
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
type QueryParam = queries.Param

// QueryInfo describes a registered query.
type QueryInfo = queries.Info

// QueryArgs are a query's parameters by name, as given, with defaults
// filled in; Int reads one as an integer in a range.
type QueryArgs = queries.Args

// QueryResult is a query's answer, consistent with one interval.
type QueryResult = queries.Result

// Errors of RunQuery (the HTTP API maps them to status codes).
var (
	ErrUnknownQuery   = queries.ErrUnknown
	ErrIntervalGone   = queries.ErrIntervalGone
	ErrTooManyQueries = queries.ErrTooMany
)

// QueryArgError is a bad or missing query parameter.
type QueryArgError = queries.ArgError

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
	info := QueryInfo{Name: name, Stream: s.String(), Doc: doc, Params: params}
	run := func(ctx context.Context, interval string, args QueryArgs) (any, time.Time, error) {
		ds, t, err := s.intervalDataset(interval)
		if err != nil {
			return nil, time.Time{}, err
		}
		r, err := fn(ctx, ds, args)
		return r, t, err
	}
	if c.e.Started() {
		c.setErr(fmt.Errorf("query %q: register queries before Start", name))
		return
	}
	if err := c.queries.Add(info, run); err != nil {
		c.setErr(err)
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
func (c *Context) Queries() []QueryInfo { return c.queries.List() }

// RunQuery runs query name on interval ("latest" or "": the last completed
// one; else an interval time in Unix ms the stream still remembers) with
// args. Errors: ErrUnknownQuery, *QueryArgError, ErrIntervalGone,
// ErrTooManyQueries (more than a few run and many wait already),
// context.DeadlineExceeded (over Config.QueryTimeout), or the query's own.
// The stream goes on meanwhile; a query only shares its task slots.
func (c *Context) RunQuery(ctx context.Context, name, interval string, args map[string]string) (QueryResult, error) {
	return c.queries.Run(ctx, name, interval, args)
}

// QueryLoad returns how many queries run now and how many wait for a turn.
func (c *Context) QueryLoad() (running, waiting int) { return c.queries.Load() }
