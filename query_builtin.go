package dstream

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// The built-in queries. Each runs a partition function where each partition
// is and merges the small results in the submitting process.

// maxTopK and maxScanLimit bound what one answer may hold.
const (
	maxTopK      = 10_000
	maxScanLimit = 10_000
)

// TopQuery registers query name on s: the k records (parameter k, default
// 10) that come first by less, in that order. For a hashtag count, less
// ranks higher counts first.
func TopQuery[T any](s *Stream[T], name string, less func(a, b T) bool) {
	cmp := func(a, b T) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	}
	top := func(xs []T, k int) []T {
		xs = slices.Clone(xs)
		slices.SortStableFunc(xs, cmp)
		return xs[:min(k, len(xs))]
	}
	id := engine.PartitionFunc(s.ctx.e, func(_ *rdd.TaskContext, records []T, arg string) ([]T, error) {
		k, err := strconv.Atoi(arg)
		if err != nil {
			return nil, err
		}
		return top(records, k), nil
	})
	Query(s, name, "the k records that rank first", []QueryParam{{Name: "k", Doc: fmt.Sprintf("how many (1 to %d)", maxTopK), Default: "10"}},
		func(ctx context.Context, ds *rdd.Dataset[T], args QueryArgs) ([]T, error) {
			k, err := args.Int("k", 1, maxTopK)
			if err != nil {
				return nil, err
			}
			parts, err := rdd.RunPartitionFunc[T, []T](ctx, ds, id, strconv.Itoa(k), nil)
			if err != nil {
				return nil, err
			}
			out := top(slices.Concat(parts...), k)
			if out == nil {
				out = []T{}
			}
			return out, nil
		})
}

// CountQuery registers query name on s: the number of records.
func CountQuery[T any](s *Stream[T], name string) {
	id := engine.PartitionFunc(s.ctx.e, func(_ *rdd.TaskContext, records []T, _ string) (int64, error) { return int64(len(records)), nil })
	Query(s, name, "the number of records", nil, func(ctx context.Context, ds *rdd.Dataset[T], _ QueryArgs) (int64, error) {
		parts, err := rdd.RunPartitionFunc[T, int64](ctx, ds, id, "", nil)
		var n int64
		for _, p := range parts {
			n += p
		}
		return n, err
	})
}

// GetQuery registers query name on a keyed stream: the values of the key
// given as parameter key (parsed as the key type: a string, or a number).
// When the stream's records are hash partitioned by key, only the key's
// partition is read.
func GetQuery[K comparable, V any](s *Stream[Pair[K, V]], name string) {
	id := engine.PartitionFunc(s.ctx.e, func(_ *rdd.TaskContext, records []Pair[K, V], arg string) ([]V, error) {
		k, err := parseKey[K](arg)
		if err != nil {
			return nil, err
		}
		var out []V
		for _, r := range records {
			if r.Key == k {
				out = append(out, r.Value)
			}
		}
		return out, nil
	})
	Query(s, name, "the values of a key", []QueryParam{{Name: "key", Doc: "the key", Required: true}},
		func(ctx context.Context, ds *rdd.Dataset[Pair[K, V]], args QueryArgs) ([]V, error) {
			k, err := parseKey[K](args["key"])
			if err != nil {
				return nil, &QueryArgError{Param: "key", Reason: err.Error()}
			}
			var parts []int
			if n := ds.HashPartitions(); n == ds.NumPartitions() && n > 0 {
				if hp := rdd.NewHashPartitioner[K](n); hp.Err() == nil {
					parts = []int{hp.Partition(k)}
				}
			}
			res, err := rdd.RunPartitionFunc[Pair[K, V], []V](ctx, ds, id, args["key"], parts)
			out := slices.Concat(res...)
			if out == nil {
				out = []V{}
			}
			return out, err
		})
}

// ScanPage is a page of ScanQuery's answer: the pairs, in key order, and
// the cursor of the next page ("" after the last).
type ScanPage[V any] struct {
	Pairs []Pair[string, V] `json:"pairs"`
	Next  string            `json:"next"`
}

type scanArg struct {
	Prefix string `json:"prefix"`
	After  string `json:"after"`
	Limit  int    `json:"limit"`
}

// ScanQuery registers query name on a stream keyed by strings: the pairs
// whose key starts with parameter prefix, in key order, a page of at most
// limit (default 100) at a time after the key given as parameter after
// (the previous page's next). Pages are cut between keys, so the stream's
// keys must be unique in an interval (a reduced or state stream): a key
// with several pairs across a page's end loses the rest of them.
func ScanQuery[V any](s *Stream[Pair[string, V]], name string) {
	page := func(xs []Pair[string, V], a scanArg) ([]Pair[string, V], bool) {
		var out []Pair[string, V]
		for _, x := range xs {
			if strings.HasPrefix(x.Key, a.Prefix) && x.Key > a.After {
				out = append(out, x)
			}
		}
		slices.SortStableFunc(out, func(x, y Pair[string, V]) int { return strings.Compare(x.Key, y.Key) })
		more := len(out) > a.Limit
		return out[:min(a.Limit, len(out))], more
	}
	id := engine.PartitionFunc(s.ctx.e, func(_ *rdd.TaskContext, records []Pair[string, V], arg string) ([]Pair[string, V], error) {
		var a scanArg
		if err := json.Unmarshal([]byte(arg), &a); err != nil {
			return nil, err
		}
		// One more than the page, so the merge knows whether more follow.
		a.Limit++
		out, _ := page(records, a)
		return out, nil
	})
	Query(s, name, "the pairs whose key has a prefix, in key order, a page at a time",
		[]QueryParam{{Name: "prefix", Doc: "the keys' prefix"}, {Name: "after", Doc: "the last key of the previous page"},
			{Name: "limit", Doc: fmt.Sprintf("pairs a page (1 to %d)", maxScanLimit), Default: "100"}},
		func(ctx context.Context, ds *rdd.Dataset[Pair[string, V]], args QueryArgs) (ScanPage[V], error) {
			limit, err := args.Int("limit", 1, maxScanLimit)
			if err != nil {
				return ScanPage[V]{}, err
			}
			a := scanArg{Prefix: args["prefix"], After: args["after"], Limit: limit}
			arg, _ := json.Marshal(a)
			parts, err := rdd.RunPartitionFunc[Pair[string, V], []Pair[string, V]](ctx, ds, id, string(arg), nil)
			if err != nil {
				return ScanPage[V]{}, err
			}
			out, more := page(slices.Concat(parts...), a)
			p := ScanPage[V]{Pairs: out}
			if p.Pairs == nil {
				p.Pairs = []Pair[string, V]{}
			}
			if more {
				p.Next = out[len(out)-1].Key
			}
			return p, nil
		})
}

// parseKey parses a key given as text: a string as it is, numbers and
// booleans by their usual syntax.
func parseKey[K comparable](s string) (K, error) {
	var k K
	switch p := any(&k).(type) {
	case *string:
		*p = s
		return k, nil
	}
	if _, err := fmt.Sscan(s, &k); err != nil {
		return k, fmt.Errorf("%q is not a %T key: %v", s, k, err)
	}
	return k, nil
}
