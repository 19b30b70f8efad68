package rdd

import "iter"

// Cogroup gathers, for every key in either dataset, its values on each side.
func Cogroup[K comparable, V, W any](a *Dataset[Pair[K, V]], b *Dataset[Pair[K, W]], n int) *Dataset[Pair[K, Grouped[V, W]]] {
	const name = "cogroup"
	c := a.node.ctx
	part := partitionerFor[K](c, n)
	id := c.scopes.newID()
	// Each side is its own shuffle with an ID from the same scope, so both
	// are process-independent and forgotten with the cogroup.
	idA, idB := id, c.scopes.newID()
	depA := newShuffleDep(idA, a, part.NumPartitions(), bucketByKey[K, V](part))
	depB := newShuffleDep(idB, b, part.NumPartitions(), bucketByKey[K, W](part))
	compute := func(tc *TaskContext, r int) iter.Seq[Pair[K, Grouped[V, W]]] {
		return func(yield func(Pair[K, Grouped[V, W]]) bool) {
			m := newCombiner[K, Grouped[V, W]](64)
			for bk := range fetch[Pair[K, V]](tc, depA, r) {
				for _, kv := range bk {
					g, _ := m.slot(kv.Key)
					g.Left = append(g.Left, kv.Value)
				}
			}
			for bk := range fetch[Pair[K, W]](tc, depB, r) {
				for _, kw := range bk {
					g, _ := m.slot(kw.Key)
					g.Right = append(g.Right, kw.Value)
				}
			}
			for _, kg := range m.pairs {
				if !yield(kg) {
					return
				}
			}
		}
	}
	return &Dataset[Pair[K, Grouped[V, W]]]{
		node:    &Node{ID: id, Name: name, NumPartitions: part.NumPartitions(), ctx: c, deps: []Dep{depA, depB}},
		compute: compute,
	}
}

// CogroupAll gathers, for every key in any of the datasets, its values from
// each (result[i] holds the values from ds[i]). Incremental windows use it to
// combine the previous window with the intervals entering and leaving it.
func CogroupAll[K comparable, V any](n int, ds ...*Dataset[Pair[K, V]]) *Dataset[Pair[K, [][]V]] {
	const name = "cogroup"
	c := ds[0].node.ctx
	part := partitionerFor[K](c, n)
	id := c.scopes.newID()
	deps := make([]*ShuffleDep, len(ds))
	anyDeps := make([]Dep, len(ds))
	for i, d := range ds {
		sid := id
		if i > 0 {
			sid = c.scopes.newID()
		}
		deps[i] = newShuffleDep(sid, d, part.NumPartitions(), bucketByKey[K, V](part))
		anyDeps[i] = deps[i]
	}
	compute := func(tc *TaskContext, r int) iter.Seq[Pair[K, [][]V]] {
		return func(yield func(Pair[K, [][]V]) bool) {
			m := newCombiner[K, [][]V](64)
			for i, dep := range deps {
				for bk := range fetch[Pair[K, V]](tc, dep, r) {
					for _, kv := range bk {
						g, _ := m.slot(kv.Key)
						if *g == nil {
							*g = make([][]V, len(deps))
						}
						(*g)[i] = append((*g)[i], kv.Value)
					}
				}
			}
			for _, kg := range m.pairs {
				if !yield(kg) {
					return
				}
			}
		}
	}
	return &Dataset[Pair[K, [][]V]]{
		node:    &Node{ID: id, Name: name, NumPartitions: part.NumPartitions(), ctx: c, deps: anyDeps},
		compute: compute,
	}
}

// Join pairs every value of a key in a with every value of it in b (inner join).
func Join[K comparable, V, W any](a *Dataset[Pair[K, V]], b *Dataset[Pair[K, W]], n int) *Dataset[Pair[K, Pair[V, W]]] {
	const name = "join"
	cg := Cogroup(a, b, n)
	return renamed(FlatMap(cg, func(kg Pair[K, Grouped[V, W]]) []Pair[K, Pair[V, W]] {
		var out []Pair[K, Pair[V, W]]
		for _, v := range kg.Value.Left {
			for _, w := range kg.Value.Right {
				out = append(out, Pair[K, Pair[V, W]]{kg.Key, Pair[V, W]{v, w}})
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
				out = append(out, Pair[K, Pair[V, Opt[W]]]{kg.Key, Pair[V, Opt[W]]{v, Opt[W]{}}})
			}
			for _, w := range kg.Value.Right {
				out = append(out, Pair[K, Pair[V, Opt[W]]]{kg.Key, Pair[V, Opt[W]]{v, Opt[W]{w, true}}})
			}
		}
		return out
	}), name)
}
