package rdd_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/dstream/dstream/rdd"
)

// hashed is a key type that hashes itself (value receiver).
type hashed struct{ ID uint32 }

func (k hashed) Hash64() uint64 { return uint64(k.ID)*0x9e3779b97f4a7c15 + 7 }

// hashedPtr hashes itself with a pointer receiver, and holds a pointer: the
// Hasher makes it partitionable.
type hashedPtr struct {
	Name string
	Ref  *int
}

func (k *hashedPtr) Hash64() uint64 { return uint64(len(k.Name)) + 1000 }

// word is a named string type: it hashes as a string.
type word string

type point struct {
	X, Y float64
	Tag  string
	On   bool
}

// pinnedHash is one value of the cross-process hash contract.
type pinnedHash struct {
	kind string // which kind of key it pins (see TestHashPartitionerIsStable)
	key  string // how the key reads
	hash func() (uint64, error)
	want uint64
}

func hashOf[K comparable](k K) func() (uint64, error) {
	return func() (uint64, error) {
		h, err := rdd.HashFunc[K]()
		if err != nil {
			return 0, err
		}
		return h(k), nil
	}
}

var negZero = math.Copysign(0, -1)

// stableHashes pins HashFunc. These values are part of the cross-process
// contract: a change moves keys between partitions on workers running
// different builds.
var stableHashes = []pinnedHash{
	{"string", `"a"`, hashOf("a"), 0x02c0bdbf481420f8},
	{"string", `"hello"`, hashOf("hello"), 0x16fe05a1c75bcd0f},
	{"string", `"dstream"`, hashOf("dstream"), 0x73b6c64dcfaee5c4},
	{"string", `""`, hashOf(""), 0xf52a15e9a9b5e89b},
	{"string", `"a longer key, past eight bytes"`, hashOf("a longer key, past eight bytes"), 0x622f3e2d54e0ad70},
	{"string", `word("hello")`, hashOf(word("hello")), 0x16fe05a1c75bcd0f},
	{"int", `0`, hashOf(0), 0},
	{"int", `42`, hashOf(42), 0xa759ea27d4727622},
	{"int", `-1`, hashOf(-1), 0xb4d055fcf2cbbd7b},
	{"int", `int64(1<<40)`, hashOf(int64(1 << 40)), 0x00ab4daf7c2673f8},
	{"int", `int8(-1)`, hashOf(int8(-1)), 0xb4d055fcf2cbbd7b},
	{"int", `uint16(7)`, hashOf(uint16(7)), 0x12ae30237b17df14},
	{"int", `uint64(1<<63)`, hashOf(uint64(1 << 63)), 0x25c26ea579cea98a},
	{"float", `1.5`, hashOf(1.5), 0xe72b41d4576e3468},
	{"float", `0.0`, hashOf(0.0), 0},
	{"float", `-0.0`, hashOf(negZero), 0},
	{"float", `float32(1.5)`, hashOf(float32(1.5)), 0x95c1de1967f3f56e},
	{"float", `float32(-0.0)`, hashOf(float32(negZero)), 0},
	{"bool", `true`, hashOf(true), 0x5692161d100b05e5},
	{"bool", `false`, hashOf(false), 0},
	{"struct", `point{1, -0, "p", true}`, hashOf(point{1, negZero, "p", true}), 0x835e199dabc07300},
	{"struct", `Pair{"k", 3}`, hashOf(rdd.KV("k", 3)), 0xb821b11cc364aa56},
	{"struct", `[2]int{1, 2}`, hashOf([2]int{1, 2}), 0x64b174495128d35e},
	{"hasher", `hashed{5}`, hashOf(hashed{5}), 0x1715609f7c746c70},
	{"hasher", `hashedPtr{"abc", nil}`, hashOf(hashedPtr{Name: "abc"}), 1003},
	{"interface", `any("a")`, hashOf[any]("a"), 0x02c0bdbf481420f8},
	{"interface", `any(42)`, hashOf[any](42), 0xa759ea27d4727622},
	{"interface", `any(point{...})`, hashOf[any](point{1, negZero, "p", true}), 0x835e199dabc07300},
	{"interface", `any(nil)`, hashOf[any](nil), 0x6a09e667f3bcc908},
	{"interface", `any(word("hello"))`, hashOf[any](word("hello")), 0x16fe05a1c75bcd0f},
	{"interface", `any(int8(-1))`, hashOf[any](int8(-1)), 0xb4d055fcf2cbbd7b},
	{"interface", `any(float32(-0.0))`, hashOf[any](float32(negZero)), 0},
	{"interface", `any(hashed{5})`, hashOf[any](hashed{5}), 0x1715609f7c746c70},
	{"interface", `any(hashedPtr{"abc", nil})`, hashOf[any](hashedPtr{Name: "abc"}), 1003},
	{"interface", `any(struct{}{})`, hashOf[any](struct{}{}), 0},
}

func TestHashPartitionerIsStable(t *testing.T) {
	if len(stableHashes) == 0 {
		t.Fatal("no pinned hash values: the test would pass whatever the hash")
	}
	seen := map[string]bool{}
	for _, c := range stableHashes {
		seen[c.kind] = true
		got, err := c.hash()
		if err != nil {
			t.Errorf("hash of %s: %v", c.key, err)
			continue
		}
		if got != c.want {
			t.Errorf("hash of %s = %#x, want %#x", c.key, got, c.want)
		}
	}
	for _, kind := range []string{"string", "int", "float", "bool", "struct", "hasher", "interface"} {
		if !seen[kind] {
			t.Errorf("no pinned hash for %s keys", kind)
		}
	}
	// The partitions these strings and ints go to were pinned before the
	// hash covered other types: they must not move.
	h := rdd.NewHashPartitioner[string](16)
	got := []int{h.Partition("a"), h.Partition("hello"), h.Partition("dstream"), h.Partition("")}
	hi := rdd.NewHashPartitioner[int](16)
	got = append(got, hi.Partition(0), hi.Partition(42))
	if want := []int{8, 15, 4, 11, 0, 2}; !slices.Equal(got, want) {
		t.Errorf("partitions = %v, want %v", got, want)
	}
}

// samePartition reports whether a and b land in the same partition of
// partitioners over 2 to 64 partitions.
func samePartition[K comparable](a, b K) bool {
	for n := 2; n <= 64; n++ {
		h := rdd.NewHashPartitioner[K](n)
		if h.Partition(a) != h.Partition(b) {
			return false
		}
	}
	return true
}

// -0 and +0 are equal keys, so they must land in the same partition, at the
// top level and inside composite keys; so must structs differing only in a
// blank field. A Hasher field is hashed by Hash64 (here, equal for both).
func TestEqualKeysLandInTheSamePartition(t *testing.T) {
	type withBlank struct {
		A string
		_ int
		B int
	}
	type withIface struct {
		Name string
		V    any
	}
	type private struct {
		name string
		v    any
	}
	type holder struct{ H *hashedPtr } // hashed by Hash64, not by address
	var b1, b2 withBlank
	b1.A, b1.B = "x", 1
	b2.A, b2.B = "x", 1
	*(*int)(unsafe.Add(unsafe.Pointer(&b2), unsafe.Offsetof(b2.B)-unsafe.Sizeof(0))) = 99 // the blank field
	cases := []struct {
		name string
		same bool
	}{
		{"float64", samePartition(0.0, negZero)},
		{"float32", samePartition(float32(0), float32(negZero))},
		{"complex128", samePartition(complex(0, 0), complex(negZero, negZero))},
		{"complex64", samePartition(complex64(complex(0, 1)), complex64(complex(negZero, 1)))},
		{"struct", samePartition(point{X: 0, Y: 1}, point{X: negZero, Y: 1})},
		{"array", samePartition([2]float32{0, 1}, [2]float32{float32(negZero), 1})},
		{"any", samePartition[any](0.0, negZero)},
		{"any float32", samePartition[any](float32(0), float32(negZero))},
		{"struct in any", samePartition[any](point{}, point{X: negZero})},
		{"any in struct", samePartition(withIface{"a", 0.0}, withIface{"a", negZero})},
		{"unexported fields", samePartition(private{"a", 0.0}, private{"a", negZero})},
		{"Hasher field", samePartition(holder{&hashedPtr{Name: "x"}}, holder{&hashedPtr{Name: "y"}})},
		{"blank field", b1 == b2 && samePartition(b1, b2)},
		{"equal structs", samePartition(point{1, 2, "p", true}, point{1, 2, "p", true})},
	}
	for _, c := range cases {
		if !c.same {
			t.Errorf("%s: equal keys land in different partitions", c.name)
		}
	}
	if samePartition([2]string{"a", "b"}, [2]string{"b", "a"}) {
		t.Error("arrays in different orders land in the same partitions: the fold ignores order")
	}
}

// A NaN is a key of its own (NaN != NaN, as in a Go map): hashing it does
// not panic and each NaN record stays a record.
func TestNaNKeys(t *testing.T) {
	h, err := rdd.HashFunc[float64]()
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	if a, b := h(nan), h(nan); a != b {
		t.Error("NaN hashes differently from one call to the next")
	}
	c, _ := newCtx(t, 2, 0)
	in := rdd.FromPartitions(c, "in", [][]rdd.Pair[float64, int]{{{Key: nan, Value: 1}, {Key: 1, Value: 1}}, {{Key: nan, Value: 1}, {Key: 1, Value: 1}}})
	got, err := rdd.ReduceByKey(in, func(a, b int) int { return a + b }, 3).Collect(bg)
	if err != nil {
		t.Fatal(err)
	}
	nans, ones := 0, 0
	for _, kv := range got {
		switch {
		case math.IsNaN(kv.Key):
			nans++
		case kv.Key == 1 && kv.Value == 2:
			ones++
		}
	}
	if nans != 2 || ones != 1 || len(got) != 3 {
		t.Errorf("reduceByKey with NaN keys = %v, want one record per NaN and (1,2)", got)
	}
}

// reduceZeroKeys reduces one +0 and one -0 record, in different map
// partitions, over n reduce partitions.
func reduceZeroKeys[K interface{ ~float32 | ~float64 }](t *testing.T, n int) []rdd.Pair[K, int] {
	t.Helper()
	c, _ := newCtx(t, 2, 0)
	in := rdd.FromPartitions(c, "in", [][]rdd.Pair[K, int]{{{Key: 0, Value: 1}}, {{Key: K(negZero), Value: 1}}})
	got, err := rdd.ReduceByKey(in, func(a, b int) int { return a + b }, n).Collect(bg)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A reduceByKey over float keys yields one record for 0 and -0.
func TestReduceByKeyMergesZeroAndNegativeZero(t *testing.T) {
	for n := 2; n <= 8; n++ {
		if got := reduceZeroKeys[float64](t, n); len(got) != 1 || got[0].Value != 2 {
			t.Errorf("float64 over %d partitions: %v, want one record (0,2)", n, got)
		}
		if got := reduceZeroKeys[float32](t, n); len(got) != 1 || got[0].Value != 2 {
			t.Errorf("float32 over %d partitions: %v, want one record (0,2)", n, got)
		}
	}
}

// Key types whose only rendering is an address are refused, naming the part
// that is at fault.
func TestHashFuncRefusesAddresses(t *testing.T) {
	type withPtr struct {
		Name string
		P    *int
	}
	type nested struct {
		In struct{ C chan int }
	}
	type inArray struct {
		Arr [3]struct{ U unsafe.Pointer }
	}
	cases := []struct {
		err    func() error
		typ    reflect.Type
		field  string
		reason string
	}{
		{hashErr[*int], reflect.TypeFor[*int](), "", "it is a pointer"},
		{hashErr[chan int], reflect.TypeFor[chan int](), "", "it is a channel"},
		{hashErr[unsafe.Pointer], reflect.TypeFor[unsafe.Pointer](), "", "it is an unsafe.Pointer"},
		{hashErr[withPtr], reflect.TypeFor[withPtr](), "P", "it contains a pointer (field P)"},
		{hashErr[nested], reflect.TypeFor[nested](), "In.C", "it contains a channel (field In.C)"},
		{hashErr[[2]*int], reflect.TypeFor[[2]*int](), "[i]", "it contains a pointer (element [i])"},
		{hashErr[inArray], reflect.TypeFor[inArray](), "Arr[i].U", "it contains an unsafe.Pointer (field Arr[i].U)"},
	}
	for _, c := range cases {
		err := c.err()
		var kte *rdd.KeyTypeError
		if !errors.As(err, &kte) {
			t.Errorf("%v: HashFunc error = %v, want a *KeyTypeError", c.typ, err)
			continue
		}
		want := fmt.Sprintf("key type %v cannot be hashed the same way in every process: %s; implement rdd.Hasher", c.typ, c.reason)
		if kte.Type != c.typ || kte.Field != c.field || err.Error() != want {
			t.Errorf("%v: error {%v %q} %q\nwant {%v %q} %q", c.typ, kte.Type, kte.Field, err, c.typ, c.field, want)
		}
	}
	// A Hasher may hold pointers; so may a blank or zero-size field.
	type fine struct {
		H  *hashedPtr
		_  *int
		Z  [0]*int
		OK string
	}
	for _, err := range []error{hashErr[hashedPtr](), hashErr[*hashedPtr](), hashErr[fine](), hashErr[struct{}]()} {
		if err != nil {
			t.Errorf("a hashable key type is refused: %v", err)
		}
	}
	if rdd.NewHashPartitioner[*int](4).Err() == nil {
		t.Error("a partitioner of pointer keys has no Err")
	}
	if p := rdd.NewHashPartitioner[*int](1); p.Partition(new(int)) != 0 {
		t.Error("a single partition hashes its keys")
	}
}

func hashErr[K comparable]() error {
	_, err := rdd.HashFunc[K]()
	return err
}

// keyJobErrors runs a reduceByKey and a groupByKey of keys over 2 partitions
// and returns their errors.
func keyJobErrors[K comparable](t *testing.T, keys ...K) (reduce, group error) {
	t.Helper()
	c, _ := newCtx(t, 2, 0)
	var pairs []rdd.Pair[K, int]
	for _, k := range keys {
		pairs = append(pairs, rdd.KV(k, 1))
	}
	in := rdd.Parallelize(c, pairs, 2)
	_, reduce = rdd.ReduceByKey(in, func(a, b int) int { return a + b }, 2).Collect(bg)
	_, group = rdd.GroupByKey(in, 2).Collect(bg)
	return reduce, group
}

// A job over keys that cannot be hashed the same way in every process fails
// with a task error saying so, and no panic escapes; an interface key is
// checked by its dynamic value.
func TestUnhashableKeysFailTheJob(t *testing.T) {
	type meta struct {
		Name string
		M    any
	}
	x, y := 1, 2
	cases := []struct {
		name  string
		field string // the *KeyTypeError's Field
		msg   string // in the error
		run   func() (reduce, group error)
	}{
		{"*int", "", "key type *int cannot be hashed the same way in every process: it is a pointer; implement rdd.Hasher",
			func() (error, error) { return keyJobErrors(t, &x, &y, &x) }},
		{"any holding *int", "(*int)", "key type interface {} cannot be hashed the same way in every process: it holds a *int, which is a pointer; implement rdd.Hasher",
			func() (error, error) { return keyJobErrors[any](t, "a", &x, 3) }},
		{"struct field holding *int", "M.(*int)", "key type rdd_test.meta cannot be hashed the same way in every process: its field M holds a *int, which is a pointer; implement rdd.Hasher",
			func() (error, error) { return keyJobErrors(t, meta{"a", 1}, meta{"b", &y}) }},
		{"any holding a struct holding a chan", "M.(chan int)", "its field M holds a chan int, which is a channel",
			func() (error, error) { return keyJobErrors[any](t, meta{"b", make(chan int)}) }},
	}
	for _, c := range cases {
		reduce, group := c.run()
		for _, e := range []struct {
			op  string
			err error
		}{{"reduceByKey", reduce}, {"groupByKey", group}} {
			var te *rdd.TaskError
			if !errors.As(e.err, &te) || !strings.Contains(e.err.Error(), c.msg) {
				t.Errorf("%s over %s: error %v, want a TaskError saying %q", e.op, c.name, e.err, c.msg)
				continue
			}
			if e.op == "reduceByKey" && te.Op != "reduceByKey" {
				t.Errorf("%s over %s: failed in operator %q", e.op, c.name, te.Op)
			}
			var kte *rdd.KeyTypeError
			if !errors.As(e.err, &kte) || kte.Field != c.field {
				t.Errorf("%s over %s: %v does not wrap a *KeyTypeError at %q", e.op, c.name, e.err, c.field)
			}
		}
	}
}

// Interface keys holding strings and numbers partition like any others.
func TestInterfaceKeys(t *testing.T) {
	c, _ := newCtx(t, 2, 0)
	keys := []any{"a", 1, "a", 1.5, word("w"), point{X: 1}, 1, hashed{3}, nil, nil, point{X: 1}, word("w")}
	var pairs []rdd.Pair[any, int]
	for _, k := range keys {
		pairs = append(pairs, rdd.KV(k, 1))
	}
	got := collectSorted(t, rdd.ReduceByKey(rdd.Parallelize(c, pairs, 3), func(a, b int) int { return a + b }, 4))
	if want := "(1,2) (1.5,1) (<nil>,2) (a,2) (w,2) ({1 0  false},2) ({3},1)"; got != want {
		t.Errorf("reduceByKey over interface keys = %s, want %s", got, want)
	}
}

var sink uint64

// BenchmarkHashPartitioner is the per-key cost of Partition by key type.
func BenchmarkHashPartitioner(b *testing.B) {
	b.Run("string", benchPartition([]string{"alpha", "a somewhat longer key", "x"}))
	b.Run("int", benchPartition([]int{1, 42, -7}))
	b.Run("float64", benchPartition([]float64{1.5, 0, -2}))
	b.Run("word", benchPartition([]word{"alpha", "a somewhat longer key", "x"}))
	b.Run("struct", benchPartition([]point{{1, 2, "p", true}, {3, 4, "q", false}}))
	b.Run("pair", benchPartition([]rdd.Pair[string, int]{{Key: "alpha", Value: 1}, {Key: "beta", Value: 2}}))
	b.Run("any-string", benchPartition([]any{"alpha", "a somewhat longer key", "x"}))
}

func benchPartition[K comparable](keys []K) func(*testing.B) {
	return func(b *testing.B) {
		h := rdd.NewHashPartitioner[K](16)
		i := 0
		for b.Loop() {
			sink += uint64(h.Partition(keys[i]))
			if i++; i == len(keys) {
				i = 0
			}
		}
	}
}

// time.Time holds a location pointer, but equal times are the same instant:
// it is hashed by its instant, alone or inside a struct, the same in every
// process.
func TestTimeKeys(t *testing.T) {
	type event struct {
		At   time.Time
		Name string
	}
	if _, err := rdd.HashFunc[time.Time](); err != nil {
		t.Fatal(err)
	}
	if _, err := rdd.HashFunc[event](); err != nil {
		t.Fatal(err)
	}
	a, b := time.Unix(1_700_000_000, 5).UTC(), time.Unix(1_700_000_000, 5).UTC()
	if !samePartition(a, b) || !samePartition(event{a, "x"}, event{b, "x"}) {
		t.Error("equal times land in different partitions")
	}
	h, _ := rdd.HashFunc[time.Time]()
	if h(a) == h(a.Add(time.Nanosecond)) {
		t.Error("times a nanosecond apart hash alike")
	}
}
