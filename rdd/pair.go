package rdd

import "fmt"

// Pair is a key-value record, the input and output of keyed operators.
type Pair[K, V any] struct {
	Key   K
	Value V
}

// KV builds a Pair.
func KV[K, V any](k K, v V) Pair[K, V] { return Pair[K, V]{Key: k, Value: v} }

func (p Pair[K, V]) String() string { return fmt.Sprintf("(%v,%v)", p.Key, p.Value) }

// Opt is an optional value: the right side of a left outer join.
type Opt[T any] struct {
	Value T
	OK    bool
}

func (o Opt[T]) String() string {
	if !o.OK {
		return "None"
	}
	return fmt.Sprintf("Some(%v)", o.Value)
}

// Grouped is what Cogroup yields for one key: the values from each side.
type Grouped[V, W any] struct {
	Left  []V
	Right []W
}
