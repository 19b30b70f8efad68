package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dstream/dstream"
)

// TestTopOfIsSortedPrefix checks topOf against the naive reference: sort
// everything by byCount and keep the first k.
func TestTopOfIsSortedPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		n, k := rng.IntN(60), rng.IntN(14)
		xs := make([]dstream.Pair[string, int64], n)
		for i := range xs {
			// Few words and counts: ties on count and repeated pairs.
			xs[i] = dstream.KV(fmt.Sprintf("w%d", rng.IntN(20)), int64(rng.IntN(8)))
		}
		want := slices.Clone(xs)
		slices.SortFunc(want, byCount)
		want = want[:min(k, len(want))]
		if got := topOf(k, slices.Values(xs)); !slices.Equal(got, want) {
			t.Fatalf("trial %d: topOf(%d, %v) = %v, want %v", trial, k, xs, got, want)
		}
	}
}
