package block

import (
	"reflect"
	"unsafe"
)

// EstimateSize estimates the memory held by v, in bytes, as Spark's
// SizeEstimator does: it walks v by reflection, counting headers and what they
// point to, and for large slices and maps it measures an evenly spaced sample
// of up to 64 elements and extrapolates. Pointers are followed once per call
// (cycles are safe). It never panics; funcs, channels and unsafe pointers
// count as their header size.
func EstimateSize(v any) int64 {
	if v == nil {
		return 0
	}
	switch x := v.(type) {
	case []string:
		return stringsSize(x)
	case string:
		return int64(unsafe.Sizeof(x)) + int64(len(x))
	}
	e := estimator{seen: make(map[uintptr]bool)}
	rv := reflect.ValueOf(v)
	return int64(rv.Type().Size()) + e.deep(rv)
}

// stringsSize is the fast path for the commonest block: received lines.
func stringsSize(xs []string) int64 {
	n := int64(len(xs)) * 16
	if len(xs) <= 64 {
		for _, s := range xs {
			n += int64(len(s))
		}
		return n + 24
	}
	var sample int64
	for i := range 64 {
		sample += int64(len(xs[i*len(xs)/64]))
	}
	return n + sample*int64(len(xs))/64 + 24
}

const sampleSize = 64

type estimator struct {
	seen map[uintptr]bool
}

// deep returns the bytes v references beyond its own inline size.
func (e *estimator) deep(v reflect.Value) (n int64) {
	defer func() {
		if recover() != nil {
			n = 0
		}
	}()
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len())
	case reflect.Pointer:
		if v.IsNil() || e.seen[v.Pointer()] {
			return 0
		}
		e.seen[v.Pointer()] = true
		el := v.Elem()
		return int64(el.Type().Size()) + e.deep(el)
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		el := v.Elem()
		return int64(el.Type().Size()) + e.deep(el)
	case reflect.Slice:
		if v.IsNil() {
			return 0
		}
		if v.Len() > 0 && e.seen[v.Pointer()] {
			return 0
		}
		if v.Len() > 0 {
			e.seen[v.Pointer()] = true
		}
		elemSize := int64(v.Type().Elem().Size())
		return int64(v.Cap())*elemSize + e.elements(v)
	case reflect.Array:
		return e.elements(v)
	case reflect.Map:
		if v.IsNil() {
			return 0
		}
		kt, vt := v.Type().Key(), v.Type().Elem()
		perEntry := int64(kt.Size()+vt.Size()) + 8 // plus control bytes and slack
		n := int64(v.Len())*perEntry + 48
		if v.Len() == 0 {
			return n
		}
		iter := v.MapRange()
		var sampled, extra int64
		for iter.Next() && sampled < sampleSize {
			extra += e.deep(iter.Key()) + e.deep(iter.Value())
			sampled++
		}
		return n + extra*int64(v.Len())/sampled
	case reflect.Struct:
		var n int64
		for i := range v.NumField() {
			n += e.deep(v.Field(i))
		}
		return n
	}
	return 0
}

// elements estimates what a slice's or array's elements reference.
func (e *estimator) elements(v reflect.Value) int64 {
	l := v.Len()
	if l == 0 || !references(v.Type().Elem()) {
		return 0
	}
	if l <= sampleSize {
		var n int64
		for i := range l {
			n += e.deep(v.Index(i))
		}
		return n
	}
	var n int64
	for i := range sampleSize {
		n += e.deep(v.Index(i * l / sampleSize))
	}
	return n * int64(l) / sampleSize
}

// references reports whether values of t can point at more memory.
func references(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	case reflect.Array:
		return references(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if references(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
