package rdd

import (
	"cmp"
	"context"
	"iter"
	"slices"
	"sort"
)

// SortByKey sorts pairs by key into n range partitions (partition i holds
// smaller keys than partition i+1), stable within equal keys. Like Spark, it
// runs a sampling job at once to choose the partition bounds.
func SortByKey[K cmp.Ordered, V any](ctx context.Context, d *Dataset[Pair[K, V]], ascending bool, n int) (*Dataset[Pair[K, V]], error) {
	c := d.node.ctx
	if n <= 0 {
		n = c.cfg.Parallelism
	}
	bounds, err := sampleBounds(ctx, d, n)
	if err != nil {
		return nil, err
	}
	less := func(a, b K) int { return cmp.Compare(a, b) }
	if !ascending {
		less = func(a, b K) int { return cmp.Compare(b, a) }
		slices.Reverse(bounds)
	}
	part := func(k K) int {
		return sort.Search(len(bounds), func(i int) bool { return less(k, bounds[i]) <= 0 })
	}
	id := c.scopes.newID()
	dep := newShuffleDep(id, d, n, func(tc *TaskContext, in iter.Seq[Pair[K, V]]) [][]Pair[K, V] {
		b := padded[[]Pair[K, V]](n)
		in(func(kv Pair[K, V]) bool {
			i := part(kv.Key)
			b[i] = append(b[i], kv)
			return true
		})
		return b
	})
	return (&Dataset[Pair[K, V]]{
		node: &Node{ID: id, Name: "sortByKey", NumPartitions: n, ctx: c, deps: []Dep{dep}},
		compute: func(tc *TaskContext, r int) iter.Seq[Pair[K, V]] {
			return func(yield func(Pair[K, V]) bool) {
				var all []Pair[K, V]
				for b := range fetch[Pair[K, V]](tc, dep, r) { // per bucket, not per record
					all = append(all, b...)
				}
				slices.SortStableFunc(all, func(a, b Pair[K, V]) int { return less(a.Key, b.Key) })
				for _, kv := range all {
					if !yield(kv) {
						return
					}
				}
			}
		},
	}).bind(), nil
}

// sampleBounds picks n-1 ascending keys that split d's keys evenly, from an
// evenly strided sample of up to 20*n keys per partition.
func sampleBounds[K cmp.Ordered, V any](ctx context.Context, d *Dataset[Pair[K, V]], n int) ([]K, error) {
	if n <= 1 {
		return nil, nil
	}
	perPart := 20 * n
	parts := make([]int, d.node.NumPartitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := d.node.ctx.RunJob(ctx, &Job{
		Name: "sortByKey sample", Final: d.node, Partitions: parts,
		Func: func(tc *TaskContext, p int) (any, error) {
			kp := cell[[]K]()
			d.Iterator(tc, p)(func(kv Pair[K, V]) bool {
				*kp = append(*kp, kv.Key)
				return true
			})
			keys := *kp
			tc.wrote(int64(len(keys)))
			if len(keys) <= perPart {
				return keys, nil
			}
			out := make([]K, 0, perPart)
			for i := range perPart {
				out = append(out, keys[i*len(keys)/perPart])
			}
			return out, nil
		},
	})
	if err != nil {
		return nil, err
	}
	var sample []K
	for _, r := range res {
		sample = append(sample, r.([]K)...)
	}
	if len(sample) == 0 {
		return nil, nil
	}
	slices.Sort(sample)
	bounds := make([]K, 0, n-1)
	for i := 1; i < n; i++ {
		k := sample[i*len(sample)/n]
		if len(bounds) == 0 || bounds[len(bounds)-1] < k {
			bounds = append(bounds, k)
		}
	}
	return bounds, nil
}
