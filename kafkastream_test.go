package dstream_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/manifest"
	"github.com/dstream/dstream/rdd"
)

// The Kafka direct stream against in-process clusters of three brokers
// (kfake, the real protocol): the ranges each interval takes are named in
// its manifest and fetched by the tasks, under every deployment, through a
// worker's loss and a master's restart, with every interval's output
// exactly a fault-free run's.

const kafkaTopic = "words"

// kafkaCluster starts an in-process Kafka cluster of three brokers with
// the topic in parts partitions, and names its brokers in the environment
// variable env, where the worker processes of a local-cluster test (this
// test binary, started by the master) find them; a worker process returns
// them and starts nothing.
func kafkaCluster(t *testing.T, env string, parts int32, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	if dstreamtest.InWorker() {
		return nil, strings.Split(os.Getenv(env), ",")
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(parts, kafkaTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Setenv(env, strings.Join(c.ListenAddrs(), ","))
	return c, c.ListenAddrs()
}

// brokersDir is a folder for the brokers' data, made in the test's process
// only: a worker process runs the test function again to build the graph
// and is killed or exits without running cleanups, so a folder made there
// would stay behind (the workers use the brokers the test started).
func brokersDir(t *testing.T) string {
	if dstreamtest.InWorker() {
		return ""
	}
	return t.TempDir()
}

// restartCluster stops the cluster kafkaCluster started with a data
// folder (every broker, every connection) and starts it again from its
// folder on the same ports: a restart of every broker.
func restartCluster(t *testing.T, kc *kfake.Cluster, dir string) *kfake.Cluster {
	t.Helper()
	var ports []int
	for _, a := range kc.ListenAddrs() {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(port)
		ports = append(ports, n)
	}
	kc.Close()
	c, err := kfake.NewCluster(kfake.NumBrokers(len(ports)), kfake.Ports(ports...), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// kafkaBatch is interval k's records (k from 1): per partition, a few
// lines of words, the same in every run.
func kafkaBatch(k int, parts int32) map[int32][]string {
	out := map[int32][]string{}
	for p := range parts {
		for i := range 3 + (k+int(p))%3 {
			out[p] = append(out[p], fmt.Sprintf("w%d common p%d w%d", (k+i)%4, p, (k*i)%5))
		}
	}
	return out
}

// produce writes records to the topic's partitions, each partition's in
// order, and waits until they are acknowledged.
func produce(t *testing.T, brokers []string, recs map[int32][]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(kafkaTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for p, vs := range recs {
		for _, v := range vs {
			rs = append(rs, &kgo.Record{Partition: p, Value: []byte(v), Key: []byte(fmt.Sprint("k", p))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// kafkaJob builds the job every Kafka test runs: the words of the records'
// values counted per interval, a running total (state, checkpointed every
// two intervals) and a three-interval window.
func kafkaJob(h *dstreamtest.Harness[kv], brokers []string, opts func(*dstream.KafkaOptions), block func(at time.Time) bool) func(at time.Time) string {
	o := dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{kafkaTopic}}}
	if opts != nil {
		opts(&o)
	}
	recs := dstream.KafkaStream(h.Ctx, o)
	dstream.ForeachRDD(recs, func(ctx context.Context, _ *rdd.Dataset[dstream.KafkaRecord], at time.Time) error {
		if block != nil && block(at) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	pairs := dstream.Map(dstream.FlatMap(recs, func(r dstream.KafkaRecord) []string { return strings.Fields(string(r.Value)) }),
		func(w string) kv { return p(w, 1) })
	perInterval := dstreamtest.Collect(dstream.ReduceByKey(pairs, add, 2))
	totals := dstreamtest.Collect(dstream.UpdateStateByKey(pairs, runningSum, 2).Checkpoint(2 * sec))
	window := dstreamtest.Collect(dstream.ReduceByKeyAndWindow(pairs, add, 3*sec, sec, 2))
	// Where each record came from: partition and offset, once each.
	where := dstreamtest.Collect(dstream.Map(recs, func(r dstream.KafkaRecord) string {
		return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
	}))
	return func(at time.Time) string {
		return fmt.Sprint(render(perInterval)(at), " | ", render(totals)(at), " | ", render(window)(at), " | ", len(where.At(at)))
	}
}

// wantKafka is the output kafkaJob must give for batches 1..n fed one per
// interval.
func wantKafka(n int, parts int32) []string {
	var out []string
	totals := map[string]int{}
	var windows []map[string]int
	for k := 1; k <= n; k++ {
		per := map[string]int{}
		records := 0
		for _, vs := range kafkaBatch(k, parts) {
			for _, v := range vs {
				records++
				for _, w := range strings.Fields(v) {
					per[w]++
					totals[w]++
				}
			}
		}
		windows = append(windows, per)
		win := map[string]int{}
		for _, m := range windows[max(0, len(windows)-3):] {
			for w, c := range m {
				win[w] += c
			}
		}
		out = append(out, fmt.Sprint(sortedKV(per), " | ", sortedKV(totals), " | ", sortedKV(win), " | ", records))
	}
	return out
}

func sortedKV(m map[string]int) string {
	var xs []kv
	for k, v := range m {
		xs = append(xs, p(k, v))
	}
	return fmt.Sprint(dstreamtest.Sorted(xs))
}

// runKafka runs kafkaJob for n intervals under master, producing batch k
// before interval k is cut, and returns every interval's output.
func runKafka(t *testing.T, master string, n int, parts int32) []string {
	_, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts)
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master})
	out := kafkaJob(h, brokers, nil, nil)
	h.Start()
	var got []string
	for k := 1; k <= n; k++ {
		produce(t, brokers, kafkaBatch(k, parts))
		at := h.Tick()
		got = append(got, out(at))
		m, ok := h.Ctx.Manifest(at)
		if !ok || len(m.Inputs) != 1 || len(m.Inputs[0].Ranges) != int(parts) {
			t.Fatalf("interval %d's manifest %+v: want a range per partition", k, m)
		}
	}
	return got
}

func TestKafkaStreamTakesEachIntervalsRecords(t *testing.T) {
	const n, parts = 5, 3
	got := runKafka(t, "local[2]", n, parts)
	want := wantKafka(n, parts)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("interval %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

// Ranges split into parts of at most 2 offsets: more partitions, the same
// records.
func TestKafkaStreamSplitsRanges(t *testing.T) {
	const n, parts = 3, 3
	_, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts)
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	out := kafkaJob(h, brokers, func(o *dstream.KafkaOptions) { o.SplitRecords = 2 }, nil)
	var split []int
	dstream.ForeachRDD(dstream.KafkaStream(h.Ctx, dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{kafkaTopic}}, SplitRecords: 2}),
		func(_ context.Context, ds *rdd.Dataset[dstream.KafkaRecord], _ time.Time) error {
			split = append(split, ds.NumPartitions())
			return nil
		})
	h.Start()
	want := wantKafka(n, parts)
	for k := 1; k <= n; k++ {
		produce(t, brokers, kafkaBatch(k, parts))
		if got := out(h.Tick()); got != want[k-1] {
			t.Errorf("interval %d:\n got %s\nwant %s", k, got, want[k-1])
		}
	}
	// Interval 1: 4, 5 and 3 records in the partitions: 2 + 3 + 2 parts.
	if len(split) == 0 || split[0] != 7 {
		t.Errorf("partitions per interval %v, want 7 at interval 1", split)
	}
}

// Under local-cluster and a standalone master the workers fetch the
// ranges the manifests name: the output is local[2]'s.
func TestKafkaStreamAcrossDeployments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const n, parts = 4, 3
	want := wantKafka(n, parts)
	for _, master := range []string{"local-cluster[2]", "cluster"} {
		t.Run(master, func(t *testing.T) {
			got := runKafka(t, master, n, parts)
			if dstreamtest.InWorker() {
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("outputs differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// A worker is SIGKILLed between intervals, the partition leaders move
// between brokers, and every broker restarts: the lost map outputs and state
// partitions are recomputed, their ranges fetched again, and every
// interval is a fault-free run's.
func TestKafkaStreamSurvivesKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const n, parts = 6, 4
	want := wantKafka(n, parts)
	dir := brokersDir(t)
	kc, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts, kfake.DataDir(dir))
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]"})
	out := kafkaJob(h, brokers, nil, nil)
	h.Start()
	for k := 1; k <= n; k++ {
		produce(t, brokers, kafkaBatch(k, parts))
		if k == 3 {
			dstreamtest.KillWorker(t, h.Ctx, nil)
		}
		if k == 4 {
			for p := range int32(parts) {
				if err := kc.MoveTopicPartition(kafkaTopic, p, (kc.LeaderFor(kafkaTopic, p)+1)%3); err != nil {
					t.Fatal(err)
				}
			}
		}
		if k == 5 {
			kc = restartCluster(t, kc, dir)
		}
		if got := out(h.Tick()); got != want[k-1] {
			t.Errorf("interval %d:\n got %s\nwant %s", k, got, want[k-1])
		}
	}
}

// A master stopped hard while interval 4 runs (as if killed) and started
// again on its checkpoint folder while more records arrived: interval 4
// runs again on the ranges it took, the intervals missed while it was down
// take the records at the per-partition rate, and every interval equals a
// fault-free run's (which the rate cap makes take one batch an interval).
func TestKafkaStreamRestartReplaysRanges(t *testing.T) {
	const n, parts, crash = 8, 2, 4
	// Every batch has 5 records a partition, and the cap makes an
	// interval take exactly one batch's worth when several wait. The
	// crash interval's has 3: were its ranges fixed again at the restart,
	// it would take 2 records of the next batch, which came before the
	// crash.
	batch := func(k int) map[int32][]string {
		out := map[int32][]string{}
		for p := range int32(parts) {
			for i := range 5 - 2*min(1, max(0, 1-abs(k-crash))) {
				out[p] = append(out[p], fmt.Sprintf("w%d p%d k%d", (k+i)%3, p, k%2))
			}
		}
		return out
	}
	capped := func(o *dstream.KafkaOptions) { o.MaxRatePerPartition = 5 }
	run := func(h *dstreamtest.Harness[kv], brokers []string, block func(time.Time) bool) func(time.Time) string {
		return kafkaJob(h, brokers, capped, block)
	}

	_, refBrokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA_REF", parts)
	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut := run(ref, refBrokers, nil)
	ref.Start()
	var want []string
	var times []time.Time
	for k := 1; k <= n; k++ {
		produce(t, refBrokers, batch(k))
		at := ref.Tick()
		times = append(times, at)
		want = append(want, refOut(at))
	}

	_, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts)
	ck := t.TempDir()
	withCk := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = ck }}
	first := dstreamtest.New[kv](t, withCk)
	entered := make(chan struct{})
	firstOut := run(first, brokers, func(at time.Time) bool {
		if at.Equal(times[crash-1]) {
			close(entered)
			return true
		}
		return false
	})
	first.Start()
	for k := 1; k < crash; k++ {
		produce(t, brokers, batch(k))
		if got := firstOut(first.Tick()); got != want[k-1] {
			t.Fatalf("first run, interval %d:\n got %s\nwant %s", k, got, want[k-1])
		}
	}
	produce(t, brokers, batch(crash))
	first.Clock.Advance(sec)
	<-entered // interval 4 took its ranges and runs
	// A record arrives before the crash, after interval 4's cut.
	produce(t, brokers, batch(crash+1))
	_ = first.Ctx.Stop(false)

	for k := crash + 2; k <= n; k++ {
		produce(t, brokers, batch(k))
	}
	second := dstreamtest.New[kv](t, withCk)
	secondOut := run(second, brokers, nil)
	second.Start()
	second.Clock.Advance(times[n-1].Sub(second.Clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := second.Ctx.AwaitBatch(ctx, times[n-1]); err != nil {
		t.Fatal(err)
	}
	for k := crash; k <= n; k++ {
		if got := secondOut(times[k-1]); got != want[k-1] {
			t.Errorf("resumed, interval %d:\n got %s\nwant %s", k, got, want[k-1])
		}
	}
	m, ok := second.Ctx.Manifest(times[n-1])
	if !ok || len(m.Inputs) != 1 || !slices.ContainsFunc(m.Inputs[0].Ranges, func(r manifest.OffsetRange) bool { return r.Until == int64(5*n-2) }) {
		t.Errorf("the last interval's manifest %+v: want ranges ending at offset %d", m, 5*n-2)
	}
}

func abs(x int) int { return max(x, -x) }

// sinkJob counts the words of the records' values per interval and saves
// each count to topic "counts" (key the word, value the count), exactly
// once; block, if not nil, runs after the sink (and may block interval at
// to stand for a crash there).
func sinkJob(h *dstreamtest.Harness[kv], brokers []string, block func(at time.Time) bool) {
	recs := dstream.KafkaStream(h.Ctx, dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{kafkaTopic}}, MaxRatePerPartition: 5})
	pairs := dstream.Map(dstream.FlatMap(recs, func(r dstream.KafkaRecord) []string { return strings.Fields(string(r.Value)) }),
		func(w string) kv { return p(w, 1) })
	out := dstream.Map(dstream.ReduceByKey(pairs, add, 3), func(x kv) dstream.KafkaRecord {
		return dstream.KafkaRecord{Key: []byte(x.Key), Value: []byte(fmt.Sprint(x.Value))}
	})
	dstream.SaveToKafka(out, dstream.KafkaSinkOptions{Brokers: brokers, Topic: "counts", TransactionalID: "wordcount-counts"})
	dstream.ForeachRDD(recs, func(ctx context.Context, _ *rdd.Dataset[dstream.KafkaRecord], at time.Time) error {
		if block != nil && block(at) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
}

// sinkOutput reads every committed record of topic "counts": the words'
// totals and how many records there are.
func sinkOutput(t *testing.T, brokers []string) (map[string]int, int) {
	t.Helper()
	src, err := kafka.NewSource(kafka.Options{Brokers: brokers, Topics: []string{"counts"}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, _, err := src.Plan(ctx, nil, kafka.Limit{})
	if err != nil {
		t.Fatal(err)
	}
	totals, n := map[string]int{}, 0
	for _, r := range rs {
		err := src.Fetch(ctx, r, func(rec kafka.Record) bool {
			var c int
			fmt.Sscan(string(rec.Value), &c)
			totals[string(rec.Key)] += c
			n++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return totals, n
}

// sinkBatch is interval k's records: 5 a partition, so that with the rate
// cap an interval takes exactly one batch even after a restart.
func sinkBatch(k int, parts int32) map[int32][]string {
	out := map[int32][]string{}
	for p := range parts {
		for i := range 5 {
			out[p] = append(out[p], fmt.Sprintf("w%d w%d p%d", (k+i)%7, (k*i)%3, p))
		}
	}
	return out
}

// wantSink is what sinkJob writes for batches 1..n: the words' totals and
// the number of (interval, word) records.
func wantSink(n int, parts int32) (map[string]int, int) {
	totals, records := map[string]int{}, 0
	for k := 1; k <= n; k++ {
		words := map[string]bool{}
		for _, vs := range sinkBatch(k, parts) {
			for _, v := range vs {
				for _, w := range strings.Fields(v) {
					totals[w]++
					words[w] = true
				}
			}
		}
		records += len(words)
	}
	return totals, records
}

// Kafka → word count → Kafka, with a worker SIGKILLed while intervals run
// and the brokers restarted: the tasks the worker ran run again elsewhere,
// and the topic's committed records hold every interval's counts once.
func TestSaveToKafkaExactlyOnceWithKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const n, parts = 6, 3
	dir := brokersDir(t)
	kc, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts, kfake.DataDir(dir))
	if kc != nil {
		if err := kc.CreateTopic("counts", 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]"})
	sinkJob(h, brokers, nil)
	h.Start()
	for k := 1; k <= n; k++ {
		produce(t, brokers, sinkBatch(k, parts))
		if k == 3 {
			dstreamtest.KillWorker(t, h.Ctx, nil)
		}
		if k == 4 {
			kc = restartCluster(t, kc, dir)
		}
		h.Tick()
	}
	wantTotals, wantRecords := wantSink(n, parts)
	totals, records := sinkOutput(t, brokers)
	if !reflect.DeepEqual(totals, wantTotals) || records != wantRecords {
		t.Errorf("the sink's committed records: %d, totals %v\nwant %d, totals %v", records, totals, wantRecords, wantTotals)
	}
}

// A master stopped hard after interval 4's records were written to Kafka,
// but before the interval completed, runs interval 4 again when it
// restarts: its sink finds the interval's markers and writes nothing, and
// the topic holds every interval's counts once.
func TestSaveToKafkaExactlyOnceAcrossRestart(t *testing.T) {
	const n, parts, crash = 7, 2, 4
	kc, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts)
	if err := kc.CreateTopic("counts", 2, nil); err != nil {
		t.Fatal(err)
	}
	ck := t.TempDir()
	withCk := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = ck }}
	first := dstreamtest.New[kv](t, withCk)
	entered := make(chan struct{})
	crashAt := dstreamtest.Start.Add(crash * sec)
	sinkJob(first, brokers, func(at time.Time) bool {
		if at.Equal(crashAt) {
			close(entered)
			return true
		}
		return false
	})
	first.Start()
	for k := 1; k < crash; k++ {
		produce(t, brokers, sinkBatch(k, parts))
		first.Tick()
	}
	produce(t, brokers, sinkBatch(crash, parts))
	first.Clock.Advance(sec)
	<-entered // interval 4 wrote its counts, and blocks
	_ = first.Ctx.Stop(false)
	for k := crash + 1; k <= n; k++ {
		produce(t, brokers, sinkBatch(k, parts))
	}
	second := dstreamtest.New[kv](t, withCk)
	sinkJob(second, brokers, nil)
	second.Start()
	last := dstreamtest.Start.Add(n * sec)
	second.Clock.Advance(last.Sub(second.Clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := second.Ctx.AwaitBatch(ctx, last); err != nil {
		t.Fatal(err)
	}
	wantTotals, wantRecords := wantSink(n, parts)
	totals, records := sinkOutput(t, brokers)
	if !reflect.DeepEqual(totals, wantTotals) || records != wantRecords {
		t.Errorf("the sink's committed records: %d, totals %v\nwant %d, totals %v", records, totals, wantRecords, wantTotals)
	}
}

// With backpressure the job's rate caps the intervals too, shared among
// the partitions by lag: before the first estimate, Config.InitialRate
// (4 records a second: 3 and 1 of partitions lagging by 15 and 5).
func TestKafkaStreamBackpressure(t *testing.T) {
	_, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", 2)
	h := dstreamtest.New[kv](t, dstreamtest.Options{Config: func(c *dstream.Config) { c.Backpressure, c.InitialRate = true, 4 }})
	recs := dstreamtest.Collect(dstream.KafkaStream(h.Ctx, dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{kafkaTopic}}}))
	h.Start()
	batch := map[int32][]string{}
	for i := range 15 {
		batch[0] = append(batch[0], fmt.Sprint("a", i))
		if i < 5 {
			batch[1] = append(batch[1], fmt.Sprint("b", i))
		}
	}
	produce(t, brokers, batch)
	at := h.Tick()
	m, _ := h.Ctx.Manifest(at)
	if got := fmt.Sprint(m.Inputs[0].Ranges); got != "[{words 0 0 3} {words 1 0 1}]" || len(recs.At(at)) != 4 {
		t.Errorf("interval 1's ranges %s, %d records; want [0, 3) and [0, 1), 4 records", got, len(recs.At(at)))
	}
}
