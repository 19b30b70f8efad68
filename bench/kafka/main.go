// Command kafka measures Kafka → WordCount → Kafka: the highest rate at
// which a job reading a topic directly (dstream.KafkaStream), counting the
// words of each interval (ReduceByKey) and writing the counts exactly once
// (dstream.SaveToKafka) keeps up, and, for scale, how fast franz-go alone
// consumes the same topic on this machine (the client's limit).
//
//	go run ./bench/kafka --batch 1s --master local[2]
//
// Without --brokers it starts an in-process cluster (franz-go's kfake, one
// broker, in this process: its work shares the cores with the job's) and
// writes --records 100-byte records (generate's records100, seed 1) to a
// topic of --partitions partitions. Each trial runs the job from the
// topic's start on the wall clock with the rate capped
// (--max-rate-per-partition: the rate over the partitions) for --intervals
// intervals, after 3 of warm-up; it keeps up when every measured interval
// is processed within the interval. The rate doubles until a trial falls
// behind, then bisects 4 times.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/listener"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		os.Exit(dstream.WorkerMain(os.Args[2:], os.Stderr))
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kafka bench:", err)
		os.Exit(1)
	}
}

const (
	inTopic  = "bench-in"
	outTopic = "bench-out"
	warmup   = 3
)

func run(args []string) error {
	fs := flag.NewFlagSet("kafka", flag.ContinueOnError)
	batch := fs.Duration("batch", time.Second, "batch interval")
	master := fs.String("master", "local[2]", "local[N] or local-cluster[N]")
	brokers := fs.String("brokers", "", "Kafka brokers (default: an in-process kfake broker)")
	records := fs.Int("records", 1_500_000, "records written to the input topic")
	parts := fs.Int("partitions", 4, "partitions of the input topic")
	intervals := fs.Int("intervals", 0, "measured intervals of a trial (default: 6 s worth)")
	start := fs.Int("start", 50_000, "first rate tried, records/s")
	trial := fs.Int("trial", -1, "internal: the trial a worker serves")
	rateFlag := fs.Int("rate", 0, "internal: the rate a worker's trial runs at")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the trials to this `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *intervals <= 0 {
		*intervals = max(6, int(6*time.Second / *batch))
	}
	if *trial >= 0 {
		// A local-cluster worker: the same graph, serving its master.
		_, err := runJob(strings.Split(*brokers, ","), *batch, *master, *parts, *trial, *rateFlag, 0, nil)
		return err
	}
	var addrs []string
	if *brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*parts), inTopic, outTopic))
		if err != nil {
			return err
		}
		defer c.Close()
		addrs = c.ListenAddrs()
		t0 := time.Now()
		if err := fill(addrs, *records); err != nil {
			return err
		}
		fmt.Printf("wrote %d records to %s (%d partitions) in %v\n", *records, inTopic, *parts, time.Since(t0).Round(time.Millisecond))
	} else {
		addrs = strings.Split(*brokers, ",")
	}
	n, d, err := consumeAll(addrs)
	if err != nil {
		return err
	}
	fmt.Printf("franz-go consumes the topic at %.0f records/s (%d records in %v)\n", float64(n)/d.Seconds(), n, d.Round(time.Millisecond))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	need := func(rate int) bool {
		return int64(rate)*int64(*intervals+warmup+1)*int64(*batch)/int64(time.Second) <= int64(*records)
	}
	try := func(k, rate int) bool {
		worst, err := runJob(addrs, *batch, *master, *parts, k, rate, *intervals, args)
		ok := err == nil && worst <= *batch
		fmt.Printf("  trial %d: %d records/s: slowest interval %v: %v%s\n", k, rate, worst.Round(time.Millisecond), map[bool]string{true: "keeps up", false: "falls behind"}[ok], errText(err))
		return ok
	}
	lo, hi, k := 0, 0, 0
	for rate := *start; ; rate *= 2 {
		if !need(rate) {
			fmt.Printf("  (stops at %d records/s: the topic holds too few records; raise --records)\n", rate)
			hi = rate
			break
		}
		k++
		if !try(k, rate) {
			hi = rate
			break
		}
		lo = rate
	}
	for range 4 {
		if lo == 0 || hi-lo < hi/20 {
			break
		}
		mid := (lo + hi) / 2
		k++
		if try(k, mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	fmt.Printf("%s, batch %v: sustained %d records/s (Kafka → WordCount → Kafka, exactly once)\n", *master, *batch, lo)
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// fill writes n records100 records to the input topic.
func fill(brokers []string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(inTopic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	gen, err := generate.New("records100", 1)
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	ctx := context.Background()
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: gen.Next(nil)}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return firstErr
}

// consumeAll reads the whole input topic with one franz-go consumer.
func consumeAll(brokers []string) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, err := kafka.NewSource(kafka.Options{Brokers: brokers, Topics: []string{inTopic}})
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	rs, _, err := src.Plan(ctx, nil, kafka.Limit{})
	if err != nil {
		return 0, 0, err
	}
	var want int64
	topics := map[string]map[int32]kgo.Offset{inTopic: {}}
	for _, r := range rs {
		want += r.Until
		topics[inTopic][r.Partition] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(topics), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	t0 := time.Now()
	var n int64
	for n < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return int(n), time.Since(t0), err
		}
		n += int64(fs.NumRecords())
	}
	return int(n), time.Since(t0), nil
}

// runJob runs trial k at rate records/s for warm-up plus intervals
// intervals and returns the slowest measured interval's processing time
// plus scheduling delay (a worker: serves until released).
func runJob(brokers []string, batch time.Duration, master string, parts, k, rate, intervals int, args []string) (time.Duration, error) {
	cfg := dstream.Config{Master: master, BatchInterval: batch, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard}
	if strings.HasPrefix(master, "local-cluster") {
		cfg.WorkerArgs = append(append([]string{}, args...), "--brokers", strings.Join(brokers, ","), "--trial", fmt.Sprint(k), "--rate", fmt.Sprint(rate))
	}
	sctx, err := dstream.NewContext(cfg)
	if err != nil {
		return 0, err
	}
	perPart := max(1, int64(rate)/int64(parts))
	recs := dstream.KafkaStream(sctx, dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{inTopic}}, MaxRatePerPartition: perPart})
	words := dstream.FlatMap(recs, func(r dstream.KafkaRecord) []string { return strings.Fields(string(r.Value)) })
	counts := dstream.ReduceByKey(dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) }),
		func(a, b int64) int64 { return a + b }, 0)
	out := dstream.Map(counts, func(p dstream.Pair[string, int64]) dstream.KafkaRecord {
		return dstream.KafkaRecord{Key: []byte(p.Key), Value: fmt.Appendf(nil, "%d", p.Value)}
	})
	dstream.SaveToKafka(out, dstream.KafkaSinkOptions{Brokers: brokers, Topic: outTopic, TransactionalID: fmt.Sprintf("bench-%d", k)})
	var (
		mu    sync.Mutex
		seen  int
		worst time.Duration
		done  = make(chan struct{})
	)
	sctx.AddListener(listener.Func(func(e listener.Event) {
		c, ok := e.(listener.BatchCompleted)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen > warmup {
			worst = max(worst, c.Batch.ProcessingTime+c.Batch.SchedulingDelay)
		}
		if seen == warmup+intervals {
			close(done)
		}
	}))
	if err := sctx.Start(); err != nil {
		return 0, err
	}
	if sctx.IsWorker() {
		<-sctx.Done()
		return 0, nil
	}
	select {
	case <-done:
	case <-time.After(time.Duration(warmup+intervals+30) * batch):
	}
	_ = sctx.Stop(false)
	mu.Lock()
	defer mu.Unlock()
	if seen < warmup+intervals {
		return max(worst, batch+1), fmt.Errorf("%d of %d intervals completed", seen, warmup+intervals)
	}
	return worst, nil
}
