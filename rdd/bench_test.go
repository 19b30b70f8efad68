package rdd_test

import (
	"strings"
	"testing"

	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/rdd"
)

// records returns n deterministic 100-byte records.
func records(n int) []string {
	g, _ := generate.New("records100", 1)
	out := make([]string, n)
	for i := range out {
		out[i] = string(g.Next(nil))
	}
	return out
}

// BenchmarkNarrowPipeline is a filter after a map over one partition: the
// per-record cost of pipelined narrow operators.
func BenchmarkNarrowPipeline(b *testing.B) {
	c, _ := newCtx(b, 1, 0)
	recs := records(100_000)
	d := rdd.Filter(rdd.Map(rdd.Parallelize(c, recs, 1), func(s string) int { return len(s) }), func(n int) bool { return n > 50 })
	b.SetBytes(100 * int64(len(recs)))
	for b.Loop() {
		if _, err := d.Count(bg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWordCountShuffle is the map side (split, pair, combine, bucket)
// and the reduce side of a word count over one partition of 100k records.
func BenchmarkWordCountShuffle(b *testing.B) {
	c, _ := newCtx(b, 1, 0)
	recs := records(100_000)
	words := rdd.FlatMap(rdd.Parallelize(c, recs, 1), strings.Fields)
	pairs := rdd.Map(words, func(w string) rdd.Pair[string, int64] { return rdd.KV(w, int64(1)) })
	for b.Loop() {
		// A new shuffle each time: a finished one's map output is reused.
		counts := rdd.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 2)
		if _, err := counts.Count(bg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWordCountShuffleSeq is BenchmarkWordCountShuffle splitting with
// strings.FieldsSeq: no slice per record.
func BenchmarkWordCountShuffleSeq(b *testing.B) {
	c, _ := newCtx(b, 1, 0)
	recs := records(100_000)
	words := rdd.FlatMapSeq(rdd.Parallelize(c, recs, 1), strings.FieldsSeq)
	pairs := rdd.Map(words, func(w string) rdd.Pair[string, int64] { return rdd.KV(w, int64(1)) })
	for b.Loop() {
		counts := rdd.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 2)
		if _, err := counts.Count(bg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWordCountBaselineSeq is the hand-written loop with strings.FieldsSeq.
func BenchmarkWordCountBaselineSeq(b *testing.B) {
	recs := records(100_000)
	for b.Loop() {
		m := map[string]int64{}
		for _, r := range recs {
			for w := range strings.FieldsSeq(r) {
				m[w]++
			}
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWordCountBaseline is the hand-written loop for the same work.
func BenchmarkWordCountBaseline(b *testing.B) {
	recs := records(100_000)
	for b.Loop() {
		m := map[string]int64{}
		for _, r := range recs {
			for _, w := range strings.Fields(r) {
				m[w]++
			}
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEmptyJob measures the fixed cost of a job: it bounds how short an
// interval can be.
func BenchmarkEmptyJob(b *testing.B) {
	c, _ := newCtx(b, 2, 0)
	d := rdd.Parallelize(c, []int{}, 2)
	for b.Loop() {
		if _, err := d.Count(bg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmptyTasks measures tasks per second: a job of 64 empty tasks.
func BenchmarkEmptyTasks(b *testing.B) {
	c, _ := newCtx(b, 2, 0)
	d := rdd.Parallelize(c, []int{}, 64)
	for b.Loop() {
		if _, err := d.Count(bg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkWordCountIntervals is a stream's word count: the same operators
// every interval (rdd.Context.InScope), over 10k records in two partitions,
// so each interval's tasks start from the last one's sizes and combiners.
func BenchmarkWordCountIntervals(b *testing.B) {
	c, _ := newCtx(b, 2, 0)
	recs := records(10_000)
	t := int64(0)
	for b.Loop() {
		t += 50
		var counts *rdd.Dataset[rdd.Pair[string, int64]]
		c.InScope(5, t, func() {
			words := rdd.FlatMapSeq(rdd.Parallelize(c, recs, 2), strings.FieldsSeq)
			pairs := rdd.Map(words, func(w string) rdd.Pair[string, int64] { return rdd.KV(w, int64(1)) })
			counts = rdd.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 2).Persist()
		})
		if _, err := counts.Count(bg); err != nil {
			b.Fatal(err)
		}
		if err := counts.Keep(bg); err != nil {
			b.Fatal(err)
		}
		c.Forget(rdd.ForgetRule{Op: 5, UpTo: t})
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}
