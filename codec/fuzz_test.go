package codec_test

import (
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/kv"
)

// fuzzTarget decodes arbitrary bytes as blocks of one type.
type fuzzTarget struct {
	prefix []byte // the header's magic, version and fingerprint
	seeds  [][]byte
	check  func(t *testing.T, data []byte)
}

func target[T any](seed uint64) fuzzTarget {
	c, err := codec.For[T]()
	if err != nil {
		panic(err)
	}
	empty, _ := c.Append(nil, nil)
	ft := fuzzTarget{prefix: empty[:10]}
	r := rand.New(rand.NewPCG(seed, 3))
	for _, n := range []int{0, 1, 3} {
		xs := make([]T, n)
		for i := range xs {
			xs[i] = gen[T](r)
		}
		b, err := c.Append(nil, xs)
		if err != nil {
			panic(err)
		}
		ft.seeds = append(ft.seeds, b)
	}
	ft.check = func(t *testing.T, data []byte) {
		xs, err := c.Decode(data)
		if err != nil {
			if xs != nil {
				t.Fatalf("%v: Decode returned %d records with error %v", reflect.TypeFor[T](), len(xs), err)
			}
			return
		}
		// Whatever decodes re-encodes, and decodes to the same records.
		b, err := c.Append(nil, xs)
		if err != nil {
			t.Fatalf("%v: re-encoding decoded records: %v", reflect.TypeFor[T](), err)
		}
		ys, err := c.Decode(b)
		if err != nil || !same(reflect.ValueOf(xs), reflect.ValueOf(ys)) {
			t.Fatalf("%v: re-decoding: %v", reflect.TypeFor[T](), err)
		}
	}
	return ft
}

var fuzzTargets = sync.OnceValue(func() []fuzzTarget {
	return []fuzzTarget{
		target[string](1),
		target[int64](2),
		target[int](3),
		target[kv.Pair[string, int64]](4),
		target[kv.Pair[string, int]](5),
		target[[]byte](6),
		target[float64](7),
		target[bool](8),
		target[struct{}](9),
		target[kv.Opt[[]int16]](10),
		target[map[string][]int8](11),
		target[[2]uint32](12),
		target[*kv.Pair[uint16, float32]](13),
		target[Event](14),
		target[Point](15),
		target[time.Time](16),
		target[[]struct{}](17),
	}
})

// FuzzDecode feeds arbitrary bytes to every target, as they are and with the
// target's own header spliced in so that the fuzzer reaches the records. A
// decode may fail but never panic, and what decodes must re-encode. In a
// normal `go test` it runs the seeds: valid blocks of every target.
func FuzzDecode(f *testing.F) {
	ts := fuzzTargets()
	for _, ft := range ts {
		for _, s := range ft.seeds {
			f.Add(s)
			if len(s) > 11 {
				f.Add(s[:len(s)-1])
				f.Add(s[:11+(len(s)-11)/2])
			}
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0xD5, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ft := range ts {
			ft.check(t, data)
			if len(data) >= 10 {
				ft.check(t, append(ft.prefix[:10:10], data[10:]...))
			}
		}
	})
}
