package rdd

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Partitioner assigns keys to partitions. It must be deterministic across
// processes: the same key goes to the same partition everywhere.
type Partitioner[K any] interface {
	NumPartitions() int
	Partition(k K) int
}

// Hasher is implemented by key types that hash themselves. Hash64 must be
// process-independent: equal keys (==) hash equal in every process and every
// build, so it must not hash addresses. A type implementing Hasher (with a
// value or a pointer receiver) is hashed by Hash64 alone, whatever it
// contains: it is how a key type holding pointers becomes partitionable.
type Hasher interface{ Hash64() uint64 }

// HashPartitioner spreads keys by a process-independent hash (see HashFunc).
type HashPartitioner[K comparable] struct {
	n    int
	hash func(K) uint64
	err  error
}

// NewHashPartitioner returns a hash partitioner over n partitions (n <= 0
// means 1). If K cannot be hashed the same way in every process, the
// partitioner records why (Err) and fails every task that partitions a key
// over more than one partition.
func NewHashPartitioner[K comparable](n int) *HashPartitioner[K] {
	if n <= 0 {
		n = 1
	}
	hash, err := HashFunc[K]()
	if err != nil {
		hash = func(K) uint64 { panic(abort{err}) }
	}
	return &HashPartitioner[K]{n: n, hash: hash, err: err}
}

// NumPartitions returns n.
func (h *HashPartitioner[K]) NumPartitions() int { return h.n }

// Err returns the *KeyTypeError saying why K cannot be hashed the same way in
// every process, or nil. Keys of an interface type are checked one by one as
// they are partitioned, so Err is nil for them.
func (h *HashPartitioner[K]) Err() error { return h.err }

func (h *HashPartitioner[K]) isHash() {}

// Partition returns hash(k) mod n. Over one partition it returns 0 without
// hashing, for any key. Otherwise, when k cannot be hashed the same way in
// every process (Err, or an interface key whose dynamic type cannot be), it
// fails the running task with a *KeyTypeError, as TaskContext.Fail does: the
// job then fails with a *TaskError wrapping it. Call it inside a task.
func (h *HashPartitioner[K]) Partition(k K) int {
	if h.n == 1 {
		return 0
	}
	return int(h.hash(k) % uint64(h.n))
}

// KeyTypeError reports a key type that has no process-independent hash: it
// is or contains a pointer, a channel or an unsafe.Pointer (whose only
// rendering is an address, different in every process) outside a Hasher, or,
// behind an interface, a value that is not comparable.
type KeyTypeError struct {
	Type reflect.Type // the key type
	// Field locates the offending part of Type: a path of field names,
	// "[i]" for array elements and ".(T)" for the dynamic type T an
	// interface held ("(T)" when Type is the interface), e.g. "P",
	// "Items[i].Ch", "Meta.(*main.Doc)"; "" is Type itself.
	Field  string
	reason string
}

func (e *KeyTypeError) Error() string {
	return "key type " + e.Type.String() + " cannot be hashed the same way in every process: " + e.reason + "; implement rdd.Hasher"
}

// keyTypeError reports that the part of root at path is what (e.g. "a pointer").
func keyTypeError(root reflect.Type, path, what string) *KeyTypeError {
	reason := "it is " + what
	if path != "" {
		reason = "it contains " + what + " (" + where(path) + ")"
	}
	return &KeyTypeError{Type: root, Field: path, reason: reason}
}

// heldError reports that the interface at path in root holds a value of
// dynamic type d, which cannot be hashed for the reason inner gives.
func heldError(root reflect.Type, path string, d reflect.Type, inner *KeyTypeError) *KeyTypeError {
	holder := "it"
	if path != "" {
		holder = "its " + where(path)
	}
	field := path + ".(" + d.String() + ")"
	if path == "" {
		field = field[1:]
	}
	if inner.Field != "" {
		if !strings.HasPrefix(inner.Field, "[") {
			field += "."
		}
		field += inner.Field
	}
	reason := holder + " holds a " + d.String() + ", which " + strings.TrimPrefix(inner.reason, "it ")
	return &KeyTypeError{Type: root, Field: field, reason: reason}
}

func where(path string) string {
	if strings.HasPrefix(path, "[") {
		return "element " + path
	}
	return "field " + path
}

// HashFunc returns K's process-independent hash function, or a *KeyTypeError
// if K has none. The function is chosen once, so the per-record path does no
// boxing for the common key types. Equal keys (==) hash equal in every
// process; the values are part of the cross-process contract (pinned by
// TestHashPartitionerIsStable). The rules:
//
//   - strings: FNV-1a over the bytes, finished with SplitMix64;
//   - integers of any size, signed or not, and uintptr: SplitMix64 of the
//     value as a uint64 (sign-extended);
//   - bools: SplitMix64 of 0 or 1;
//   - floats: SplitMix64 of the IEEE bits, with -0 hashed as +0 since they
//     are equal keys; complex numbers hash both parts so. NaN != NaN, so
//     every NaN record is a key of its own (as in a Go map): a NaN hashes by
//     its bits, and reduceByKey yields one record per NaN record;
//   - named types hash as their underlying type;
//   - types implementing Hasher, with a value or a pointer receiver: Hash64,
//     as is at the top level;
//   - zero-size types: 0 (they have one value);
//   - structs and arrays of the above: their fields (blank ones skipped, as
//     == skips them) and elements in order, folded with SplitMix64;
//   - interface types: the dynamic value, hashed as a key of its dynamic
//     type would be; nil hashes to a constant.
//
// Pointers, channels and unsafe.Pointers, outside a Hasher, have no such
// hash: HashFunc returns a *KeyTypeError naming the field. Behind an
// interface they are found only when a key is hashed: the function then
// fails the running task with a *KeyTypeError, as TaskContext.Fail does, so
// call it inside a task when K is or contains an interface.
func HashFunc[K comparable]() (func(K) uint64, error) {
	t := reflect.TypeFor[K]()
	switch {
	case t.Kind() == reflect.Interface:
		return func(k K) uint64 { return hashDynamic(t, "", any(k)) }, nil
	case t.Implements(hasherType):
		return func(k K) uint64 { return any(k).(Hasher).Hash64() }, nil
	case reflect.PointerTo(t).Implements(hasherType):
		return func(k K) uint64 { return any(&k).(Hasher).Hash64() }, nil
	case t == timeType:
		return func(k K) uint64 { return hashTime((*time.Time)(unsafe.Pointer(&k))) }, nil
	}
	// Basic types, named or not, read the key in place: no boxing.
	switch t.Kind() {
	case reflect.String:
		return func(k K) uint64 { return hashString(*(*string)(unsafe.Pointer(&k))) }, nil
	case reflect.Int:
		return func(k K) uint64 { return mix64(uint64(*(*int)(unsafe.Pointer(&k)))) }, nil
	case reflect.Int64:
		return func(k K) uint64 { return mix64(uint64(*(*int64)(unsafe.Pointer(&k)))) }, nil
	case reflect.Int32:
		return func(k K) uint64 { return mix64(uint64(*(*int32)(unsafe.Pointer(&k)))) }, nil
	case reflect.Int16:
		return func(k K) uint64 { return mix64(uint64(*(*int16)(unsafe.Pointer(&k)))) }, nil
	case reflect.Int8:
		return func(k K) uint64 { return mix64(uint64(*(*int8)(unsafe.Pointer(&k)))) }, nil
	case reflect.Uint64:
		return func(k K) uint64 { return mix64(*(*uint64)(unsafe.Pointer(&k))) }, nil
	case reflect.Uint32:
		return func(k K) uint64 { return mix64(uint64(*(*uint32)(unsafe.Pointer(&k)))) }, nil
	case reflect.Uint16:
		return func(k K) uint64 { return mix64(uint64(*(*uint16)(unsafe.Pointer(&k)))) }, nil
	case reflect.Uint8:
		return func(k K) uint64 { return mix64(uint64(*(*uint8)(unsafe.Pointer(&k)))) }, nil
	case reflect.Uint:
		return func(k K) uint64 { return mix64(uint64(*(*uint)(unsafe.Pointer(&k)))) }, nil
	case reflect.Uintptr:
		return func(k K) uint64 { return mix64(uint64(*(*uintptr)(unsafe.Pointer(&k)))) }, nil
	case reflect.Float64:
		return func(k K) uint64 { return mix64(float64Bits(*(*float64)(unsafe.Pointer(&k)))) }, nil
	case reflect.Float32:
		return func(k K) uint64 { return mix64(float32Bits(*(*float32)(unsafe.Pointer(&k)))) }, nil
	case reflect.Bool:
		return func(k K) uint64 {
			if *(*bool)(unsafe.Pointer(&k)) {
				return mix64(1)
			}
			return mix64(0)
		}, nil
	}
	if t.Size() == 0 {
		return func(K) uint64 { return 0 }, nil // struct{} and the like: one key
	}
	fn, err := buildHash(t, t, "")
	if err != nil {
		return nil, err
	}
	return func(k K) uint64 { return fn(unsafe.Pointer(&k), hashSeed) }, nil
}

var hasherType = reflect.TypeFor[Hasher]()

// hashFn folds the value at p into the running hash h.
type hashFn func(p unsafe.Pointer, h uint64) uint64

// hashSeed starts the fold of a composite key; nilHash is a nil interface's.
const (
	hashSeed = 0x9e3779b97f4a7c15
	nilHash  = 0x6a09e667f3bcc908
)

// timeType is time.Time, whose location pointer would otherwise refuse it:
// equal times (==: the same instant and location) have the same instant, so
// hashing the instant alone is process-independent and consistent with ==.
var timeType = reflect.TypeFor[time.Time]()

func hashTime(t *time.Time) uint64 { return mix64(uint64(t.UnixNano())) }

// fold mixes v into h: order-sensitive, so (a, b) and (b, a) differ.
func fold(h, v uint64) uint64 { return mix64(h ^ v) }

// buildHash returns the hashFn of type t, found at path in key type root, or
// the *KeyTypeError saying why t cannot be hashed. It walks t once; the
// function it returns reads fields at their offsets.
func buildHash(root, t reflect.Type, path string) (hashFn, *KeyTypeError) {
	switch {
	case t.Kind() == reflect.Interface:
		return func(p unsafe.Pointer, h uint64) uint64 {
			return fold(h, hashDynamic(root, path, reflect.NewAt(t, p).Elem().Interface()))
		}, nil
	case t.Implements(hasherType):
		return func(p unsafe.Pointer, h uint64) uint64 {
			return fold(h, reflect.NewAt(t, p).Elem().Interface().(Hasher).Hash64())
		}, nil
	case reflect.PointerTo(t).Implements(hasherType):
		return func(p unsafe.Pointer, h uint64) uint64 {
			return fold(h, reflect.NewAt(t, p).Interface().(Hasher).Hash64())
		}, nil
	case t == timeType:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, hashTime((*time.Time)(p))) }, nil
	case t.Size() == 0:
		return func(_ unsafe.Pointer, h uint64) uint64 { return h }, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(p unsafe.Pointer, h uint64) uint64 {
			if *(*bool)(p) {
				return fold(h, 1)
			}
			return fold(h, 0)
		}, nil
	case reflect.Int:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*int)(p))) }, nil
	case reflect.Int8:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*int8)(p))) }, nil
	case reflect.Int16:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*int16)(p))) }, nil
	case reflect.Int32:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*int32)(p))) }, nil
	case reflect.Int64:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*int64)(p))) }, nil
	case reflect.Uint:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*uint)(p))) }, nil
	case reflect.Uint8:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*uint8)(p))) }, nil
	case reflect.Uint16:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*uint16)(p))) }, nil
	case reflect.Uint32:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*uint32)(p))) }, nil
	case reflect.Uint64:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, *(*uint64)(p)) }, nil
	case reflect.Uintptr:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, uint64(*(*uintptr)(p))) }, nil
	case reflect.Float32:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, float32Bits(*(*float32)(p))) }, nil
	case reflect.Float64:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, float64Bits(*(*float64)(p))) }, nil
	case reflect.Complex64:
		return func(p unsafe.Pointer, h uint64) uint64 {
			c := *(*complex64)(p)
			return fold(fold(h, float32Bits(real(c))), float32Bits(imag(c)))
		}, nil
	case reflect.Complex128:
		return func(p unsafe.Pointer, h uint64) uint64 {
			c := *(*complex128)(p)
			return fold(fold(h, float64Bits(real(c))), float64Bits(imag(c)))
		}, nil
	case reflect.String:
		return func(p unsafe.Pointer, h uint64) uint64 { return fold(h, hashString(*(*string)(p))) }, nil
	case reflect.Array:
		elem, err := buildHash(root, t.Elem(), path+"[i]")
		if err != nil {
			return nil, err
		}
		n, size := t.Len(), t.Elem().Size()
		return func(p unsafe.Pointer, h uint64) uint64 {
			for i := range n {
				h = elem(unsafe.Add(p, uintptr(i)*size), h)
			}
			return h
		}, nil
	case reflect.Struct:
		type field struct {
			off  uintptr
			hash hashFn
		}
		var fields []field
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Name == "_" || f.Type.Size() == 0 {
				continue // == ignores blank fields; a zero-size one has one value
			}
			name := f.Name
			if path != "" {
				name = path + "." + f.Name
			}
			fn, err := buildHash(root, f.Type, name)
			if err != nil {
				return nil, err
			}
			fields = append(fields, field{f.Offset, fn})
		}
		return func(p unsafe.Pointer, h uint64) uint64 {
			for _, f := range fields {
				h = f.hash(unsafe.Add(p, f.off), h)
			}
			return h
		}, nil
	case reflect.Pointer:
		return nil, keyTypeError(root, path, "a pointer")
	case reflect.Chan:
		return nil, keyTypeError(root, path, "a channel")
	case reflect.UnsafePointer:
		return nil, keyTypeError(root, path, "an unsafe.Pointer")
	default: // maps, slices, funcs: reachable only through an interface
		return nil, keyTypeError(root, path, "a "+t.Kind().String()+", which is not comparable")
	}
}

// dynHashes caches the hashFn (or error) of every dynamic type found in an
// interface key: reflect.Type -> dynHash.
var dynHashes sync.Map

type dynHash struct {
	fn  hashFn
	err *KeyTypeError
}

// hashDynamic hashes x, the value of the interface at path in key type root,
// by its dynamic type, as HashFunc would hash a key of that type. When that
// type cannot be hashed it fails the running task with a *KeyTypeError.
func hashDynamic(root reflect.Type, path string, x any) uint64 {
	switch v := x.(type) { // the common types, without reflection
	case nil:
		return nilHash
	case string:
		return hashString(v)
	case int:
		return mix64(uint64(v))
	case int64:
		return mix64(uint64(v))
	case float64:
		return mix64(float64Bits(v))
	case Hasher:
		return v.Hash64()
	}
	v := reflect.ValueOf(x)
	switch v.Kind() { // other basic types, named or not
	case reflect.String:
		return hashString(v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return mix64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return mix64(v.Uint())
	case reflect.Float32:
		return mix64(float32Bits(float32(v.Float())))
	case reflect.Float64:
		return mix64(float64Bits(v.Float()))
	case reflect.Bool:
		if v.Bool() {
			return mix64(1)
		}
		return mix64(0)
	}
	d := v.Type()
	p := reflect.New(d) // an addressable copy, for Hash64 or the hashFn to read
	p.Elem().Set(v)
	if h, ok := p.Interface().(Hasher); ok { // a pointer receiver
		return h.Hash64()
	}
	if d.Size() == 0 {
		return 0
	}
	e, ok := dynHashes.Load(d)
	if !ok {
		fn, err := buildHash(d, d, "")
		e, _ = dynHashes.LoadOrStore(d, dynHash{fn, err})
	}
	dh := e.(dynHash)
	if dh.err != nil {
		panic(abort{heldError(root, path, d, dh.err)})
	}
	return dh.fn(p.UnsafePointer(), hashSeed)
}

// float64Bits is f's IEEE bits, with -0 as +0: they are equal keys.
func float64Bits(f float64) uint64 {
	if f == 0 {
		return 0
	}
	return math.Float64bits(f)
}

// float32Bits is f's IEEE bits, with -0 as +0: they are equal keys.
func float32Bits(f float32) uint64 {
	if f == 0 {
		return 0
	}
	return uint64(math.Float32bits(f))
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
