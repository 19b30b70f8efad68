// Package generate makes deterministic synthetic records: tweet-like lines
// with hashtags, plain word lines, log lines, and fixed 100-byte records for
// benchmarks. The same kind and seed always give the same sequence.
package generate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Generator appends one record (without a newline) to dst and returns it.
type Generator interface {
	Next(dst []byte) []byte
}

// Kinds lists the generator kinds New accepts.
func Kinds() []string { return []string{"tweets", "words", "logs", "records100"} }

// New returns a generator of kind, seeded with seed.
func New(kind string, seed int64) (Generator, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	switch kind {
	case "tweets":
		return &tweets{rng: rng, words: vocab.zipf(rng), tags: tagVocab.zipf(rng)}, nil
	case "words":
		return &words{rng: rng, words: vocab.zipf(rng)}, nil
	case "logs":
		return &logs{rng: rng}, nil
	case "records100":
		return &records100{rng: rng, words: vocab.zipf(rng)}, nil
	}
	return nil, fmt.Errorf("unknown generator kind %q (kinds: %s)", kind, strings.Join(Kinds(), ", "))
}

// vocabulary is a list of tokens drawn with a Zipf distribution, so a few
// are frequent and most are rare, as in real text.
type vocabulary []string

func (v vocabulary) zipf(rng *rand.Rand) func() string {
	z := rand.NewZipf(rng, 1.1, 4, uint64(len(v)-1))
	return func() string { return v[z.Uint64()] }
}

var syllables = []string{"ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "pe", "du", "ga", "zo", "fi", "be", "ho", "ja"}

// makeVocab builds n distinct pronounceable words, shortest first.
func makeVocab(n int) vocabulary {
	common := []string{"the", "of", "and", "to", "in", "is", "it", "you", "that", "was", "for", "on", "are", "with", "as", "go", "data", "stream"}
	v := slices.Clone(common)
	for i := 0; len(v) < n; i++ {
		var b strings.Builder
		x := i
		for {
			b.WriteString(syllables[x%len(syllables)])
			x /= len(syllables)
			if x == 0 {
				break
			}
		}
		v = append(v, b.String())
	}
	return v
}

var (
	vocab    = makeVocab(10000)
	tagVocab = func() vocabulary {
		named := []string{"#golang", "#streaming", "#spark", "#dstream", "#kafka", "#flink", "#rust", "#devops", "#ai", "#cloud",
			"#kubernetes", "#opensource", "#bigdata", "#linux", "#python", "#database", "#latency", "#throughput", "#sre", "#observability"}
		v := slices.Clone(named)
		for _, w := range makeVocab(1000)[18:] {
			if len(v) == 1000 {
				break
			}
			v = append(v, "#"+w)
		}
		return vocabulary(v)
	}()
)

type tweets struct {
	rng         *rand.Rand
	words, tags func() string
}

func (g *tweets) Next(dst []byte) []byte {
	n := 4 + g.rng.IntN(12)
	tags := g.rng.IntN(4)
	for i := range n {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, g.words()...)
	}
	for range tags {
		dst = append(dst, ' ')
		dst = append(dst, g.tags()...)
	}
	return dst
}

type words struct {
	rng   *rand.Rand
	words func() string
}

func (g *words) Next(dst []byte) []byte {
	n := 5 + g.rng.IntN(11)
	for i := range n {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, g.words()...)
	}
	return dst
}

type logs struct {
	rng *rand.Rand
	n   int64
}

var (
	levels   = []string{"INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "WARN", "WARN", "ERROR", "DEBUG"}
	services = []string{"api", "auth", "billing", "search", "cart", "gateway", "worker", "db-proxy"}
	paths    = []string{"/v1/items", "/v1/users/me", "/login", "/cart/add", "/search?q=go", "/health", "/v2/orders"}
)

func (g *logs) Next(dst []byte) []byte {
	g.n++
	ts := 1_700_000_000_000 + g.n*7
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, ' ')
	dst = append(dst, levels[g.rng.IntN(len(levels))]...)
	dst = append(dst, " service="...)
	dst = append(dst, services[g.rng.IntN(len(services))]...)
	dst = append(dst, " path="...)
	dst = append(dst, paths[g.rng.IntN(len(paths))]...)
	dst = append(dst, " status="...)
	status := 200
	switch r := g.rng.IntN(100); {
	case r > 97:
		status = 500
	case r > 90:
		status = 404
	}
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, " latency_ms="...)
	dst = strconv.AppendInt(dst, int64(1+g.rng.ExpFloat64()*40), 10)
	return dst
}

// RecordSize is the length of every records100 record.
const RecordSize = 100

type records100 struct {
	rng   *rand.Rand
	words func() string
}

// Next appends exactly RecordSize bytes: words separated by spaces, padded
// with a final filler word.
func (g *records100) Next(dst []byte) []byte {
	start := len(dst)
	for {
		w := g.words()
		used := len(dst) - start
		if used+len(w)+1 > RecordSize-4 {
			break
		}
		if used > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, w...)
	}
	used := len(dst) - start
	if used > 0 {
		dst = append(dst, ' ')
		used++
	}
	for ; used < RecordSize; used++ {
		dst = append(dst, 'x')
	}
	return dst
}
