package dstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/simnet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// simFaults are one seed's faults: a schedule of crashes, partitions and
// connection resets at virtual times, fixed by the seed before the run
// starts, and per-message faults (latency, a call's request or response
// lost, a call sent twice) decided by hashing the seed with the message,
// not by when it is sent, so that goroutine interleavings do not change
// which messages are hit.
type simFaults struct {
	seed   uint64
	events []simEvent
	// per unary call, out of 1000: its request lost, its response lost,
	// sent twice
	dropRequest, dropResponse, duplicate uint64
	slowHost                             string // one host whose links are slower
	storeFail                            uint64 // per 1000 writes of state checkpoints, failed
	// masterCrash is when the active master's host crashes, in the runs
	// with a standby master (simRunFor); other runs ignore it.
	masterCrash time.Duration

	mu   sync.Mutex
	sent map[string]int // identical messages sent so far (the n-th is hashed with n)
	hits []string       // the message faults that struck, for a failing seed's report
}

// simEvent is one scheduled fault.
type simEvent struct {
	at   time.Duration // after the start time
	kind string        // crash, partition, reset
	a, b string        // hosts
	for_ time.Duration // how long a crash or partition lasts
}

func (e simEvent) String() string {
	switch e.kind {
	case "crash":
		return fmt.Sprintf("%v crash %s for %v", e.at, e.a, e.for_)
	case "partition":
		return fmt.Sprintf("%v partition %s-%s for %v", e.at, e.a, e.b, e.for_)
	}
	return fmt.Sprintf("%v %s %s-%s", e.at, e.kind, e.a, e.b)
}

var simHosts = []string{"master", "w1", "w2", "w3"}

// simLossSpacing is how far apart two worker losses are at least.
const simLossSpacing = 4 * time.Second

// newSimFaults draws seed's faults for a run of the given length.
func newSimFaults(seed uint64, length time.Duration) *simFaults {
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))
	f := &simFaults{seed: seed, sent: map[string]int{},
		dropRequest: uint64(rng.IntN(15)), dropResponse: uint64(rng.IntN(15)), duplicate: uint64(rng.IntN(30))}
	if rng.IntN(2) == 0 {
		f.slowHost = simHosts[rng.IntN(len(simHosts))]
	}
	at := func() time.Duration { return time.Duration(rng.Int64N(int64(length))) }
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	pair := func() (string, string) {
		i := rng.IntN(len(simHosts))
		j := (i + 1 + rng.IntN(len(simHosts)-1)) % len(simHosts)
		return simHosts[i], simHosts[j]
	}
	// Input is stored on two workers: the cluster survives one loss at a
	// time, and a second once what the first lost is no longer needed
	// (the input a window or the state since its last checkpoint reads).
	var crashes []time.Duration
	for range rng.IntN(3) {
		t := at()
		if slices.ContainsFunc(crashes, func(u time.Duration) bool { return (t - u).Abs() < simLossSpacing }) {
			continue
		}
		crashes = append(crashes, t)
		f.events = append(f.events, simEvent{at: t, kind: "crash", a: simHosts[1+rng.IntN(3)], for_: between(200*time.Millisecond, 3*time.Second)})
	}
	for range rng.IntN(3) {
		a, b := pair()
		f.events = append(f.events, simEvent{at: at(), kind: "partition", a: a, b: b, for_: between(100*time.Millisecond, 4*time.Second)})
	}
	for range rng.IntN(5) {
		a, b := pair()
		f.events = append(f.events, simEvent{at: at(), kind: "reset", a: a, b: b})
	}
	slices.SortStableFunc(f.events, func(x, y simEvent) int { return int(x.at - y.at) })
	f.storeFail = uint64(rng.IntN(3)) * 60 // drawn after the rest: the schedules above stay those of earlier versions
	f.masterCrash = between(length/4, length*3/4)
	return f
}

// String is the seed's schedule, for a failure's report.
func (f *simFaults) String() string {
	if f == nil {
		return "no faults"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: per 1000 calls %d requests lost, %d responses lost, %d sent twice; slow host %q; per 1000 state checkpoint writes %d failed; with a standby, the master crashes at %v\n",
		f.seed, f.dropRequest, f.dropResponse, f.duplicate, f.slowHost, f.storeFail, f.masterCrash)
	for _, e := range f.events {
		fmt.Fprintln(&b, " ", e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(&b, "  %d message faults struck", len(f.hits))
	if n := len(f.hits); n > 0 {
		fmt.Fprintf(&b, ", the last: %s", strings.Join(f.hits[max(0, n-10):], "; "))
	}
	return b.String()
}

// hash mixes the seed with parts.
func (f *simFaults) hash(parts ...any) uint64 {
	h := fnv.New64a()
	binary.Write(h, binary.LittleEndian, f.seed)
	for _, p := range parts {
		fmt.Fprint(h, p, "\x00")
	}
	return h.Sum64()
}

// latency is a write's one-way delay: 0.1-2 ms on most links, up to 60 ms
// more to and from the slow host.
func (f *simFaults) latency(from, to string, k, n int) time.Duration {
	d := 100*time.Microsecond + time.Duration(f.hash("lat", from, to, k, n)%1900)*time.Microsecond
	if f.slowHost != "" && (from == f.slowHost || to == f.slowHost) {
		d += time.Duration(f.hash("slow", from, to, k)%60) * time.Millisecond
	}
	return d
}

// latencyFunc is the network's latency: none without faults.
func (f *simFaults) latencyFunc() func(from, to string, k, n int) time.Duration {
	if f == nil {
		return nil
	}
	return f.latency
}

// unary is a client interceptor of calls from host: it loses a request or
// a response, or sends a call twice, as the seed decides for the message.
func (f *simFaults) unary(host string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		to := strings.TrimPrefix(cc.Target(), "passthrough:///")
		body, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req.(proto.Message))
		key := fmt.Sprint(host, to, method, f.hash(body))
		f.mu.Lock()
		n := f.sent[key]
		f.sent[key]++
		f.mu.Unlock()
		u := f.hash("call", key, n) % 1000
		short := method[strings.LastIndexByte(method, '/')+1:]
		hit := func(what string) {
			f.mu.Lock()
			f.hits = append(f.hits, fmt.Sprintf("%v %s %s->%s %s", time.Now().Format("05.000"), what, host, to, short))
			if len(f.hits) > 1000 {
				f.hits = slices.Delete(f.hits, 0, 500)
			}
			f.mu.Unlock()
		}
		switch {
		case u < f.dropRequest:
			hit("request lost")
			return status.Error(codes.Unavailable, "sim: request lost")
		case u < f.dropRequest+f.dropResponse:
			hit("response lost")
			if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
				return err
			}
			return status.Error(codes.Unavailable, "sim: response lost")
		case u < f.dropRequest+f.dropResponse+f.duplicate:
			hit("sent twice")
			_ = invoker(ctx, method, req, proto.Clone(reply.(proto.Message)), cc, opts...)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// simHost is a host's view of the network with the seed's message faults
// on its calls (cluster.DialOptioner).
type simHost struct {
	*simnet.Host
	faults *simFaults
	calls  *simCalls
}

func (h simHost) DialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if h.calls != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(h.calls.unary(h.Name())), grpc.WithChainStreamInterceptor(h.calls.stream(h.Name())))
	}
	if h.faults != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(h.faults.unary(h.Name())))
	}
	return opts
}

// simCalls counts the calls each host makes and is sent: unary calls and
// streams (a stream counts once, whatever it carries).
type simCalls struct {
	mu             sync.Mutex
	made, received map[string]int64 // by host
}

func newSimCalls() *simCalls {
	return &simCalls{made: map[string]int64{}, received: map[string]int64{}}
}

func (c *simCalls) count(from string, cc *grpc.ClientConn) {
	to, _, _ := strings.Cut(strings.TrimPrefix(cc.Target(), "passthrough:///"), ":")
	c.mu.Lock()
	c.made[from]++
	c.received[to]++
	c.mu.Unlock()
}

// of returns how many calls host has made and been sent so far.
func (c *simCalls) of(host string) (made, received int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made[host], c.received[host]
}

func (c *simCalls) unary(host string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		c.count(host, cc)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func (c *simCalls) stream(host string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c.count(host, cc)
		return streamer(ctx, desc, cc, method, opts...)
	}
}

// inject applies the schedule from zero on, until stop is closed.
func (cl *simCluster) inject(zero time.Time, stop <-chan struct{}) {
	type action struct {
		at time.Duration
		do func()
	}
	var acts []action
	for _, e := range cl.faults.events {
		switch e.kind {
		case "crash":
			acts = append(acts, action{e.at, func() { cl.crash(e.a) }}, action{e.at + e.for_, func() { cl.restart(e.a) }})
		case "partition":
			acts = append(acts, action{e.at, func() { cl.net.Partition(e.a, e.b) }}, action{e.at + e.for_, func() { cl.net.Heal(e.a, e.b) }})
		case "reset":
			acts = append(acts, action{e.at, func() { cl.net.Reset(e.a, e.b) }})
		}
	}
	slices.SortStableFunc(acts, func(x, y action) int { return int(x.at - y.at) })
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		for _, a := range acts {
			t := time.NewTimer(time.Until(zero.Add(a.at)))
			select {
			case <-t.C:
				a.do()
			case <-stop:
				t.Stop()
				return
			}
		}
	}()
}

// openStore opens the folder dir as a checkpoint store with the seed's
// storage faults: a write of a state checkpoint's part or commit fails as
// the seed decides for its name (and how many times it was written). Nil
// when the seed injects none.
func (f *simFaults) openStore() func(dir string) (checkpoint.Store, error) {
	if f == nil || f.storeFail == 0 {
		return nil
	}
	return func(dir string) (checkpoint.Store, error) {
		d, err := checkpoint.OpenDir(dir)
		if err != nil {
			return nil, err
		}
		return &simStore{FaultStore: &checkpoint.FaultStore{Store: d, Inject: f.storeInject}, dir: d}, nil
	}
}

func (f *simFaults) storeInject(op checkpoint.Op, name string) error {
	if op != checkpoint.OpPut || !strings.HasPrefix(name, "state/") {
		return nil
	}
	f.mu.Lock()
	n := f.sent["store "+name]
	f.sent["store "+name]++
	f.mu.Unlock()
	if f.hash("store", name, n)%1000 >= f.storeFail {
		return nil
	}
	f.mu.Lock()
	f.hits = append(f.hits, fmt.Sprintf("%v write of %s failed", time.Now().Format("05.000"), name))
	f.mu.Unlock()
	return fmt.Errorf("%w: sim: write of %s failed", checkpoint.ErrInjected, name)
}

// simStore is a checkpoint folder behind a FaultStore, closed with its
// context.
type simStore struct {
	*checkpoint.FaultStore
	dir *checkpoint.Dir
}

func (s *simStore) Close() error { return s.dir.Close() }

// GetVersion and PutIf make the store checkpoint.Conditional, as the
// folder it wraps is (the master's lease, the fenced log): the seed's
// faults strike state checkpoints only.
func (s *simStore) GetVersion(ctx context.Context, name string) ([]byte, string, error) {
	return s.dir.GetVersion(ctx, name)
}

func (s *simStore) PutIf(ctx context.Context, name string, data []byte, version string) (string, error) {
	return s.dir.PutIf(ctx, name, data, version)
}
