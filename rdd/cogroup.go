package rdd

import "iter"

// cogroupInput returns how a cogroup reads one input for reduce partition r:
// in place (a narrow dependency) when the input is already hash partitioned
// over the same partitions, as a state carried from the previous interval
// is; otherwise through a shuffle with the given ID.
func cogroupInput[K comparable, V any](id ID, d *Dataset[Pair[K, V]], part Partitioner[K]) (Dep, func(tc *TaskContext, r int) iter.Seq[Pair[K, V]]) {
	if d.hashN != 0 && d.hashN == hashPartitions(part) {
		return NarrowDep{d.node}, d.Iterator
	}
	dep := newShuffleDep(id, d, part.NumPartitions(), bucketByKey[K, V](part))
	return dep, func(tc *TaskContext, r int) iter.Seq[Pair[K, V]] { return concat(fetch[Pair[K, V]](tc, dep, r)) }
}

// Cogroup gathers, for every key in either dataset, its values on each side.
func Cogroup[K comparable, V, W any](a *Dataset[Pair[K, V]], b *Dataset[Pair[K, W]], n int) *Dataset[Pair[K, Grouped[V, W]]] {
	const name = "cogroup"
	c := a.node.ctx
	part := partitionerFor[K](c, n)
	id := c.scopes.newID()
	// Each shuffled side gets an ID from the same scope, so both are
	// process-independent and forgotten with the cogroup.
	depA, readA := cogroupInput(id, a, part)
	depB, readB := cogroupInput(c.scopes.newID(), b, part)
	compute := func(tc *TaskContext, r int) iter.Seq[Pair[K, Grouped[V, W]]] {
		return func(yield func(Pair[K, Grouped[V, W]]) bool) {
			m := getCombiner[K, Grouped[V, W]](c, id, 0, 64)
			defer putCombiner(c, id, 0, m, true) // its pairs are yielded, copied
			readA(tc, r)(func(kv Pair[K, V]) bool {
				g, _ := m.slot(kv.Key)
				g.Left = append(g.Left, kv.Value)
				return true
			})
			readB(tc, r)(func(kw Pair[K, W]) bool {
				g, _ := m.slot(kw.Key)
				g.Right = append(g.Right, kw.Value)
				return true
			})
			for _, kg := range m.pairs {
				if !yield(kg) {
					return
				}
			}
		}
	}
	return (&Dataset[Pair[K, Grouped[V, W]]]{
		node:    &Node{ID: id, Name: name, NumPartitions: part.NumPartitions(), ctx: c, deps: []Dep{depA, depB}},
		compute: compute,
		hashN:   part.NumPartitions(),
	}).bind()
}

// CogroupAll gathers, for every key in any of the datasets, its values from
// each (result[i] holds the values from ds[i]). Incremental windows use it to
// combine the previous window with the intervals entering and leaving it.
func CogroupAll[K comparable, V any](n int, ds ...*Dataset[Pair[K, V]]) *Dataset[Pair[K, [][]V]] {
	const name = "cogroup"
	c := ds[0].node.ctx
	part := partitionerFor[K](c, n)
	id := c.scopes.newID()
	deps := make([]Dep, len(ds))
	reads := make([]func(*TaskContext, int) iter.Seq[Pair[K, V]], len(ds))
	for i, d := range ds {
		sid := id
		if i > 0 {
			sid = c.scopes.newID()
		}
		deps[i], reads[i] = cogroupInput(sid, d, part)
	}
	compute := func(tc *TaskContext, r int) iter.Seq[Pair[K, [][]V]] {
		return func(yield func(Pair[K, [][]V]) bool) {
			m := getCombiner[K, [][]V](c, id, 0, 64)
			defer putCombiner(c, id, 0, m, true) // its pairs are yielded, copied
			for i, read := range reads {
				read(tc, r)(func(kv Pair[K, V]) bool {
					g, _ := m.slot(kv.Key)
					if *g == nil {
						*g = make([][]V, len(reads))
					}
					(*g)[i] = append((*g)[i], kv.Value)
					return true
				})
			}
			for _, kg := range m.pairs {
				if !yield(kg) {
					return
				}
			}
		}
	}
	return (&Dataset[Pair[K, [][]V]]{
		node:    &Node{ID: id, Name: name, NumPartitions: part.NumPartitions(), ctx: c, deps: deps},
		compute: compute,
		hashN:   part.NumPartitions(),
	}).bind()
}

// Join pairs every value of a key in a with every value of it in b (inner join).
func Join[K comparable, V, W any](a *Dataset[Pair[K, V]], b *Dataset[Pair[K, W]], n int) *Dataset[Pair[K, Pair[V, W]]] {
	const name = "join"
	cg := Cogroup(a, b, n)
	return renamed(FlatMap(cg, func(kg Pair[K, Grouped[V, W]]) []Pair[K, Pair[V, W]] {
		var out []Pair[K, Pair[V, W]]
		for _, v := range kg.Value.Left {
			for _, w := range kg.Value.Right {
				out = append(out, Pair[K, Pair[V, W]]{Key: kg.Key, Value: Pair[V, W]{Key: v, Value: w}})
			}
		}
		return out
	}), name)
}

// LeftOuterJoin keeps every pair of a, matched with each value of its key in
// b, or with an empty Opt when b has none.
func LeftOuterJoin[K comparable, V, W any](a *Dataset[Pair[K, V]], b *Dataset[Pair[K, W]], n int) *Dataset[Pair[K, Pair[V, Opt[W]]]] {
	const name = "leftOuterJoin"
	cg := Cogroup(a, b, n)
	return renamed(FlatMap(cg, func(kg Pair[K, Grouped[V, W]]) []Pair[K, Pair[V, Opt[W]]] {
		var out []Pair[K, Pair[V, Opt[W]]]
		for _, v := range kg.Value.Left {
			if len(kg.Value.Right) == 0 {
				out = append(out, Pair[K, Pair[V, Opt[W]]]{Key: kg.Key, Value: Pair[V, Opt[W]]{Key: v, Value: Opt[W]{}}})
			}
			for _, w := range kg.Value.Right {
				out = append(out, Pair[K, Pair[V, Opt[W]]]{Key: kg.Key, Value: Pair[V, Opt[W]]{Key: v, Value: Opt[W]{Value: w, OK: true}}})
			}
		}
		return out
	}), name)
}
