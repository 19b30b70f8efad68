package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/dstream/dstream/kv"
)

// tree returns the general tree codec for T, bypassing any fast path.
func tree[T any](t testing.TB) *treeCodec[T] {
	t.Helper()
	if _, err := For[T](); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	n := nodes[reflect.TypeFor[T]()]
	return &treeCodec[T]{h: newHeader(reflect.TypeFor[T](), n), n: n, zero: n.min == 0}
}

type word string

type wordCount struct {
	W word
	N int
}

// TestFastMatchesTree holds the hand-written codecs to the tree's format:
// the same bytes out, each decoding the other's blocks.
func TestFastMatchesTree(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	strs := []string{"", "a", "\xff\xfe", strings.Repeat("y", 200), strings.Repeat("z", 70000)}
	for range 100 {
		b := make([]byte, r.IntN(150))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		strs = append(strs, string(b))
	}
	ints := []int64{0, 1, -1, 63, -64, 64, math.MaxInt64, math.MinInt64}
	for range 100 {
		ints = append(ints, r.Int64()>>r.IntN(64))
	}
	var pairs []kv.Pair[string, int64]
	var pairsInt []kv.Pair[string, int]
	var wcs []wordCount
	var words []word
	for i, s := range strs {
		v := ints[i%len(ints)]
		pairs = append(pairs, kv.KV(s, v))
		pairsInt = append(pairsInt, kv.KV(s, int(v)))
		wcs = append(wcs, wordCount{word(s), int(v)})
		words = append(words, word(s))
	}
	fastMatchesTree(t, strs)
	fastMatchesTree(t, words)
	fastMatchesTree(t, ints)
	fastMatchesTree(t, pairs)
	fastMatchesTree(t, pairsInt)
	fastMatchesTree(t, wcs)
	fastMatchesTree[int64](t, nil)
}

func fastMatchesTree[T any](t *testing.T, xs []T) {
	t.Helper()
	fast, _ := For[T]()
	if _, ok := fast.(*treeCodec[T]); ok {
		t.Fatalf("%v: no fast path", reflect.TypeFor[T]())
	}
	tc := tree[T](t)
	a, _ := fast.Append(nil, xs)
	b, _ := tc.Append(nil, xs)
	if !bytes.Equal(a, b) {
		t.Fatalf("%v: the fast path writes other bytes than the tree", reflect.TypeFor[T]())
	}
	for _, c := range []Codec[T]{fast, tc} {
		got, err := c.Decode(a)
		if err != nil || !reflect.DeepEqual(got, xs) {
			t.Fatalf("%v: %T decoded %v, %v", reflect.TypeFor[T](), c, len(got), err)
		}
	}
}

// TestNoFastPath: layouts that look close but differ take the tree.
func TestNoFastPath(t *testing.T) {
	type swapped struct {
		N int64
		S string
	}
	type narrow struct {
		S string
		N int32
	}
	noFast[swapped](t)
	noFast[narrow](t)
	noFast[kv.Pair[string, uint64]](t)
	noFast[int32](t)
}

func noFast[T any](t *testing.T) {
	t.Helper()
	c, err := For[T]()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*treeCodec[T]); !ok {
		t.Errorf("%v: got %T, want the tree codec", reflect.TypeFor[T](), c)
	}
}

func TestFrame(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 20000, 3 << 20} {
		dst := append([]byte("ab"), 0)
		start := len(dst)
		dst = append(dst, bytes.Repeat([]byte{7}, n)...)
		dst = frame(dst, start)
		d := decoder{b: dst[2:]}
		b, err := d.bytes()
		if err != nil || len(b) != n || len(d.b) != 0 || string(dst[:2]) != "ab" {
			t.Fatalf("frame(%d): %d bytes, %v, %d left", n, len(b), err, len(d.b))
		}
		for _, c := range b {
			if c != 7 {
				t.Fatalf("frame(%d) moved the bytes wrong", n)
			}
		}
	}
}

func TestUvarintLen(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, math.MaxUint32, math.MaxUint64} {
		if got, want := uvarintLen(v), len(appendUvarint(nil, v)); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
}

func TestZeroSizeBound(t *testing.T) {
	c, _ := For[struct{}]()
	if _, err := c.Append(nil, make([]struct{}, maxZeroSize+1)); err == nil {
		t.Error("Append of 2^24+1 struct{} succeeded")
	}
	b, err := c.Append(nil, make([]struct{}, maxZeroSize))
	if err != nil {
		t.Fatal(err)
	}
	if xs, err := c.Decode(b); err != nil || len(xs) != maxZeroSize {
		t.Fatalf("%d records, %v", len(xs), err)
	}
	b = append(b[:headerSize], appendUvarint(nil, maxZeroSize+1)...)
	if _, err := c.Decode(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a block of 2^24+1 struct{}: %v", err)
	}
	cs, _ := For[[]struct{}]()
	if _, err := cs.Append(nil, [][]struct{}{make([]struct{}, maxZeroSize+1)}); err == nil {
		t.Error("Append of a record of 2^24+1 struct{} succeeded")
	}
	b, _ = cs.Append(nil, [][]struct{}{nil})
	b = append(b[:len(b)-1], appendUvarint(nil, maxZeroSize+2)...)
	if _, err := cs.Decode(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a record of 2^24+1 struct{}: %v", err)
	}
}
