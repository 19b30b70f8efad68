// Package generate makes deterministic synthetic records: tweet-like lines
// with hashtags, plain word lines, log lines, and fixed 100-byte records for
// benchmarks. The same kind and seed always give the same sequence.
package generate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Generator appends one record (without a newline) to dst and returns it.
type Generator interface {
	Next(dst []byte) []byte
}

// Kinds lists the generator kinds New accepts.
func Kinds() []string { return []string{"tweets", "words", "logs", "records100"} }

// New returns a generator of kind, seeded with seed:
//   - "tweets": 4-15 words and 0-3 hashtags, words from a Zipf-distributed
//     vocabulary of 10,000 and hashtags from one of 1,000 led by #golang,
//     #streaming, #spark, ..., so a few tags trend;
//   - "words": 5-15 words from the same Zipf vocabulary;
//   - "logs": syslog-framed HTTP access log lines, level INFO, WARN or ERROR,
//     with service names, status codes and latencies;
//   - "records100": exactly RecordSize (100) bytes of vocabulary words, as
//     in the paper's benchmarks.
//
// Records never contain "\n" or "\r". Generators are not safe for
// concurrent use; make one per goroutine.
func New(kind string, seed int64) (Generator, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	switch kind {
	case "tweets":
		return &tweets{rng: rng, words: vocab.sampler(rng), tags: tagVocab.sampler(rng)}, nil
	case "words":
		return &words{rng: rng, words: vocab.sampler(rng)}, nil
	case "logs":
		return &logs{rng: rng}, nil
	case "records100":
		return &records100{rng: rng, words: vocab.sampler(rng)}, nil
	}
	return nil, fmt.Errorf("unknown generator kind %q (kinds: %s)", kind, strings.Join(Kinds(), ", "))
}

// vocabulary is a list of tokens drawn with a Zipf distribution, so a few
// are frequent and most are rare, as in real text: token k has weight
// (zipfV+k)^-zipfS, as rand.Zipf draws, but sampled from a precomputed alias
// table (Vose's method) in constant time instead of with a logarithm and
// exponentials per draw.
type vocabulary struct {
	words []string
	prob  []float64 // alias table: keep k with probability prob[k], else alias[k]
	alias []int32
}

const (
	zipfS = 1.1
	zipfV = 4
)

func newVocabulary(words []string) *vocabulary {
	n := len(words)
	w := make([]float64, n)
	var sum float64
	for k := range w {
		w[k] = math.Pow(zipfV+float64(k), -zipfS)
		sum += w[k]
	}
	v := &vocabulary{words: words, prob: make([]float64, n), alias: make([]int32, n)}
	var small, large []int32
	for k := range w {
		w[k] *= float64(n) / sum // mean 1
		if w[k] < 1 {
			small = append(small, int32(k))
		} else {
			large = append(large, int32(k))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		v.prob[s], v.alias[s] = w[s], l
		w[l] -= 1 - w[s]
		if w[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, k := range append(small, large...) { // rounding leftovers
		v.prob[k], v.alias[k] = 1, k
	}
	return v
}

// sampler returns a function drawing tokens with rng.
func (v *vocabulary) sampler(rng *rand.Rand) func() string {
	n := uint64(len(v.words))
	return func() string {
		// One draw: the high 32 bits pick the column (multiply-shift; the
		// bias, n/2^32, is negligible), the low 32 bits the coin.
		u := rng.Uint64()
		k := (u >> 32) * n >> 32
		if float64(u&(1<<32-1))*(1.0/(1<<32)) >= v.prob[k] {
			k = uint64(v.alias[k])
		}
		return v.words[k]
	}
}

var syllables = []string{"ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "pe", "du", "ga", "zo", "fi", "be", "ho", "ja"}

// makeVocab builds n distinct pronounceable words, shortest first.
func makeVocab(n int) []string {
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
	vocab    = newVocabulary(makeVocab(10000))
	tagVocab = func() *vocabulary {
		named := []string{"#golang", "#streaming", "#spark", "#dstream", "#kafka", "#flink", "#rust", "#devops", "#ai", "#cloud",
			"#kubernetes", "#opensource", "#bigdata", "#linux", "#python", "#database", "#latency", "#throughput", "#sre", "#observability"}
		v := slices.Clone(named)
		for _, w := range makeVocab(1000)[18:] {
			if len(v) == 1000 {
				break
			}
			v = append(v, "#"+w)
		}
		return newVocabulary(v)
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
	logEpoch = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	services = []string{"api", "auth", "billing", "search", "cart", "gateway", "worker", "db-proxy"}
	methods  = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	paths    = []string{"/v1/items", "/v1/users/me", "/login", "/cart/add", "/search?q=go", "/health", "/v2/orders", "/v1/items/42"}
)

// Next appends a syslog-framed access log line, e.g.
//
//	2023-11-14T22:13:20.007Z INFO api[1042]: 10.0.3.17 "GET /v1/items HTTP/1.1" 200 1532 latency_ms=12
//
// The level follows the outcome: ERROR for 5xx, WARN for 4xx or a latency
// over 500 ms, INFO otherwise. Timestamps advance 7 ms per line.
func (g *logs) Next(dst []byte) []byte {
	g.n++
	ts := logEpoch.Add(time.Duration(g.n) * 7 * time.Millisecond)
	status := 200
	switch r := g.rng.IntN(1000); {
	case r >= 985:
		status = 500 + g.rng.IntN(4)
	case r >= 930:
		status = []int{400, 401, 403, 404, 404, 404, 429}[g.rng.IntN(7)]
	case r >= 900:
		status = []int{201, 204, 301, 304}[g.rng.IntN(4)]
	}
	latency := int64(1 + g.rng.ExpFloat64()*40)
	if status >= 500 {
		latency += int64(g.rng.IntN(3000))
	}
	level := "INFO"
	switch {
	case status >= 500:
		level = "ERROR"
	case status >= 400 || latency > 500:
		level = "WARN"
	}
	svc := g.rng.IntN(len(services))
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, ' ')
	dst = append(dst, level...)
	dst = append(dst, ' ')
	dst = append(dst, services[svc]...)
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(1000+svc*97), 10)
	dst = append(dst, "]: 10.0."...)
	dst = strconv.AppendInt(dst, int64(g.rng.IntN(8)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(1+g.rng.IntN(254)), 10)
	dst = append(dst, " \""...)
	dst = append(dst, methods[g.rng.IntN(len(methods))]...)
	dst = append(dst, ' ')
	dst = append(dst, paths[g.rng.IntN(len(paths))]...)
	dst = append(dst, " HTTP/1.1\" "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(100+g.rng.IntN(20000)), 10)
	dst = append(dst, " latency_ms="...)
	dst = strconv.AppendInt(dst, latency, 10)
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
