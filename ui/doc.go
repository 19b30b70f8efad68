// Package ui is the engine's operability layer: what a running dstream
// application tells the outside world about itself. Today it is a JSON REST
// API over the listener bus, in the shape of Spark's
// /api/v1/applications/[app-id]/streaming/ endpoints without the
// application part (a process runs one application); a web UI, Prometheus
// metrics and more endpoints are meant to join it as more routes on the one
// http.Handler a Server is.
//
// # Pieces
//
//   - Progress is a listener.Listener that keeps the last N batches
//     (default 1000, like Spark's spark.streaming.ui.retainedBatches; older
//     ones are dropped and counted) and counters since start. It is safe for
//     concurrent use: the bus calls OnEvent from its goroutine while HTTP
//     handlers read snapshots from theirs.
//   - Server is the http.Handler: NewServer registers a Progress on a
//     dstream.Context and routes the endpoints below.
//   - Server.Listen binds an address (loopback 127.0.0.1:4040 is the
//     commands' default, as Spark's UI port; port 0 picks a free port) and
//     serves until its context.Context is done or Endpoint.Close is called,
//     then shuts down gracefully (http.Server.Shutdown). A port in use is
//     an error from Listen, before anything is served.
//
// # Endpoints
//
// Every response is JSON (Content-Type application/json), errors included:
// {"error": "..."} with status 400 (a malformed parameter), 404 (an unknown
// path, or a batch that is not retained) or 405 (a method other than GET or
// HEAD; the Allow header says "GET, HEAD").
//
//	GET /api/v1/batches                        retained batches, newest first ([]Batch)
//	    ?status=queued|processing|completed|failed   only batches in these states; repeat the
//	                                               parameter or separate with commas for several
//	    ?limit=N                                   at most N batches (N >= 1), the newest
//	GET /api/v1/batches/{batchTime}            one batch (Batch); batchTime is its interval
//	                                           time in Unix milliseconds (the batchId)
//	GET /api/v1/batches/{batchTime}/operations the batch's completed output operations, in
//	                                           registration order ([]OutputOperation)
//	GET /api/v1/statistics                     counters and averages (Statistics)
//	GET /api/v1/workers                        the processes that run tasks (Worker); in local[N], this one
//
// Times are RFC 3339 strings in UTC with milliseconds
// ("2023-11-14T22:13:21.000Z"); durations are whole milliseconds (truncated);
// a value not known yet (a queued batch's processing time) is null. The
// fields of each document are those of the Batch, OutputOperation and
// Statistics types, whose JSON names are in their documentation.
//
// Example, one completed interval of three records under a manual clock:
//
//	$ curl -s 127.0.0.1:4040/api/v1/batches?limit=1
//	[
//	  {
//	    "batchId": 1700000001000,
//	    "batchTime": "2023-11-14T22:13:21.000Z",
//	    "status": "completed",
//	    "batchDuration": 1000,
//	    "inputSize": 3,
//	    "submissionTime": "2023-11-14T22:13:21.000Z",
//	    "processingStartTime": "2023-11-14T22:13:21.000Z",
//	    "processingEndTime": "2023-11-14T22:13:21.000Z",
//	    "schedulingDelay": 0,
//	    "processingTime": 0,
//	    "totalDelay": 0,
//	    "numCompletedOutputOps": 1,
//	    "numFailedOutputOps": 0,
//	    "firstFailureReason": null
//	  }
//	]
//
// Bounds: the batches retained (Options.RetainedBatches), each batch's
// output operations (as many as the graph has) and every failure message
// (cut to MaxFailureReason bytes). The listener bus drops events when a
// listener falls behind; a batch whose events were dropped shows the state
// of the last event that arrived.
package ui
