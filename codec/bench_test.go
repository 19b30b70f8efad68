package codec

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/kv"
)

// Benchmarks: go test -run XXX -bench . ./codec/
//
// Each block is encoded and decoded by the codec For picks, by the general
// tree (the fast path switched off), and by encoding/gob as a baseline.
// MB/s counts the records' payload (string bytes plus 8 per int64), the same
// for all three; ns/record and B/record (encoded size) are per record, and
// x-gob is how many times faster than gob the codec ran in the same
// process (reported when the gob sub-benchmark ran first, as it does).

// lines100 is 1M records of 100 bytes, as the paper's benchmarks use.
var lines100 = sync.OnceValue(func() []string {
	g, err := generate.New("records100", 1)
	if err != nil {
		panic(err)
	}
	xs := make([]string, 1_000_000)
	var buf []byte
	for i := range xs {
		buf = g.Next(buf[:0])
		xs[i] = string(buf)
	}
	return xs
})

// wordCounts is 100K word-count pairs: words from the Zipf vocabulary, counts
// mostly small.
var wordCounts = sync.OnceValue(func() []kv.Pair[string, int64] {
	g, err := generate.New("words", 2)
	if err != nil {
		panic(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	xs := make([]kv.Pair[string, int64], 0, 100_000)
	var buf []byte
	for len(xs) < cap(xs) {
		buf = g.Next(buf[:0])
		for w := range strings.FieldsSeq(string(buf)) {
			if len(xs) < cap(xs) {
				xs = append(xs, kv.KV(w, 1+int64(r.ExpFloat64()*200)))
			}
		}
	}
	return xs
})

func BenchmarkStrings1M(b *testing.B) {
	xs := lines100()
	raw := 0
	for _, s := range xs {
		raw += len(s)
	}
	benchCodecs(b, xs, raw)
}

func BenchmarkPairs100K(b *testing.B) {
	xs := wordCounts()
	raw := 0
	for _, p := range xs {
		raw += len(p.Key) + 8
	}
	benchCodecs(b, xs, raw)
}

// BenchmarkEvents100K is the general path on a user struct of mixed fields.
func BenchmarkEvents100K(b *testing.B) {
	type event struct {
		User    string
		Status  int16
		Latency float64
		Tags    []string
		OK      bool
	}
	r := rand.New(rand.NewPCG(4, 4))
	xs := make([]event, 100_000)
	raw := 0
	for i := range xs {
		xs[i] = event{User: "user" + strings.Repeat("x", r.IntN(12)), Status: int16(200 + r.IntN(300)), Latency: r.Float64() * 100, Tags: []string{"web", "eu"}[:r.IntN(3)], OK: r.IntN(2) == 0}
		raw += len(xs[i].User) + 2 + 8 + 1
		for _, t := range xs[i].Tags {
			raw += len(t)
		}
	}
	benchCodecs(b, xs, raw)
}

func benchCodecs[T any](b *testing.B, xs []T, raw int) {
	fast, err := For[T]()
	if err != nil {
		b.Fatal(err)
	}
	var gobNs [2]float64 // encode, decode
	run := func(name string, c Codec[T]) {
		enc, err := c.Append(nil, xs)
		if err != nil {
			b.Fatal(err)
		}
		report := func(b *testing.B, op int) {
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/float64(len(xs)), "ns/record")
			b.ReportMetric(float64(len(enc))/float64(len(xs)), "B/record")
			if name == "gob" {
				gobNs[op] = ns
			} else if gobNs[op] > 0 {
				b.ReportMetric(gobNs[op]/ns, "x-gob")
			}
		}
		b.Run(name+"/encode", func(b *testing.B) {
			b.SetBytes(int64(raw))
			buf := make([]byte, 0, len(enc))
			for b.Loop() {
				if buf, err = c.Append(buf[:0], xs); err != nil {
					b.Fatal(err)
				}
			}
			report(b, 0)
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(raw))
			for b.Loop() {
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
			report(b, 1)
		})
	}
	run("gob", Gob[T]())
	if _, isTree := fast.(*treeCodec[T]); !isTree {
		run("tree", tree[T](b))
	}
	run("codec", fast)
}
