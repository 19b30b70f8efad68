package rdd

import (
	"context"
	"errors"
	"fmt"
)

func allPartitions(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// runPartitions runs f on the given partitions of d and returns the results in order.
func runPartitions[T, R any](ctx context.Context, d *Dataset[T], name string, parts []int, f func(tc *TaskContext, p int) R) ([]R, error) {
	res, err := d.node.ctx.RunJob(ctx, &Job{
		Name: name, Final: d.node, Partitions: parts,
		Func: func(tc *TaskContext, p int) (any, error) { return f(tc, p), nil },
	})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", name, d.node, err)
	}
	out := make([]R, len(res))
	for i, r := range res {
		out[i] = r.(R)
	}
	return out, nil
}

// runNamed runs the named result kind on the given partitions of d; each
// partition's result is an R.
func runNamed[T, R any](ctx context.Context, d *Dataset[T], kind ResultKind, parts []int) ([]R, error) {
	return runJob[T, R](ctx, d, &Job{Name: kind.Name, Final: d.node, Partitions: parts, Kind: kind})
}

// runJob runs job, a job of a kind named by its Kind, on d.
func runJob[T, R any](ctx context.Context, d *Dataset[T], job *Job) ([]R, error) {
	kind := job.Kind
	res, err := d.node.ctx.RunJob(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", kind.Name, d.node, err)
	}
	out := make([]R, len(res))
	for i, r := range res {
		out[i] = r.(R)
	}
	return out, nil
}

// Count returns the number of records.
func (d *Dataset[T]) Count(ctx context.Context) (int64, error) {
	res, err := runNamed[T, int64](ctx, d, KindCount, allPartitions(d.node.NumPartitions))
	var n int64
	for _, r := range res {
		n += r
	}
	return n, err
}

// Collect returns every record, partition by partition.
func (d *Dataset[T]) Collect(ctx context.Context) ([]T, error) {
	res, err := runNamed[T, []T](ctx, d, KindCollect, allPartitions(d.node.NumPartitions))
	if err != nil {
		return nil, err
	}
	var all []T
	for _, xs := range res {
		all = append(all, xs...)
	}
	return all, nil
}

// Take returns the first n records, scanning one partition first and then
// four times as many each round, as Spark does.
func (d *Dataset[T]) Take(ctx context.Context, n int) ([]T, error) {
	var out []T
	total := d.node.NumPartitions
	next, batch := 0, 1
	for len(out) < n && next < total {
		hi := min(total, next+batch)
		parts := make([]int, 0, hi-next)
		for p := next; p < hi; p++ {
			parts = append(parts, p)
		}
		want := n - len(out)
		res, err := runNamed[T, []T](ctx, d, KindTake(want), parts)
		if err != nil {
			return nil, err
		}
		for _, xs := range res {
			out = append(out, xs...)
		}
		next, batch = hi, batch*4
	}
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// ErrEmpty is returned by Reduce on a dataset with no records.
var ErrEmpty = errors.New("empty dataset")

// Reduce folds all records with the associative and commutative f.
func (d *Dataset[T]) Reduce(ctx context.Context, f func(T, T) T) (T, error) {
	var zero T
	res, err := runPartitions(ctx, d, "reduce", allPartitions(d.node.NumPartitions), func(tc *TaskContext, p int) folded[T] {
		acc := foldOf(tc, opReduce, d.Iterator(tc, p), f)
		tc.wrote(acc.n)
		return acc
	})
	if err != nil {
		return zero, err
	}
	var acc folded[T]
	for _, r := range res {
		switch {
		case !r.ok:
		case acc.ok:
			acc.v = f(acc.v, r.v)
		default:
			acc = r
		}
	}
	if !acc.ok {
		return zero, ErrEmpty
	}
	return acc.v, nil
}

// Foreach runs f on every record, inside the tasks.
func (d *Dataset[T]) Foreach(ctx context.Context, f func(T)) error {
	_, err := runPartitions(ctx, d, "foreach", allPartitions(d.node.NumPartitions), func(tc *TaskContext, p int) struct{} {
		tc.wrote(0)
		d.Iterator(tc, p)(func(x T) bool {
			tc.enter(opForeach)
			tc.fig.RecordsWritten++
			f(x)
			return true
		})
		return struct{}{}
	})
	return err
}

// ForeachPartition runs f on every partition, inside the tasks; an error fails the task.
func (d *Dataset[T]) ForeachPartition(ctx context.Context, f func(p int, records []T) error) error {
	_, err := d.node.ctx.RunJob(ctx, &Job{
		Name: "foreachPartition", Final: d.node, Partitions: allPartitions(d.node.NumPartitions),
		Func: func(tc *TaskContext, p int) (any, error) {
			xs := collectOf(d.Iterator(tc, p))
			tc.wrote(int64(len(xs)))
			tc.enter(opForeachPartition)
			return nil, f(p, xs)
		},
	})
	return err
}

// CountByValue counts the occurrences of each distinct record.
func CountByValue[T comparable](ctx context.Context, d *Dataset[T]) (map[T]int64, error) {
	counts := ReduceByKey(Map(d, func(x T) Pair[T, int64] { return Pair[T, int64]{Key: x, Value: 1} }), func(a, b int64) int64 { return a + b }, 0)
	pairs, err := counts.Collect(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[T]int64, len(pairs))
	for _, kv := range pairs {
		m[kv.Key] = kv.Value
	}
	return m, nil
}

// Keys returns the keys of a pair dataset.
func Keys[K, V any](d *Dataset[Pair[K, V]]) *Dataset[K] {
	return renamed(Map(d, func(kv Pair[K, V]) K { return kv.Key }), "keys")
}

// Values returns the values of a pair dataset.
func Values[K, V any](d *Dataset[Pair[K, V]]) *Dataset[V] {
	return renamed(Map(d, func(kv Pair[K, V]) V { return kv.Value }), "values")
}

// MapValues applies f to every value, keeping the keys.
func MapValues[K, V, W any](d *Dataset[Pair[K, V]], f func(V) W) *Dataset[Pair[K, W]] {
	return renamed(Map(d, func(kv Pair[K, V]) Pair[K, W] { return Pair[K, W]{Key: kv.Key, Value: f(kv.Value)} }), "mapValues")
}

// Operators of the actions, for error reports.
var (
	opReduce           = opID("reduce")
	opForeach          = opID("foreach")
	opForeachPartition = opID("foreachPartition")
)
