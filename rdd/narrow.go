package rdd

import "iter"

// Map applies f to every record.
func Map[T, U any](d *Dataset[T], f func(T) U) *Dataset[U] {
	const name = "map"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[U] {
		return func(yield func(U) bool) {
			d.Iterator(tc, p)(func(x T) bool {
				tc.enter(op)
				return yield(f(x))
			})
		}
	}, NarrowDep{d.node})
}

// FlatMap applies f to every record and flattens the results.
func FlatMap[T, U any](d *Dataset[T], f func(T) []U) *Dataset[U] {
	const name = "flatMap"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[U] {
		return func(yield func(U) bool) {
			d.Iterator(tc, p)(func(x T) bool {
				tc.enter(op)
				for _, y := range f(x) {
					if !yield(y) {
						return false
					}
				}
				return true
			})
		}
	}, NarrowDep{d.node})
}

// Filter keeps the records for which keep returns true.
func Filter[T any](d *Dataset[T], keep func(T) bool) *Dataset[T] {
	const name = "filter"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[T] {
		return func(yield func(T) bool) {
			d.Iterator(tc, p)(func(x T) bool {
				tc.enter(op)
				return !keep(x) || yield(x)
			})
		}
	}, NarrowDep{d.node})
}

// MapPartitions applies f to each partition's records as a whole.
func MapPartitions[T, U any](d *Dataset[T], f func(iter.Seq[T]) iter.Seq[U]) *Dataset[U] {
	const name = "mapPartitions"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[U] {
		return func(yield func(U) bool) {
			body, _ := guarded(func(y U) bool {
				if !yield(y) {
					return false
				}
				tc.enter(op)
				return true
			})
			tc.enter(op)
			f(d.Iterator(tc, p))(body)
		}
	}, NarrowDep{d.node})
}

// Union concatenates datasets; its partitions are theirs, in order.
func Union[T any](first *Dataset[T], rest ...*Dataset[T]) *Dataset[T] {
	all := append([]*Dataset[T]{first}, rest...)
	type loc struct{ ds, part int }
	var locs []loc
	deps := make([]Dep, 0, len(all))
	for i, d := range all {
		for p := range d.node.NumPartitions {
			locs = append(locs, loc{i, p})
		}
		deps = append(deps, NarrowDep{d.node})
	}
	return newDataset(first.node.ctx, "union", len(locs), func(tc *TaskContext, p int) iter.Seq[T] {
		l := locs[p]
		return all[l.ds].Iterator(tc, l.part)
	}, deps...)
}

// FlatMapSeq applies f to every record and flattens the sequences it
// returns: FlatMap without a slice per record (strings.FieldsSeq, say).
func FlatMapSeq[T, U any](d *Dataset[T], f func(T) iter.Seq[U]) *Dataset[U] {
	const name = "flatMap"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[U] {
		return func(yield func(U) bool) {
			// One body for the whole partition: a range-over-func loop
			// per record would allocate its body closure per record.
			body, stopped := guarded(yield)
			d.Iterator(tc, p)(func(x T) bool {
				tc.enter(op)
				f(x)(body)
				return !stopped()
			})
		}
	}, NarrowDep{d.node})
}

// FlatMapEmit applies f to every record; f passes each record it makes to
// emit, as many as it likes (Beam's emitter, Flink's Collector). It is
// FlatMapSeq without a sequence per record: no closure to build and call for
// each input record, and the records f makes can be of any type at once (a
// word split from a line and paired with its count, with no Map after it).
// Once the consumer has stopped, emit drops what it is given, so f needs no
// stop check; f must not keep emit past its return.
func FlatMapEmit[T, U any](d *Dataset[T], f func(x T, emit func(U))) *Dataset[U] {
	const name = "flatMap"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[U] {
		return func(yield func(U) bool) {
			stop := cell[bool]()
			emit := func(u U) {
				if !*stop && !yield(u) {
					*stop = true
				}
			}
			d.Iterator(tc, p)(func(x T) bool {
				tc.enter(op)
				f(x, emit)
				return !*stop
			})
		}
	}, NarrowDep{d.node})
}

// FlatMapSameKey is FlatMap for pair datasets whose f keeps every record's
// key: the result keeps d's hash partitioning, so a later cogroup reads it in
// place. State streams use it to carry state without reshuffling it.
func FlatMapSameKey[K, V, W any](d *Dataset[Pair[K, V]], f func(Pair[K, V]) []Pair[K, W]) *Dataset[Pair[K, W]] {
	out := FlatMap(d, f)
	out.hashN = d.hashN
	return out
}

// CountPartitions is a dataset with one record per partition of d: the
// number of records in that partition. Counting a stream's interval this way
// moves one record per partition instead of every record.
func CountPartitions[T any](d *Dataset[T]) *Dataset[int64] {
	return newDataset(d.node.ctx, "count", d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[int64] {
		return func(yield func(int64) bool) { yield(countOf(d.Iterator(tc, p))) }
	}, NarrowDep{d.node})
}

// FoldPartitions is a dataset with one record per non-empty partition of d:
// that partition's records folded by the associative f.
func FoldPartitions[T any](d *Dataset[T], f func(T, T) T) *Dataset[T] {
	const name = "reduce"
	op := opID(name)
	return newDataset(d.node.ctx, name, d.node.NumPartitions, func(tc *TaskContext, p int) iter.Seq[T] {
		return func(yield func(T) bool) {
			if acc := foldOf(tc, op, d.Iterator(tc, p), f); acc.ok {
				yield(acc.v)
			}
		}
	}, NarrowDep{d.node})
}
