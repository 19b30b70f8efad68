package rdd_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
	"github.com/dstream/dstream/shuffle"
)

// TestForgetIndexed: Forget drops the same blocks from a store that
// indexes them by series (rdd.BlockSeries) as from one it scans.
func TestForgetIndexed(t *testing.T) {
	mk := func(series func(string) (int64, int64, bool)) (*rdd.Context, *block.Store) {
		bs := block.New(block.Options{MaxBytes: 1 << 20, Series: series})
		c, err := rdd.NewContext(rdd.Config{Runner: sched.NewLocal(sched.LocalConfig{Slots: 1}), Blocks: bs, Shuffles: shuffle.New(bs)})
		if err != nil {
			t.Fatal(err)
		}
		return c, bs
	}
	ic, is := mk(rdd.BlockSeries)
	sc, ss := mk(nil)
	for _, bs := range []*block.Store{is, ss} {
		for op := range int32(3) {
			for tm := range int64(6) {
				for seq := range int32(2) {
					for p := range 2 {
						if err := bs.Put(rdd.BlockKey(rdd.ID{Op: op, Time: 1000 * tm, Seq: seq}, p), p, 1, block.State); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		for _, k := range []string{"input_1_7", "rdd_x", "rdd_1_2_3_4_5", "shuffle_1_2_3"} {
			if err := bs.Put(k, 0, 1, block.Input); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, rules := range [][]rdd.ForgetRule{
		{{Op: 1, UpTo: 2000}},
		{{Op: 0, UpTo: 0}, {Op: 2, UpTo: 4500}},
		{{Op: 1, UpTo: 2000}},
		{{Op: 9, UpTo: 1 << 62}},
		{{Op: 0, UpTo: 1 << 62}, {Op: 1, UpTo: 1 << 62}, {Op: 2, UpTo: 1 << 62}},
	} {
		ic.Forget(rules...)
		sc.Forget(rules...)
		var got, want []string
		for _, cl := range []block.Class{block.State, block.Input} {
			got = append(got, is.Keys(cl)...)
			want = append(want, ss.Keys(cl)...)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("after rules %d %v: the indexed store holds\n%v\nthe scanned one\n%v", i, rules, got, want)
		}
		if i == 4 && fmt.Sprint(got) != "[input_1_7 rdd_1_2_3_4_5 rdd_x shuffle_1_2_3]" {
			t.Fatalf("everything forgotten, yet held: %v", got)
		}
	}
}

func TestBlockSeries(t *testing.T) {
	tests := []struct {
		key        string
		series, at int64
		ok         bool
	}{
		{rdd.BlockKey(rdd.ID{Op: 7, Time: 1_700_000_000_050, Seq: 3}, 12), 7, 1_700_000_000_050, true},
		{"rdd_1_2_3_4", 1, 2, true},
		{"rdd_1_2_3", 0, 0, false},
		{"rdd_1_2_3_4_5", 0, 0, false},
		{"rdd_a_2_3_4", 0, 0, false},
		{"input_1_2", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		s, at, ok := rdd.BlockSeries(tt.key)
		if ok != tt.ok || ok && (s != tt.series || at != tt.at) {
			t.Errorf("BlockSeries(%q) = %d, %d, %v; want %d, %d, %v", tt.key, s, at, ok, tt.series, tt.at, tt.ok)
		}
	}
}
