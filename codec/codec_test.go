package codec_test

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/kv"
)

// Point has unexported fields, so only its registered codec can encode it.
type Point struct{ x, y int32 }

type pointCodec struct{}

func (pointCodec) Append(dst []byte, xs []Point) ([]byte, error) {
	for _, p := range xs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(p.x))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(p.y))
	}
	return dst, nil
}

func (pointCodec) Decode(src []byte) ([]Point, error) {
	if len(src)%8 != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of points", len(src))
	}
	var xs []Point
	for ; len(src) > 0; src = src[8:] {
		xs = append(xs, Point{int32(binary.LittleEndian.Uint32(src)), int32(binary.LittleEndian.Uint32(src[4:]))})
	}
	return xs, nil
}

// Registration happens as the program builds its graph: here, at init.
func init() {
	if err := codec.Register[Point](pointCodec{}); err != nil {
		panic(err)
	}
}

// Event is a plain user struct: exported fields only, so the built-in
// structural codec takes it without registration.
type Event struct {
	Header
	At      time.Time
	User    string
	Tags    []string
	Attrs   map[string]float64
	Parent  *Header
	Loc     kv.Opt[Point]
	Counts  [3]uint16
	Addr    netip.Addr
	Big     *big.Int
	Payload []byte
	_       [0]func() // not comparable; blank fields are skipped
}

type Header struct {
	ID    uint64
	Flags int8
	Seq   int
}

// Word and WordCount are user types with the fast paths' layouts.
type Word string

type WordCount struct {
	Word Word
	N    int
}

type Celsius float64

// roundTrip encodes random blocks of T and checks that they decode to equal
// values, that every strict prefix and any trailing byte is an error
// wrapping ErrCorrupt, and that Append keeps what dst held.
func roundTrip[T any](t *testing.T, seed uint64) {
	t.Helper()
	name := reflect.TypeFor[T]().String()
	t.Run(name, func(t *testing.T) {
		c, err := codec.For[T]()
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(seed, 1))
		for iter := range 150 {
			n := r.IntN(12)
			if iter%50 == 0 {
				n = 300
			}
			xs := make([]T, n)
			for i := range xs {
				xs[i] = gen[T](r)
			}
			enc, err := c.Append([]byte("prefix"), xs)
			if err != nil {
				t.Fatal(err)
			}
			if string(enc[:6]) != "prefix" {
				t.Fatalf("Append changed dst's contents")
			}
			enc = enc[6:]
			got, err := c.Decode(enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n == 0 && got != nil {
				t.Fatalf("empty block decoded to %#v, want nil", got)
			}
			if len(got) != len(xs) {
				t.Fatalf("decoded %d records, want %d", len(got), len(xs))
			}
			for i := range xs {
				if !same(reflect.ValueOf(xs[i]), reflect.ValueOf(got[i])) {
					t.Fatalf("record %d: got %#v, want %#v", i, got[i], xs[i])
				}
			}
			if iter%10 == 0 {
				checkCorrupt(t, c, enc)
			}
		}
	})
}

func checkCorrupt[T any](t *testing.T, c codec.Codec[T], enc []byte) {
	t.Helper()
	step := max(1, len(enc)/500) // every prefix of small blocks, 500 of large ones
	for k := 0; k < len(enc); k += step {
		if xs, err := c.Decode(enc[:k]); !errors.Is(err, codec.ErrCorrupt) {
			t.Fatalf("Decode of %d of %d bytes: %d records, error %v, want ErrCorrupt", k, len(enc), len(xs), err)
		}
	}
	if _, err := c.Decode(append(enc[:len(enc):len(enc)], 0)); !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("Decode with a trailing byte: %v, want ErrCorrupt", err)
	}
}

func TestRoundTrip(t *testing.T) {
	roundTrip[string](t, 1)
	roundTrip[[]byte](t, 2)
	roundTrip[int](t, 3)
	roundTrip[int8](t, 4)
	roundTrip[int16](t, 5)
	roundTrip[int32](t, 6)
	roundTrip[int64](t, 7)
	roundTrip[uint](t, 8)
	roundTrip[uint8](t, 9)
	roundTrip[uint16](t, 10)
	roundTrip[uint32](t, 11)
	roundTrip[uint64](t, 12)
	roundTrip[uintptr](t, 13)
	roundTrip[float32](t, 14)
	roundTrip[float64](t, 15)
	roundTrip[complex64](t, 16)
	roundTrip[complex128](t, 17)
	roundTrip[bool](t, 18)
	roundTrip[struct{}](t, 19)
	roundTrip[kv.Pair[string, int64]](t, 20)
	roundTrip[kv.Pair[string, int]](t, 21)
	roundTrip[kv.Pair[int32, kv.Opt[[]byte]]](t, 22)
	roundTrip[kv.Opt[float64]](t, 23)
	roundTrip[kv.Opt[kv.Pair[string, []int64]]](t, 24)
	roundTrip[kv.Pair[struct{}, int64]](t, 25)
	roundTrip[kv.Pair[string, kv.Pair[float32, kv.Opt[string]]]](t, 26)
	roundTrip[[]string](t, 27)
	roundTrip[[][]int16](t, 28)
	roundTrip[[3]string](t, 29)
	roundTrip[[4]byte](t, 30)
	roundTrip[[]struct{}](t, 31)
	roundTrip[map[string]int32](t, 32)
	roundTrip[map[float64][]string](t, 33)
	roundTrip[*int64](t, 34)
	roundTrip[[]*string](t, 35)
	roundTrip[Word](t, 36)
	roundTrip[WordCount](t, 37)
	roundTrip[Celsius](t, 38)
	roundTrip[Event](t, 39)
	roundTrip[kv.Pair[string, Event]](t, 40)
	roundTrip[Point](t, 41)
	roundTrip[kv.Pair[string, Point]](t, 42)
	roundTrip[[]Point](t, 43)
	roundTrip[time.Time](t, 44)
	roundTrip[kv.Pair[string, *big.Int]](t, 45)
}

// TestEdges pins the values the random tests only probably hit.
func TestEdges(t *testing.T) {
	negZero := math.Copysign(0, -1)
	nan := math.Float64frombits(0x7ff4_0000_0000_0123) // a signalling NaN with a payload
	floats := []float64{negZero, nan, math.Inf(-1), math.SmallestNonzeroFloat64}
	got := decode(t, floats)
	for i := range floats {
		if math.Float64bits(got[i]) != math.Float64bits(floats[i]) {
			t.Errorf("float %d: bits %x, want %x", i, math.Float64bits(got[i]), math.Float64bits(floats[i]))
		}
	}
	ints := []int64{math.MinInt64, math.MaxInt64, 0, -1}
	if got := decode(t, ints); !reflect.DeepEqual(got, ints) {
		t.Errorf("int64s: %v", got)
	}
	if got := decode(t, []uint64{math.MaxUint64}); got[0] != math.MaxUint64 {
		t.Errorf("uint64: %v", got)
	}
	strs := []string{"", "\xff", "a\x00b", strings.Repeat("x", 1<<20)}
	if got := decode(t, strs); !reflect.DeepEqual(got, strs) {
		t.Errorf("strings differ")
	}
	// nil and empty stay apart inside records; a whole empty block is nil.
	type S struct {
		A []int
		B []byte
		M map[string]int
	}
	ss := []S{{}, {A: []int{}, B: []byte{}, M: map[string]int{}}}
	got2 := decode(t, ss)
	if got2[0].A != nil || got2[0].B != nil || got2[0].M != nil {
		t.Errorf("nil fields decoded non-nil: %#v", got2[0])
	}
	if got2[1].A == nil || got2[1].B == nil || got2[1].M == nil {
		t.Errorf("empty fields decoded nil: %#v", got2[1])
	}
	if got := decode(t, []string{}); got != nil {
		t.Errorf("empty block: %#v, want nil", got)
	}
}

func decode[T any](t *testing.T, xs []T) []T {
	t.Helper()
	c, err := codec.For[T]()
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Append(nil, xs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestNoAliasing checks that decoded records do not share the input's bytes.
func TestNoAliasing(t *testing.T) {
	c, _ := codec.For[kv.Pair[string, []byte]]()
	b, _ := c.Append(nil, []kv.Pair[string, []byte]{{Key: "key", Value: []byte("value")}})
	got, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	if got[0].Key != "key" || string(got[0].Value) != "value" {
		t.Errorf("decoded records changed with the input: %v", got[0])
	}
}

func TestMismatch(t *testing.T) {
	c64, _ := codec.For[kv.Pair[string, int64]]()
	cInt, _ := codec.For[kv.Pair[string, int]]()
	b, _ := c64.Append(nil, []kv.Pair[string, int64]{{Key: "a", Value: 1}})
	_, err := cInt.Decode(b)
	var me *codec.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a *MismatchError", err)
	}
	if want := "codec: block holds kv.Pair[string,int64], want kv.Pair[string,int]"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}

	// A fingerprint no codec in this process has.
	b[2] ^= 0xff
	if _, err := cInt.Decode(b); err == nil || !strings.Contains(err.Error(), "unknown type") || !strings.Contains(err.Error(), "want kv.Pair[string,int]") {
		t.Errorf("unknown fingerprint: %v", err)
	}
	b[2] ^= 0xff

	// Another format version.
	b[1] = 9
	if _, err := c64.Decode(b); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version 9: %v", err)
	}

	// Same name, other layout: two local types both called codec_test.X.
	ca, cb := layoutA(), layoutB()
	b, _ = ca(nil)
	if _, err := cb(b); err == nil || !strings.Contains(err.Error(), "codec_test.X with another layout") {
		t.Errorf("same name, other layout: %v", err)
	}

	// Not a block at all.
	if _, err := c64.Decode([]byte("hello, world")); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("garbage: %v", err)
	}
}

func layoutA() func([]byte) ([]byte, error) {
	type X struct{ A int }
	c, _ := codec.For[X]()
	return func(b []byte) ([]byte, error) { return c.Append(b, []X{{1}}) }
}

func layoutB() func([]byte) ([]byte, error) {
	type X struct{ B string }
	c, _ := codec.For[X]()
	return func(b []byte) ([]byte, error) { _, err := c.Decode(b); return nil, err }
}

// Types the codecs refuse.
type (
	List   struct{ Next *List }
	Secret struct {
		A int
		//lint:ignore U1000 the codecs must refuse an unexported field
		b int
	}
	Stamped struct {
		time.Time
		Name string
	}
	Stamp   struct{ time.Time } // the promoted method encodes all of it
	Padding struct{ _ [8]byte }
	Deep    struct {
		M map[string][]kv.Pair[string, Secret]
	}
	Callback struct{ F func() }
)

func TestRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{forErr[func()](), "codec: cannot encode func(): a func is code"},
		{forErr[chan int](), "a channel cannot cross processes"},
		{forErr[unsafe.Pointer](), "unsafe.Pointer is an address"},
		{forErr[any](), "interface's dynamic type is unknown"},
		{forErr[Secret](), "codec: cannot encode codec_test.Secret: .b (int): unexported field"},
		{forErr[List](), "codec: cannot encode codec_test.List: .Next* (codec_test.List): recursive type"},
		{forErr[kv.Pair[string, func()]](), "codec: cannot encode kv.Pair[string,func()]: .Value (func()): a func"},
		{forErr[Stamped](), "MarshalBinary is promoted from the embedded field Time"},
		{forErr[Padding](), "only in blank fields"},
		{forErr[Deep](), "codec_test.Deep: .M[k][i].Value.b (int): unexported field"},
		{forErr[[]Callback](), "[i].F (func()): a func"},
		{forErr[map[string]any](), "[k] (interface {}): an interface"},
	} {
		var ue *codec.UnsupportedTypeError
		if !errors.As(c.err, &ue) {
			t.Errorf("got %v, want an *UnsupportedTypeError", c.err)
			continue
		}
		if !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("got %q, want it to contain %q", c.err, c.want)
		}
	}
	if _, err := codec.For[Stamp](); err != nil {
		t.Errorf("a struct of just an embedded time.Time: %v", err)
	}
}

func forErr[T any]() error {
	_, err := codec.For[T]()
	return err
}

type Late struct{ A int }

type Unused struct{ a int }

type unusedCodec struct{}

func (unusedCodec) Append(dst []byte, xs []Unused) ([]byte, error) {
	for _, x := range xs {
		dst = binary.AppendVarint(dst, int64(x.a))
	}
	return dst, nil
}

func (unusedCodec) Decode(src []byte) ([]Unused, error) {
	var xs []Unused
	for len(src) > 0 {
		v, n := binary.Varint(src)
		if n <= 0 {
			return nil, errors.New("bad varint")
		}
		xs = append(xs, Unused{int(v)})
		src = src[n:]
	}
	return xs, nil
}

func TestRegister(t *testing.T) {
	if err := codec.Register[Point](pointCodec{}); err == nil || !strings.Contains(err.Error(), "already has a registered codec") {
		t.Errorf("second Register: %v", err)
	}
	if _, err := codec.For[[]Late](); err != nil {
		t.Fatal(err)
	}
	if err := codec.Register[Late](nil); err == nil {
		t.Errorf("Register of a nil codec succeeded")
	}
	type lateCodec struct{ codec.Codec[Late] }
	if err := codec.Register[Late](lateCodec{}); err == nil || !strings.Contains(err.Error(), "after For built a codec") {
		t.Errorf("Register after use: %v", err)
	}
	// A failed For commits nothing: the type can still be registered.
	if err := forErr[kv.Pair[string, Unused]](); err == nil {
		t.Fatal("Unused encodable before registration")
	}
	if err := codec.Register[Unused](unusedCodec{}); err != nil {
		t.Fatal(err)
	}
	xs := []kv.Pair[string, Unused]{{Key: "a", Value: Unused{-5}}, {Key: "b", Value: Unused{1 << 40}}}
	if got := decode(t, xs); !reflect.DeepEqual(got, xs) {
		t.Errorf("got %v, want %v", got, xs)
	}
	// A registered codec's bad output is an error, not a panic.
	c, _ := codec.For[Point]()
	b, _ := c.Append(nil, []Point{{1, 2}})
	// One byte short: the header passes, the registered codec refuses.
	if _, err := c.Decode(b[:len(b)-1]); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("bad registered block: %v", err)
	}
}

// Fussy fails to marshal negative values.
type Fussy int

func (f Fussy) MarshalBinary() ([]byte, error) {
	if f < 0 {
		return nil, errors.New("negative")
	}
	return binary.AppendUvarint(nil, uint64(f)), nil
}

func (f *Fussy) UnmarshalBinary(b []byte) error {
	v, n := binary.Uvarint(b)
	if n != len(b) {
		return errors.New("bad Fussy")
	}
	*f = Fussy(v)
	return nil
}

func TestEncodeError(t *testing.T) {
	c, err := codec.For[kv.Pair[string, Fussy]]()
	if err != nil {
		t.Fatal(err)
	}
	dst := []byte("keep")
	out, err := c.Append(dst, []kv.Pair[string, Fussy]{{Key: "a", Value: 1}, {Key: "b", Value: -1}})
	if err == nil || !strings.Contains(err.Error(), "record 1") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("got %v, want an error naming record 1", err)
	}
	if string(out) != "keep" {
		t.Errorf("Append returned %q after an error, want dst", out)
	}
}

// TestGob checks the Gob codec, which can carry interfaces once registered.
type Shape interface{ Area() float64 }

type Square struct{ Side float64 }

func (s Square) Area() float64 { return s.Side * s.Side }

type Drawing struct {
	Name   string
	Shapes []Shape
}

var gobOnce sync.Once

func gobRegister() { gobOnce.Do(func() { gob.Register(Square{}) }) }

func TestGob(t *testing.T) {
	if err := forErr[Drawing](); err == nil {
		t.Fatal("Drawing encodable without registration")
	}
	gobRegister()
	if err := codec.Register(codec.Gob[Drawing]()); err != nil {
		t.Fatal(err)
	}
	xs := []Drawing{{Name: "a", Shapes: []Shape{Square{2}}}, {Name: "b"}}
	got := decode(t, xs)
	if len(got) != 2 || got[0].Name != "a" || got[0].Shapes[0].Area() != 4 || got[1].Name != "b" {
		t.Errorf("got %#v", got)
	}
	if got := decode(t, []kv.Pair[int, Drawing]{{Key: 7, Value: xs[0]}}); got[0].Key != 7 || got[0].Value.Shapes[0].Area() != 4 {
		t.Errorf("nested: %#v", got)
	}
	if _, err := codec.Gob[int]().Decode([]byte{1, 2, 3}); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("gob garbage: %v", err)
	}
}

// TestConcurrent builds and uses codecs from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	type C1 struct{ A, B string }
	type C2 struct{ X []C1 }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for range 50 {
				c, err := codec.For[kv.Pair[string, C2]]()
				if err != nil {
					t.Error(err)
					return
				}
				xs := []kv.Pair[string, C2]{gen[kv.Pair[string, C2]](r)}
				b, _ := c.Append(nil, xs)
				got, err := c.Decode(b)
				if err != nil || !same(reflect.ValueOf(got), reflect.ValueOf(xs)) {
					t.Errorf("got %v, %v", got, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestFormat pins the wire format of a small block: a change here is a
// format change (bump the version).
func TestFormat(t *testing.T) {
	c, _ := codec.For[kv.Pair[string, int64]]()
	b, _ := c.Append(nil, []kv.Pair[string, int64]{{Key: "ab", Value: -2}, {Key: "", Value: 300}})
	if b[0] != 0xD5 || b[1] != 1 {
		t.Errorf("magic and version: % x", b[:2])
	}
	want := []byte{2, 2, 'a', 'b', 3, 0, 0xd8, 0x04}
	if !bytes.Equal(b[10:], want) {
		t.Errorf("body % x, want % x", b[10:], want)
	}
}

// Token encodes to no bytes at all under its registered codec.
type Token struct{ _ int }

type tokenCodec struct{}

func (tokenCodec) Append(dst []byte, xs []Token) ([]byte, error) { return dst, nil }

func (tokenCodec) Decode(src []byte) ([]Token, error) {
	if len(src) != 0 {
		return nil, errors.New("tokens have no bytes")
	}
	return make([]Token, 0), nil
}

func TestRegisteredNoBytes(t *testing.T) {
	if err := codec.Register[Token](tokenCodec{}); err != nil {
		t.Fatal(err)
	}
	c, _ := codec.For[Token]()
	b, _ := c.Append(nil, []Token{{}, {}})
	// The header says 2 records, the registered codec decodes 0: an error,
	// not a short slice.
	if xs, err := c.Decode(b); !errors.Is(err, codec.ErrCorrupt) || !strings.Contains(err.Error(), "decoded 0 records, the header says 2") {
		t.Errorf("got %d records, %v", len(xs), err)
	}
}
