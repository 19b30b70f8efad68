package rdd

import "github.com/dstream/dstream/kv"

// Pair is a key-value record, the input and output of keyed operators
// (kv.Pair: the type lives in the leaf package kv so that codecs can name it
// without importing rdd).
type Pair[K, V any] = kv.Pair[K, V]

// KV builds a Pair.
func KV[K, V any](k K, v V) Pair[K, V] { return kv.KV(k, v) }

// Opt is an optional value: the right side of a left outer join (kv.Opt).
type Opt[T any] = kv.Opt[T]

// Grouped is what Cogroup yields for one key: the values from each side.
type Grouped[V, W any] struct {
	Left  []V
	Right []W
}
