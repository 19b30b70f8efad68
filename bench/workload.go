// Package bench runs the D-Streams paper's workloads (Grep, WordCount,
// TopKCount) on deterministic 100-byte records, finds the highest input rate
// the engine sustains, measures end-to-end latency at that rate, and runs the
// same computation as a plain single-threaded Go loop for comparison.
package bench

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/rdd"
)

// Pattern is what Grep looks for; it occurs in a few percent of the records.
const Pattern = "stream"

// Window is WordCount's and TopKCount's window, as in the paper.
const Window = 30 * time.Second

// Workload is one of the paper's benchmarks.
type Workload struct {
	Name string
	// Build adds the workload's graph on in; its output reports, per
	// interval, a figure through sink (the grep count, the window size or
	// the top word) so the work cannot be skipped.
	Build func(in *dstream.Stream[string], window time.Duration, sink func(t time.Time, v int64))
	// Baseline returns the plainest fast single-threaded loop doing the
	// same work, fed one interval at a time.
	Baseline func(window, slide time.Duration) func(records [][]string) int64
}

// Workloads lists the workloads by name.
var Workloads = map[string]Workload{
	"grep":      {Name: "grep", Build: buildGrep, Baseline: grepBaseline},
	"wordcount": {Name: "wordcount", Build: buildWordCount, Baseline: wordCountBaseline},
	"topk":      {Name: "topk", Build: buildTopK, Baseline: topKBaseline},
}

// Names returns the workload names, sorted.
func Names() []string {
	var ns []string
	for n := range Workloads {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func buildGrep(in *dstream.Stream[string], _ time.Duration, sink func(time.Time, int64)) {
	matches := dstream.Filter(in, func(r string) bool { return strings.Contains(r, Pattern) })
	dstream.ForeachRDD(dstream.Count(matches), func(ctx context.Context, ds *rdd.Dataset[int64], t time.Time) error {
		xs, err := ds.Collect(ctx)
		if err == nil && len(xs) == 1 {
			sink(t, xs[0])
		}
		return err
	})
}

// windowCounts is the word count over the window, incremental with an inverse.
func windowCounts(in *dstream.Stream[string], window time.Duration) *dstream.Stream[dstream.Pair[string, int64]] {
	ones := dstream.FlatMapEmit(in, wordOnes)
	return dstream.ReduceByKeyAndWindowInv(ones, add, sub, window, in.Slide(), 0,
		func(p dstream.Pair[string, int64]) bool { return p.Value > 0 })
}

// wordOnes emits (word, 1) for each word of line.
func wordOnes(line string, emit func(dstream.Pair[string, int64])) {
	for w := range strings.FieldsSeq(line) {
		emit(dstream.KV(w, int64(1)))
	}
}

func add(a, b int64) int64 { return a + b }
func sub(a, b int64) int64 { return a - b }

func buildWordCount(in *dstream.Stream[string], window time.Duration, sink func(time.Time, int64)) {
	dstream.ForeachRDD(windowCounts(in, window), func(ctx context.Context, ds *rdd.Dataset[dstream.Pair[string, int64]], t time.Time) error {
		n, err := ds.Count(ctx)
		if err == nil {
			sink(t, n)
		}
		return err
	})
}

// byCount orders pairs by count, largest first, then by word.
func byCount(a, b dstream.Pair[string, int64]) int {
	if a.Value != b.Value {
		if a.Value > b.Value {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Key, b.Key)
}

// topOf returns the k first pairs of xs in byCount order, as sorting xs and
// keeping its first k would, but in one pass with a sorted slice of at most
// k pairs (the baseline's way): a pair is compared with the smallest kept
// and inserted only when it beats it.
func topOf(k int, xs iter.Seq[dstream.Pair[string, int64]]) []dstream.Pair[string, int64] {
	top := make([]dstream.Pair[string, int64], 0, k+1)
	if k <= 0 {
		return top
	}
	for x := range xs {
		if len(top) == k && byCount(x, top[k-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, x, byCount)
		top = slices.Insert(top, i, x)
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

func buildTopK(in *dstream.Stream[string], window time.Duration, sink func(time.Time, int64)) {
	counts := windowCounts(in, window)
	// Each partition keeps its own top 10; the driver merges the few.
	tops := dstream.MapPartitions(counts, func(xs iter.Seq[dstream.Pair[string, int64]]) iter.Seq[dstream.Pair[string, int64]] {
		return func(yield func(dstream.Pair[string, int64]) bool) {
			for _, x := range topOf(10, xs) {
				if !yield(x) {
					return
				}
			}
		}
	})
	dstream.ForeachRDD(tops, func(ctx context.Context, ds *rdd.Dataset[dstream.Pair[string, int64]], t time.Time) error {
		xs, err := ds.Collect(ctx)
		if err == nil && len(xs) > 0 {
			sink(t, topOf(10, slices.Values(xs))[0].Value)
		}
		return err
	})
}

// Pool is a fixed set of generated records that intervals take slices of.
type Pool struct {
	Records []string
}

var (
	poolMu sync.Mutex
	pools  = map[int]*Pool{}
)

// NewPool returns n deterministic 100-byte records (seed 1), cached.
func NewPool(n int) *Pool {
	poolMu.Lock()
	defer poolMu.Unlock()
	if p, ok := pools[n]; ok {
		return p
	}
	g, err := generate.New("records100", 1)
	if err != nil {
		panic(err) // records100 always exists
	}
	// One backing string, sliced: the pool costs n*100 bytes plus headers.
	var b strings.Builder
	b.Grow(n * generate.RecordSize)
	buf := make([]byte, 0, generate.RecordSize)
	for range n {
		buf = g.Next(buf[:0])
		b.Write(buf)
	}
	all := b.String()
	recs := make([]string, n)
	for i := range recs {
		recs[i] = all[i*generate.RecordSize : (i+1)*generate.RecordSize]
	}
	p := &Pool{Records: recs}
	pools[n] = p
	return p
}

// Interval returns the records of interval k at n records per interval,
// cycling through the pool, as about parts partitions of sub-slices of the
// pool: nothing is copied (a partition that would wrap around the pool's end
// is split in two). With n = 0 it is parts empty partitions: an interval
// with no data still runs its tasks.
func (p *Pool) Interval(k int64, n, parts int) [][]string {
	out := make([][]string, 0, parts+1)
	size := len(p.Records)
	start := int((k * int64(n)) % int64(size))
	for i := range parts {
		lo, hi := i*n/parts, (i+1)*n/parts
		from, count := (start+lo)%size, hi-lo
		if n == 0 {
			out = append(out, nil)
			continue
		}
		for count > 0 {
			take := min(count, size-from)
			out = append(out, p.Records[from:from+take])
			count -= take
			from = 0
		}
	}
	return out
}

func (w Workload) String() string { return fmt.Sprintf("workload %s", w.Name) }
