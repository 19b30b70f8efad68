package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dstream/dstream/generate"
)

// The demo's Kafka (--source kafka): an in-process cluster (franz-go's
// kfake, the real protocol on a local port) when no --brokers are given,
// else a real one; the topic, made if missing; and a producer of
// generated tweets.

// demoPartitions is how many partitions the demo's topic has.
const demoPartitions = 4

type demoKafka struct {
	brokers  []string
	topic    string
	embedded *kfake.Cluster // nil with --brokers
}

// startDemoKafka starts the in-process cluster when brokers is "", and
// makes the topic when it does not exist.
func startDemoKafka(ctx context.Context, brokers, topic string) (*demoKafka, error) {
	k := &demoKafka{topic: topic}
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(demoPartitions, topic))
		if err != nil {
			return nil, fmt.Errorf("starting the in-process Kafka broker: %w", err)
		}
		k.embedded, k.brokers = c, c.ListenAddrs()
		return k, nil
	}
	k.brokers = strings.Split(brokers, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).CreateTopic(cctx, demoPartitions, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("kafka at %s: topic %s: %w", brokers, topic, err)
	}
	return k, nil
}

// Close stops the in-process cluster, if any.
func (k *demoKafka) Close() {
	if k.embedded != nil {
		k.embedded.Close()
	}
}

// produce writes generated tweets to the topic at rate records a second
// until ctx is done.
func (k *demoKafka) produce(ctx context.Context, rate int, logger *slog.Logger) error {
	gen, err := generate.New("tweets", 1)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.DefaultProduceTopic(k.topic), kgo.MaxBufferedRecords(10_000),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start, sent := time.Now(), 0
	var warned atomic.Bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			due := int(float64(rate) * now.Sub(start).Seconds())
			for ; sent < due; sent++ {
				cl.Produce(ctx, &kgo.Record{Value: gen.Next(nil)}, func(_ *kgo.Record, err error) {
					if err != nil && ctx.Err() == nil && !warned.Swap(true) {
						logger.Warn("demo producer: a record was not written", "err", err)
					}
				})
			}
		}
	}
}
