package codec

import (
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unsafe"
)

// A node encodes and decodes one value of its type in place, given a pointer
// to it. For compiles a tree of nodes once per type, with reflection; the
// per-record path then only follows function pointers and offsets.
//
// Decoders write into zeroed memory (a fresh slice, array or value), so
// "nil" and "absent" need no write.
type node struct {
	enc   func(dst []byte, p unsafe.Pointer) ([]byte, error)
	dec   func(d *decoder, p unsafe.Pointer) error
	min   int    // fewest bytes one value encodes to; 0 only for zero-size types
	desc  string // canonical description, hashed into the fingerprint
	shape shape  // set for leaves with hand-written fast paths
}

type shape uint8

const (
	shapeOther    shape = iota
	shapeString         // a string kind: len, bytes
	shapeInt64          // int64, or int where int is 64 bits: zigzag varint
	shapeByte           // a uint8 kind without methods: one raw byte
	shapeStrInt64       // a struct laid out as strInt64: a string, then an int64 shape
)

// sliceHeader is the layout of every Go slice. Writing data through the
// unsafe.Pointer field keeps the garbage collector's write barrier.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

var (
	binaryMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	gobEncoder        = reflect.TypeFor[gob.GobEncoder]()
	gobDecoder        = reflect.TypeFor[gob.GobDecoder]()
)

// compiler builds the node tree for one record type. Nodes are committed to
// the process-wide cache only when the whole type compiles, so a failed For
// leaves nothing behind that a later Register would contradict.
type compiler struct {
	top      reflect.Type
	visiting map[reflect.Type]bool
	local    map[reflect.Type]*node
	seen     []reflect.Type
}

func (c *compiler) fail(path string, t reflect.Type, reason string) error {
	return &UnsupportedTypeError{Type: c.top, Path: path, Culprit: t, Reason: reason}
}

// commit adds the nodes built to the process-wide cache and marks their types
// used, so that Register cannot change them afterwards. Called under mu.
func (c *compiler) commit() {
	for _, t := range c.seen {
		nodes[t] = c.local[t]
		used[t] = true
	}
}

// node returns t's node; path locates t inside the record type, for errors.
// Called under mu.
func (c *compiler) node(t reflect.Type, path string) (*node, error) {
	if n, ok := nodes[t]; ok {
		return n, nil
	}
	if n, ok := c.local[t]; ok {
		return n, nil
	}
	if c.visiting[t] {
		return nil, c.fail(path, t, "recursive type: its values may form cycles or nest without bound; Register a codec for it")
	}
	c.visiting[t] = true
	n, err := c.build(t, path)
	delete(c.visiting, t)
	if err != nil {
		return nil, err
	}
	if c.local == nil {
		c.local = make(map[reflect.Type]*node)
	}
	c.local[t] = n
	c.seen = append(c.seen, t)
	return n, nil
}

// typeName is t's name qualified by its full package path, or its literal
// for an unnamed type.
func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// named prefixes a description with t's qualified name when t is a defined
// type (so that a Celsius and a Fahrenheit float64 differ).
func named(t reflect.Type, desc string) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name() + "=" + desc
	}
	return desc
}

func (c *compiler) build(t reflect.Type, path string) (*node, error) {
	if r, ok := registry[t]; ok {
		return r.node, nil
	}
	if n, err, ok := c.methods(t, path); ok {
		return n, err
	}
	leaf := func(enc func([]byte, unsafe.Pointer) ([]byte, error), dec func(*decoder, unsafe.Pointer) error, min int) (*node, error) {
		return &node{enc: enc, dec: dec, min: min, desc: named(t, t.Kind().String())}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return leaf(encBool, decBool, 1)
	case reflect.Int:
		n, _ := leaf(encSigned[int], decSigned[int], 1)
		if t.Size() == 8 {
			n.shape = shapeInt64
		}
		return n, nil
	case reflect.Int8:
		return leaf(encInt8, decInt8, 1)
	case reflect.Int16:
		return leaf(encSigned[int16], decSigned[int16], 1)
	case reflect.Int32:
		return leaf(encSigned[int32], decSigned[int32], 1)
	case reflect.Int64:
		n, _ := leaf(encSigned[int64], decSigned[int64], 1)
		n.shape = shapeInt64
		return n, nil
	case reflect.Uint:
		return leaf(encUnsigned[uint], decUnsigned[uint], 1)
	case reflect.Uint8:
		n, _ := leaf(encUint8, decUint8, 1)
		n.shape = shapeByte
		return n, nil
	case reflect.Uint16:
		return leaf(encUnsigned[uint16], decUnsigned[uint16], 1)
	case reflect.Uint32:
		return leaf(encUnsigned[uint32], decUnsigned[uint32], 1)
	case reflect.Uint64:
		return leaf(encUnsigned[uint64], decUnsigned[uint64], 1)
	case reflect.Uintptr:
		return leaf(encUnsigned[uintptr], decUnsigned[uintptr], 1)
	case reflect.Float32:
		return leaf(encFloat32, decFloat32, 4)
	case reflect.Float64:
		return leaf(encFloat64, decFloat64, 8)
	case reflect.Complex64:
		return leaf(encComplex64, decComplex64, 8)
	case reflect.Complex128:
		return leaf(encComplex128, decComplex128, 16)
	case reflect.String:
		n, _ := leaf(encString, decString, 1)
		n.shape = shapeString
		return n, nil
	case reflect.Array:
		return c.array(t, path)
	case reflect.Slice:
		return c.slice(t, path)
	case reflect.Struct:
		return c.strct(t, path)
	case reflect.Pointer:
		return c.pointer(t, path)
	case reflect.Map:
		return c.mapNode(t, path)
	case reflect.Interface:
		return nil, c.fail(path, t, "an interface's dynamic type is unknown to the decoder; use a concrete type, or Register a codec (codec.Gob, after gob.Register of the concrete types)")
	case reflect.Func:
		return nil, c.fail(path, t, "a func is code, which cannot cross processes; name the operation in data instead")
	case reflect.Chan:
		return nil, c.fail(path, t, "a channel cannot cross processes")
	case reflect.UnsafePointer:
		return nil, c.fail(path, t, "an unsafe.Pointer is an address, meaningless in another process")
	}
	return nil, c.fail(path, t, "kind "+t.Kind().String()+" is not supported")
}

// methods builds the node of a type that encodes itself (MarshalBinary,
// GobEncode), if t is one; ok reports whether it is.
func (c *compiler) methods(t reflect.Type, path string) (n *node, err error, ok bool) {
	if k := t.Kind(); k == reflect.Interface || k == reflect.Pointer {
		return nil, nil, false
	}
	pt := reflect.PointerTo(t)
	var iface reflect.Type
	var method string
	switch {
	case pt.Implements(binaryMarshaler) && pt.Implements(binaryUnmarshaler):
		iface, method = binaryMarshaler, "MarshalBinary"
	case pt.Implements(gobEncoder) && pt.Implements(gobDecoder):
		iface, method = gobEncoder, "GobEncode"
	default:
		return nil, nil, false
	}
	if t.Kind() == reflect.Struct {
		fields, from := 0, ""
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Name == "_" {
				continue
			}
			fields++
			ft := f.Type
			if ft.Kind() != reflect.Pointer {
				ft = reflect.PointerTo(ft)
			}
			if f.Anonymous && from == "" && ft.Implements(iface) {
				from = f.Name
			}
		}
		if from != "" && fields > 1 {
			return nil, c.fail(path, t, fmt.Sprintf("%s is promoted from the embedded field %s and would encode that field alone; Register a codec for %v", method, from, t)), true
		}
	}
	desc := typeName(t) + "=" + method
	if iface == binaryMarshaler {
		return &node{enc: encBinary(t), dec: decBinary(t), min: 1, desc: desc}, nil, true
	}
	return &node{enc: encGob(t), dec: decGob(t), min: 1, desc: desc}, nil, true
}

func (c *compiler) array(t reflect.Type, path string) (*node, error) {
	en, err := c.node(t.Elem(), path+"[i]")
	if err != nil {
		return nil, err
	}
	l := t.Len()
	desc := named(t, "["+strconv.Itoa(l)+"]"+en.desc)
	if en.shape == shapeByte {
		return &node{
			enc: func(dst []byte, p unsafe.Pointer) ([]byte, error) {
				return append(dst, unsafe.Slice((*byte)(p), l)...), nil
			},
			dec: func(d *decoder, p unsafe.Pointer) error {
				b, err := d.next(uint64(l))
				copy(unsafe.Slice((*byte)(p), l), b)
				return err
			},
			min: l, desc: desc,
		}, nil
	}
	if en.min > 0 && l > maxInt/en.min {
		return nil, c.fail(path, t, "too large")
	}
	stride := t.Elem().Size()
	n := &node{min: l * en.min, desc: desc}
	if en.min == 0 { // zero-size elements: nothing to write or read
		n.enc = func(dst []byte, _ unsafe.Pointer) ([]byte, error) { return dst, nil }
		n.dec = func(*decoder, unsafe.Pointer) error { return nil }
		return n, nil
	}
	enc, dec := en.enc, en.dec
	n.enc = func(dst []byte, p unsafe.Pointer) (_ []byte, err error) {
		for i := range l {
			if dst, err = enc(dst, unsafe.Add(p, uintptr(i)*stride)); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	n.dec = func(d *decoder, p unsafe.Pointer) error {
		for i := range l {
			if err := dec(d, unsafe.Add(p, uintptr(i)*stride)); err != nil {
				return err
			}
		}
		return nil
	}
	return n, nil
}

// Slices (and maps) are written as 0 for nil, or length+1 and the elements.
func (c *compiler) slice(t reflect.Type, path string) (*node, error) {
	en, err := c.node(t.Elem(), path+"[i]")
	if err != nil {
		return nil, err
	}
	desc := named(t, "[]"+en.desc)
	if en.shape == shapeByte {
		return &node{enc: encBytes, dec: decBytes, min: 1, desc: desc}, nil
	}
	stride := t.Elem().Size()
	enc, dec, min := en.enc, en.dec, en.min
	alloc := allocator(t.Elem(), en)
	return &node{
		enc: func(dst []byte, p unsafe.Pointer) (_ []byte, err error) {
			s := (*sliceHeader)(p)
			if s.data == nil {
				return append(dst, 0), nil
			}
			if min == 0 {
				if s.len > maxZeroSize {
					return dst, errZeroSize
				}
				return appendUvarint(dst, uint64(s.len)+1), nil
			}
			dst = appendUvarint(dst, uint64(s.len)+1)
			for i := range s.len {
				if dst, err = enc(dst, unsafe.Add(s.data, uintptr(i)*stride)); err != nil {
					return dst, err
				}
			}
			return dst, nil
		},
		dec: func(d *decoder, p unsafe.Pointer) error {
			n, ok, err := d.count(min)
			if !ok {
				return err
			}
			data := alloc(n)
			if min > 0 {
				for i := range n {
					if err := dec(d, unsafe.Add(data, uintptr(i)*stride)); err != nil {
						return err
					}
				}
			}
			*(*sliceHeader)(p) = sliceHeader{data: data, len: n, cap: n}
			return nil
		},
		min:  1,
		desc: desc,
	}, nil
}

func (c *compiler) strct(t reflect.Type, path string) (*node, error) {
	type field struct {
		off uintptr
		n   *node
	}
	var fs []field
	var desc strings.Builder
	desc.WriteString("struct{")
	min := 0
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "_" {
			continue
		}
		if !f.IsExported() {
			return nil, c.fail(path+"."+f.Name, f.Type, fmt.Sprintf("unexported field: encoding would lose it silently; export it, give %v MarshalBinary and UnmarshalBinary methods, or Register a codec for it", t))
		}
		fn, err := c.node(f.Type, path+"."+f.Name)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&desc, "%s %s;", f.Name, fn.desc)
		min += fn.min
		if fn.min > 0 {
			fs = append(fs, field{f.Offset, fn})
		}
	}
	desc.WriteString("}")
	if min == 0 && t.Size() > 0 {
		return nil, c.fail(path, t, "holds memory but only in blank fields, so it would encode to nothing")
	}
	n := &node{min: min, desc: named(t, desc.String())}
	if len(fs) == 2 && fs[0].n.shape == shapeString && fs[1].n.shape == shapeInt64 &&
		fs[0].off == unsafe.Offsetof(strInt64{}.K) && fs[1].off == unsafe.Offsetof(strInt64{}.V) &&
		t.Size() == unsafe.Sizeof(strInt64{}) {
		n.shape = shapeStrInt64
	}
	switch len(fs) {
	case 0:
		n.enc = func(dst []byte, _ unsafe.Pointer) ([]byte, error) { return dst, nil }
		n.dec = func(*decoder, unsafe.Pointer) error { return nil }
	case 1:
		o, e, d := fs[0].off, fs[0].n.enc, fs[0].n.dec
		n.enc = func(dst []byte, p unsafe.Pointer) ([]byte, error) { return e(dst, unsafe.Add(p, o)) }
		n.dec = func(dd *decoder, p unsafe.Pointer) error { return d(dd, unsafe.Add(p, o)) }
	case 2:
		o0, e0, d0 := fs[0].off, fs[0].n.enc, fs[0].n.dec
		o1, e1, d1 := fs[1].off, fs[1].n.enc, fs[1].n.dec
		n.enc = func(dst []byte, p unsafe.Pointer) (_ []byte, err error) {
			if dst, err = e0(dst, unsafe.Add(p, o0)); err != nil {
				return dst, err
			}
			return e1(dst, unsafe.Add(p, o1))
		}
		n.dec = func(d *decoder, p unsafe.Pointer) error {
			if err := d0(d, unsafe.Add(p, o0)); err != nil {
				return err
			}
			return d1(d, unsafe.Add(p, o1))
		}
	default:
		n.enc = func(dst []byte, p unsafe.Pointer) (_ []byte, err error) {
			for _, f := range fs {
				if dst, err = f.n.enc(dst, unsafe.Add(p, f.off)); err != nil {
					return dst, err
				}
			}
			return dst, nil
		}
		n.dec = func(d *decoder, p unsafe.Pointer) error {
			for _, f := range fs {
				if err := f.n.dec(d, unsafe.Add(p, f.off)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return n, nil
}

// Pointers are written as 0 for nil, or 1 and the value pointed to.
func (c *compiler) pointer(t reflect.Type, path string) (*node, error) {
	et := t.Elem()
	en, err := c.node(et, path+"*")
	if err != nil {
		return nil, err
	}
	enc, dec := en.enc, en.dec
	alloc := allocator(et, en)
	return &node{
		enc: func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			q := *(*unsafe.Pointer)(p)
			if q == nil {
				return append(dst, 0), nil
			}
			return enc(append(dst, 1), q)
		},
		dec: func(d *decoder, p unsafe.Pointer) error {
			f, err := d.byte()
			if err != nil || f == 0 {
				return err
			}
			if f != 1 {
				return errFlag
			}
			q := alloc(1)
			if err := dec(d, q); err != nil {
				return err
			}
			*(*unsafe.Pointer)(p) = q
			return nil
		},
		min:  1,
		desc: named(t, "*"+en.desc),
	}, nil
}

// allocator returns a function that allocates zeroed memory for n values of
// type t (never nil, even for n == 0), without reflection per call for the
// common layouts: the garbage collector needs only the memory's size and
// which words hold pointers, so pointer-free values get words, and values
// laid out as a string, a slice, a single pointer or a strInt64 get a slice
// of that. Other types go through reflect.MakeSlice.
func allocator(t reflect.Type, n *node) func(int) unsafe.Pointer {
	size := t.Size()
	switch {
	case size == 0:
		return func(int) unsafe.Pointer { return unsafe.Pointer(&zeroSized) }
	case !hasPointers(t) && uintptr(t.Align()) <= unsafe.Alignof(uint64(0)):
		return func(k int) unsafe.Pointer {
			return unsafe.Pointer(unsafe.SliceData(make([]uint64, (uintptr(k)*size+7)/8)))
		}
	case t.Kind() == reflect.String:
		return func(k int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]string, k))) }
	case t.Kind() == reflect.Slice:
		return func(k int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([][]byte, k))) }
	case t.Kind() == reflect.Pointer || t.Kind() == reflect.Map:
		return func(k int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]unsafe.Pointer, k))) }
	case n.shape == shapeStrInt64:
		return func(k int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]strInt64, k))) }
	}
	st := reflect.SliceOf(t)
	return func(k int) unsafe.Pointer { return reflect.MakeSlice(st, k, k).UnsafePointer() }
}

var zeroSized [0]uint64

// hasPointers reports whether values of t hold pointers the garbage
// collector must see.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface,
		reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// Maps are written as 0 for nil, or length+1 and the entries in iteration
// order. They go through reflection per entry: the slow path.
func (c *compiler) mapNode(t reflect.Type, path string) (*node, error) {
	kt, vt := t.Key(), t.Elem()
	kn, err := c.node(kt, path+"{key}")
	if err != nil {
		return nil, err
	}
	vn, err := c.node(vt, path+"[k]")
	if err != nil {
		return nil, err
	}
	min := kn.min + vn.min
	return &node{
		enc: func(dst []byte, p unsafe.Pointer) (_ []byte, err error) {
			m := reflect.NewAt(t, p).Elem()
			if m.IsNil() {
				return append(dst, 0), nil
			}
			dst = appendUvarint(dst, uint64(m.Len())+1)
			k, v := reflect.New(kt).Elem(), reflect.New(vt).Elem()
			it := m.MapRange()
			for it.Next() {
				k.SetIterKey(it)
				v.SetIterValue(it)
				if dst, err = kn.enc(dst, k.Addr().UnsafePointer()); err != nil {
					return dst, err
				}
				if dst, err = vn.enc(dst, v.Addr().UnsafePointer()); err != nil {
					return dst, err
				}
			}
			return dst, nil
		},
		dec: func(d *decoder, p unsafe.Pointer) error {
			n, ok, err := d.count(min)
			if !ok {
				return err
			}
			if min == 0 && n > 1 { // a zero-size key has one value
				return errDupKey
			}
			m := reflect.MakeMapWithSize(t, n)
			k, v := reflect.New(kt), reflect.New(vt)
			for range n {
				k.Elem().SetZero()
				v.Elem().SetZero()
				if err := kn.dec(d, k.UnsafePointer()); err != nil {
					return err
				}
				if err := vn.dec(d, v.UnsafePointer()); err != nil {
					return err
				}
				m.SetMapIndex(k.Elem(), v.Elem())
			}
			if m.Len() != n {
				return errDupKey
			}
			*(*unsafe.Pointer)(p) = m.UnsafePointer()
			return nil
		},
		min:  1,
		desc: named(t, "map["+kn.desc+"]"+vn.desc),
	}, nil
}

// registeredNode encodes a registered type nested in a record: each value is
// framed by its length and encoded by c as a one-record slice.
func registeredNode[T any](t reflect.Type, c Codec[T]) *node {
	return &node{
		enc: func(dst []byte, p unsafe.Pointer) ([]byte, error) {
			dst = append(dst, 0)
			start := len(dst)
			dst, err := c.Append(dst, unsafe.Slice((*T)(p), 1))
			if err != nil {
				return dst[:start-1], err
			}
			return frame(dst, start), nil
		},
		dec: func(d *decoder, p unsafe.Pointer) error {
			b, err := d.bytes()
			if err != nil {
				return err
			}
			xs, err := callDecode(c, b)
			if err != nil {
				return err
			}
			if len(xs) != 1 {
				return fmt.Errorf("%w: the registered codec for %v decoded %d values, want 1", ErrCorrupt, t, len(xs))
			}
			*(*T)(p) = xs[0]
			return nil
		},
		min:  1,
		desc: typeName(t) + "=registered",
	}
}

// frame writes the length of dst[start:] as a uvarint into the one byte
// reserved at dst[start-1], moving the bytes along when it needs more.
func frame(dst []byte, start int) []byte {
	n := len(dst) - start
	if n < 0x80 {
		dst[start-1] = byte(n)
		return dst
	}
	var tmp [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(tmp[:], uint64(n))
	dst = append(dst, tmp[:k-1]...)
	copy(dst[start-1+k:], dst[start:start+n])
	copy(dst[start-1:], tmp[:k])
	return dst
}

// Leaves.

func encBool(dst []byte, p unsafe.Pointer) ([]byte, error) {
	if *(*bool)(p) {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

func decBool(d *decoder, p unsafe.Pointer) error {
	b, err := d.byte()
	if err != nil {
		return err
	}
	if b > 1 {
		return errBool
	}
	*(*bool)(p) = b == 1
	return nil
}

func encInt8(dst []byte, p unsafe.Pointer) ([]byte, error) {
	return append(dst, byte(*(*int8)(p))), nil
}

func decInt8(d *decoder, p unsafe.Pointer) error {
	b, err := d.byte()
	*(*int8)(p) = int8(b)
	return err
}

func encUint8(dst []byte, p unsafe.Pointer) ([]byte, error) {
	return append(dst, *(*uint8)(p)), nil
}

func decUint8(d *decoder, p unsafe.Pointer) error {
	b, err := d.byte()
	*(*uint8)(p) = b
	return err
}

type signed interface {
	~int | ~int16 | ~int32 | ~int64
}

type unsigned interface {
	~uint | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

func encSigned[I signed](dst []byte, p unsafe.Pointer) ([]byte, error) {
	return appendUvarint(dst, zig(int64(*(*I)(p)))), nil
}

func decSigned[I signed](d *decoder, p unsafe.Pointer) error {
	u, err := d.uvarint()
	if err != nil {
		return err
	}
	v := unzig(u)
	if int64(I(v)) != v {
		return errRange
	}
	*(*I)(p) = I(v)
	return nil
}

func encUnsigned[I unsigned](dst []byte, p unsafe.Pointer) ([]byte, error) {
	return appendUvarint(dst, uint64(*(*I)(p))), nil
}

func decUnsigned[I unsigned](d *decoder, p unsafe.Pointer) error {
	u, err := d.uvarint()
	if err != nil {
		return err
	}
	if uint64(I(u)) != u {
		return errRange
	}
	*(*I)(p) = I(u)
	return nil
}

func encFloat32(dst []byte, p unsafe.Pointer) ([]byte, error) {
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(*(*float32)(p))), nil
}

func decFloat32(d *decoder, p unsafe.Pointer) error {
	b, err := d.next(4)
	if err != nil {
		return err
	}
	*(*float32)(p) = math.Float32frombits(binary.LittleEndian.Uint32(b))
	return nil
}

func encFloat64(dst []byte, p unsafe.Pointer) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(*(*float64)(p))), nil
}

func decFloat64(d *decoder, p unsafe.Pointer) error {
	b, err := d.next(8)
	if err != nil {
		return err
	}
	*(*float64)(p) = math.Float64frombits(binary.LittleEndian.Uint64(b))
	return nil
}

func encComplex64(dst []byte, p unsafe.Pointer) ([]byte, error) {
	v := *(*complex64)(p)
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(real(v)))
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(imag(v))), nil
}

func decComplex64(d *decoder, p unsafe.Pointer) error {
	b, err := d.next(8)
	if err != nil {
		return err
	}
	re := math.Float32frombits(binary.LittleEndian.Uint32(b))
	im := math.Float32frombits(binary.LittleEndian.Uint32(b[4:]))
	*(*complex64)(p) = complex(re, im)
	return nil
}

func encComplex128(dst []byte, p unsafe.Pointer) ([]byte, error) {
	v := *(*complex128)(p)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(real(v)))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(imag(v))), nil
}

func decComplex128(d *decoder, p unsafe.Pointer) error {
	b, err := d.next(16)
	if err != nil {
		return err
	}
	re := math.Float64frombits(binary.LittleEndian.Uint64(b))
	im := math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	*(*complex128)(p) = complex(re, im)
	return nil
}

func encString(dst []byte, p unsafe.Pointer) ([]byte, error) {
	s := *(*string)(p)
	return append(appendUvarint(dst, uint64(len(s))), s...), nil
}

func decString(d *decoder, p unsafe.Pointer) error {
	b, err := d.bytes()
	if err != nil {
		return err
	}
	*(*string)(p) = string(b)
	return nil
}

// encBytes and decBytes serve every slice of a plain uint8 kind.
func encBytes(dst []byte, p unsafe.Pointer) ([]byte, error) {
	b := *(*[]byte)(p)
	if b == nil {
		return append(dst, 0), nil
	}
	return append(appendUvarint(dst, uint64(len(b))+1), b...), nil
}

func decBytes(d *decoder, p unsafe.Pointer) error {
	n, ok, err := d.count(1)
	if !ok {
		return err
	}
	b, err := d.next(uint64(n))
	if err != nil {
		return err
	}
	*(*[]byte)(p) = append(make([]byte, 0, n), b...)
	return nil
}

func encBinary(t reflect.Type) func([]byte, unsafe.Pointer) ([]byte, error) {
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		b, err := reflect.NewAt(t, p).Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return dst, fmt.Errorf("%v.MarshalBinary: %w", t, err)
		}
		return append(appendUvarint(dst, uint64(len(b))), b...), nil
	}
}

func decBinary(t reflect.Type) func(*decoder, unsafe.Pointer) error {
	return func(d *decoder, p unsafe.Pointer) error {
		b, err := d.bytes()
		if err != nil {
			return err
		}
		u := reflect.NewAt(t, p).Interface().(encoding.BinaryUnmarshaler)
		return callUnmarshal(t, "UnmarshalBinary", u.UnmarshalBinary, b)
	}
}

func encGob(t reflect.Type) func([]byte, unsafe.Pointer) ([]byte, error) {
	return func(dst []byte, p unsafe.Pointer) ([]byte, error) {
		b, err := reflect.NewAt(t, p).Interface().(gob.GobEncoder).GobEncode()
		if err != nil {
			return dst, fmt.Errorf("%v.GobEncode: %w", t, err)
		}
		return append(appendUvarint(dst, uint64(len(b))), b...), nil
	}
}

func decGob(t reflect.Type) func(*decoder, unsafe.Pointer) error {
	return func(d *decoder, p unsafe.Pointer) error {
		b, err := d.bytes()
		if err != nil {
			return err
		}
		u := reflect.NewAt(t, p).Interface().(gob.GobDecoder)
		return callUnmarshal(t, "GobDecode", u.GobDecode, b)
	}
}

// callUnmarshal runs a type's own decoding method on bytes from the input,
// turning its error or panic into an error wrapping ErrCorrupt.
func callUnmarshal(t reflect.Type, method string, f func([]byte) error, b []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v.%s panicked: %v", ErrCorrupt, t, method, p)
		}
	}()
	if err := f(b); err != nil {
		return fmt.Errorf("%w: %v.%s: %v", ErrCorrupt, t, method, err)
	}
	return nil
}
