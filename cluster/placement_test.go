package cluster

import (
	"slices"
	"testing"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/rdd"
)

// The reduce placements a runner remembers: by the shuffle's place in the
// graph (any interval's shuffle of the same operator), never for a static
// dataset's; push targets name every partition reduced elsewhere than the
// map task's worker, each address once; a lost worker is forgotten; and
// the worker decodes what the master encoded.
func TestPlacementsGuessWhereReducesRun(t *testing.T) {
	var p placements
	s1 := rdd.ID{Op: 3, Time: 1000, Seq: 0}
	s2 := rdd.ID{Op: 3, Time: 2000, Seq: 0} // the same shuffle, next interval
	other := rdd.ID{Op: 3, Time: 2000, Seq: 1}
	static := rdd.ID{Seq: 7}
	p.note(s1, 4, 0, "w1")
	p.note(s1, 4, 1, "w2")
	p.note(s1, 4, 3, "w1")
	p.note(s1, 4, 4, "w9") // no such partition
	p.note(static, 4, 0, "w1")
	for _, c := range []struct {
		id   rdd.ID
		r    int
		want string
	}{{s2, 0, "w1"}, {s2, 1, "w2"}, {s2, 2, ""}, {s2, 3, "w1"}, {s2, 4, ""}, {other, 0, ""}, {static, 0, ""}} {
		if got := p.of(c.id, c.r); got != c.want {
			t.Errorf("of(%v, %d) = %q, want %q", c.id, c.r, got, c.want)
		}
	}
	decode := func(id rdd.ID, n int, worker string) []string {
		req := &clusterpb.RunTaskRequest{}
		p.pushTo(req, id, n, worker)
		return pushTargets(req.GetPushPeers(), req.GetPushTo())
	}
	if got, want := decode(s2, 4, "w1"), []string{"", "w2", "", ""}; !slices.Equal(got, want) {
		t.Errorf("a map task on w1 pushes to %q, want %q", got, want)
	}
	if got, want := decode(s2, 4, "w3"), []string{"w1", "w2", "", "w1"}; !slices.Equal(got, want) {
		t.Errorf("a map task on w3 pushes to %q, want %q", got, want)
	}
	req := &clusterpb.RunTaskRequest{}
	p.pushTo(req, s2, 4, "w3")
	if len(req.PushPeers) != 2 {
		t.Errorf("push peers %q: want each address once", req.PushPeers)
	}
	if got := decode(s2, 5, "w3"); got != nil {
		t.Errorf("another number of reduce partitions pushes to %q, want nowhere", got)
	}
	if got := decode(static, 4, "w3"); got != nil {
		t.Errorf("a static shuffle pushes to %q, want nowhere", got)
	}
	p.forget("w1")
	if got, want := decode(s2, 4, "w3"), []string{"", "w2", "", ""}; !slices.Equal(got, want) {
		t.Errorf("after losing w1, pushes to %q, want %q", got, want)
	}
	p.forget("w2")
	if got := decode(s2, 4, "w3"); got != nil {
		t.Errorf("with every reducer lost, pushes to %q, want nowhere", got)
	}
}

// Push targets the worker cannot make sense of are no targets: a push is a
// hint, and none is always right.
func TestPushTargetsMalformed(t *testing.T) {
	for _, c := range []struct {
		peers []string
		to    []int32
		want  []string
	}{
		{nil, nil, nil},
		{[]string{"a"}, nil, nil},
		{[]string{"a", "b"}, []int32{2, 0, 1}, []string{"b", "", "a"}},
		{[]string{"a"}, []int32{2}, nil},
		{[]string{"a"}, []int32{-1}, nil},
		{nil, []int32{0, 0}, []string{"", ""}},
	} {
		if got := pushTargets(c.peers, c.to); !slices.Equal(got, c.want) {
			t.Errorf("pushTargets(%q, %v) = %q, want %q", c.peers, c.to, got, c.want)
		}
	}
}

// The guesses stay bounded whatever the graph: past maxPlacements shuffles,
// they start again.
func TestPlacementsBounded(t *testing.T) {
	var p placements
	for i := range maxPlacements + 10 {
		p.note(rdd.ID{Op: int32(i + 1), Time: 1000}, 2, 0, "w")
	}
	if n := len(p.m); n > maxPlacements {
		t.Fatalf("%d shuffles remembered, bound %d", n, maxPlacements)
	}
}
