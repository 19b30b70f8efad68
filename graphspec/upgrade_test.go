package graphspec

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The graphs of the table: an input, a state named "counts" and an output,
// and what a new version of the program changes around them.
func input(id int32) Node {
	return Node{ID: id, Kind: "stream", Name: "words", Type: "string", Slide: time.Second}
}

func stream(id int32, name, typ string, parents ...int32) Node {
	return Node{ID: id, Kind: "stream", Name: name, Type: typ, Slide: time.Second, Parents: parents}
}

func state(id int32, name string, parent int32) Node {
	return Node{ID: id, Kind: "stream", Name: "updateStateByKey", Type: "kv.Pair[string,int]", Slide: time.Second, Parents: []int32{parent},
		State: true, StateName: name, StateType: "aaaa", Partitions: 2, Partitioner: "hash"}
}

func output(id, from int32) Node {
	return Node{ID: id, Kind: "output", Name: "saveAsTextFiles", Type: "kv.Pair[string,int]", Parents: []int32{from}}
}

func with(n Node, f func(*Node)) Node { f(&n); return n }

func TestUpgrade(t *testing.T) {
	a := []Node{input(1), stream(2, "map", "kv.Pair[string,int]", 1), state(3, "counts", 2), output(4, 3)}
	type want struct {
		changed bool
		states  map[int32]int32 // new ID -> old ID
		inputs  []int32
		fresh   []int32
		dropped []string
		err     string // a part of the error; "" none
	}
	tests := []struct {
		name string
		old  []Node
		cur  []Node
		opts UpgradeOptions
		want want
	}{
		{"same graph", a, a, UpgradeOptions{}, want{states: map[int32]int32{3: 3}, inputs: []int32{1}}},
		{"same graph, unnamed state", []Node{input(1), state(2, "", 1)}, []Node{input(1), state(2, "", 1)}, UpgradeOptions{},
			want{states: map[int32]int32{2: 2}, inputs: []int32{1}}},
		{"a description written before state details existed",
			[]Node{input(1), with(state(2, "", 1), func(n *Node) { n.StateType, n.Partitions, n.Partitioner = "", 0, "" })},
			[]Node{input(1), state(2, "", 1)}, UpgradeOptions{}, want{states: map[int32]int32{2: 2}, inputs: []int32{1}}},
		{"output added", a, append(slices.Clone(a), output(5, 2)), UpgradeOptions{},
			want{changed: true, states: map[int32]int32{3: 3}, inputs: []int32{1}}},
		{"output removed", a, a[:3], UpgradeOptions{}, want{changed: true, states: map[int32]int32{3: 3}, inputs: []int32{1}}},
		{"stateless step before the state",
			a, []Node{input(1), stream(2, "map", "kv.Pair[string,int]", 1), stream(3, "filter", "kv.Pair[string,int]", 2), state(4, "counts", 3), output(5, 4)},
			UpgradeOptions{}, want{changed: true, states: map[int32]int32{4: 3}, inputs: []int32{1}}},
		{"stateless step after the state",
			a, []Node{input(1), stream(2, "map", "kv.Pair[string,int]", 1), state(3, "counts", 2), stream(4, "map", "string", 3), output(5, 4)},
			UpgradeOptions{}, want{changed: true, states: map[int32]int32{3: 3}, inputs: []int32{1}}},
		{"a second state", a, append(slices.Clone(a), state(5, "sums", 2)), UpgradeOptions{},
			want{changed: true, states: map[int32]int32{3: 3}, inputs: []int32{1}, fresh: []int32{5}}},
		{"a second, unnamed state", a, append(slices.Clone(a), state(5, "", 2)), UpgradeOptions{},
			want{changed: true, states: map[int32]int32{3: 3}, inputs: []int32{1}, fresh: []int32{5}}},
		{"an input added after the first", a, append(slices.Clone(a), input(5)), UpgradeOptions{},
			want{changed: true, states: map[int32]int32{3: 3}, inputs: []int32{1}}},
		{"value type changed", a, []Node{input(1), stream(2, "map", "kv.Pair[string,int]", 1),
			with(state(3, "counts", 2), func(n *Node) { n.Type, n.StateType = "kv.Pair[string,string]", "bbbb" })}, UpgradeOptions{},
			want{err: `state "counts": its record type changed from kv.Pair[string,int] to kv.Pair[string,string]`}},
		{"partitions changed", a, []Node{input(1), stream(2, "map", "kv.Pair[string,int]", 1),
			with(state(3, "counts", 2), func(n *Node) { n.Partitions = 4 })}, UpgradeOptions{},
			want{err: `state "counts": its partitions changed from 2 to 4`}},
		{"window changed", []Node{input(1), with(state(2, "w", 1), func(n *Node) { n.Window = "window 3s" })},
			[]Node{input(1), with(state(2, "w", 1), func(n *Node) { n.Window = "window 4s" })}, UpgradeOptions{},
			want{err: `state "w": its window changed from "window 3s" to "window 4s"`}},
		{"slide changed", []Node{input(1), state(2, "w", 1)},
			[]Node{input(1), with(state(2, "w", 1), func(n *Node) { n.Slide = 2 * time.Second })}, UpgradeOptions{},
			want{err: `state "w": its slide changed from 1s to 2s`}},
		{"operator changed", []Node{input(1), state(2, "w", 1)},
			[]Node{input(1), with(state(2, "w", 1), func(n *Node) { n.Name = "mapWithState" })}, UpgradeOptions{},
			want{err: `state "w": its operator changed from updateStateByKey to mapWithState`}},
		{"named state gone", a, a[:2], UpgradeOptions{},
			want{err: `state "counts" (stream 3 updateStateByKey`}},
		{"named state gone, allowed", a, a[:2], UpgradeOptions{AllowDroppedState: true},
			want{changed: true, states: map[int32]int32{}, inputs: []int32{1}, dropped: []string{"counts"}}},
		{"two states of one name", a, append(slices.Clone(a), state(5, "counts", 2)), UpgradeOptions{},
			want{err: `state "counts": two state streams have the name (operators 3 and 5)`}},
		{"unnamed state, graph changed", []Node{input(1), state(2, "", 1)}, []Node{input(1), state(2, "", 1), output(3, 2)}, UpgradeOptions{},
			want{err: "is unnamed, and a graph with unnamed state resumes only unchanged (operator 3 is new: output 3"}},
		{"input moved", a, []Node{with(input(1), func(n *Node) { n.Name = "clicks" }), with(input(2), func(n *Node) { n.ID = 2 }),
			stream(3, "map", "kv.Pair[string,int]", 2), state(4, "counts", 3)}, UpgradeOptions{},
			want{err: `input "words" of string was operator 1 and is operator 2 in this graph`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Upgrade(tt.old, tt.cur, tt.opts)
			if tt.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want.err) {
					t.Fatalf("Upgrade = %v; want an error with %q", err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			states := map[int32]int32{}
			for id, o := range p.States {
				states[id] = o.ID
			}
			var fresh []int32
			for _, n := range p.Fresh {
				fresh = append(fresh, n.ID)
			}
			var dropped []string
			for _, n := range p.Dropped {
				dropped = append(dropped, n.StateName)
			}
			got := want{changed: p.Changed, states: states, inputs: slices.Sorted(maps.Keys(p.Inputs)), fresh: fresh, dropped: dropped}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Upgrade = %+v, want %+v", got, tt.want)
			}
		})
	}
}

type shapeA struct {
	N    int
	Tags []string
	Next *shapeA
}

type shapeB struct { // shapeA renamed
	N    int
	Tags []string
	Next *shapeB
}

type shapeC struct { // a field retyped
	N    int64
	Tags []string
	Next *shapeC
}

type shapeD struct { // a field renamed
	M    int
	Tags []string
	Next *shapeD
}

func TestTypeFingerprint(t *testing.T) {
	fp := func(v any) string { return TypeFingerprint(reflect.TypeOf(v)) }
	for _, tt := range []struct {
		name string
		a, b any
		same bool
	}{
		{"same type", shapeA{}, shapeA{}, true},
		{"renamed type", shapeA{}, shapeB{}, true},
		{"field retyped", shapeA{}, shapeC{}, false},
		{"field renamed", shapeA{}, shapeD{}, false},
		{"int and int64", 0, int64(0), false},
		{"array lengths", [2]int{}, [3]int{}, false},
		{"map value", map[string]int{}, map[string]uint{}, false},
		{"slice and array", []int{}, [1]int{}, false},
	} {
		if got := fp(tt.a) == fp(tt.b); got != tt.same {
			t.Errorf("%s: fingerprints equal = %v, want %v", tt.name, got, tt.same)
		}
	}
}
