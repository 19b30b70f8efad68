package generate

import (
	"bytes"
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
