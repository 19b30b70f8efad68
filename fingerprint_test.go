package dstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

type graphVariant int

const (
	same graphVariant = iota
	filterNotMap
	intNotString
	extraOutput
)

// variantGraph builds a small graph, or a variant of it that differs in one
// place.
func variantGraph(t *testing.T, v graphVariant) []dstream.GraphNode {
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	words := dstream.FlatMap(h.In, strings.Fields)
	switch v {
	case filterNotMap:
		words = dstream.Filter(words, func(string) bool { return true })
	case intNotString:
		dstream.Map(words, func(w string) int { return len(w) }).Print(1)
	default:
		words = dstream.Map(words, strings.ToLower)
	}
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKeyAndWindowInv(pairs, func(a, b int64) int64 { return a + b }, func(a, b int64) int64 { return a - b }, 2*time.Second, time.Second, 2, nil)
	counts.Print(3)
	if v == extraOutput {
		words.Print(1)
	}
	return h.Ctx.Graph()
}

func TestGraphFingerprint(t *testing.T) {
	a, b := variantGraph(t, same), variantGraph(t, same)
	if err := dstream.DiffGraphs(a, b); err != nil {
		t.Fatal(err)
	}
	if dstream.GraphFingerprint(a) != dstream.GraphFingerprint(b) {
		t.Fatal("equal graphs, different fingerprints")
	}
	// The description is what processes compare: pin its start.
	if got := a[2].String(); got != "stream 3 map of string sliding 1s from [2]" {
		t.Errorf("node 3 = %q", got)
	}
	tests := []struct {
		v    graphVariant
		want []string
	}{
		{filterNotMap, []string{"operator 3", "map of string", "filter of string"}},
		{intNotString, []string{"operator 3", "of int", "of string"}},
		{extraOutput, []string{"only this side has", "output"}},
	}
	for _, tt := range tests {
		other := variantGraph(t, tt.v)
		if dstream.GraphFingerprint(other) == dstream.GraphFingerprint(a) {
			t.Errorf("variant %d: same fingerprint", tt.v)
		}
		err := dstream.DiffGraphs(other, a)
		if err == nil {
			t.Fatalf("variant %d: no difference found", tt.v)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("variant %d: %q does not say %q", tt.v, err, w)
			}
		}
	}
}
