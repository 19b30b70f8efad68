package rdd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/codec"
)

// Crossing processes. In local[N] every block and shuffle bucket a task
// reads is a typed Go slice in this process's stores, and nothing is ever
// encoded. In a cluster a task may need what another process holds: a map
// output written by another worker, an input block replicated elsewhere, a
// checkpointed partition stored by the worker that computed it. Its
// executor then gives it a Remote (TaskContext.Remote), which fetches the
// encoded records (package codec); the reading code, which knows the
// record type, decodes them. Serving a fetch encodes a stored `any` through
// EncodeBlock, which finds the codec of its dynamic type: every dataset
// and shuffle registers the codec of its record type when it is built, so
// every process of the same program can encode what it stores.

// Remote reads records another process holds. Implementations are the
// cluster's executors; their errors wrap ErrNotHeld when the process asked
// does not hold what was asked for.
type Remote interface {
	// Bucket returns the encoded bucket reduce of map output mapPart of
	// shuffle, from the process that wrote it.
	Bucket(ctx context.Context, shuffle ID, mapPart, reduce int) ([]byte, error)
	// Block returns the encoded block key from one of locations (peer
	// addresses), trying them in order.
	Block(ctx context.Context, key string, locations []string) ([]byte, error)
}

// BucketPusher is the optional capability of a Remote that gives a bucket
// to another process ahead of the task that will read it there.
type BucketPusher interface {
	// PushBucket stores the encoded bucket reduce of map output mapPart of
	// shuffle in the shuffle store of the process at addr.
	PushBucket(ctx context.Context, addr string, shuffle ID, mapPart, reduce int, data []byte) error
}

// EmptyBucketer is the optional capability of a Remote that knows which
// buckets of the map outputs held elsewhere are empty, as their writers
// said (TaskContext.EmptyBuckets): a reader skips those rather than fetch
// nothing. Not knowing is always safe: the bucket is fetched.
type EmptyBucketer interface {
	EmptyBucket(shuffle ID, mapPart, reduce int) bool
}

// MaxPushedBucket is the largest encoded bucket a map task pushes; a larger
// one is fetched by its reader, in pieces.
const MaxPushedBucket = 1 << 20

// ErrNotHeld is wrapped by Remote's errors when the process asked does not
// hold the bucket or block (evicted, or never written there).
var ErrNotHeld = errors.New("not held there")

// Encoded is a block kept encoded (package codec): a replica as it arrived
// from another process, or a block read back from the disk. The code that
// reads it knows the record type and decodes it (DecodeBlock); serving it
// again sends the bytes as they are.
type Encoded = block.Encoded

// blockCodec encodes blocks ([]T held as any) of one record type.
type blockCodec struct {
	encode func(v any) ([]byte, error)
	err    error // the record type has no codec
}

// codecs maps the type of a block ([]T) to its blockCodec.
var codecs sync.Map

// registerCodec makes blocks of T encodable by EncodeBlock. Called when a
// dataset or shuffle of T is built; a type without a codec is remembered with
// the reason, which surfaces only if such a block must cross a process.
func registerCodec[T any]() {
	t := reflect.TypeFor[[]T]()
	if _, ok := codecs.Load(t); ok {
		return
	}
	c, err := codec.For[T]()
	bc := &blockCodec{err: err}
	if err == nil {
		bc.encode = func(v any) ([]byte, error) { return c.Append(nil, v.([]T)) }
	}
	codecs.LoadOrStore(t, bc)
}

// EncodeBlock encodes a stored block (a []T, or an Encoded one) for another
// process.
func EncodeBlock(v any) ([]byte, error) {
	if e, ok := v.(Encoded); ok {
		return e, nil
	}
	bc, ok := codecs.Load(reflect.TypeOf(v))
	if !ok {
		return nil, fmt.Errorf("rdd: no codec is registered for blocks of %T", v)
	}
	c := bc.(*blockCodec)
	if c.err != nil {
		return nil, fmt.Errorf("rdd: blocks of %T cannot cross processes: %w", v, c.err)
	}
	return c.encode(v)
}

// Encode encodes records of T for another process.
func Encode[T any](xs []T) ([]byte, error) {
	registerCodec[T]()
	c, err := codec.For[T]()
	if err != nil {
		return nil, err
	}
	return c.Append(nil, xs)
}

// DecodeBlock returns the records of a stored block: v itself when it is a
// []T, decoded when it is Encoded. Anything else is an error naming both
// types.
func DecodeBlock[T any](v any) ([]T, error) {
	switch v := v.(type) {
	case []T:
		return v, nil
	case Encoded:
		c, err := codec.For[T]()
		if err != nil {
			return nil, err
		}
		return c.Decode(v)
	}
	return nil, fmt.Errorf("block holds %T, want %v", v, reflect.TypeFor[[]T]())
}

// ReadBlock returns the records of block key: from this process's block
// store when it is there, else (in a cluster) fetched from one of
// locations. It fails the task when the block is nowhere to be had.
func ReadBlock[T any](tc *TaskContext, blocks BlockStore, key string, locations []string, what string) []T {
	v, ok := blocks.Get(key)
	if !ok {
		if tc.Remote == nil || len(locations) == 0 {
			tc.Fail(fmt.Errorf("%s: block %s is lost", what, key))
		}
		b, err := tc.Remote.Block(tc.Ctx, key, locations)
		if err != nil {
			tc.Fail(fmt.Errorf("%s: block %s: %w", what, key, err))
		}
		v = Encoded(b)
	}
	xs, err := DecodeBlock[T](v)
	if err != nil {
		tc.Fail(fmt.Errorf("%s: block %s: %w", what, key, err))
	}
	return xs
}

// maxFetchesInFlight bounds the remote buckets a reduce task fetches ahead
// of the one it reads: fetches overlap, and at most this many buckets wait
// in memory.
const maxFetchesInFlight = 4

// prefetch fetches the remote buckets of one reduce partition in map order,
// up to maxFetchesInFlight ahead of the reader.
type prefetch struct {
	dep    *ShuffleDep
	reduce int
	cancel context.CancelFunc
	done   chan struct{}
	slots  []chan fetched // per map partition; nil for one held here or known empty
	tokens chan struct{}
	known  EmptyBucketer // nil when the Remote knows of no empty bucket
}

// empty reports whether map output m's bucket for this reduce partition is
// known to be empty (its writer said so): it is not fetched.
func (p *prefetch) empty(m int) bool {
	return p.known != nil && p.known.EmptyBucket(p.dep.ID, m, p.reduce)
}

type fetched struct {
	b   []byte
	err error
}

func startPrefetch(tc *TaskContext, dep *ShuffleDep, r int) *prefetch {
	ctx, cancel := context.WithCancel(tc.Ctx)
	n := dep.Parent.NumPartitions
	p := &prefetch{dep: dep, reduce: r, cancel: cancel, done: make(chan struct{}), slots: make([]chan fetched, n), tokens: make(chan struct{}, maxFetchesInFlight)}
	store := dep.Parent.ctx.cfg.Shuffles
	if e, ok := tc.Remote.(EmptyBucketer); ok {
		p.known = e
	}
	for m := range n {
		if _, ok := store.Bucket(dep.ID, m, r); !ok && !p.empty(m) {
			p.slots[m] = make(chan fetched, 1)
		}
	}
	go func() {
		defer close(p.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		for m, slot := range p.slots {
			if slot == nil {
				continue
			}
			select {
			case p.tokens <- struct{}{}: // released by get
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				b, err := tc.Remote.Bucket(ctx, dep.ID, m, r)
				slot <- fetched{b, err}
			})
		}
	}()
	return p
}

// skip says the reader found map output m in this process after all (it
// was recomputed here since the prefetch started): a fetch of it, launched
// or not yet, gives its token back when it ends, and nothing waits for it.
func (p *prefetch) skip(m int) {
	slot := p.slots[m]
	if slot == nil {
		return
	}
	go func() {
		select {
		case <-slot:
			<-p.tokens
		case <-p.done:
			// The prefetcher has ended and waited for its fetches: m was
			// fetched (its slot is full) or never launched (no token).
			select {
			case <-slot:
				<-p.tokens
			default:
			}
		}
	}()
}

// get returns map output m's prefetched bucket. A bucket that was here when
// the prefetch started and is gone now was evicted: it is fetched from the
// process holding the map output when that is another (the copy here was
// pushed), and is a fetch failure when it is this one (Remote says so).
func (p *prefetch) get(tc *TaskContext, m int) ([]byte, error) {
	slot := p.slots[m]
	if slot == nil {
		return tc.Remote.Bucket(tc.Ctx, p.dep.ID, m, p.reduce)
	}
	select {
	case f := <-slot:
		<-p.tokens
		return f.b, f.err
	case <-tc.Ctx.Done():
		return nil, tc.Ctx.Err()
	}
}

// stop cancels the fetches still in flight and waits for them.
func (p *prefetch) stop() {
	p.cancel()
	<-p.done
}

// decodeBucket decodes a fetched bucket r of map output m of dep; any
// failure to fetch is a fetch failure, so the scheduler recomputes the map
// output.
func decodeBucket[X any](tc *TaskContext, dep *ShuffleDep, m, r int, b []byte, err error) []X {
	if err != nil {
		if tc.Ctx.Err() != nil {
			tc.Fail(tc.Ctx.Err())
		}
		ff := &FetchFailedError{Shuffle: dep.ID, Map: m, Cause: err}
		if pe := (*PeerError)(nil); errors.As(err, &pe) && tc.Ctx.Err() == nil {
			ff.From, ff.Unreachable = pe.Addr, true
		}
		tc.Fail(ff)
	}
	xs, err := DecodeBlock[X](Encoded(b))
	if err != nil {
		tc.Fail(fmt.Errorf("shuffle %s bucket %d/%d: %w", dep.ID, m, r, err))
	}
	return xs
}

// Results crossing processes: a worker encodes a result task's result, the
// master decodes it with the same dataset's typed face.

// EncodeResult encodes the result of task spec for the process that
// submitted its job.
func (l *Lineage) EncodeResult(spec TaskSpec, v any) ([]byte, error) {
	if spec.Shuffle != nil {
		return nil, nil
	}
	n := l.Find(spec.Dataset)
	if n == nil || n.typed == nil {
		return nil, fmt.Errorf("task %s: no such dataset in the lineage of %s", spec, l.root)
	}
	return n.typed.encodeResult(spec.Result, v)
}

// DecodeResult decodes what EncodeResult encoded, in the submitting process.
func (l *Lineage) DecodeResult(spec TaskSpec, b []byte) (any, error) {
	if spec.Shuffle != nil {
		return nil, nil
	}
	n := l.Find(spec.Dataset)
	if n == nil || n.typed == nil {
		return nil, fmt.Errorf("task %s: no such dataset in the lineage of %s", spec, l.root)
	}
	return n.typed.decodeResult(spec.Result, b)
}

func (d *Dataset[T]) encodeResult(k ResultKind, v any) ([]byte, error) {
	switch k.Name {
	case KindCount.Name:
		return binary.AppendVarint(nil, v.(int64)), nil
	case KindCollect.Name, "take":
		c, err := codec.For[T]()
		if err != nil {
			return nil, fmt.Errorf("results of %s cannot cross processes: %w", d.node, err)
		}
		return c.Append(nil, v.([]T))
	case "output":
		return nil, nil
	case KindCheckpoint.Name:
		return []byte(v.(string)), nil
	case partitionFuncKind:
		pf, err := d.node.ctx.partitionFunc(k.N)
		if err != nil {
			return nil, err
		}
		return pf.encode(v)
	}
	return nil, fmt.Errorf("result kind %q is not a built-in one", k.Name)
}

func (d *Dataset[T]) decodeResult(k ResultKind, b []byte) (any, error) {
	switch k.Name {
	case KindCount.Name:
		n, w := binary.Varint(b)
		if w <= 0 || w != len(b) {
			return nil, fmt.Errorf("count result of %s: %d bytes of garbage", d.node, len(b))
		}
		return n, nil
	case KindCollect.Name, "take":
		c, err := codec.For[T]()
		if err != nil {
			return nil, err
		}
		return c.Decode(b)
	case "output":
		return struct{}{}, nil
	case KindCheckpoint.Name:
		return string(b), nil
	case partitionFuncKind:
		pf, err := d.node.ctx.partitionFunc(k.N)
		if err != nil {
			return nil, err
		}
		return pf.decode(b)
	}
	return nil, fmt.Errorf("result kind %q is not a built-in one", k.Name)
}

// Locality. A task runs best where the blocks it reads are: input blocks
// and checkpointed partitions. PreferredLocations walks from a dataset's
// partition back through narrow dependencies that keep the partition
// number, to the first nodes that know where their partition is stored.

// SetLocations tells where partition p of d is stored (peer addresses), for
// datasets that read stored blocks (inputs).
func (d *Dataset[T]) SetLocations(f func(p int) []string) *Dataset[T] {
	d.node.mu.Lock()
	d.node.locate = f
	d.node.storage.Add(1)
	d.node.mu.Unlock()
	return d
}

// Locations returns where partition p of n is stored, as SetLocations or
// a checkpoint said (nil: unknown, or this process). The slice is n's own,
// shared with every caller: read it, never write to it. (The master reads
// every kept partition's location for every interval's manifest, so this
// allocates nothing.)
func (n *Node) Locations(p int) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.locate == nil {
		return nil
	}
	return n.locate(p)
}

// PreferredLocations returns where partition p of n's input is stored, or
// nil when nothing says: where a kept dataset holds it, else where a
// persisted one was computed (NoteComputed), else the same for the parents
// it is read from one to one, in the order of its dependencies, the first
// that says. Every one-to-one parent is asked, not only the first: a
// window's step reads this interval's shuffled data (which no process
// holds yet) beside the window's previous state and the data leaving it,
// which are kept, and its task belongs with them; placed anywhere, it
// reads them from another process, and the state it keeps moves with it.
func PreferredLocations(n *Node, p int) []string {
	budget := 64 // nodes asked at most
	var find func(n *Node) []string
	find = func(n *Node) []string {
		if budget--; budget < 0 {
			return nil
		}
		n.mu.Lock()
		locate, deps := n.locate, n.deps
		var at string
		if locate == nil && p >= 0 && p < len(n.computedAt) {
			at = n.computedAt[p]
		}
		n.mu.Unlock()
		switch {
		case locate != nil:
			return locate(p) // read where it is: its parents are not
		case at != "":
			return []string{at}
		}
		for _, d := range deps {
			if nd, ok := d.(NarrowDep); ok && nd.Parent.NumPartitions == n.NumPartitions {
				if locs := find(nd.Parent); len(locs) > 0 {
					return locs
				}
			}
		}
		return nil
	}
	return find(n)
}

// NoteComputed tells n's lineage that a task at worker (as the scheduler
// names it) computed partition p of n: the persisted datasets it computed
// or read from its cache there on the way, n and the parents it reads one
// to one (as PreferredLocations follows them) up to a kept, checkpointed or
// shuffled input, hold partition p there now, and a later job's task on
// them is placed there (a keep job after the job that first computed the
// partition) instead of computing it again elsewhere. A hint only: a
// partition evicted since, or never cached (the store was full), is
// computed as before.
func NoteComputed(n *Node, p int, worker string) {
	seen := 0
	var walk func(n *Node)
	walk = func(n *Node) {
		if seen++; seen > 64 || p < 0 || p >= n.NumPartitions {
			return
		}
		n.mu.Lock()
		stored := n.kept || n.locate != nil // read where it is, not computed
		if !stored && n.persisted {
			if n.computedAt == nil {
				n.computedAt = make([]string, n.NumPartitions)
			}
			n.computedAt[p] = worker
		}
		deps := n.deps
		n.mu.Unlock()
		if stored {
			return
		}
		for _, d := range deps {
			if nd, ok := d.(NarrowDep); ok && nd.Parent.NumPartitions == n.NumPartitions {
				walk(nd.Parent)
			}
		}
	}
	walk(n)
}

// InputShuffles returns the shuffles a task computing a partition of n
// reads: those reached from n through narrow dependencies (a stage's
// inputs), each once.
func InputShuffles(n *Node) []*ShuffleDep {
	var out []*ShuffleDep
	seen := takeVisited()
	defer putVisited(seen)
	var walk func(n *Node)
	walk = func(n *Node) {
		if _, ok := seen[n]; ok {
			return
		}
		seen[n] = struct{}{}
		for _, d := range n.Deps() {
			switch d := d.(type) {
			case *ShuffleDep:
				out = append(out, d)
			case NarrowDep:
				walk(d.Parent)
			}
		}
	}
	walk(n)
	return out
}
