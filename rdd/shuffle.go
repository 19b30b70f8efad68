package rdd

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/block"
)

// combiner is an insertion-ordered hash map from K to C. Its iteration order
// depends only on the order of the input, so a recomputed partition comes out
// exactly as the original did.
type combiner[K comparable, C any] struct {
	idx   map[K]int32
	pairs []Pair[K, C]
}

// newCombiner returns an empty combiner sized for hint keys. Its header,
// written as keys arrive, has its cache lines to itself (see loop.go).
func newCombiner[K comparable, C any](hint int) *combiner[K, C] {
	m := cell[combiner[K, C]]()
	*m = combiner[K, C]{idx: make(map[K]int32, hint), pairs: make([]Pair[K, C], 0, hint)}
	return m
}

// slot returns a pointer to k's value and whether k was already present.
func (m *combiner[K, C]) slot(k K) (*C, bool) {
	if i, ok := m.idx[k]; ok {
		return &m.pairs[i].Value, true
	}
	m.idx[k] = int32(len(m.pairs))
	m.pairs = append(m.pairs, Pair[K, C]{Key: k})
	return &m.pairs[len(m.pairs)-1].Value, false
}

// newShuffleDep returns the dependency of a child (with ID id) on parent whose
// map tasks write buckets produced by bucketize.
func newShuffleDep[T, X any](id ID, parent *Dataset[T], numReduce int, bucketize func(tc *TaskContext, in iter.Seq[T]) [][]X) *ShuffleDep {
	registerCodec[X]()
	return &ShuffleDep{
		ID:        id,
		Parent:    parent.node,
		NumReduce: numReduce,
		Write: func(tc *TaskContext, mapPart int) error {
			buckets := bucketize(tc, parent.Iterator(tc, mapPart))
			out := make([]any, len(buckets))
			var records, bytes int64
			for i, b := range buckets {
				out[i] = b
				records += int64(len(b))
				bytes += block.EstimateSize(out[i])
			}
			tc.wrote(0)
			if err := parent.node.ctx.cfg.Shuffles.PutMapOutput(id, mapPart, out); err != nil {
				return err
			}
			tc.wrote(records)
			tc.fig.ShuffleWriteBytes += bytes
			if tc.Remote != nil { // only readers in other processes ask
				tc.empty = emptyBits(buckets)
			}
			pushBuckets(tc, id, mapPart, out)
			return nil
		},
	}
}

// pushTimeout bounds how long a map task waits for its pushes: a push is a
// hint, and a slow or paused reader's process (until the master counts it
// lost) must not hold the map task back. A bucket of at most
// MaxPushedBucket takes milliseconds where its reader is well.
const pushTimeout = 250 * time.Millisecond

// pushBuckets gives each bucket of a map output to the process expected to
// read it (tc.PushTo), when the task runs where a Remote can push
// (BucketPusher), and returns once every push ended. A failed or skipped
// push costs nothing but the time: the reader fetches the bucket from this
// process as without it.
func pushBuckets(tc *TaskContext, shuffle ID, mapPart int, buckets []any) {
	p, ok := tc.Remote.(BucketPusher)
	if !ok || len(tc.PushTo) != len(buckets) {
		return
	}
	ctx, cancel := context.WithTimeout(tc.Ctx, pushTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var pushed atomic.Int64
	tokens := make(chan struct{}, maxFetchesInFlight)
	for r, addr := range tc.PushTo {
		if addr == "" || addr == tc.Location || BucketEmpty(tc.empty, r) {
			continue // an empty bucket's reader learns it is empty (EmptyBucketer)
		}
		b, err := EncodeBlock(buckets[r])
		if err != nil || len(b) > MaxPushedBucket {
			continue
		}
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-tokens }()
			if p.PushBucket(ctx, addr, shuffle, mapPart, r, b) == nil {
				pushed.Add(1)
			}
		})
	}
	wg.Wait()
	tc.fig.ShufflePushes += pushed.Load()
}

// fetch yields the buckets for reduce partition r from every map output of dep,
// in map order; a missing output fails the task with a FetchFailedError.
// Buckets in this process are read in place; in a cluster, those held by
// other processes are fetched ahead of the reader, several at once
// (prefetch).
func fetch[X any](tc *TaskContext, dep *ShuffleDep, r int) iter.Seq[[]X] {
	return func(yield func([]X) bool) {
		store := dep.Parent.ctx.cfg.Shuffles
		var ahead *prefetch
		if tc.Remote != nil {
			ahead = startPrefetch(tc, dep, r)
			defer ahead.stop()
		}
		for m := range dep.Parent.NumPartitions {
			v, ok := store.Bucket(dep.ID, m, r)
			var bytes int64
			switch {
			case !ok && ahead != nil && ahead.empty(m):
				continue // its writer said it holds nothing
			case ok && ahead != nil:
				ahead.skip(m)
			case !ok && ahead == nil:
				tc.Fail(&FetchFailedError{Shuffle: dep.ID, Map: m})
			case !ok:
				b, err := ahead.get(tc, m)
				v, bytes = decodeBucket[X](tc, dep, m, r, b, err), int64(len(b))
				tc.fig.ShuffleRemoteReads++
			}
			if ok {
				bytes = bucketBytes(v)
			}
			b, ok := v.([]X)
			if !ok {
				// A bucket spilled to disk comes back encoded. Never read a
				// bucket of another type as empty: that would lose its
				// records without a word.
				var err error
				if b, err = DecodeBlock[X](v); err != nil {
					tc.Fail(fmt.Errorf("shuffle %s bucket %d/%d: %w", dep.ID, m, r, err))
				}
			}
			tc.bucketRead(len(b), bytes)
			if !yield(b) {
				return
			}
		}
	}
}

// bucketByKey splits records into buckets by key without combining.
func bucketByKey[K comparable, V any](part Partitioner[K]) func(*TaskContext, iter.Seq[Pair[K, V]]) [][]Pair[K, V] {
	return func(tc *TaskContext, in iter.Seq[Pair[K, V]]) [][]Pair[K, V] {
		b := padded[[]Pair[K, V]](part.NumPartitions())
		in(func(kv Pair[K, V]) bool {
			i := part.Partition(kv.Key)
			b[i] = append(b[i], kv)
			return true
		})
		return b
	}
}

// Aggregator says how CombineByKey folds values of type V into combiners of type C.
type Aggregator[V, C any] struct {
	Create         func(V) C
	MergeValue     func(C, V) C
	MergeCombiners func(C, C) C
}

// CombineByKey is the general keyed aggregation behind ReduceByKey and
// GroupByKey: values are folded per key into combiners, on the map side
// (when mapSide is true) and again on the reduce side.
func CombineByKey[K comparable, V, C any](d *Dataset[Pair[K, V]], agg Aggregator[V, C], part Partitioner[K], mapSide bool) *Dataset[Pair[K, C]] {
	return combineByKey("combineByKey", d, agg, part, mapSide)
}

func combineByKey[K comparable, V, C any](name string, d *Dataset[Pair[K, V]], agg Aggregator[V, C], part Partitioner[K], mapSide bool) *Dataset[Pair[K, C]] {
	op := opID(name)
	c := d.node.ctx
	id := c.scopes.newID()
	n := part.NumPartitions()
	var dep *ShuffleDep
	var compute func(tc *TaskContext, r int) iter.Seq[Pair[K, C]]
	if mapSide {
		dep = newShuffleDep(id, d, n, func(tc *TaskContext, in iter.Seq[Pair[K, V]]) [][]Pair[K, C] {
			// One combiner for the whole map partition: keys are hashed
			// for partitioning once per distinct key, not once per record.
			m := getCombiner[K, C](c, id, 0, 1024)
			in(func(kv Pair[K, V]) bool {
				tc.enter(op)
				slot, ok := m.slot(kv.Key)
				if ok {
					*slot = agg.MergeValue(*slot, kv.Value)
				} else {
					*slot = agg.Create(kv.Value)
				}
				return true
			})
			b := padded[[]Pair[K, C]](n) // headers written per key: lines of their own
			if n == 1 {
				b[0] = m.pairs // the bucket: the pairs go on with it
				putCombiner(c, id, 0, m, false)
				return b
			}
			// Partition once, count, then fill buckets of the right size.
			where := make([]int32, len(m.pairs))
			sizes := make([]int, n)
			for j, kc := range m.pairs {
				i := part.Partition(kc.Key)
				where[j] = int32(i)
				sizes[i]++
			}
			for i := range b {
				b[i] = make([]Pair[K, C], 0, sizes[i])
			}
			for j, kc := range m.pairs {
				b[where[j]] = append(b[where[j]], kc)
			}
			putCombiner(c, id, 0, m, true)
			return b
		})
		compute = func(tc *TaskContext, r int) iter.Seq[Pair[K, C]] {
			return func(yield func(Pair[K, C]) bool) {
				m := getCombiner[K, C](c, id, 1, 64)
				defer putCombiner(c, id, 1, m, true) // its pairs are yielded, copied
				fetch[Pair[K, C]](tc, dep, r)(func(b []Pair[K, C]) bool {
					for _, kc := range b {
						tc.enter(op)
						slot, ok := m.slot(kc.Key)
						if ok {
							*slot = agg.MergeCombiners(*slot, kc.Value)
						} else {
							*slot = kc.Value
						}
					}
					return true
				})
				for _, kc := range m.pairs {
					if !yield(kc) {
						return
					}
				}
			}
		}
	} else {
		dep = newShuffleDep(id, d, n, bucketByKey[K, V](part))
		compute = func(tc *TaskContext, r int) iter.Seq[Pair[K, C]] {
			return func(yield func(Pair[K, C]) bool) {
				m := getCombiner[K, C](c, id, 1, 64)
				defer putCombiner(c, id, 1, m, true) // its pairs are yielded, copied
				fetch[Pair[K, V]](tc, dep, r)(func(b []Pair[K, V]) bool {
					for _, kv := range b {
						tc.enter(op)
						slot, ok := m.slot(kv.Key)
						if ok {
							*slot = agg.MergeValue(*slot, kv.Value)
						} else {
							*slot = agg.Create(kv.Value)
						}
					}
					return true
				})
				for _, kc := range m.pairs {
					if !yield(kc) {
						return
					}
				}
			}
		}
	}
	return (&Dataset[Pair[K, C]]{node: &Node{ID: id, Name: name, NumPartitions: n, ctx: c, deps: []Dep{dep}}, compute: compute, hashN: hashPartitions(part)}).bind()
}

// hashPartitions is n for a hash partitioner over n partitions, else 0.
func hashPartitions[K any](p Partitioner[K]) int {
	type hashed interface{ isHash() }
	if _, ok := p.(hashed); ok {
		return p.NumPartitions()
	}
	return 0
}

// partitionerFor returns a hash partitioner over n partitions, or the
// context's parallelism when n <= 0.
func partitionerFor[K comparable](c *Context, n int) Partitioner[K] {
	if n <= 0 {
		n = c.cfg.Parallelism
	}
	return NewHashPartitioner[K](n)
}

// ReduceByKey merges the values of each key with the associative and
// commutative f, combining on the map side. n <= 0 means the default parallelism.
func ReduceByKey[K comparable, V any](d *Dataset[Pair[K, V]], f func(V, V) V, n int) *Dataset[Pair[K, V]] {
	return combineByKey("reduceByKey", d, Aggregator[V, V]{
		Create:         func(v V) V { return v },
		MergeValue:     f,
		MergeCombiners: f,
	}, partitionerFor[K](d.node.ctx, n), true)
}

// GroupByKey gathers each key's values, in arrival order.
func GroupByKey[K comparable, V any](d *Dataset[Pair[K, V]], n int) *Dataset[Pair[K, []V]] {
	return combineByKey("groupByKey", d, Aggregator[V, []V]{
		Create:         func(v V) []V { return []V{v} },
		MergeValue:     func(c []V, v V) []V { return append(c, v) },
		MergeCombiners: func(a, b []V) []V { return append(a, b...) },
	}, partitionerFor[K](d.node.ctx, n), false)
}

// PartitionBy moves every pair to the partition part assigns its key.
func PartitionBy[K comparable, V any](d *Dataset[Pair[K, V]], part Partitioner[K]) *Dataset[Pair[K, V]] {
	c := d.node.ctx
	id := c.scopes.newID()
	dep := newShuffleDep(id, d, part.NumPartitions(), bucketByKey[K, V](part))
	return (&Dataset[Pair[K, V]]{
		node: &Node{ID: id, Name: "partitionBy", NumPartitions: part.NumPartitions(), ctx: c, deps: []Dep{dep}},
		compute: func(tc *TaskContext, r int) iter.Seq[Pair[K, V]] {
			return concat(fetch[Pair[K, V]](tc, dep, r))
		},
		hashN: hashPartitions(part),
	}).bind()
}

// Repartition reshuffles records evenly over n partitions. Each map partition
// deals its records round-robin starting at its own index, so the layout is
// deterministic.
func Repartition[T any](d *Dataset[T], n int) *Dataset[T] {
	c := d.node.ctx
	if n <= 0 {
		n = c.cfg.Parallelism
	}
	id := c.scopes.newID()
	dep := newShuffleDep(id, d, n, func(tc *TaskContext, in iter.Seq[T]) [][]T {
		b := padded[[]T](n)
		next := cell[int]()
		*next = tc.Partition % n
		in(func(x T) bool {
			i := *next
			b[i] = append(b[i], x)
			if i++; i == n {
				i = 0
			}
			*next = i
			return true
		})
		return b
	})
	return (&Dataset[T]{
		node: &Node{ID: id, Name: "repartition", NumPartitions: n, ctx: c, deps: []Dep{dep}},
		compute: func(tc *TaskContext, r int) iter.Seq[T] {
			return concat(fetch[T](tc, dep, r))
		},
	}).bind()
}

// Distinct removes duplicate records.
func Distinct[T comparable](d *Dataset[T], n int) *Dataset[T] {
	pairs := Map(d, func(x T) Pair[T, struct{}] { return Pair[T, struct{}]{Key: x} })
	red := ReduceByKey(pairs, func(a, _ struct{}) struct{} { return a }, n)
	return renamed(Map(red, func(p Pair[T, struct{}]) T { return p.Key }), "distinct")
}

func concat[X any](bs iter.Seq[[]X]) iter.Seq[X] {
	return func(yield func(X) bool) {
		bs(func(b []X) bool {
			for _, x := range b {
				if !yield(x) {
					return false
				}
			}
			return true
		})
	}
}

// renamed sets the operator name shown in errors and the UI.
func renamed[T any](d *Dataset[T], name string) *Dataset[T] {
	d.node.Name = name
	return d
}
