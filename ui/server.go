package ui

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/health"
)

// DefaultListen is the address the commands' --ui-listen flag defaults to:
// loopback, on Spark's UI port.
const DefaultListen = "127.0.0.1:4040"

// Options configure a Server. The zero value has a default for every field.
type Options struct {
	// RetainedBatches bounds the batches kept for the API; older ones are
	// dropped and counted. Default DefaultRetainedBatches (1000).
	RetainedBatches int
	// MaxTasksPerBatch bounds the task attempts kept for one batch, for
	// GET /api/v1/batches/{batchTime}/tasks; later ones are counted, not
	// kept. Default DefaultMaxTasksPerBatch (10 000).
	MaxTasksPerBatch int
	// RetainedTasks bounds the task attempts kept over all retained
	// batches; past it the oldest batches' tasks are dropped and counted.
	// Default DefaultRetainedTasks (100 000).
	RetainedTasks int
	// Logger receives the HTTP server's errors (a client that sends a
	// malformed request, a failed accept). Default slog.Default().
	Logger *slog.Logger
}

// Server is the UI of one dstream.Context: an http.Handler serving the
// endpoints the package documentation lists, fed by a Progress registered
// on the context's listener bus. It is safe for concurrent use.
type Server struct {
	sctx     *dstream.Context
	progress *Progress
	interval time.Duration
	log      *slog.Logger
	mux      *http.ServeMux
	registry *prometheus.Registry
	graph    atomic.Pointer[[]GraphNode] // set by SetGraph
}

// NewServer returns the UI of sctx and registers its Progress, then its
// metrics listener, on sctx's listener bus. Call it before sctx.Start to see
// every batch (the /metrics counters count from registration too); it may
// serve requests before sctx starts (statistics then have no startTime).
func NewServer(sctx *dstream.Context, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{sctx: sctx, progress: NewProgress(o.RetainedBatches), interval: sctx.BatchInterval(), log: o.Logger, mux: http.NewServeMux()}
	s.progress.LimitTasks(o.MaxTasksPerBatch, o.RetainedTasks)
	sctx.AddListener(s.progress)
	var metrics http.Handler
	s.registry, metrics = newMetrics(sctx, s.progress, o.Logger)
	// Routes have no method in their pattern so that a wrong method reaches
	// get, which answers 405 in JSON; "/" catches every unknown path.
	s.mux.HandleFunc("/api/v1/batches", get(s.batches))
	s.mux.HandleFunc("/api/v1/batches/{batchTime}", get(s.batch))
	s.mux.HandleFunc("/api/v1/batches/{batchTime}/operations", get(s.operations))
	s.mux.HandleFunc("/api/v1/batches/{batchTime}/tasks", get(s.tasks))
	s.mux.HandleFunc("/api/v1/graph", get(s.graphDoc))
	s.mux.HandleFunc("/api/v1/statistics", get(s.statistics))
	s.mux.HandleFunc("/api/v1/workers", get(s.workers))
	s.mux.HandleFunc("/api/v1/receivers", get(s.receivers))
	s.mux.HandleFunc("/api/v1/queries", get(s.queries))
	s.mux.HandleFunc("/api/v1/queries/{name}", get(s.query))
	s.mux.HandleFunc("/metrics", get(metrics.ServeHTTP))
	// The probes (package health: text, 200 or 503 with the reason), for a
	// UI port the probes reach; Config.HealthListen serves them alone.
	probes := health.Handler(sctx)
	s.mux.Handle(health.LivePath, probes)
	s.mux.Handle(health.ReadyPath, probes)
	s.mux.HandleFunc("/{$}", get(serveStatic("index.html")))
	for _, name := range webFiles {
		s.mux.HandleFunc("/static/"+name, get(serveStatic(name)))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s (the web UI: /; the API: /api/v1/batches, /api/v1/batches/{batchTime}, /api/v1/batches/{batchTime}/operations, /api/v1/batches/{batchTime}/tasks, /api/v1/statistics, /api/v1/receivers, /api/v1/workers, /api/v1/graph, /api/v1/queries, /api/v1/queries/{name}; metrics: /metrics; probes: /healthz, /readyz)", r.URL.Path))
	})
	return s
}

// Progress returns the listener behind the API.
func (s *Server) Progress() *Progress { return s.progress }

// Registry returns the private Prometheus registry GET /metrics serves
// (never prometheus.DefaultRegisterer, so several Servers in one process do
// not collide). An application may register its own collectors on it; their
// names must not clash with the ones the package documentation lists.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// get wraps h so it answers GET and HEAD only.
func get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s: use GET", r.Method, r.URL.Path))
			return
		}
		h(w, r)
	}
}

// Worker is one process that runs tasks, in GET /api/v1/workers.
type Worker struct {
	// ID ("id") names the worker; "local" for the process itself in local[N].
	ID string `json:"id"`
	// Address ("address") is where peers reach it; null for this process.
	Address *string `json:"address"`
	// PID ("pid") is its process ID.
	PID int `json:"pid"`
	// Slots ("slots") and FreeSlots ("freeSlots") are its task slots and
	// those not running a task now.
	Slots     int `json:"slots"`
	FreeSlots int `json:"freeSlots"`
	// MemoryUsed ("memoryUsed") is what its block store holds, and
	// MemoryLimit ("memoryLimit") its memory budget, in bytes.
	MemoryUsed  int64 `json:"memoryUsed"`
	MemoryLimit int64 `json:"memoryLimit"`
	// Blocks ("blocks") counts the blocks in its store.
	Blocks int `json:"blocks"`
	// State ("state"): alive or lost.
	State string `json:"state"`
	// LastHeartbeat ("lastHeartbeat") is when it last reported, RFC 3339;
	// null for this process.
	LastHeartbeat *string `json:"lastHeartbeat"`
	// ExcludedUntil ("excludedUntil") is when it takes new tasks again,
	// RFC 3339, while it is excluded because a speculative copy beat one
	// of its tasks (a straggler's machine); null otherwise.
	ExcludedUntil *string `json:"excludedUntil"`
}

// workers serves GET /api/v1/workers.
func (s *Server) workers(w http.ResponseWriter, r *http.Request) {
	ws := s.sctx.Workers()
	out := make([]Worker, len(ws))
	for i, wi := range ws {
		out[i] = Worker{ID: wi.ID, PID: wi.PID, Slots: wi.Slots, FreeSlots: wi.FreeSlots,
			MemoryUsed: wi.MemoryUsed, MemoryLimit: wi.MemoryLimit, Blocks: wi.Blocks, State: wi.State}
		if wi.Address != "" {
			out[i].Address = &wi.Address
		}
		if !wi.LastHeartbeat.IsZero() {
			ts := stamp(wi.LastHeartbeat)
			out[i].LastHeartbeat = &ts
		}
		if !wi.ExcludedUntil.IsZero() {
			ts := stamp(wi.ExcludedUntil)
			out[i].ExcludedUntil = &ts
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// batches serves GET /api/v1/batches[?status=...][&limit=N].
func (s *Server) batches(w http.ResponseWriter, r *http.Request) {
	var f Filter
	q := r.URL.Query()
	for _, v := range q["status"] {
		for name := range strings.SplitSeq(v, ",") {
			st, ok := ParseStatus(strings.TrimSpace(name))
			if !ok {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown status %q: want queued, processing, completed or failed", name))
				return
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[len(v)-1])
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a positive integer", v[len(v)-1]))
			return
		}
		f.Limit = n
	}
	writeJSON(w, http.StatusOK, s.progress.Batches(f, s.interval))
}

// batch serves GET /api/v1/batches/{batchTime}.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	ms, ok := s.batchTime(w, r)
	if !ok {
		return
	}
	b, ok := s.progress.Batch(ms, s.interval)
	if !ok {
		s.noBatch(w, ms)
		return
	}
	if m, ok := s.sctx.Manifest(time.UnixMilli(ms)); ok {
		for _, in := range m.Inputs {
			for _, r := range in.Ranges {
				b.OffsetRanges = append(b.OffsetRanges, OffsetRange{Stream: in.Stream, Topic: r.Topic, Partition: r.Partition, FromOffset: r.From, UntilOffset: r.Until})
			}
		}
	}
	if wms, ok := s.sctx.Watermarks(time.UnixMilli(ms)); ok {
		late, counted := s.progress.LateRecords(ms)
		for _, w := range wms {
			op := EventTimeOperator{Stream: w.Stream, Name: w.Name}
			if w.HasWatermark {
				op.Watermark = ptr(stamp(w.Watermark))
			}
			if counted {
				op.LateRecords = ptr(late[w.Stream])
			}
			b.EventTimeOperators = append(b.EventTimeOperators, op)
		}
	}
	writeJSON(w, http.StatusOK, b)
}

// operations serves GET /api/v1/batches/{batchTime}/operations.
func (s *Server) operations(w http.ResponseWriter, r *http.Request) {
	ms, ok := s.batchTime(w, r)
	if !ok {
		return
	}
	ops, ok := s.progress.Operations(ms)
	if !ok {
		s.noBatch(w, ms)
		return
	}
	writeJSON(w, http.StatusOK, ops)
}

// statistics serves GET /api/v1/statistics.
func (s *Server) statistics(w http.ResponseWriter, r *http.Request) {
	st := s.progress.Statistics(s.interval)
	// Done is nil until Start has run; Start sets the start time before it
	// publishes Done under the context's lock, so reading StartTime after a
	// non-nil Done is ordered after the write.
	if s.sctx.Done() != nil {
		st.StartTime = ptr(stamp(s.sctx.StartTime()))
	}
	writeJSON(w, http.StatusOK, st)
}

// batchTime parses the {batchTime} path segment, answering 400 when it is
// not an integer.
func (s *Server) batchTime(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.PathValue("batchTime")
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed batch time %q: want the interval time in Unix milliseconds (a batchId)", v))
		return 0, false
	}
	return ms, true
}

// noBatch answers 404 for interval ms, saying whether it was dropped.
func (s *Server) noBatch(w http.ResponseWriter, ms int64) {
	limit, retained, oldest, dropped := s.progress.Retention()
	msg := fmt.Sprintf("no batch at %d", ms)
	if dropped > 0 && (retained == 0 || ms < oldest) {
		msg = fmt.Sprintf("no batch at %d: it is older than the batches retained (the last %d; %d dropped)", ms, limit, dropped)
	}
	writeError(w, http.StatusNotFound, msg)
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// writeJSON writes v, indented, with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil { // not with the types above
		status, b = http.StatusInternalServerError, []byte(`{"error": "cannot encode the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
