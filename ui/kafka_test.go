package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/kafka"
	"github.com/dstream/dstream/ui"
)

// A Kafka stream's batch names the offsets it took from each partition,
// and /metrics has each partition's lag: with at most 4 records a
// partition an interval, 10 written to partition 0 and 3 to partition 1
// leave a lag of 6 and 0. (Stream 2: the harness's queue is stream 1.)
func TestKafkaOffsetsAndLag(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range 13 {
		rs = append(rs, &kgo.Record{Partition: int32(min(1, i/10)), Value: []byte(fmt.Sprint(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		recs := dstream.KafkaStream(in.Context(), dstream.KafkaOptions{Options: kafka.Options{Brokers: brokers, Topics: []string{"in"}}, MaxRatePerPartition: 4})
		dstreamtest.Collect(recs)
	})
	f.tick(t)
	code, body, _ := request(t, http.MethodGet, fmt.Sprintf("%s/api/v1/batches/%d", f.url, t1))
	var b ui.Batch
	if err := json.Unmarshal([]byte(body), &b); code != 200 || err != nil {
		t.Fatalf("GET batch: %d %v\n%s", code, err, body)
	}
	want := []ui.OffsetRange{{Stream: 2, Topic: "in", Partition: 0, FromOffset: 0, UntilOffset: 4}, {Stream: 2, Topic: "in", Partition: 1, FromOffset: 0, UntilOffset: 3}}
	if !reflect.DeepEqual(b.OffsetRanges, want) || b.InputSize != 7 {
		t.Errorf("batch offset ranges %+v, input %d; want %+v, 7", b.OffsetRanges, b.InputSize, want)
	}
	// The batch's page lists the ranges (when a browser is at hand).
	if browser := findBrowser(); browser != "" {
		bctx := headless(t, browser, 30*time.Second)
		if err := chromedp.Do(bctx, chromedp.Navigate(fmt.Sprintf("%s/#/batch/%d", f.url, t1))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelectorAll('#offset-ranges tbody tr').length === 2`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("the batch page lists no offset ranges: %v", err)
		}
		rows, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('#offset-ranges tbody').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rows, "in") || !strings.Contains(rows, "4") || !strings.Contains(rows, "3") {
			t.Errorf("the batch page's offset ranges %q", rows)
		}
	}
	expectMetrics(t, f.url, `# TYPE dstream_kafka_lag_records gauge
dstream_kafka_lag_records{partition="0",stream="2",topic="in"} 6
dstream_kafka_lag_records{partition="1",stream="2",topic="in"} 0
`, "dstream_kafka_lag_records")
}
