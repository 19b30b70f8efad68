package rdd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstream/dstream/rdd"
)

// peerStore serves another context's shuffle outputs as a remote process
// would: encoded, after a delay, counting the fetches in flight.
type peerStore struct {
	c              *rdd.Context
	inFlight, most atomic.Int32
	fetches        atomic.Int32
	delay          time.Duration
	mu             sync.Mutex
	order          []int
}

func (p *peerStore) Bucket(ctx context.Context, s rdd.ID, m, r int) ([]byte, error) {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		most := p.most.Load()
		if n <= most || p.most.CompareAndSwap(most, n) {
			break
		}
	}
	p.fetches.Add(1)
	p.mu.Lock()
	p.order = append(p.order, m)
	p.mu.Unlock()
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	v, ok := p.c.Shuffles().Bucket(s, m, r)
	if !ok {
		return nil, fmt.Errorf("%w: map %d", rdd.ErrNotHeld, m)
	}
	return rdd.EncodeBlock(v)
}

func (p *peerStore) Block(context.Context, string, []string) ([]byte, error) {
	return nil, rdd.ErrNotHeld
}

// wordSums is a program that builds the same ReduceByKey in any context:
// n words over 37 keys in maps partitions, summed into reduces partitions,
// each word worth its number when numbered, else 1.
func wordSums(n, maps, reduces int, numbered bool) func(*rdd.Context) *rdd.Dataset[rdd.Pair[string, int]] {
	return func(c *rdd.Context) *rdd.Dataset[rdd.Pair[string, int]] {
		words := make([]rdd.Pair[string, int], n)
		for i := range words {
			words[i] = rdd.Pair[string, int]{Key: fmt.Sprintf("w%d", i%37), Value: 1}
			if numbered {
				words[i].Value = i
			}
		}
		return rdd.ReduceByKey(rdd.Parallelize(c, words, maps), func(a, b int) int { return a + b }, reduces)
	}
}

// A reduce task in one context reads the map outputs another context wrote
// (two processes of the same program): every bucket crosses encoded,
// several fetches are in flight but never more than the bound, and the
// result equals the one-process result.
func TestReduceReadsAnotherProcessesMapOutputs(t *testing.T) {
	build := wordSums(3000, 12, 3, true)
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, _ := newCtx(t, 2, 64<<20)
	local, _ := newCtx(t, 2, 64<<20)
	want, err := build(local).Collect(bg)
	if err != nil {
		t.Fatal(err)
	}
	// The map stage runs in the mapper.
	md := build(mapper)
	shuffle := md.ID()
	lin := rdd.IndexLineage(md.Node())
	runMaps(t, lin, shuffle)
	// The reduce stage runs in the reducer, which holds no map output.
	peer := &peerStore{c: mapper, delay: 20 * time.Millisecond}
	rd := build(reducer)
	if rd.ID() != shuffle {
		t.Fatalf("the same program named the dataset %s and %s", rd.ID(), shuffle)
	}
	rlin := rdd.IndexLineage(rd.Node())
	var got []rdd.Pair[string, int]
	for r := range rd.NumPartitions() {
		tc := rdd.NewTaskContext(bg, 1, 1, r, 0)
		tc.Remote = peer
		res, err := rlin.Execute(tc, rdd.TaskSpec{Dataset: rd.ID(), Partition: r, Result: rdd.KindCollect})
		if err != nil {
			t.Fatal(err)
		}
		// The result crosses back too.
		b, err := rlin.EncodeResult(rdd.TaskSpec{Dataset: rd.ID(), Partition: r, Result: rdd.KindCollect}, res)
		if err != nil {
			t.Fatal(err)
		}
		back, err := lin.DecodeResult(rdd.TaskSpec{Dataset: rd.ID(), Partition: r, Result: rdd.KindCollect}, b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, back.([]rdd.Pair[string, int])...)
	}
	byKey := func(a, b rdd.Pair[string, int]) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	}
	slices.SortFunc(got, byKey)
	slices.SortFunc(want, byKey)
	if !slices.Equal(got, want) {
		t.Fatalf("across processes %v\nin one %v", got, want)
	}
	if n := peer.fetches.Load(); n != 12*3 {
		t.Errorf("%d fetches, want one per map output and reduce partition (36)", n)
	}
	if most := peer.most.Load(); most < 2 || most > 4 {
		t.Errorf("at most %d fetches were in flight at once; want several, never over 4", most)
	}
}

// A bucket the holder no longer has is a fetch failure naming the map
// output, so the scheduler recomputes it.
func TestRemoteBucketGoneIsAFetchFailure(t *testing.T) {
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, _ := newCtx(t, 2, 64<<20)
	build := func(c *rdd.Context) *rdd.Dataset[rdd.Pair[string, int]] {
		return rdd.ReduceByKey(rdd.Parallelize(c, []rdd.Pair[string, int]{{Key: "a", Value: 1}, {Key: "b", Value: 2}}, 2), func(a, b int) int { return a + b }, 2)
	}
	_ = build(mapper) // wrote nothing: every bucket is gone
	rd := build(reducer)
	tc := rdd.NewTaskContext(bg, 1, 1, 0, 0)
	tc.Remote = &peerStore{c: mapper}
	_, err := rdd.IndexLineage(rd.Node()).Execute(tc, rdd.TaskSpec{Dataset: rd.ID(), Partition: 0, Result: rdd.KindCollect})
	var ff *rdd.FetchFailedError
	if !errors.As(err, &ff) || ff.Shuffle != rd.ID() {
		t.Fatalf("err = %v, want a fetch failure of shuffle %s", err, rd.ID())
	}
}

// gatedPeer serves another context's map outputs, holding map output 0
// until released.
type gatedPeer struct {
	peerStore
	gate    chan struct{}
	waiting chan struct{} // closed when map output 0 is asked for
	once    sync.Once
}

func (g *gatedPeer) Bucket(ctx context.Context, s rdd.ID, m, r int) ([]byte, error) {
	if m == 0 {
		g.once.Do(func() { close(g.waiting) })
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.peerStore.Bucket(ctx, s, m, r)
}

// Map outputs recomputed in the reducer's own process while it fetches
// (their first writer was lost) are read in place, and the fetches launched
// for them give their turns back: the task never waits for a fetch that
// cannot start.
func TestPrefetchSurvivesOutputsBecomingLocal(t *testing.T) {
	build := wordSums(1200, 12, 2, false)
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, _ := newCtx(t, 2, 64<<20)
	md, rd := build(mapper), build(reducer)
	shuffle := md.ID()
	lin := rdd.IndexLineage(md.Node())
	dep := runMaps(t, lin, shuffle)
	peer := &gatedPeer{peerStore: peerStore{c: mapper}, gate: make(chan struct{}), waiting: make(chan struct{})}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	tc := rdd.NewTaskContext(ctx, 1, 1, 0, 0)
	tc.Remote = peer
	done := sumInBackground(tc, rd)
	// Once the task fetches (map output 0 is held, 1..3 fetched ahead:
	// counted once they are served),
	// outputs 1..4 are recomputed here; the others are still fetched.
	<-peer.waiting
	for peer.fetches.Load() < 3 {
		time.Sleep(time.Millisecond) // the fetches ahead are being launched
	}
	for m := 1; m <= 4; m++ {
		buckets := make([]any, dep.NumReduce)
		for r := range buckets {
			v, _ := mapper.Shuffles().Bucket(shuffle, m, r)
			buckets[r] = v
		}
		if err := reducer.Shuffles().PutMapOutput(shuffle, m, buckets); err != nil {
			t.Fatal(err)
		}
	}
	close(peer.gate)
	if res := <-done; res.err != nil {
		t.Fatalf("the reduce task: %v", res.err)
	} else if res.n == 0 {
		t.Fatal("the reduce task read nothing")
	}
}

// runMaps runs every map task of shuffle in lin's context, by spec, and
// returns the shuffle.
func runMaps(t *testing.T, lin *rdd.Lineage, shuffle rdd.ID) *rdd.ShuffleDep {
	t.Helper()
	dep := lin.Shuffle(shuffle)
	for m := range dep.Parent.NumPartitions {
		tc := rdd.NewTaskContext(bg, 1, 0, m, 0)
		if _, err := lin.Execute(tc, rdd.TaskSpec{Dataset: dep.Parent.ID, Partition: m, Shuffle: &shuffle}); err != nil {
			t.Fatal(err)
		}
	}
	return dep
}

// A persisted dataset's partition is cached where a task computed it: the
// scheduler's note (NoteComputed) makes a later job's task on it prefer
// that worker, for it and the persisted parents read one to one on the
// way; a kept dataset's holders and unpersisted datasets are not changed.
func TestNoteComputedPlacesCachedPartitions(t *testing.T) {
	c, _ := newCtx(t, 2, 1<<20)
	pairs := rdd.Map(rdd.Parallelize(c, []string{"a", "b", "a"}, 2), func(w string) rdd.Pair[string, int] { return rdd.Pair[string, int]{Key: w, Value: 1} })
	reduced := rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2).Persist()
	plain := rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2)
	kept := rdd.ReduceByKey(pairs, func(a, b int) int { return a + b }, 2).Persist()
	kept.MarkKept([]string{"h0", "h1"})
	grouped := rdd.CogroupAll(2, kept, reduced, plain)
	top := rdd.Map(grouped, func(p rdd.Pair[string, [][]int]) int { return len(p.Value) }).Persist()
	// A window's step: this interval's shuffled data first, which no
	// process holds, then the kept state.
	step := rdd.CogroupAll(2, plain, kept)
	rdd.NoteComputed(top.Node(), 1, "w1")
	rdd.NoteComputed(reduced.Node(), 0, "w0")
	cases := []struct {
		name string
		n    *rdd.Node
		p    int
		want []string
	}{
		{"the task's own persisted dataset", top.Node(), 1, []string{"w1"}},
		{"a persisted parent read one to one", reduced.Node(), 1, []string{"w1"}},
		{"another partition, noted by its own task", reduced.Node(), 0, []string{"w0"}},
		{"a partition no task computed: its input decides", top.Node(), 0, []string{"h0"}},
		{"an unpersisted dataset is computed anew anywhere", plain.Node(), 1, nil},
		{"a kept dataset stays with its holders", kept.Node(), 1, []string{"h1"}},
		{"a kept input after one no process holds", step.Node(), 1, []string{"h1"}},
	}
	for _, tc := range cases {
		if got := rdd.PreferredLocations(tc.n, tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("%s: PreferredLocations = %q, want %q", tc.name, got, tc.want)
		}
	}
}
