package dstream_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/rdd"
)

// Event time read from Kafka: the watermark follows the slowest of a
// topic's three partitions (kfake, three brokers), an idle partition holds
// it unless WithIdleness, and a master stopped hard mid-interval resumes
// with the fault-free run's watermarks. A record's value is its event time
// in seconds.

// kafkaETBatch is what batch k (from 1) writes to each partition: a
// record's value is its event time in seconds; sched[p] says, per
// partition, which event time batch k writes (none when it returns < 0).
type kafkaETSchedule func(k int, p int32) int

func kafkaETBatch(k int, sched kafkaETSchedule) map[int32][]string {
	out := map[int32][]string{}
	for p := range int32(3) {
		if s := sched(k, p); s >= 0 {
			out[p] = append(out[p], strconv.Itoa(s))
		}
	}
	return out
}

// kafkaETJob counts the records in 10 s tumbling event-time windows
// (append mode, 1 s delay) and returns, per interval, the windows output
// and the late records, and the operator's watermark (in seconds; "-":
// none). block, if not nil, may block interval at (a crash there).
func kafkaETJob(h *dstreamtest.Harness[kv], brokers []string, idleness time.Duration, block func(time.Time) bool, opts ...func(*dstream.KafkaOptions)) (func(time.Time) string, func(time.Time) string) {
	ko := dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{kafkaTopic}}, MaxRatePerPartition: 1}
	for _, o := range opts {
		o(&ko)
	}
	recs := dstream.KafkaStream(h.Ctx, ko)
	dstream.ForeachRDD(recs, func(ctx context.Context, _ *rdd.Dataset[dstream.KafkaRecord], at time.Time) error {
		if block != nil && block(at) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	vals := dstream.Map(recs, func(r dstream.KafkaRecord) kv {
		s, _ := strconv.Atoi(string(r.Value))
		return p(fmt.Sprint("p", r.Partition), s)
	})
	var etOpts []dstream.EventTimeOption
	if idleness > 0 {
		etOpts = append(etOpts, dstream.WithIdleness(idleness))
	}
	ev := dstream.WithEventTime(vals, func(x kv) time.Time { return time.Unix(int64(x.Value), 0) }, sec, etOpts...)
	counts := dstream.CountByEventWindow(ev, func(kv) string { return "all" }, dstream.TumblingWindows(10*sec), dstream.AppendMode, 2)
	out := dstreamtest.Collect(dstream.Map(counts.Stream, func(w dstream.Windowed[string, int64]) kv {
		return p(fmt.Sprintf("[%d,%d)", w.Start.Unix(), w.End.Unix()), int(w.Value))
	}))
	late := dstreamtest.Collect(dstream.Map(counts.Late(), func(e dstream.Event[kv]) kv { return e.Value }))
	return func(at time.Time) string {
			return fmt.Sprint(render(out)(at), " late=", render(late)(at))
		}, func(at time.Time) string {
			w, ok := counts.Watermark(at)
			if !ok {
				return "-"
			}
			return fmt.Sprint(w.Unix())
		}
}

// runKafkaET runs kafkaETJob for n intervals, writing batch k before
// interval k is cut, and returns each interval's output and watermark.
func runKafkaET(t *testing.T, env string, n int, sched kafkaETSchedule, idleness time.Duration) (out, wms []string, times []time.Time) {
	t.Helper()
	_, brokers := kafkaCluster(t, env, 3)
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	o, wm := kafkaETJob(h, brokers, idleness, nil)
	h.Start()
	for k := 1; k <= n; k++ {
		produce(t, brokers, kafkaETBatch(k, sched))
		at := h.Tick()
		times = append(times, at)
		out, wms = append(out, o(at)), append(wms, wm(at))
	}
	return out, wms, times
}

// Partitions 0 and 1 are at 100+10k s in batch k, partition 2 15 s
// behind: the watermark is partition 2's progress less the delay.
func TestKafkaEventTimeSlowestPartitionHoldsWatermark(t *testing.T) {
	sched := func(k int, p int32) int {
		if p == 2 {
			return 100 + 10*k - 15
		}
		return 100 + 10*k
	}
	_, wms, _ := runKafkaET(t, "DSTREAM_TEST_KAFKA", 5, sched, 0)
	if want := "[- 94 104 114 124]"; fmt.Sprint(wms) != want {
		t.Errorf("watermarks %v, want %s (the slowest partition's, not the stream's largest event time's 109...)", wms, want)
	}
}

// Ranges split into several dataset partitions (SplitRecords 1, three
// records a partition an interval) still map to their Kafka partitions:
// partition 2, 15 s behind, holds the watermark.
func TestKafkaEventTimeSplitRanges(t *testing.T) {
	_, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", 3)
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	_, wm := kafkaETJob(h, brokers, 0, nil, func(o *dstream.KafkaOptions) { o.MaxRatePerPartition, o.SplitRecords = 0, 1 })
	h.Start()
	var wms []string
	for k := 1; k <= 3; k++ {
		b := map[int32][]string{}
		for p := range int32(3) {
			for i := range 3 {
				b[p] = append(b[p], strconv.Itoa(100+10*k-i-15*int(p/2)))
			}
		}
		produce(t, brokers, b)
		wms = append(wms, wm(h.Tick()))
	}
	if want := "[- 94 104]"; fmt.Sprint(wms) != want {
		t.Errorf("watermarks %v, want %s", wms, want)
	}
}

// idleSchedule: partitions 0 and 1 at 100+10k s in batch k; partition 2
// writes 105 s in batch 1, nothing in batches 2 to 4, then 103 s in batch
// 5 (behind: late once its partition was idle), then nothing.
func idleSchedule(k int, p int32) int {
	switch {
	case p < 2:
		return 100 + 10*k
	case k == 1:
		return 105
	case k == 5:
		return 103
	}
	return -1
}

// A partition quiet since batch 1 holds the watermark at its 105 s without
// idleness; with WithIdleness(2s) it is idle after intervals 2 and 3 carried
// none of its records, and the watermark follows the other two; its record
// in batch 5 is behind the watermark, which does not move back: late.
func TestKafkaEventTimeIdlePartition(t *testing.T) {
	out, wms, _ := runKafkaET(t, "DSTREAM_TEST_KAFKA", 7, idleSchedule, 0)
	if want := "[- 104 104 104 104 104 104]"; fmt.Sprint(wms) != want {
		t.Errorf("without idleness: watermarks %v, want %s", wms, want)
	}
	for i, o := range out {
		if o != "[] late=[]" {
			t.Errorf("without idleness, interval %d: %s, want no window and nothing late", i+1, o)
		}
	}
	out, wms, _ = runKafkaET(t, "DSTREAM_TEST_KAFKA_IDLE", 7, idleSchedule, 2*sec)
	if want := "[- 104 104 129 139 139 139]"; fmt.Sprint(wms) != want {
		t.Errorf("with idleness: watermarks %v, want %s", wms, want)
	}
	want := []string{
		"[] late=[]", "[] late=[]", "[] late=[]",
		"[([100,110),1) ([110,120),2)] late=[]", // watermark 129: partition 2 idle
		"[([120,130),2)] late=[(p2,103)]",       // 139: partition 2's 103 s is late
		"[] late=[]", "[] late=[]",              // 139: partition 2, active at interval 5, holds it
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("with idleness, interval %d: %s, want %s", i+1, out[i], want[i])
		}
	}
}

// A master stopped hard while interval 4 runs (cut, its manifest logged,
// its outputs running, its completion not logged) and started again on its
// checkpoint folder after the rest of the records arrived: intervals 4 to 8
// have the fault-free run's watermarks (partition 2's idleness included),
// windows and late records.
func TestKafkaEventTimeRestartKeepsPartitionWatermarks(t *testing.T) {
	const n, crash = 8, 4
	want, wantWM, times := runKafkaET(t, "DSTREAM_TEST_KAFKA_REF", n, idleSchedule, 2*sec)

	_, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", 3)
	ck := t.TempDir()
	withCk := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = ck }}
	first := dstreamtest.New[kv](t, withCk)
	entered := make(chan struct{})
	out1, _ := kafkaETJob(first, brokers, 2*sec, func(at time.Time) bool {
		if at.Equal(times[crash-1]) {
			close(entered)
			return true
		}
		return false
	})
	first.Start()
	for k := 1; k < crash; k++ {
		produce(t, brokers, kafkaETBatch(k, idleSchedule))
		if got := out1(first.Tick()); got != want[k-1] {
			t.Fatalf("first run, interval %d: %s, want %s", k, got, want[k-1])
		}
	}
	produce(t, brokers, kafkaETBatch(crash, idleSchedule))
	first.Clock.Advance(sec)
	<-entered
	_ = first.Ctx.Stop(false)
	for k := crash + 1; k <= n; k++ {
		produce(t, brokers, kafkaETBatch(k, idleSchedule))
	}

	second := dstreamtest.New[kv](t, withCk)
	out2, wm2 := kafkaETJob(second, brokers, 2*sec, nil)
	second.Start()
	for k := crash; k <= n; k++ {
		at := times[k-1]
		advanceTo(t, second, at)
		if got := out2(at); got != want[k-1] {
			t.Errorf("resumed, interval %d: %s, want %s", k, got, want[k-1])
		}
		if got := wm2(at); got != wantWM[k-1] {
			t.Errorf("resumed, interval %d: watermark %s, want %s", k, got, wantWM[k-1])
		}
	}
	m, ok := second.Ctx.Manifest(times[n-1])
	if !ok || len(m.EventTimes) != 1 || len(m.EventTimes[0].Partitions) != 3 || !m.EventTimes[0].Partitions[2].Idle {
		t.Errorf("the last interval's manifest %+v: want the three partitions' progress, partition 2 idle", m)
	}
}

// WithIdleness needs a stream read from one Kafka stream, and a whole
// number of milliseconds, 0 or more: Start says so.
func TestWithIdlenessRefusesBadUse(t *testing.T) {
	for _, c := range []struct {
		name     string
		kafka    bool
		idleness time.Duration
		want     string
	}{
		{"not read from Kafka", false, sec, "WithIdleness applies to a stream read per partition"},
		{"negative", true, -sec, "idleness -1s must be a whole number of milliseconds"},
		{"below a millisecond", true, time.Microsecond, "idleness 1µs must be a whole number of milliseconds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, err := dstream.NewContext(dstream.Config{Master: "local[1]", BatchInterval: sec})
			if err != nil {
				t.Fatal(err)
			}
			var s *dstream.Stream[kv]
			if c.kafka {
				recs := dstream.KafkaStream(ctx, dstream.KafkaOptions{Options: kafka.Options{Brokers: []string{"127.0.0.1:1"}, Topics: []string{kafkaTopic}}})
				s = dstream.Map(recs, func(dstream.KafkaRecord) kv { return p("", 0) })
			} else {
				s = dstream.QueueStream(ctx, dstream.NewQueue[kv]())
			}
			dstream.WithEventTime(s, func(kv) time.Time { return time.Time{} }, sec, dstream.WithIdleness(c.idleness)).Print(1)
			err = ctx.Start()
			if err == nil {
				_ = ctx.Stop(false)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Start = %v, want an error saying %q", err, c.want)
			}
		})
	}
}
