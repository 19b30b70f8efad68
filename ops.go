package dstream

import (
	"iter"
	"time"

	"github.com/dstream/dstream/rdd"
)

// Pair is a key-value record (rdd.Pair).
type Pair[K, V any] = rdd.Pair[K, V]

// Dataset is an immutable partitioned collection with lineage (rdd.Dataset).
type Dataset[T any] = rdd.Dataset[T]

// KV builds a Pair.
func KV[K, V any](k K, v V) Pair[K, V] { return Pair[K, V]{Key: k, Value: v} }

// derive makes a stream with s's slide whose dataset at t is f(s's dataset at t).
func derive[T, U any](s *Stream[T], name string, f func(*rdd.Dataset[T]) *rdd.Dataset[U]) *Stream[U] {
	return newStream(s.ctx, name, s.slide, func(t time.Time) (*rdd.Dataset[U], error) {
		ds, err := s.At(t)
		if ds == nil || err != nil {
			return nil, err
		}
		return f(ds), nil
	}, s)
}

// Map applies f to every record.
func Map[T, U any](s *Stream[T], f func(T) U) *Stream[U] {
	return derive(s, "map", func(ds *rdd.Dataset[T]) *rdd.Dataset[U] { return rdd.Map(ds, f) })
}

// FlatMap applies f to every record and flattens the results.
func FlatMap[T, U any](s *Stream[T], f func(T) []U) *Stream[U] {
	return derive(s, "flatMap", func(ds *rdd.Dataset[T]) *rdd.Dataset[U] { return rdd.FlatMap(ds, f) })
}

// FlatMapSeq applies f to every record and flattens the sequences it
// returns, with no slice per record (strings.FieldsSeq, say).
func FlatMapSeq[T, U any](s *Stream[T], f func(T) iter.Seq[U]) *Stream[U] {
	return derive(s, "flatMap", func(ds *rdd.Dataset[T]) *rdd.Dataset[U] { return rdd.FlatMapSeq(ds, f) })
}

// FlatMapEmit applies f to every record; f passes each record it makes to
// emit. It is the cheapest flat map per record: no slice or sequence per
// input record, and f can split and pair at once (no Map after it):
//
//	pairs := dstream.FlatMapEmit(lines, func(line string, emit func(dstream.Pair[string, int64])) {
//		for w := range strings.FieldsSeq(line) {
//			emit(dstream.KV(w, int64(1)))
//		}
//	})
//
// After the consumer has stopped (a Take, say), emit drops what it is given.
func FlatMapEmit[T, U any](s *Stream[T], f func(x T, emit func(U))) *Stream[U] {
	return derive(s, "flatMap", func(ds *rdd.Dataset[T]) *rdd.Dataset[U] { return rdd.FlatMapEmit(ds, f) })
}

// Filter keeps the records for which keep returns true.
func Filter[T any](s *Stream[T], keep func(T) bool) *Stream[T] {
	return derive(s, "filter", func(ds *rdd.Dataset[T]) *rdd.Dataset[T] { return rdd.Filter(ds, keep) })
}

// MapPartitions applies f to each partition of every interval.
func MapPartitions[T, U any](s *Stream[T], f func(iter.Seq[T]) iter.Seq[U]) *Stream[U] {
	return derive(s, "mapPartitions", func(ds *rdd.Dataset[T]) *rdd.Dataset[U] { return rdd.MapPartitions(ds, f) })
}

// MapValues applies f to every value of a pair stream.
func MapValues[K, V, W any](s *Stream[Pair[K, V]], f func(V) W) *Stream[Pair[K, W]] {
	return derive(s, "mapValues", func(ds *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, W]] { return rdd.MapValues(ds, f) })
}

// Repartition spreads every interval's records evenly over n partitions.
func Repartition[T any](s *Stream[T], n int) *Stream[T] {
	return derive(s, "repartition", func(ds *rdd.Dataset[T]) *rdd.Dataset[T] { return rdd.Repartition(ds, n) })
}

// Union merges streams that slide together.
func Union[T any](first *Stream[T], rest ...*Stream[T]) *Stream[T] {
	for _, r := range rest {
		checkSameSlide(first.ctx, "union", first.slide, r.slide)
	}
	all := append([]*Stream[T]{first}, rest...)
	parents := make([]parent, len(all))
	for i, s := range all {
		parents[i] = s
	}
	return newStream(first.ctx, "union", first.slide, func(t time.Time) (*rdd.Dataset[T], error) {
		var dss []*rdd.Dataset[T]
		for _, s := range all {
			ds, err := s.At(t)
			if err != nil {
				return nil, err
			}
			if ds != nil {
				dss = append(dss, ds)
			}
		}
		if len(dss) == 0 {
			return nil, nil
		}
		return rdd.Union(dss[0], dss[1:]...), nil
	}, parents...)
}

// Transform applies an arbitrary dataset-to-dataset function to every
// interval: the way to use any dataset operator, or to join a stream with a
// static dataset. fn runs on the driver when the interval's job is built.
func Transform[T, U any](s *Stream[T], fn func(ds *rdd.Dataset[T], t time.Time) (*rdd.Dataset[U], error)) *Stream[U] {
	return newStream(s.ctx, "transform", s.slide, func(t time.Time) (*rdd.Dataset[U], error) {
		ds, err := s.rt.AtOrEmpty(t)
		if err != nil {
			return nil, err
		}
		return fn(ds, t)
	}, s)
}

// TransformWith combines two streams interval by interval with fn.
func TransformWith[T, U, V any](a *Stream[T], b *Stream[U], fn func(x *rdd.Dataset[T], y *rdd.Dataset[U], t time.Time) (*rdd.Dataset[V], error)) *Stream[V] {
	return combine2(a, b, "transformWith", fn)
}

// combine2 makes a stream whose dataset at t is fn of a's and b's datasets at
// t (empty where a stream has none); a and b must slide together.
func combine2[T, U, V any](a *Stream[T], b *Stream[U], name string, fn func(x *rdd.Dataset[T], y *rdd.Dataset[U], t time.Time) (*rdd.Dataset[V], error)) *Stream[V] {
	checkSameSlide(a.ctx, name, a.slide, b.slide)
	return newStream(a.ctx, name, a.slide, func(t time.Time) (*rdd.Dataset[V], error) {
		x, err := a.rt.AtOrEmpty(t)
		if err != nil {
			return nil, err
		}
		y, err := b.rt.AtOrEmpty(t)
		if err != nil {
			return nil, err
		}
		return fn(x, y, t)
	}, a, b)
}

// Count yields, every interval, one record: the number of records in it.
func Count[T any](s *Stream[T]) *Stream[int64] {
	return derive(s, "count", func(ds *rdd.Dataset[T]) *rdd.Dataset[int64] { return countDataset(ds) })
}

// countDataset is a one-record dataset holding ds's count (0 when empty).
func countDataset[T any](ds *rdd.Dataset[T]) *rdd.Dataset[int64] {
	// Count each partition in its task; only one record per partition is
	// shuffled to the single output partition.
	counts := rdd.Map(rdd.CountPartitions(ds), func(n int64) Pair[struct{}, int64] { return Pair[struct{}, int64]{Value: n} })
	zero := rdd.Parallelize(ds.Context(), []Pair[struct{}, int64]{{}}, 1)
	sum := rdd.ReduceByKey(rdd.Union(counts, zero), addInt64, 1)
	return rdd.Values(sum)
}

func addInt64(a, b int64) int64 { return a + b }
func subInt64(a, b int64) int64 { return a - b }

// Reduce yields, every interval, one record: the fold of its records by the
// associative and commutative f (nothing for an empty interval).
func Reduce[T any](s *Stream[T], f func(T, T) T) *Stream[T] {
	return derive(s, "reduce", func(ds *rdd.Dataset[T]) *rdd.Dataset[T] { return reduceDataset(ds, f) })
}

func reduceDataset[T any](ds *rdd.Dataset[T], f func(T, T) T) *rdd.Dataset[T] {
	// Fold each partition in its task, then the partials in one partition.
	partials := rdd.Map(rdd.FoldPartitions(ds, f), func(x T) Pair[struct{}, T] { return Pair[struct{}, T]{Value: x} })
	return rdd.Values(rdd.ReduceByKey(partials, f, 1))
}

// CountByValue yields, every interval, each distinct record with its count.
func CountByValue[T comparable](s *Stream[T], n int) *Stream[Pair[T, int64]] {
	return derive(s, "countByValue", func(ds *rdd.Dataset[T]) *rdd.Dataset[Pair[T, int64]] {
		return rdd.ReduceByKey(rdd.Map(ds, func(x T) Pair[T, int64] { return KV(x, int64(1)) }), addInt64, n)
	})
}

// ReduceByKey merges each interval's values per key with f. n is the number
// of partitions (<= 0: the context's default).
func ReduceByKey[K comparable, V any](s *Stream[Pair[K, V]], f func(V, V) V, n int) *Stream[Pair[K, V]] {
	return derive(s, "reduceByKey", func(ds *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, V]] { return rdd.ReduceByKey(ds, f, n) })
}

// GroupByKey gathers each interval's values per key.
func GroupByKey[K comparable, V any](s *Stream[Pair[K, V]], n int) *Stream[Pair[K, []V]] {
	return derive(s, "groupByKey", func(ds *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, []V]] { return rdd.GroupByKey(ds, n) })
}

// CombineByKey folds each interval's values per key with agg.
func CombineByKey[K comparable, V, C any](s *Stream[Pair[K, V]], agg rdd.Aggregator[V, C], n int) *Stream[Pair[K, C]] {
	c := s.ctx
	return derive(s, "combineByKey", func(ds *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, C]] {
		parts := n
		if parts <= 0 {
			parts = c.rctx().Parallelism()
		}
		return rdd.CombineByKey(ds, agg, rdd.NewHashPartitioner[K](parts), true)
	})
}

// pairwise combines two pair streams interval by interval.
func pairwise[K comparable, V, W, R any](name string, a *Stream[Pair[K, V]], b *Stream[Pair[K, W]], f func(x *rdd.Dataset[Pair[K, V]], y *rdd.Dataset[Pair[K, W]]) *rdd.Dataset[R]) *Stream[R] {
	return combine2(a, b, name, func(x *rdd.Dataset[Pair[K, V]], y *rdd.Dataset[Pair[K, W]], _ time.Time) (*rdd.Dataset[R], error) {
		return f(x, y), nil
	})
}

// Join joins two pair streams interval by interval (inner join).
func Join[K comparable, V, W any](a *Stream[Pair[K, V]], b *Stream[Pair[K, W]], n int) *Stream[Pair[K, Pair[V, W]]] {
	return pairwise("join", a, b, func(x *rdd.Dataset[Pair[K, V]], y *rdd.Dataset[Pair[K, W]]) *rdd.Dataset[Pair[K, Pair[V, W]]] {
		return rdd.Join(x, y, n)
	})
}

// LeftOuterJoin joins two pair streams interval by interval, keeping every
// record of a.
func LeftOuterJoin[K comparable, V, W any](a *Stream[Pair[K, V]], b *Stream[Pair[K, W]], n int) *Stream[Pair[K, Pair[V, rdd.Opt[W]]]] {
	return pairwise("leftOuterJoin", a, b, func(x *rdd.Dataset[Pair[K, V]], y *rdd.Dataset[Pair[K, W]]) *rdd.Dataset[Pair[K, Pair[V, rdd.Opt[W]]]] {
		return rdd.LeftOuterJoin(x, y, n)
	})
}

// Cogroup groups two pair streams' values by key, interval by interval.
func Cogroup[K comparable, V, W any](a *Stream[Pair[K, V]], b *Stream[Pair[K, W]], n int) *Stream[Pair[K, rdd.Grouped[V, W]]] {
	return pairwise("cogroup", a, b, func(x *rdd.Dataset[Pair[K, V]], y *rdd.Dataset[Pair[K, W]]) *rdd.Dataset[Pair[K, rdd.Grouped[V, W]]] {
		return rdd.Cogroup(x, y, n)
	})
}
