// Package ui is the engine's operability layer: what a running dstream
// application tells the outside world about itself. It is a web UI, a JSON
// REST API over the listener bus, in the shape of Spark's
// /api/v1/applications/[app-id]/streaming/ endpoints without the
// application part (a process runs one application), and Prometheus metrics
// on /metrics, all routes of the one http.Handler a Server is.
//
// # The web UI
//
// GET / serves one page (web/index.html, web/app.js, web/style.css,
// embedded in the binary: no build step, and nothing is fetched from
// anywhere but the Server, which its Content-Security-Policy enforces). Its
// script polls the API below every second and draws, without reloading:
//
//   - #/ the streaming page: counters, then timelines and histograms of
//     the input rate, scheduling delay, processing time and total delay over
//     the last 300 retained batches (SVG drawn by the script), and the tables
//     of the active, completed (newest first, 50 at a time) and failed
//     batches, with their errors;
//   - #/batch/{batchTime} a batch: its times, a Kafka stream's offset
//     ranges, each event-time window operator's watermark and late records,
//     its output operations, and the jobs its output operations ran, their stages (records, shuffle bytes,
//     task durations, workers) and task attempts (a timeline per stage, by
//     worker, and a table);
//   - #/receivers (rate, records, errors), #/workers (slots, memory,
//     blocks, state) and #/graph (the stream graph, drawn top to bottom).
//
// # Pieces
//
//   - Progress is a listener.Listener that keeps the last N batches
//     (default 1000, like Spark's spark.streaming.ui.retainedBatches; older
//     ones are dropped and counted) and counters since start, and for each
//     retained batch the job and task events of its jobs
//     (listener.JobStarted, JobEnded, TaskEnded; at most
//     Options.MaxTasksPerBatch task attempts per batch, default 10 000, and
//     Options.RetainedTasks over all batches, default 100 000; past them
//     attempts are counted, not kept). It is safe for concurrent use: the bus
//     calls OnEvent from its goroutine while HTTP handlers read snapshots
//     from theirs. OnEvent does little per task event (a binary search and
//     an append), so the UI keeps up with the bus; and the bus drops task
//     events first when a listener falls behind (package listener).
//   - Server is the http.Handler: NewServer registers a Progress on a
//     dstream.Context and routes the endpoints below.
//   - Server.Registry is the Server's own Prometheus registry behind
//     /metrics (never the global prometheus.DefaultRegisterer, so several
//     contexts, and several Servers, in one process do not collide).
//   - Server.Listen binds an address (loopback 127.0.0.1:4040 is the
//     commands' default, as Spark's UI port; port 0 picks a free port) and
//     serves until its context.Context is done or Endpoint.Close is called,
//     then shuts down gracefully (http.Server.Shutdown). A port in use is
//     an error from Listen, before anything is served.
//
// # Endpoints
//
// Every response but /metrics' and the web UI's is JSON (Content-Type
// application/json), and every error is, /metrics' included:
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
//	GET /api/v1/batches/{batchTime}/tasks      the jobs of the batch, each with its stages and
//	                                           their task attempts (BatchTasks)
//	GET /api/v1/statistics                     counters and averages (Statistics)
//	GET /api/v1/workers                        the processes that run tasks (Worker); in local[N], this one
//	GET /api/v1/receivers                      the receivers (Receiver)
//	GET /api/v1/graph                          the stream graph, operators in creation order ([]GraphNode):
//	                                           the context's own, or what Server.SetGraph set
//	GET /api/v1/queries[/{name}]               the named queries, and one's answer (QueryAnswer)
//	GET /metrics                               Prometheus metrics, text format (see Metrics below)
//	GET /healthz, GET /readyz                  the probes (package health): text, 200 "ok" or
//	                                           503 and why not (dstream.Context's Live, Ready)
//	GET /                                      the web UI (HTML; its script and style sheet
//	                                           under /static/)
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
// GET /api/v1/batches/{batchTime} adds, for a job reading Kafka,
// "offsetRanges": [{"stream", "topic", "partition", "fromOffset",
// "untilOffset"}], the offsets each partition's range took, and, for a job
// with event-time windows, "eventTimeOperators": [{"stream", "name",
// "watermark", "lateRecords"}], the watermark each event-time window
// operator ran the batch with (RFC 3339; null: none yet) and the records it
// dropped as late in it (null until the batch has completed).
//
// Bounds: the batches retained (Options.RetainedBatches), each batch's
// output operations (as many as the graph has), its task attempts
// (Options.MaxTasksPerBatch, and Options.RetainedTasks over all batches:
// BatchTasks counts those not kept) and jobs (MaxJobsPerBatch), and every
// failure message (cut to MaxFailureReason bytes). The listener bus drops events when a
// listener falls behind; a batch whose events were dropped shows the state
// of the last event that arrived.
//
// # Metrics
//
// GET /metrics serves the Prometheus text exposition format (promhttp,
// which also negotiates the protobuf format and compression). Every metric
// of the engine's is prefixed dstream_:
//
//	counters
//	  dstream_batches_total{status="completed"|"failed"}   batches finished, by outcome
//	  dstream_batch_records_total                          records of the batches submitted (inputSize)
//	  dstream_block_store_evictions_total                  blocks the store evicted
//	  dstream_receiver_waits_total                         receiver waits for input memory (backpressure)
//	  dstream_listener_events_dropped_total                events the listener bus dropped (a listener fell behind)
//	  dstream_receiver_records_total                       records the receivers have taken in
//	  dstream_receiver_records_dropped_total               records they dropped as malformed (a line over the limit)
//	  dstream_late_records_total                           records event-time windows dropped as late (listener.LateRecords)
//	histograms, one observation per finished batch, in seconds
//	  dstream_batch_scheduling_delay_seconds               processing start - submission
//	  dstream_batch_processing_seconds                     processing end - processing start
//	  dstream_batch_total_delay_seconds                    processing end - batch time
//	gauges
//	  dstream_batches_active{status="queued"|"processing"} retained batches not finished
//	  dstream_block_store_bytes{class="input"|"state"|"shuffle"|"cache"}
//	                                                       bytes the store holds, by class
//	  dstream_block_store_capacity_bytes                   the store's capacity
//	  dstream_block_store_input_limit_bytes                the input share now
//	  dstream_block_store_peak_bytes                       the most the store has held
//	  dstream_block_store_blocks                           blocks in the store
//	  dstream_worker_slots{worker="local"}                 task slots of each worker
//	  dstream_worker_free_slots{worker="local"}            of those, the ones not running a task
//	  dstream_worker_excluded{worker="local"}              1 while it takes no new task (a straggler's machine)
//	  dstream_master_lease_epoch                           the epoch of the checkpoint location's lease this master acts with (0: a standby, or no lease)
//	  dstream_checkpoint_scratch_bytes                     bytes a cluster master's temporary checkpoint folder holds in memory
//	  dstream_checkpoint_scratch_spilled_objects           its objects written as files (they did not fit); both only with such a folder
//	  dstream_kafka_lag_records{stream,topic,partition}    offsets of a Kafka partition past its
//	                                                       stream's range at the latest cut
//
// The go_* (runtime) and process_* (process) metrics of client_golang's
// collectors follow, and promhttp_metric_handler_errors_total.
//
// The batch counters and the histograms come from the listener bus, counted on the bus's goroutine
// as the events arrive: a batch counts once its BatchCompleted event is
// delivered (completed or failed alike, in the histograms too), its records
// once its BatchSubmitted event is. Events the bus drops are not counted (the
// bus's own drop count is not reachable from a dstream.Context, so it is not
// exported). Histogram buckets are DelayBuckets (5 ms .. 60 s, for batch
// intervals of 50 ms .. 10 s). The rest are read from the context and the
// Progress when the registry is gathered: a scrape sees their values at
// that moment, with nothing polling between scrapes. Counters read at scrape
// time (evictions, receiver waits and records) restart with the process.
package ui
