// Package kv holds the record shapes that keyed operators produce and
// consume: Pair (a key and a value) and Opt (an optional value). It is a leaf
// package, importing nothing from this module, so that every layer (rdd, the
// codecs, the stream API) can name the same types without import cycles. rdd
// and the root package re-export them as generic aliases (rdd.Pair,
// dstream.Pair, ...): all three names denote one type.
package kv

import "fmt"

// Pair is a key-value record, the input and output of keyed operators.
type Pair[K, V any] struct {
	Key   K
	Value V
}

// KV builds a Pair.
func KV[K, V any](k K, v V) Pair[K, V] { return Pair[K, V]{Key: k, Value: v} }

// String formats p as "(key,value)".
func (p Pair[K, V]) String() string { return fmt.Sprintf("(%v,%v)", p.Key, p.Value) }

// Opt is an optional value: the right side of a left outer join, the state of
// a key in UpdateStateByKey. The zero Opt is None.
type Opt[T any] struct {
	Value T
	OK    bool
}

// Some wraps a present value.
func Some[T any](v T) Opt[T] { return Opt[T]{Value: v, OK: true} }

// None is an absent value.
func None[T any]() Opt[T] { return Opt[T]{} }

// String formats o as "Some(value)" or "None".
func (o Opt[T]) String() string {
	if !o.OK {
		return "None"
	}
	return fmt.Sprintf("Some(%v)", o.Value)
}
