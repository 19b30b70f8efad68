package cluster

import (
	"slices"
	"testing"

	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// emptyBuckets answers for the map outputs noted, per shuffle; a bitmap of
// none, an out-of-range map or another count of maps says nothing; past
// its bound it forgets the older half, oldest intervals first; the
// runner forgets a shuffle's with its map output locations.
func TestEmptyBucketsNotedAndBounded(t *testing.T) {
	var e emptyBuckets
	s := rdd.ID{Op: 3, Time: 1000, Seq: 1}
	e.note(s, 3, 0, []byte{0b101})
	e.note(s, 3, 2, []byte{0b010})
	e.note(s, 3, 1, nil)           // none empty: nothing to say
	e.note(s, 3, 7, []byte{0b111}) // no such map output
	got := e.of(s, 3)
	if want := [][]byte{{0b101}, nil, {0b010}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("of = %v, want %v", got, want)
	}
	if got := e.of(s, 4); got != nil {
		t.Errorf("of with another count of maps = %v, want nil", got)
	}
	if got := e.of(rdd.ID{Op: 3, Time: 2000, Seq: 1}, 3); got != nil {
		t.Errorf("of an unknown shuffle = %v", got)
	}
	// Forgotten with the shuffle's map outputs.
	var r Runner
	r.Shell = sched.NewShell(sched.ShellConfig{})
	r.empties.note(s, 3, 0, []byte{1})
	r.empties.note(rdd.ID{Op: 3, Time: 2000, Seq: 1}, 1, 0, []byte{1})
	r.ForgetShuffles(func(id rdd.ID) bool { return id.Time <= 1000 })
	if r.empties.of(s, 3) != nil || r.empties.of(rdd.ID{Op: 3, Time: 2000, Seq: 1}, 1) == nil {
		t.Error("ForgetShuffles did not forget exactly the shuffles it matched")
	}
	// Past the bound (shuffles never forgotten), the older half goes.
	for i := range maxEmptyShuffles {
		e.note(rdd.ID{Op: 4, Time: int64(2000 + i), Seq: 1}, 1, 0, []byte{1})
	}
	if e.of(s, 3) != nil {
		t.Error("the oldest interval's shuffle is still remembered past the bound")
	}
	if last := (rdd.ID{Op: 4, Time: int64(2000 + maxEmptyShuffles - 1), Seq: 1}); e.of(last, 1) == nil {
		t.Error("the newest shuffle was dropped")
	}
	if n := len(e.m); n > maxEmptyShuffles || n < maxEmptyShuffles/2-1 {
		t.Errorf("%d shuffles remembered; want between half the bound and the bound (%d)", n, maxEmptyShuffles)
	}
}

// A request's list is its own: a map output noted again while a reader's
// request is sent (a map task run again) does not write into it.
func TestEmptyBucketsOfIsACopy(t *testing.T) {
	var e emptyBuckets
	s := rdd.ID{Op: 3, Time: 1000, Seq: 1}
	e.note(s, 2, 0, []byte{1})
	list := e.of(s, 2) // a request's, before the note below
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.note(s, 2, 1, []byte{2})
	}()
	for _, b := range list {
		_ = len(b) // read as the request's encoding reads it, unlocked
	}
	<-done
	if list[1] != nil {
		t.Errorf("a later note wrote into a list already handed out: %v", list)
	}
}
