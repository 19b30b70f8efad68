package generate

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDeterministicAndShaped(t *testing.T) {
	for _, kind := range Kinds() {
		a, err := New(kind, 7)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := New(kind, 7)
		c, _ := New(kind, 8)
		same := true
		for i := range 200 {
			x, y, z := a.Next(nil), b.Next(nil), c.Next(nil)
			if !bytes.Equal(x, y) {
				t.Fatalf("%s: record %d differs for the same seed", kind, i)
			}
			same = same && bytes.Equal(x, z)
			if len(x) == 0 || bytes.ContainsAny(x, "\n\r") {
				t.Fatalf("%s: bad record %q", kind, x)
			}
			if kind == "records100" && len(x) != RecordSize {
				t.Fatalf("records100 record of %d bytes: %q", len(x), x)
			}
		}
		if rec := a.Next([]byte("prefix|")); !bytes.HasPrefix(rec, []byte("prefix|")) || len(rec) <= len("prefix|") {
			t.Errorf("%s: Next does not append to dst: %q", kind, rec)
		}
		if same {
			t.Errorf("%s: different seeds give the same records", kind)
		}
	}
}

func TestTweetsHaveTrendingHashtags(t *testing.T) {
	g, _ := New("tweets", 1)
	counts := map[string]int{}
	for range 5000 {
		for _, w := range strings.Fields(string(g.Next(nil))) {
			if strings.HasPrefix(w, "#") {
				counts[w]++
			}
		}
	}
	if len(counts) < 50 || counts["#golang"] < 100 {
		t.Errorf("hashtags: %d distinct, #golang %d times", len(counts), counts["#golang"])
	}
}

func TestUnknownKind(t *testing.T) {
	if _, err := New("nope", 1); err == nil || !strings.Contains(err.Error(), "records100") {
		t.Errorf("err = %v, want the list of kinds", err)
	}
}

func TestLogLevels(t *testing.T) {
	g, _ := New("logs", 3)
	levels := map[string]int{}
	for range 5000 {
		f := strings.Fields(string(g.Next(nil)))
		if len(f) < 9 || !strings.HasPrefix(f[len(f)-1], "latency_ms=") {
			t.Fatalf("odd log line %q", f)
		}
		levels[f[1]]++
	}
	if len(levels) != 3 || levels["INFO"] < levels["WARN"] || levels["WARN"] == 0 || levels["ERROR"] == 0 {
		t.Errorf("levels %v, want mostly INFO, some WARN and ERROR", levels)
	}
}

// TestAliasTableIsZipf checks that the alias tables draw each token with its
// Zipf probability, (zipfV+k)^-zipfS normalised.
func TestAliasTableIsZipf(t *testing.T) {
	for _, v := range []*vocabulary{vocab, tagVocab} {
		n := len(v.words)
		implied := make([]float64, n)
		for k := range n {
			implied[k] += v.prob[k] / float64(n)
			implied[v.alias[k]] += (1 - v.prob[k]) / float64(n)
		}
		var sum float64
		for k := range n {
			sum += math.Pow(zipfV+float64(k), -zipfS)
		}
		for k := range n {
			if want := math.Pow(zipfV+float64(k), -zipfS) / sum; math.Abs(implied[k]-want) > 1e-12 {
				t.Fatalf("token %d of %d: probability %g, want %g", k, n, implied[k], want)
			}
		}
	}
	// And the sampler draws by the table.
	draw := tagVocab.sampler(rand.New(rand.NewPCG(1, 2)))
	counts := map[string]int{}
	const n = 1 << 20
	for range n {
		counts[draw()]++
	}
	var sum float64
	for k := range tagVocab.words {
		sum += math.Pow(zipfV+float64(k), -zipfS)
	}
	for _, k := range []int{0, 1, 10, 100} {
		want := n * math.Pow(zipfV+float64(k), -zipfS) / sum
		if got := float64(counts[tagVocab.words[k]]); math.Abs(got-want) > 5*math.Sqrt(want) {
			t.Errorf("%s drawn %v times in %d, want about %.0f", tagVocab.words[k], got, n, want)
		}
	}
	if len(vocab.words) != 10000 || len(tagVocab.words) != 1000 || tagVocab.words[0] != "#golang" {
		t.Errorf("vocabularies of %d words and %d hashtags led by %s", len(vocab.words), len(tagVocab.words), tagVocab.words[0])
	}
}
