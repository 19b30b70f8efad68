package dstream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/dstreamtest"
)

// BenchmarkWindowUpdate is one interval of an incremental 30 s window over
// 10k pairs on 1k keys: the reduce, the cogroup with the previous window and
// the leaving interval, and the state checkpoint.
func BenchmarkWindowUpdate(b *testing.B) {
	h := dstreamtest.New[dstream.Pair[string, int64]](b, dstreamtest.Options{})
	w := dstream.ReduceByKeyAndWindowInv(h.In, func(a, b int64) int64 { return a + b }, func(a, b int64) int64 { return a - b },
		30*time.Second, time.Second, 0, func(p dstream.Pair[string, int64]) bool { return p.Value > 0 })
	dstreamtest.Collect(dstream.Count(w))
	batch := make([]dstream.Pair[string, int64], 10_000)
	for i := range batch {
		batch[i] = dstream.KV(fmt.Sprintf("k%d", i%1000), int64(1))
	}
	for range 40 { // fill the window first
		h.Input.Push(batch...)
	}
	h.Start()
	for range 35 {
		h.Tick()
	}
	b.ResetTimer()
	for b.Loop() {
		h.Input.Push(batch...)
		h.Tick()
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEmptyInterval is the fixed cost of an interval with one output
// and no data: what bounds the shortest useful batch interval.
func BenchmarkEmptyInterval(b *testing.B) {
	h := dstreamtest.New[int](b, dstreamtest.Options{BatchInterval: 100 * time.Millisecond})
	dstreamtest.Collect(dstream.Count(h.In))
	h.Start()
	for b.Loop() {
		h.Tick()
	}
}

// BenchmarkDurableWrites is one interval whose durable writes go to a local
// folder or to an S3 server over HTTP (gofakes3 in this process, so the
// figure is the client's and the protocol's cost, not a network's): a
// state checkpoint of 10k keys every interval, or an interval's output of
// 10k lines (SaveAsTextFiles: parts, then _SUCCESS). Compare each with the
// folder's.
func BenchmarkDurableWrites(b *testing.B) {
	for _, where := range []string{"folder", "s3"} {
		for _, what := range []string{"checkpoint", "output"} {
			b.Run(where+"/"+what, func(b *testing.B) {
				loc := b.TempDir()
				if where == "s3" {
					s3test.NewServer(b, "bench").Env(b)
					loc = "s3://bench/run"
				}
				h := dstreamtest.New[dstream.Pair[string, int64]](b, dstreamtest.Options{Config: func(c *dstream.Config) {
					if what == "checkpoint" {
						c.CheckpointDir = loc + "/ck"
						c.CheckpointInterval = time.Second
					}
				}})
				switch what {
				case "checkpoint":
					st := dstream.UpdateStateByKey(h.In, func(vs []int64, s dstream.Opt[int64]) dstream.Opt[int64] {
						return dstream.Some(s.Value + int64(len(vs)))
					}, 2)
					dstreamtest.Collect(dstream.Count(st))
				case "output":
					dstream.Map(h.In, func(p dstream.Pair[string, int64]) string { return p.Key }).SaveAsTextFiles(loc+"/out/lines", "")
				}
				batch := make([]dstream.Pair[string, int64], 10_000)
				for i := range batch {
					batch[i] = dstream.KV(fmt.Sprintf("key-%d", i), int64(1))
				}
				h.Start()
				for b.Loop() {
					h.Input.Push(batch...)
					h.Tick()
				}
			})
		}
	}
}
