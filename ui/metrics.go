package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/sched"
)

// MetricsNamespace prefixes every metric the engine exports on /metrics
// (the Go runtime's go_* and the process's process_* metrics excepted).
const MetricsNamespace = "dstream"

// DelayBuckets are the upper bounds, in seconds, of the buckets of the
// per-batch histograms (dstream_batch_scheduling_delay_seconds,
// dstream_batch_processing_seconds, dstream_batch_total_delay_seconds):
// from a fraction of the shortest sensible batch interval (50 ms) to
// several times the longest (10 s), so that a job falling behind shows in
// the upper buckets rather than only in +Inf. NewServer copies it: changing
// it afterwards changes no Server's histograms.
var DelayBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// batchMetrics is the listener half of /metrics: counters and histograms
// updated from the bus's batch events, on the bus's goroutine. A batch whose
// BatchCompleted event the bus dropped is not counted (the bus counts what
// it drops; see package listener).
type batchMetrics struct {
	batches    *prometheus.CounterVec // status: completed, failed
	records    prometheus.Counter
	schedDelay prometheus.Histogram
	procTime   prometheus.Histogram
	totalDelay prometheus.Histogram
	tasks      *prometheus.CounterVec // outcome: succeeded, failed (retried or final), killed
	specTasks  prometheus.Counter
	late       prometheus.Counter
}

func newBatchMetrics() *batchMetrics {
	hist := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: MetricsNamespace, Name: name, Help: help, Buckets: slices.Clone(DelayBuckets)})
	}
	m := &batchMetrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "batches_total",
			Help: "Batches (intervals) whose output operations have all ended, by status: completed, or failed (an output operation or the state checkpoint failed)."},
			[]string{"status"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "batch_records_total",
			Help: "Records in the batches cut so far (the inputSize of every batch submitted)."}),
		schedDelay: hist("batch_scheduling_delay_seconds", "Per finished batch: processing start - submission time."),
		procTime:   hist("batch_processing_seconds", "Per finished batch: processing end - processing start."),
		totalDelay: hist("batch_total_delay_seconds", "Per finished batch: processing end - batch (interval) time."),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "task_attempts_total",
			Help: "Task attempts that ended, by outcome: succeeded, failed (then retried, or the job failed), killed (a speculative copy or its original that lost). Dropped task events are not counted (dstream_listener_events_dropped_total)."},
			[]string{"outcome"}),
		specTasks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "speculative_task_attempts_total",
			Help: "Speculative copies of straggling tasks that ended, whatever their outcome."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "late_records_total",
			Help: "Records event-time window operators dropped as late: every window they belong to had ended at or before the interval's watermark."}),
	}
	for _, o := range []string{"succeeded", "failed", "killed"} {
		m.tasks.WithLabelValues(o)
	}
	// Both series exist from the start, at 0, so a rate over them is defined
	// before the first failure.
	m.batches.WithLabelValues(string(StatusCompleted))
	m.batches.WithLabelValues(string(StatusFailed))
	return m
}

// OnEvent counts a batch's records when it is submitted, and the batch and
// its delays when it completes (completed or failed alike).
func (m *batchMetrics) OnEvent(e listener.Event) {
	switch e := e.(type) {
	case listener.BatchSubmitted:
		m.records.Add(float64(e.Batch.Records))
	case listener.BatchCompleted:
		info := e.Batch
		status := StatusCompleted
		if info.Err != nil {
			status = StatusFailed
		}
		m.batches.WithLabelValues(string(status)).Inc()
		m.schedDelay.Observe(info.SchedulingDelay.Seconds())
		m.procTime.Observe(info.ProcessingTime.Seconds())
		m.totalDelay.Observe(info.TotalDelay.Seconds())
	case listener.LateRecords:
		m.late.Add(float64(e.Records))
	case listener.TaskEnded:
		outcome := "succeeded"
		switch {
		case errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, sched.ErrKilled):
			outcome = "killed"
		case e.Err != nil:
			outcome = "failed"
		}
		m.tasks.WithLabelValues(outcome).Inc()
		if e.Speculative {
			m.specTasks.Inc()
		}
	}
}

func (m *batchMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.batches, m.records, m.schedDelay, m.procTime, m.totalDelay, m.tasks, m.specTasks, m.late}
}

// contextCollector is the scrape-time half of /metrics: a
// prometheus.Collector that reads the context and the Progress when the
// registry gathers, so its values are as of the scrape (no goroutine polls).
type contextCollector struct {
	sctx     *dstream.Context
	progress *Progress

	active, storeBytes, storeCapacity, storeInputLimit, storePeak, storeBlocks     *prometheus.Desc
	evictions, receiverWaits, receiverRecords, slots, freeSlots, excluded, dropped *prometheus.Desc
	checkpointFailures, streamRecords, receiverDropped, streamDropped              *prometheus.Desc
	leaseEpoch                                                                     *prometheus.Desc
	kafkaLag                                                                       *prometheus.Desc
	scratchBytes, scratchSpilled                                                   *prometheus.Desc
}

func newContextCollector(sctx *dstream.Context, p *Progress) *contextCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(MetricsNamespace, "", name), help, labels, nil)
	}
	return &contextCollector{
		sctx: sctx, progress: p,
		active:             d("batches_active", "Retained batches not finished yet, by status: queued (cut, waiting for the runner) or processing.", "status"),
		storeBytes:         d("block_store_bytes", "Bytes the block store holds, by class: input (received blocks), state, shuffle (map outputs), cache.", "class"),
		storeCapacity:      d("block_store_capacity_bytes", "The block store's capacity: its share of the memory budget (Config.MemoryBytes)."),
		storeInputLimit:    d("block_store_input_limit_bytes", "The most received input the store admits now (the input share, resized after every batch); a receiver whose block does not fit waits."),
		storePeak:          d("block_store_peak_bytes", "The most bytes the block store has held."),
		storeBlocks:        d("block_store_blocks", "Blocks in the block store."),
		evictions:          d("block_store_evictions_total", "Blocks the block store evicted to make room."),
		receiverWaits:      d("receiver_waits_total", "Times a receiver's block found the input share full and waited (backpressure)."),
		receiverRecords:    d("receiver_records_total", "Records the receivers have taken in (queue inputs are not receivers and are not counted)."),
		slots:              d("worker_slots", "Task slots of a worker.", "worker"),
		freeSlots:          d("worker_free_slots", "Task slots of a worker not running a task now.", "worker"),
		excluded:           d("worker_excluded", "1 while a worker takes no new task because a speculative copy beat one of its tasks (a straggler's machine), else 0.", "worker"),
		dropped:            d("listener_events_dropped_total", "Events the listener bus dropped because a listener fell behind (the UI's counts then miss them)."),
		scratchBytes:       d("checkpoint_scratch_bytes", "Bytes the master's temporary checkpoint folder (a job with state and no checkpoint location, in a cluster) holds in memory: at most a quarter of the memory budget."),
		scratchSpilled:     d("checkpoint_scratch_spilled_objects", "Objects of the master's temporary checkpoint folder that did not fit in its memory and were written as files."),
		leaseEpoch:         d("master_lease_epoch", "The epoch of the checkpoint location's lease this master acts with (it grows at every failover); 0 for a standby, and without a lease."),
		checkpointFailures: d("state_checkpoint_failures_total", "Durable state checkpoints that failed (the state keeps its lineage until the next one)."),
		streamRecords:      d("stream_received_records_total", "Records each input stream's receiver has taken in.", "stream", "receiver"),
		receiverDropped:    d("receiver_records_dropped_total", "Records the receivers dropped as malformed (a line over the socket source's limit)."),
		streamDropped:      d("stream_dropped_records_total", "Records each input stream's receiver dropped as malformed.", "stream", "receiver"),
		kafkaLag:           d("kafka_lag_records", "Offsets of a Kafka partition past the end of the range its stream took at the latest interval cut: the consumer lag.", "stream", "topic", "partition"),
	}
}

// Describe implements prometheus.Collector.
func (c *contextCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.storeBytes, c.storeCapacity, c.storeInputLimit, c.storePeak, c.storeBlocks,
		c.evictions, c.receiverWaits, c.receiverRecords, c.slots, c.freeSlots, c.excluded, c.dropped, c.checkpointFailures, c.streamRecords, c.receiverDropped, c.streamDropped, c.leaseEpoch, c.kafkaLag, c.scratchBytes, c.scratchSpilled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one read of each source per
// scrape.
func (c *contextCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	queued, processing := c.progress.active()
	gauge(c.active, float64(queued), string(StatusQueued))
	gauge(c.active, float64(processing), string(StatusProcessing))

	st := c.sctx.BlockStats()
	gauge(c.storeBytes, float64(st.InputBytes), "input")
	gauge(c.storeBytes, float64(st.StateBytes), "state")
	gauge(c.storeBytes, float64(st.ShuffleBytes), "shuffle")
	gauge(c.storeBytes, float64(st.CacheBytes), "cache")
	gauge(c.storeCapacity, float64(st.MaxBytes))
	gauge(c.storeInputLimit, float64(st.MaxInputBytes))
	gauge(c.storePeak, float64(st.PeakBytes))
	gauge(c.storeBlocks, float64(st.Blocks))
	counter(c.evictions, float64(st.Evictions))

	counter(c.receiverWaits, float64(c.sctx.ReceiverWaits()))
	counter(c.receiverRecords, float64(c.sctx.ReceivedRecords()))
	counter(c.receiverDropped, float64(c.sctx.DroppedRecords()))
	counter(c.dropped, float64(c.sctx.DroppedEvents()))
	counter(c.checkpointFailures, float64(c.sctx.CheckpointFailures()))
	gauge(c.leaseEpoch, float64(c.sctx.LeaseEpoch()))
	if held, spilled, ok := c.sctx.ScratchCheckpoint(); ok {
		gauge(c.scratchBytes, float64(held))
		gauge(c.scratchSpilled, float64(spilled))
	}
	for _, r := range c.sctx.Receivers() {
		ch <- prometheus.MustNewConstMetric(c.streamRecords, prometheus.CounterValue, float64(r.Records), strconv.Itoa(int(r.Stream)), r.Name)
		ch <- prometheus.MustNewConstMetric(c.streamDropped, prometheus.CounterValue, float64(r.Dropped), strconv.Itoa(int(r.Stream)), r.Name)
	}

	for _, l := range c.sctx.KafkaLags() {
		gauge(c.kafkaLag, float64(l.Lag), strconv.Itoa(int(l.Stream)), l.Topic, strconv.Itoa(int(l.Partition)))
	}

	for _, w := range c.sctx.Workers() {
		gauge(c.slots, float64(w.Slots), w.ID)
		gauge(c.freeSlots, float64(w.FreeSlots), w.ID)
		ex := 0.0
		if !w.ExcludedUntil.IsZero() {
			ex = 1
		}
		gauge(c.excluded, ex, w.ID)
	}
}

// active counts the retained batches queued and processing.
func (p *Progress) active() (queued, processing int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.batches {
		switch b.status {
		case StatusQueued:
			queued++
		case StatusProcessing:
			processing++
		}
	}
	return queued, processing
}

// newMetrics builds the private registry of one Server: the batch listener
// (registered on sctx's bus after p, so an event p has seen has been
// counted), the context collector and the Go runtime and process
// collectors. It returns the registry and the GET /metrics handler.
func newMetrics(sctx *dstream.Context, p *Progress, log *slog.Logger) (*prometheus.Registry, http.Handler) {
	reg := prometheus.NewRegistry()
	bm := newBatchMetrics()
	reg.MustRegister(bm.collectors()...)
	reg.MustRegister(newContextCollector(sctx, p))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sctx.AddListener(bm)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.ContinueOnError, // serve what could be gathered
		Registry:      reg,                      // promhttp_metric_handler_errors_total
	})
	return reg, h
}

// errorLog adapts a slog.Logger to promhttp.Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }
