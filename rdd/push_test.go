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

// A map task pushes each bucket to the process its PushTo names (not to
// itself, nowhere for ""), and a reduce task there reads the pushed buckets
// in place: no fetch, none counted as a remote read, the same records as
// in one process. A failed push costs nothing but the fetch it would have
// saved.
func TestMapTasksPushBucketsToTheirReaders(t *testing.T) {
	build := wordSums(3000, 4, 4, true)
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, _ := newCtx(t, 2, 64<<20)
	local, _ := newCtx(t, 2, 64<<20)
	md, rd := build(mapper), build(reducer)
	shuffle := md.ID()
	lin := rdd.IndexLineage(md.Node())
	dep := lin.Shuffle(shuffle)
	push := &pusher{peerStore: peerStore{c: mapper}, reducer: reducer}
	for m := range dep.Parent.NumPartitions {
		tc := rdd.NewTaskContext(bg, 1, 0, m, 0)
		tc.Remote, tc.Location = push, "mapper"
		// Partition 0 to the reducer, 1 to nobody, 2 to this very process,
		// 3 to a process that is gone.
		tc.PushTo = []string{"reducer", "", "mapper", "gone"}
		if _, err := lin.Execute(tc, rdd.TaskSpec{Dataset: dep.Parent.ID, Partition: m, Shuffle: &shuffle}); err != nil {
			t.Fatal(err)
		}
		if got := tc.Figures().ShufflePushes; got != 1 {
			t.Errorf("map task %d counted %d pushes, want 1 (the failed one not counted)", m, got)
		}
	}
	slices.Sort(push.pushes)
	var want []string
	for m := range 4 {
		want = append(want, fmt.Sprintf("gone m%d r3", m), fmt.Sprintf("reducer m%d r0", m))
	}
	slices.Sort(want)
	if !slices.Equal(push.pushes, want) {
		t.Errorf("pushes %q, want %q", push.pushes, want)
	}
	rlin := rdd.IndexLineage(rd.Node())
	for r := range rd.NumPartitions() {
		from := &peerStore{c: mapper}
		tc := rdd.NewTaskContext(bg, 1, 1, r, 0)
		tc.Remote = from
		res, err := rlin.Execute(tc, rdd.TaskSpec{Dataset: rd.ID(), Partition: r, Result: rdd.KindCollect})
		if err != nil {
			t.Fatal(err)
		}
		fetches, remote := int64(from.fetches.Load()), tc.Figures().ShuffleRemoteReads
		if wantFetches := map[bool]int64{true: 0, false: 4}[r == 0]; fetches != wantFetches || remote != wantFetches {
			t.Errorf("reduce partition %d: %d fetches, %d counted remote reads; want %d", r, fetches, remote, wantFetches)
		}
		localRes, err := local.RunJob(bg, &rdd.Job{Final: build(local).Node(), Partitions: []int{r}, Kind: rdd.KindCollect})
		if err != nil {
			t.Fatal(err)
		}
		got, exp := res.([]rdd.Pair[string, int]), localRes[0].([]rdd.Pair[string, int])
		slices.SortFunc(got, func(a, b rdd.Pair[string, int]) int { return strings.Compare(a.Key, b.Key) })
		slices.SortFunc(exp, func(a, b rdd.Pair[string, int]) int { return strings.Compare(a.Key, b.Key) })
		if !slices.Equal(got, exp) {
			t.Errorf("reduce partition %d: %v, in one process %v", r, got, exp)
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
	done := make(chan error, 1)
	n := 0
	go func() {
		res, err := rdd.IndexLineage(rd.Node()).Execute(tc, rdd.TaskSpec{Dataset: rd.ID(), Partition: 0, Result: rdd.KindCollect})
		if err == nil {
			for _, p := range res.([]rdd.Pair[string, int]) {
				n += p.Value
			}
		}
		done <- err
	}()
	<-peer.waiting // the reader waits for map output 0: evict the pushed copy
	key := fmt.Sprintf("shuffle_%d_%d_%d_%d_%d", shuffle.Op, shuffle.Time, shuffle.Seq, 5, 0)
	if !blocks.Remove(key) {
		t.Fatalf("no block %s: the shuffle store names its blocks otherwise", key)
	}
	close(peer.gate)
	if err := <-done; err != nil {
		t.Fatalf("the reduce task: %v", err)
	}
	if want := 0; n == want {
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
	mapper, _ := newCtx(t, 2, 64<<20)
	reducer, _ := newCtx(t, 2, 64<<20)
	local, _ := newCtx(t, 2, 64<<20)
	md, rd := build(mapper), build(reducer)
	shuffle := md.ID()
	lin := rdd.IndexLineage(md.Node())
	dep := lin.Shuffle(shuffle)
	push := &pusher{peerStore: peerStore{c: mapper}, reducer: reducer}
	says := map[int][]byte{}
	var nonEmpty []string
	for m := range dep.Parent.NumPartitions {
		tc := rdd.NewTaskContext(bg, 1, 0, m, 0)
		tc.Remote, tc.Location = push, "mapper"
		tc.PushTo = slices.Repeat([]string{"elsewhere"}, 8) // pushes fail: the reader fetches
		if _, err := lin.Execute(tc, rdd.TaskSpec{Dataset: dep.Parent.ID, Partition: m, Shuffle: &shuffle}); err != nil {
			t.Fatal(err)
		}
		says[m] = tc.EmptyBuckets()
		for r := range 8 {
			v, ok := mapper.Shuffles().Bucket(shuffle, m, r)
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
	slices.Sort(push.pushes)
	slices.Sort(nonEmpty)
	if !slices.Equal(push.pushes, nonEmpty) {
		t.Errorf("pushes %q, want the non-empty buckets %q", push.pushes, nonEmpty)
	}
	if len(nonEmpty) >= 4*8/2 {
		t.Fatalf("%d of 32 buckets hold records: the test needs most empty", len(nonEmpty))
	}
	rlin := rdd.IndexLineage(rd.Node())
	var fetched int
	for r := range rd.NumPartitions() {
		from := &knower{peerStore: peerStore{c: mapper}, empty: says}
		tc := rdd.NewTaskContext(bg, 1, 1, r, 0)
		tc.Remote = from
		res, err := rlin.Execute(tc, rdd.TaskSpec{Dataset: rd.ID(), Partition: r, Result: rdd.KindCollect})
		if err != nil {
			t.Fatal(err)
		}
		fetched += int(from.fetches.Load())
		localRes, err := local.RunJob(bg, &rdd.Job{Final: build(local).Node(), Partitions: []int{r}, Kind: rdd.KindCollect})
		if err != nil {
			t.Fatal(err)
		}
		got, exp := res.([]rdd.Pair[int, int]), localRes[0].([]rdd.Pair[int, int])
		slices.SortFunc(got, func(a, b rdd.Pair[int, int]) int { return a.Key - b.Key })
		slices.SortFunc(exp, func(a, b rdd.Pair[int, int]) int { return a.Key - b.Key })
		if !slices.Equal(got, exp) {
			t.Errorf("reduce partition %d: %v, in one process %v", r, got, exp)
		}
	}
	if fetched != len(nonEmpty) {
		t.Errorf("the readers fetched %d buckets, want the %d that hold records", fetched, len(nonEmpty))
	}
}
