package rdd

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"unsafe"
)

// Partitioner assigns keys to partitions. It must be deterministic across
// processes: the same key goes to the same partition everywhere.
type Partitioner[K any] interface {
	NumPartitions() int
	Partition(k K) int
}

// Hasher is implemented by key types that hash themselves.
type Hasher interface{ Hash64() uint64 }

// HashPartitioner spreads keys by a process-independent hash.
type HashPartitioner[K comparable] struct {
	n    int
	hash func(K) uint64
}

// NewHashPartitioner returns a hash partitioner over n partitions.
func NewHashPartitioner[K comparable](n int) *HashPartitioner[K] {
	if n <= 0 {
		n = 1
	}
	return &HashPartitioner[K]{n: n, hash: HashFunc[K]()}
}

// NumPartitions returns n.
func (h *HashPartitioner[K]) NumPartitions() int { return h.n }

func (h *HashPartitioner[K]) isHash() {}

// Partition returns hash(k) mod n.
func (h *HashPartitioner[K]) Partition(k K) int {
	if h.n == 1 {
		return 0
	}
	return int(h.hash(k) % uint64(h.n))
}

// HashFunc returns a process-independent hash function for K, chosen once so
// the per-record path does no boxing: strings and integers hash directly,
// types implementing Hasher use Hash64, and other comparable types hash their
// deterministic %#v rendering (slow; implement Hasher for hot keys).
func HashFunc[K comparable]() func(K) uint64 {
	var zero K
	switch any(zero).(type) {
	case string:
		return func(k K) uint64 { return hashString(*(*string)(unsafe.Pointer(&k))) }
	case int:
		return func(k K) uint64 { return mix64(uint64(*(*int)(unsafe.Pointer(&k)))) }
	case int64:
		return func(k K) uint64 { return mix64(uint64(*(*int64)(unsafe.Pointer(&k)))) }
	case int32:
		return func(k K) uint64 { return mix64(uint64(*(*int32)(unsafe.Pointer(&k)))) }
	case uint64:
		return func(k K) uint64 { return mix64(*(*uint64)(unsafe.Pointer(&k))) }
	case uint32:
		return func(k K) uint64 { return mix64(uint64(*(*uint32)(unsafe.Pointer(&k)))) }
	case uint:
		return func(k K) uint64 { return mix64(uint64(*(*uint)(unsafe.Pointer(&k)))) }
	case float64:
		return func(k K) uint64 { return mix64(math.Float64bits(*(*float64)(unsafe.Pointer(&k)))) }
	case bool:
		return func(k K) uint64 {
			if *(*bool)(unsafe.Pointer(&k)) {
				return mix64(1)
			}
			return mix64(0)
		}
	}
	if reflect.TypeFor[K]().Size() == 0 {
		return func(K) uint64 { return 0 } // struct{} and the like: one key
	}
	if reflect.TypeFor[K]().Implements(reflect.TypeFor[Hasher]()) {
		return func(k K) uint64 { return any(k).(Hasher).Hash64() }
	}
	return func(k K) uint64 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%#v", k)
		return mix64(h.Sum64())
	}
}

// hashString is FNV-1a over the string's bytes, finished with mix64.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for len(s) >= 8 {
		h ^= binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), 8))
		h *= 1099511628211
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the SplitMix64 finaliser: spreads bits so mod n is uniform.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
