package codec_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"time"
	"unsafe"
)

// Random values for property tests, by reflection, leaning on edge cases:
// empty and invalid UTF-8 strings, extreme integers, NaNs with payloads,
// -0.0, infinities, nil and empty slices and maps.

// special makes values of types whose fields cannot be set by reflection.
var special = map[reflect.Type]func(r *rand.Rand) reflect.Value{
	reflect.TypeFor[time.Time](): func(r *rand.Rand) reflect.Value {
		t := time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9))
		if r.IntN(2) == 0 {
			t = t.UTC()
		} else {
			// time.Time cannot marshal an offset of -1 minute.
			t = t.In(time.FixedZone("", 60*(r.IntN(12*60)+2)*(1-2*r.IntN(2))))
		}
		return reflect.ValueOf(t)
	},
	reflect.TypeFor[big.Int](): func(r *rand.Rand) reflect.Value {
		x := new(big.Int).Lsh(big.NewInt(r.Int64()), uint(r.IntN(200)))
		if r.IntN(2) == 0 {
			x.Neg(x)
		}
		return reflect.ValueOf(x).Elem()
	},
	reflect.TypeFor[netip.Addr](): func(r *rand.Rand) reflect.Value {
		switch r.IntN(3) {
		case 0:
			return reflect.ValueOf(netip.Addr{})
		case 1:
			return reflect.ValueOf(netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), 1}))
		}
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return reflect.ValueOf(netip.AddrFrom16(b))
	},
	reflect.TypeFor[Point](): func(r *rand.Rand) reflect.Value {
		return reflect.ValueOf(Point{x: int32(r.Uint32()), y: int32(r.Uint32())})
	},
}

func gen[T any](r *rand.Rand) T {
	var x T
	fill(r, reflect.ValueOf(&x).Elem(), 0, false)
	return x
}

func fill(r *rand.Rand, v reflect.Value, depth int, key bool) {
	if f, ok := special[v.Type()]; ok {
		v.Set(f(r))
		return
	}
	p := v.Addr().UnsafePointer()
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		lo, hi := int64(-1)<<(bits-1), int64(uint64(1)<<(bits-1)-1)
		v.SetInt([]int64{0, -1, 1, lo, hi, lo + 1, hi - 1, r.Int64() >> (64 - bits), int64(r.IntN(300)) - 150}[r.IntN(9)])
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		bits := v.Type().Bits()
		hi := uint64(1)<<(bits-1) - 1 + uint64(1)<<(bits-1)
		v.SetUint([]uint64{0, 1, hi, hi - 1, 127, 128, r.Uint64() >> (64 - bits), uint64(r.IntN(300))}[r.IntN(8)])
	case reflect.Float32:
		*(*float32)(p) = randFloat32(r, key)
	case reflect.Float64:
		*(*float64)(p) = randFloat64(r, key)
	case reflect.Complex64:
		*(*[2]float32)(p) = [2]float32{randFloat32(r, key), randFloat32(r, key)}
	case reflect.Complex128:
		*(*[2]float64)(p) = [2]float64{randFloat64(r, key), randFloat64(r, key)}
	case reflect.String:
		v.SetString(randString(r))
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i), depth+1, key)
		}
	case reflect.Slice:
		if r.IntN(5) == 0 || depth > 3 {
			return // nil
		}
		n := r.IntN(6)
		if depth == 0 && r.IntN(10) == 0 {
			n = 200
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i), depth+1, key)
		}
		v.Set(s)
	case reflect.Map:
		if r.IntN(5) == 0 || depth > 3 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range r.IntN(5) {
			k := reflect.New(v.Type().Key()).Elem()
			fill(r, k, depth+1, true)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(r, e, depth+1, false)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if r.IntN(4) == 0 || depth > 3 {
			return
		}
		e := reflect.New(v.Type().Elem())
		fill(r, e.Elem(), depth+1, key)
		v.Set(e)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(r, v.Field(i), depth+1, key)
			}
		}
	}
}

// randFloat64 picks an edge case or random bits (often a NaN with a
// payload); map keys get no NaN, which a map cannot look up.
func randFloat64(r *rand.Rand, key bool) float64 {
	edges := []float64{0, math.Copysign(0, -1), 1, -1.5, math.Inf(1), math.Inf(-1),
		math.SmallestNonzeroFloat64, math.MaxFloat64, math.NaN(), math.Float64frombits(0x7ff8dead_beef0001)}
	var f float64
	if r.IntN(2) == 0 {
		f = edges[r.IntN(len(edges))]
	} else {
		f = math.Float64frombits(r.Uint64())
	}
	if key && f != f {
		return 0.5
	}
	return f
}

func randFloat32(r *rand.Rand, key bool) float32 {
	edges := []float32{0, float32(math.Copysign(0, -1)), 1, -1.5, float32(math.Inf(1)),
		math.SmallestNonzeroFloat32, math.MaxFloat32, math.Float32frombits(0x7fc0beef), math.Float32frombits(0x7f800001)}
	var f float32
	if r.IntN(2) == 0 {
		f = edges[r.IntN(len(edges))]
	} else {
		f = math.Float32frombits(r.Uint32())
	}
	if key && f != f {
		return 0.5
	}
	return f
}

func randString(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return ""
	case 1:
		return "\xff\xfe\xc0" // invalid UTF-8
	case 2:
		return "\x00nul\x00"
	case 3:
		return "héllo, 世界 🌍"
	case 4:
		b := make([]byte, 130+r.IntN(300)) // a two-byte length
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	}
	b := make([]byte, r.IntN(20))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// same reports whether a and b are equal value for value: floats by their
// bits, nil and empty slices and maps apart, times by Equal.
func same(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == reflect.TypeFor[time.Time]() {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	if a.Type() == reflect.TypeFor[big.Int]() {
		x, y := a.Interface().(big.Int), b.Interface().(big.Int)
		return x.Cmp(&y) == 0
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return bitsOf(a) == bitsOf(b)
	case reflect.Array:
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		if a.Type().Elem().Size() == 0 {
			return true // up to 2^24 struct{}: nothing to compare
		}
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !same(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return same(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if f.Name == "_" {
				continue
			}
			if !f.IsExported() {
				return reflect.DeepEqual(a.Interface(), b.Interface())
			}
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return a.Interface() == b.Interface()
}

// bitsOf returns a float's or complex's exact bytes.
func bitsOf(v reflect.Value) [16]byte {
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	var out [16]byte
	copy(out[:], unsafe.Slice((*byte)(c.UnsafePointer()), v.Type().Size()))
	return out
}
