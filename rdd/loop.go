package rdd

import (
	"iter"
	"unsafe"
)

// Per-record loops and false sharing.
//
// A range-over-func loop (for x := range seq) keeps its state in a hidden
// variable that it writes twice per record, and the compiler moves that
// variable to the heap whenever seq is a function value it cannot see
// through, which every dataset iterator is. So does any variable the loop
// body assigns (a counter, an appended slice). Such variables are a few
// bytes; the allocator packs them into 16-byte slots next to whatever else
// it allocated there, often another task's. Two tasks running at once on two
// cores then write the same cache line millions of times a second and each
// core waits for the other's: measured on WordCount, one interval in fifty
// took 1.6 to 2.3 times the median for no other reason (BENCHMARKS.md).
//
// Per-record loops in this package therefore (1) call the sequence directly,
// seq(body), with a body that assigns no captured variable, and (2) keep
// whatever a task writes per record in memory from padded, which no other
// allocation shares a cache line with. User code handed a sequence
// (MapPartitions) is not covered: a range loop there writes to the heap per
// record, which is cheap until another task's variable lands beside it.

// cacheLine is the span padded keeps clear on each side of its values: two
// 64-byte lines, since x86 cores also prefetch a line's neighbour.
const cacheLine = 128

// padded returns n zero values whose backing array has at least cacheLine
// bytes of its own on each side, so writes to them never share a cache line
// with another allocation.
func padded[X any](n int) []X {
	pad := padding(unsafe.Sizeof(*new(X)))
	all := make([]X, n+2*pad)
	return all[pad : pad+n : pad+n] // cap n: an append reallocates, never writes the padding
}

// padding is how many elements of size bytes cover cacheLine bytes.
func padding(size uintptr) int {
	if size == 0 {
		return 0
	}
	return int((cacheLine + size - 1) / size)
}

// cell returns a pointer to a zero X that has its cache lines to itself: a
// per-task accumulator. Its padding is cacheLine bytes on each side, not
// whole elements as padded's (which for a large X would be most of the
// allocation).
func cell[X any]() *X {
	c := new(struct {
		_ [cacheLine]byte
		x X
		_ [cacheLine]byte
	})
	return &c.x
}

// guarded returns a loop body that passes records to yield until yield
// returns false and never after, even when the sequence calling it ignores
// the answer (a user's iterator may), and reports whether it has stopped.
func guarded[T any](yield func(T) bool) (body func(T) bool, stopped func() bool) {
	stop := cell[bool]()
	body = func(x T) bool {
		if *stop || !yield(x) {
			*stop = true
			return false
		}
		return true
	}
	return body, func() bool { return *stop }
}

// countOf returns the number of records seq yields.
func countOf[T any](seq iter.Seq[T]) int64 {
	n := cell[int64]()
	seq(func(T) bool {
		*n++
		return true
	})
	return *n
}

// collectOf returns the records seq yields, in order.
func collectOf[T any](seq iter.Seq[T]) []T { return collectInto(nil, seq) }

// collectInto appends the records seq yields to xs, in order (xs's
// capacity, if any, sized for them).
func collectInto[T any](xs []T, seq iter.Seq[T]) []T {
	c := cell[[]T]()
	*c = xs
	seq(func(x T) bool {
		*c = append(*c, x)
		return true
	})
	return *c
}

// folded is the fold of a partition's n records: v is meaningful when ok
// (the partition had a record).
type folded[T any] struct {
	v  T
	ok bool
	n  int64
}

// foldOf folds seq's records by f, recording op as the running operator.
func foldOf[T any](tc *TaskContext, op uint32, seq iter.Seq[T], f func(T, T) T) folded[T] {
	acc := cell[folded[T]]()
	seq(func(x T) bool {
		acc.n++
		if acc.ok {
			tc.enter(op)
			acc.v = f(acc.v, x)
		} else {
			acc.v, acc.ok = x, true
		}
		return true
	})
	return *acc
}
