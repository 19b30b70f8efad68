package codec

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"
)

// treeCodec is the general codec: it runs the compiled node tree over the
// records in place.
type treeCodec[T any] struct {
	h    *header
	n    *node
	zero bool // records encode to no bytes (struct{} and the like)
}

func (c *treeCodec[T]) Append(dst []byte, xs []T) ([]byte, error) {
	start := len(dst)
	if c.zero {
		if len(xs) > maxZeroSize {
			return dst, fmt.Errorf("codec: encoding %s: %w", c.h.name, errZeroSize)
		}
		return c.h.append(dst, len(xs)), nil
	}
	dst = c.h.append(dst, len(xs))
	enc := c.n.enc
	for i := range xs {
		var err error
		if dst, err = enc(dst, unsafe.Pointer(&xs[i])); err != nil {
			return dst[:start], encodeErr(c.h, i, err)
		}
	}
	return dst, nil
}

func (c *treeCodec[T]) Decode(src []byte) ([]T, error) {
	n, body, err := c.h.open(src)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if len(body) != 0 {
			return nil, c.h.trailing(len(body))
		}
		return nil, nil
	}
	xs := make([]T, n)
	if c.zero {
		if len(body) != 0 {
			return nil, c.h.trailing(len(body))
		}
		return xs, nil
	}
	d := decoder{b: body}
	dec := c.n.dec
	for i := range xs {
		if err := dec(&d, unsafe.Pointer(&xs[i])); err != nil {
			return nil, c.h.recordErr(i, src, len(d.b), err)
		}
	}
	if len(d.b) != 0 {
		return nil, c.h.trailing(len(d.b))
	}
	return xs, nil
}

func encodeErr(h *header, i int, err error) error {
	return fmt.Errorf("codec: encoding %s: record %d: %w", h.name, i, err)
}

// Hand-written loops for the commonest blocks. Each writes exactly what the
// tree would (a test holds them to it), so which one a process picks never
// shows on the wire. They take any T of the right layout: []T is read as
// []string, []int64 or []strInt64 in place.

// strInt64 is the layout of kv.Pair[string, int64], of kv.Pair[string, int]
// where int is 64 bits, and of any struct{ string; int64 } alike.
type strInt64 struct {
	K string
	V int64
}

// fastCodec returns a hand-written codec for T when n's shape has one.
func fastCodec[T any](h *header, n *node) Codec[T] {
	switch n.shape {
	case shapeString:
		return &stringsCodec[T]{h}
	case shapeInt64:
		return &int64sCodec[T]{h}
	case shapeStrInt64:
		return &strInt64sCodec[T]{h}
	}
	return nil
}

func as[E, T any](xs []T) []E {
	return unsafe.Slice((*E)(unsafe.Pointer(unsafe.SliceData(xs))), len(xs))
}

// uvarint reads a uvarint at the front of b, inlining the one-byte case.
func uvarint(b []byte) (uint64, []byte, error) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), b[1:], nil
	}
	v, k := binary.Uvarint(b)
	if k <= 0 {
		if k == 0 {
			return 0, b, errTruncated
		}
		return 0, b, errVarint
	}
	return v, b[k:], nil
}

type stringsCodec[T any] struct{ h *header }

func (c *stringsCodec[T]) Append(dst []byte, xs []T) ([]byte, error) {
	ss := as[string](xs)
	// Size the block exactly, then write it without append's checks.
	size := 0
	for _, s := range ss {
		size += uvarintLen(uint64(len(s))) + len(s)
	}
	dst = c.h.append(slices.Grow(dst, headerSize+binary.MaxVarintLen64+size), len(ss))
	n := len(dst)
	dst = dst[:n+size]
	for _, s := range ss {
		n = putString(dst, n, s)
	}
	return dst, nil
}

// putString writes s with its length at b[n:], which has room, and returns
// the offset past it.
func putString(b []byte, n int, s string) int {
	if l := len(s); l < 0x80 {
		b[n] = byte(l)
		n++
	} else {
		n += binary.PutUvarint(b[n:], uint64(l))
	}
	return n + copy(b[n:], s)
}

func (c *stringsCodec[T]) Decode(src []byte) ([]T, error) {
	n, b, err := c.h.open(src)
	if err != nil || n == 0 {
		return nil, emptyOr(c.h, b, err)
	}
	xs := make([]T, n)
	ss := as[string](xs)
	for i := range ss {
		var l uint64
		if l, b, err = uvarint(b); err != nil {
			return nil, c.h.recordErr(i, src, len(b), err)
		}
		if l > uint64(len(b)) {
			return nil, c.h.recordErr(i, src, len(b), errTruncated)
		}
		ss[i] = string(b[:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, c.h.trailing(len(b))
	}
	return xs, nil
}

// emptyOr is Decode's result for a failed header or an empty block.
func emptyOr(h *header, body []byte, err error) error {
	if err == nil && len(body) != 0 {
		return h.trailing(len(body))
	}
	return err
}

type int64sCodec[T any] struct{ h *header }

func (c *int64sCodec[T]) Append(dst []byte, xs []T) ([]byte, error) {
	vs := as[int64](xs)
	dst = c.h.append(slices.Grow(dst, headerSize+binary.MaxVarintLen64+2*len(vs)), len(vs))
	for _, v := range vs {
		dst = appendUvarint(dst, zig(v))
	}
	return dst, nil
}

func (c *int64sCodec[T]) Decode(src []byte) ([]T, error) {
	n, b, err := c.h.open(src)
	if err != nil || n == 0 {
		return nil, emptyOr(c.h, b, err)
	}
	xs := make([]T, n)
	vs := as[int64](xs)
	for i := range vs {
		var u uint64
		if u, b, err = uvarint(b); err != nil {
			return nil, c.h.recordErr(i, src, len(b), err)
		}
		vs[i] = unzig(u)
	}
	if len(b) != 0 {
		return nil, c.h.trailing(len(b))
	}
	return xs, nil
}

type strInt64sCodec[T any] struct{ h *header }

func (c *strInt64sCodec[T]) Append(dst []byte, xs []T) ([]byte, error) {
	ps := as[strInt64](xs)
	size := 0
	for i := range ps {
		size += uvarintLen(uint64(len(ps[i].K))) + len(ps[i].K) + uvarintLen(zig(ps[i].V))
	}
	dst = c.h.append(slices.Grow(dst, headerSize+binary.MaxVarintLen64+size), len(ps))
	n := len(dst)
	dst = dst[:n+size]
	for i := range ps {
		p := &ps[i]
		n = putString(dst, n, p.K)
		if v := zig(p.V); v < 0x80 {
			dst[n] = byte(v)
			n++
		} else {
			n += binary.PutUvarint(dst[n:], v)
		}
	}
	return dst, nil
}

func (c *strInt64sCodec[T]) Decode(src []byte) ([]T, error) {
	n, b, err := c.h.open(src)
	if err != nil || n == 0 {
		return nil, emptyOr(c.h, b, err)
	}
	xs := make([]T, n)
	ps := as[strInt64](xs)
	for i := range ps {
		var l, u uint64
		if l, b, err = uvarint(b); err != nil {
			return nil, c.h.recordErr(i, src, len(b), err)
		}
		if l > uint64(len(b)) {
			return nil, c.h.recordErr(i, src, len(b), errTruncated)
		}
		ps[i].K = string(b[:l])
		if u, b, err = uvarint(b[l:]); err != nil {
			return nil, c.h.recordErr(i, src, len(b), err)
		}
		ps[i].V = unzig(u)
	}
	if len(b) != 0 {
		return nil, c.h.trailing(len(b))
	}
	return xs, nil
}
