package rdd_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/rdd"
)

// pusher is the mapper's Remote: it pushes to the reducer's shuffle store
// (shuffle.Store.PutBucket), as a worker's PushBucket call does, and fails
// pushes to any other address.
type pusher struct {
	peerStore
	reducer *rdd.Context
	pushes  []string
}

func (p *pusher) PushBucket(_ context.Context, addr string, s rdd.ID, m, r int, data []byte) error {
	p.mu.Lock()
	p.pushes = append(p.pushes, fmt.Sprintf("%s m%d r%d", addr, m, r))
	p.mu.Unlock()
	if addr != "reducer" {
		return fmt.Errorf("no process at %s", addr)
	}
	return pushInto(p.reducer, s, m, r, slices.Clone(data))
}

// pushInto stores an encoded bucket in c's shuffle store as a pushed copy,
// as a worker's PushBucket does.
func pushInto(c *rdd.Context, s rdd.ID, m, r int, data []byte) error {
	return c.Shuffles().(interface {
		PutBucket(rdd.ID, int, int, any) error
	}).PutBucket(s, m, r, rdd.Encoded(data))
}

// pushRig is a program run as a mapper process and a reducer process (two
// contexts) and alone (a third), with the mapper's Remote pushing to the
// reducer.
type pushRig[T comparable] struct {
	mapper, reducer, local *rdd.Context
	build                  func(*rdd.Context) *rdd.Dataset[T]
	md, rd                 *rdd.Dataset[T]
	shuffle                rdd.ID
	lin                    *rdd.Lineage // the mapper's
	dep                    *rdd.ShuffleDep
	push                   *pusher
}

func newPushRig[T comparable](t *testing.T, build func(*rdd.Context) *rdd.Dataset[T]) *pushRig[T] {
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, _ := newCtx(t, 2, 64<<20)
	local, _ := newCtx(t, 2, 64<<20)
	g := &pushRig[T]{mapper: mapper, reducer: reducer, local: local, build: build, md: build(mapper), rd: build(reducer)}
	g.shuffle = g.md.ID()
	g.lin = rdd.IndexLineage(g.md.Node())
	g.dep = g.lin.Shuffle(g.shuffle)
	g.push = &pusher{peerStore: peerStore{c: mapper}, reducer: reducer}
	return g
}

// runMap runs map task m in the mapper, pushing as pushTo says.
func (g *pushRig[T]) runMap(t *testing.T, m int, pushTo []string) *rdd.TaskContext {
	t.Helper()
	tc := rdd.NewTaskContext(bg, 1, 0, m, 0)
	tc.Remote, tc.Location, tc.PushTo = g.push, "mapper", pushTo
	if _, err := g.lin.Execute(tc, rdd.TaskSpec{Dataset: g.dep.Parent.ID, Partition: m, Shuffle: &g.shuffle}); err != nil {
		t.Fatal(err)
	}
	return tc
}

// runReduce runs reduce partition r in the reducer, reading through from,
// and fails t unless it returns what the program alone does.
func (g *pushRig[T]) runReduce(t *testing.T, r int, from rdd.Remote, byKey func(a, b T) int) *rdd.TaskContext {
	t.Helper()
	tc := rdd.NewTaskContext(bg, 1, 1, r, 0)
	tc.Remote = from
	res, err := rdd.IndexLineage(g.rd.Node()).Execute(tc, rdd.TaskSpec{Dataset: g.rd.ID(), Partition: r, Result: rdd.KindCollect})
	if err != nil {
		t.Fatal(err)
	}
	alone, err := g.local.RunJob(bg, &rdd.Job{Final: g.build(g.local).Node(), Partitions: []int{r}, Kind: rdd.KindCollect})
	if err != nil {
		t.Fatal(err)
	}
	got, want := res.([]T), alone[0].([]T)
	slices.SortFunc(got, byKey)
	slices.SortFunc(want, byKey)
	if !slices.Equal(got, want) {
		t.Errorf("reduce partition %d: %v, in one process %v", r, got, want)
	}
	return tc
}

// sumInBackground runs reduce partition 0 of rd under tc in the background:
// the channel gives its values' sum, or the task's error, when it ends.
func sumInBackground(tc *rdd.TaskContext, rd *rdd.Dataset[rdd.Pair[string, int]]) <-chan sumOrErr {
	done := make(chan sumOrErr, 1)
	go func() {
		res, err := rdd.IndexLineage(rd.Node()).Execute(tc, rdd.TaskSpec{Dataset: rd.ID(), Partition: 0, Result: rdd.KindCollect})
		var n int
		if err == nil {
			for _, p := range res.([]rdd.Pair[string, int]) {
				n += p.Value
			}
		}
		done <- sumOrErr{n, err}
	}()
	return done
}

type sumOrErr struct {
	n   int
	err error
}

// A map task pushes each bucket to the process its PushTo names (not to
// itself, nowhere for ""), and a reduce task there reads the pushed buckets
// in place: no fetch, none counted as a remote read, the same records as
// in one process. A failed push costs nothing but the fetch it would have
// saved.
func TestMapTasksPushBucketsToTheirReaders(t *testing.T) {
	g := newPushRig(t, wordSums(3000, 4, 4, true))
	for m := range g.dep.Parent.NumPartitions {
		// Partition 0 to the reducer, 1 to nobody, 2 to this very process,
		// 3 to a process that is gone.
		tc := g.runMap(t, m, []string{"reducer", "", "mapper", "gone"})
		if got := tc.Figures().ShufflePushes; got != 1 {
			t.Errorf("map task %d counted %d pushes, want 1 (the failed one not counted)", m, got)
		}
	}
	slices.Sort(g.push.pushes)
	var want []string
	for m := range 4 {
		want = append(want, fmt.Sprintf("gone m%d r3", m), fmt.Sprintf("reducer m%d r0", m))
	}
	slices.Sort(want)
	if !slices.Equal(g.push.pushes, want) {
		t.Errorf("pushes %q, want %q", g.push.pushes, want)
	}
	for r := range g.rd.NumPartitions() {
		from := &peerStore{c: g.mapper}
		tc := g.runReduce(t, r, from, func(a, b rdd.Pair[string, int]) int { return strings.Compare(a.Key, b.Key) })
		fetches, remote := int64(from.fetches.Load()), tc.Figures().ShuffleRemoteReads
		if wantFetches := map[bool]int64{true: 0, false: 4}[r == 0]; fetches != wantFetches || remote != wantFetches {
			t.Errorf("reduce partition %d: %d fetches, %d counted remote reads; want %d", r, fetches, remote, wantFetches)
		}
	}
}

// A pushed bucket evicted while its reader runs (present when the task
// started, so nothing fetched it ahead) is fetched from the process that
// wrote it: a pushed copy's loss is no fetch failure.
func TestEvictedPushedBucketIsFetched(t *testing.T) {
	build := wordSums(1200, 6, 2, false)
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, blocks := newCtx(t, 2, 64<<20)
	md, rd := build(mapper), build(reducer)
	shuffle := md.ID()
	dep := runMaps(t, rdd.IndexLineage(md.Node()), shuffle)
	// Map output 5's bucket for reduce partition 0 was pushed here.
	v, _ := mapper.Shuffles().Bucket(shuffle, 5, 0)
	b, err := rdd.EncodeBlock(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := pushInto(reducer, shuffle, 5, 0, b); err != nil {
		t.Fatal(err)
	}
	peer := &gatedPeer{peerStore: peerStore{c: mapper}, gate: make(chan struct{}), waiting: make(chan struct{})}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	tc := rdd.NewTaskContext(ctx, 1, 1, 0, 0)
	tc.Remote = peer
	done := sumInBackground(tc, rd)
	<-peer.waiting // the reader waits for map output 0: evict the pushed copy
	key := fmt.Sprintf("shuffle_%d_%d_%d_%d_%d", shuffle.Op, shuffle.Time, shuffle.Seq, 5, 0)
	if !blocks.Remove(key) {
		t.Fatalf("no block %s: the shuffle store names its blocks otherwise", key)
	}
	close(peer.gate)
	res := <-done
	if res.err != nil {
		t.Fatalf("the reduce task: %v", res.err)
	}
	n := res.n
	if n == 0 {
		t.Fatal("the reduce task read nothing")
	}
	var total int
	for m := range dep.Parent.NumPartitions {
		v, _ := mapper.Shuffles().Bucket(shuffle, m, 0)
		for _, p := range v.([]rdd.Pair[string, int]) {
			total += p.Value
		}
	}
	if n != total {
		t.Fatalf("the reduce task counted %d, the map outputs hold %d", n, total)
	}
	if got := tc.Figures().ShuffleRemoteReads; got != 6 {
		t.Errorf("%d remote reads, want 6 (5 fetched ahead, the evicted copy after)", got)
	}
}

// stalled is a Remote whose pushes never end on their own: the process it
// pushes to is paused.
type stalled struct{ peerStore }

func (s *stalled) PushBucket(ctx context.Context, _ string, _ rdd.ID, _, _ int, _ []byte) error {
	<-ctx.Done()
	return ctx.Err()
}

// A map task whose reader's process does not answer gives its pushes up
// (after a bounded wait) and succeeds: its output is stored all the same.
func TestMapTaskGivesUpPushesToAStalledReader(t *testing.T) {
	c, _ := newCtx(t, 2, 64<<20)
	d := rdd.ReduceByKey(rdd.Parallelize(c, []rdd.Pair[string, int]{{Key: "a", Value: 1}, {Key: "b", Value: 2}}, 1), func(a, b int) int { return a + b }, 2)
	shuffle := d.ID()
	lin := rdd.IndexLineage(d.Node())
	dep := lin.Shuffle(shuffle)
	tc := rdd.NewTaskContext(bg, 1, 0, 0, 0)
	tc.Remote, tc.Location, tc.PushTo = &stalled{peerStore{c: c}}, "mapper", []string{"paused", "paused"}
	if _, err := lin.Execute(tc, rdd.TaskSpec{Dataset: dep.Parent.ID, Partition: 0, Shuffle: &shuffle}); err != nil {
		t.Fatalf("the map task failed: %v", err)
	}
	if n := tc.Figures().ShufflePushes; n != 0 {
		t.Errorf("%d pushes counted; none went through", n)
	}
	if missing := c.Shuffles().Missing(shuffle, 1); len(missing) != 0 {
		t.Errorf("map output missing after the pushes were given up: %v", missing)
	}
}

// knower is a reducer's Remote that knows which buckets are empty, as the
// map tasks said (TaskContext.EmptyBuckets, which a master passes on).
type knower struct {
	peerStore
	empty map[int][]byte // map partition -> its EmptyBuckets
}

func (k *knower) EmptyBucket(_ rdd.ID, m, r int) bool { return rdd.BucketEmpty(k.empty[m], r) }

// A map task says which of its buckets are empty and pushes none of them;
// a reader told so fetches none of them either, and reads what one
// process would.
func TestEmptyBucketsAreNeitherPushedNorFetched(t *testing.T) {
	// Four map partitions of three keys each, eight reduce partitions:
	// most buckets are empty.
	build := func(c *rdd.Context) *rdd.Dataset[rdd.Pair[int, int]] {
		var xs []rdd.Pair[int, int]
		for i := range 12 {
			xs = append(xs, rdd.Pair[int, int]{Key: i % 5, Value: i})
		}
		return rdd.ReduceByKey(rdd.Parallelize(c, xs, 4), func(a, b int) int { return a + b }, 8)
	}
	g := newPushRig(t, build)
	says := map[int][]byte{}
	var nonEmpty []string
	for m := range g.dep.Parent.NumPartitions {
		tc := g.runMap(t, m, slices.Repeat([]string{"elsewhere"}, 8)) // pushes fail: the reader fetches
		says[m] = tc.EmptyBuckets()
		for r := range 8 {
			v, ok := g.mapper.Shuffles().Bucket(g.shuffle, m, r)
			if !ok {
				t.Fatalf("bucket %d/%d not stored", m, r)
			}
			empty := len(v.([]rdd.Pair[int, int])) == 0
			if rdd.BucketEmpty(says[m], r) != empty {
				t.Errorf("map task %d says bucket %d empty: %v; it holds nothing: %v", m, r, !empty, empty)
			}
			if !empty {
				nonEmpty = append(nonEmpty, fmt.Sprintf("elsewhere m%d r%d", m, r))
			}
		}
	}
	slices.Sort(g.push.pushes)
	slices.Sort(nonEmpty)
	if !slices.Equal(g.push.pushes, nonEmpty) {
		t.Errorf("pushes %q, want the non-empty buckets %q", g.push.pushes, nonEmpty)
	}
	if len(nonEmpty) >= 4*8/2 {
		t.Fatalf("%d of 32 buckets hold records: the test needs most empty", len(nonEmpty))
	}
	var fetched int
	for r := range g.rd.NumPartitions() {
		from := &knower{peerStore: peerStore{c: g.mapper}, empty: says}
		g.runReduce(t, r, from, func(a, b rdd.Pair[int, int]) int { return a.Key - b.Key })
		fetched += int(from.fetches.Load())
	}
	if fetched != len(nonEmpty) {
		t.Errorf("the readers fetched %d buckets, want the %d that hold records", fetched, len(nonEmpty))
	}
}
