package ui

import (
	"context"
	"errors"
	"net/http"

	"github.com/dstream/dstream"
)

// QueryAnswer is GET /api/v1/queries/{name}'s answer.
type QueryAnswer struct {
	// Name ("name") is the query's.
	Name string `json:"name"`
	// Interval ("interval") is the time (Unix ms) of the interval the
	// answer is consistent with, and IntervalTime ("intervalTime") the same
	// as RFC 3339.
	Interval     int64  `json:"interval"`
	IntervalTime string `json:"intervalTime"`
	// Result ("result") is the query's answer.
	Result any `json:"result"`
}

// queries serves GET /api/v1/queries: the registered queries.
func (s *Server) queries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.sctx.Queries())
}

// query serves GET /api/v1/queries/{name}?interval=latest|MS&param=value...
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	args := map[string]string{}
	var interval string
	for k, vs := range r.URL.Query() {
		if len(vs) != 1 {
			writeError(w, http.StatusBadRequest, "parameter "+k+" is given more than once")
			return
		}
		if k == "interval" {
			interval = vs[0]
			continue
		}
		args[k] = vs[0]
	}
	res, err := s.sctx.RunQuery(r.Context(), name, interval, args)
	var argErr *dstream.QueryArgError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, QueryAnswer{Name: res.Name, Interval: res.Interval.UnixMilli(), IntervalTime: stamp(res.Interval), Result: res.Result})
	case errors.Is(err, dstream.ErrUnknownQuery):
		writeError(w, http.StatusNotFound, err.Error()+" (GET /api/v1/queries lists them)")
	case errors.As(err, &argErr):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, dstream.ErrIntervalGone):
		writeError(w, http.StatusGone, err.Error())
	case errors.Is(err, dstream.ErrTooManyQueries):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err.Error())
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this.
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}
