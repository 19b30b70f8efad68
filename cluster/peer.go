package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dstream/dstream/block"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/rdd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// chunkSize is the size of the pieces a bucket or block is streamed in.
const chunkSize = 1 << 20

// Stores is what a process serves to its peers: its block store and its
// shuffle store (package block and shuffle implement them).
type Stores struct {
	Blocks   rdd.BlockStore
	Shuffles rdd.ShuffleStore
	// Checkpoint, if set, is served to peers (the master's checkpoint
	// store, for a job with no checkpoint location: objects.go).
	Checkpoint checkpoint.Store
}

// TaskRunner runs a task the master sent: a worker's side of RunTask.
type TaskRunner interface {
	RunTask(ctx context.Context, req *clusterpb.RunTaskRequest) (*clusterpb.RunTaskResponse, error)
}

// PeerServer serves a process's buckets and blocks to its peers, stores
// replicas they send, and (on a worker) runs the master's tasks.
type PeerServer struct {
	clusterpb.UnimplementedPeerServer
	stores    Stores
	tasks     TaskRunner     // nil on the master
	receivers ReceiverRunner // nil on the master
}

// ReceiverRunner runs receivers the master places: a worker's side of
// StartReceiver and StopReceiver.
type ReceiverRunner interface {
	StartReceiver(ctx context.Context, req *clusterpb.StartReceiverRequest) (*clusterpb.StartReceiverResponse, error)
	StopReceiver(ctx context.Context, req *clusterpb.StopReceiverRequest) (*clusterpb.StopReceiverResponse, error)
}

// NewPeerServer returns the data-plane service of a process holding stores;
// tasks is nil on the master.
func NewPeerServer(stores Stores, tasks TaskRunner) *PeerServer {
	ps := &PeerServer{stores: stores, tasks: tasks}
	if r, ok := tasks.(ReceiverRunner); ok {
		ps.receivers = r
	}
	return ps
}

// StartReceiver implements clusterpb.PeerServer.
func (p *PeerServer) StartReceiver(ctx context.Context, req *clusterpb.StartReceiverRequest) (*clusterpb.StartReceiverResponse, error) {
	if p.receivers == nil {
		return nil, status.Error(codes.Unimplemented, "this process runs no receivers for peers")
	}
	return p.receivers.StartReceiver(ctx, req)
}

// StopReceiver implements clusterpb.PeerServer.
func (p *PeerServer) StopReceiver(ctx context.Context, req *clusterpb.StopReceiverRequest) (*clusterpb.StopReceiverResponse, error) {
	if p.receivers == nil {
		return nil, status.Error(codes.Unimplemented, "this process runs no receivers for peers")
	}
	return p.receivers.StopReceiver(ctx, req)
}

// Releaser is a TaskRunner its master can release (an optional
// capability): the master is stopping gracefully, so the worker exits.
type Releaser interface {
	Release(ctx context.Context, req *clusterpb.ReleaseRequest) (*clusterpb.ReleaseResponse, error)
}

// Release implements clusterpb.PeerServer.
func (p *PeerServer) Release(ctx context.Context, req *clusterpb.ReleaseRequest) (*clusterpb.ReleaseResponse, error) {
	r, ok := p.tasks.(Releaser)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this process has no master to be released by")
	}
	return r.Release(ctx, req)
}

// Release tells the worker at addr that its master, of session, is
// stopping: it exits cleanly, at once, or, with a positive handover, once
// no master other than session has taken it within handover (another may
// take the job over). It waits at most timeout.
//
// Like every peer call, it is sent once more on a new connection when the
// pooled one turns out reset (call): a worker that rejoined this master
// may have left a dead connection in the pool.
func (ps *Peers) Release(ctx context.Context, addr, reason, session string, handover, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := &clusterpb.ReleaseRequest{Reason: reason, Session: session}
	if handover > 0 {
		req.Handover = durationpb.New(handover)
	}
	return ps.call(ctx, addr, func(c clusterpb.PeerClient) error {
		_, err := c.Release(ctx, req)
		return err
	})
}

// ReceiverRates is a ReceiverRunner that can also change a receiver's rate
// (an optional capability).
type ReceiverRates interface {
	SetReceiverRate(ctx context.Context, req *clusterpb.SetReceiverRateRequest) (*clusterpb.SetReceiverRateResponse, error)
}

// SetReceiverRate implements clusterpb.PeerServer.
func (p *PeerServer) SetReceiverRate(ctx context.Context, req *clusterpb.SetReceiverRateRequest) (*clusterpb.SetReceiverRateResponse, error) {
	r, ok := p.receivers.(ReceiverRates)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this process sets no receiver rates for peers")
	}
	return r.SetReceiverRate(ctx, req)
}

// RunTask implements clusterpb.PeerServer. The task's figures, which
// rdd.Lineage.Execute stores where rdd.WithFigures asks, go back with its
// result or failure (none when the TaskRunner never ran it).
func (p *PeerServer) RunTask(ctx context.Context, req *clusterpb.RunTaskRequest) (*clusterpb.RunTaskResponse, error) {
	if p.tasks == nil {
		return nil, status.Error(codes.Unimplemented, "this process runs no tasks from peers")
	}
	fig := rdd.NotMeasured
	resp, err := p.tasks.RunTask(rdd.WithFigures(ctx, &fig), req)
	if resp != nil && resp.Figures == nil && fig != rdd.NotMeasured {
		resp.Figures = figuresToProto(fig)
	}
	return resp, err
}

// FetchBucket implements clusterpb.PeerServer.
func (p *PeerServer) FetchBucket(req *clusterpb.FetchBucketRequest, stream grpc.ServerStreamingServer[clusterpb.FetchBucketResponse]) error {
	id := idFromProto(req.GetShuffle())
	v, ok := p.stores.Shuffles.Bucket(id, int(req.GetMapPartition()), int(req.GetReducePartition()))
	if !ok {
		return status.Errorf(codes.NotFound, "shuffle %s map output %d is not held here", id, req.GetMapPartition())
	}
	b, err := rdd.EncodeBlock(v)
	if err != nil {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return sendChunks(b, func(c []byte) error { return stream.Send(&clusterpb.FetchBucketResponse{Data: c}) })
}

// bucketAdopter is the optional capability of a shuffle store that keeps a
// bucket another process pushed (shuffle.Store.PutBucket).
type bucketAdopter interface {
	PutBucket(shuffle rdd.ID, mapPart, reduce int, v any) error
}

// PushBucket implements clusterpb.PeerServer: the bucket is kept encoded
// (rdd.Encoded), as a fetched one arrives, and decoded by its reader.
func (p *PeerServer) PushBucket(ctx context.Context, req *clusterpb.PushBucketRequest) (*clusterpb.PushBucketResponse, error) {
	st, ok := p.stores.Shuffles.(bucketAdopter)
	switch {
	case !ok:
		return nil, status.Error(codes.Unimplemented, "this process keeps no pushed buckets")
	case len(req.GetData()) > rdd.MaxPushedBucket:
		return nil, status.Errorf(codes.InvalidArgument, "a pushed bucket of %d bytes; at most %d", len(req.GetData()), rdd.MaxPushedBucket)
	}
	id := idFromProto(req.GetShuffle())
	if err := st.PutBucket(id, int(req.GetMapPartition()), int(req.GetReducePartition()), rdd.Encoded(req.GetData())); err != nil {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	return &clusterpb.PushBucketResponse{}, nil
}

// FetchBlock implements clusterpb.PeerServer.
func (p *PeerServer) FetchBlock(req *clusterpb.FetchBlockRequest, stream grpc.ServerStreamingServer[clusterpb.FetchBlockResponse]) error {
	v, ok := p.stores.Blocks.Get(req.GetKey())
	if !ok {
		return status.Errorf(codes.NotFound, "block %s is not held here", req.GetKey())
	}
	b, err := rdd.EncodeBlock(v)
	if err != nil {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return sendChunks(b, func(c []byte) error { return stream.Send(&clusterpb.FetchBlockResponse{Data: c}) })
}

// sendChunks sends b in pieces of at most chunkSize (one empty piece for an
// empty b).
func sendChunks(b []byte, send func([]byte) error) error {
	for first := true; first || len(b) > 0; first = false {
		n := min(len(b), chunkSize)
		if err := send(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// blockWaiter is a block store that can wait for room (block.Store).
type blockWaiter interface {
	PutWait(ctx context.Context, key string, v any, size int64, class block.Class) error
}

// PutBlock implements clusterpb.PeerServer: the replica is kept encoded
// (rdd.Encoded) and decoded by the task that reads it.
func (p *PeerServer) PutBlock(stream grpc.ClientStreamingServer[clusterpb.PutBlockRequest, clusterpb.PutBlockResponse]) error {
	var key, class string
	var data []byte
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if key == "" {
			key, class = m.GetKey(), m.GetClass()
		}
		data = appendChunk(data, m.GetData())
	}
	var cls block.Class
	switch class {
	case "input":
		cls = block.Input
	case "state":
		cls = block.State
	default:
		return status.Errorf(codes.InvalidArgument, "block class %q: want input or state", class)
	}
	if key == "" {
		return status.Error(codes.InvalidArgument, "a block needs a key")
	}
	var err error
	if w, ok := p.stores.Blocks.(blockWaiter); ok && cls == block.Input {
		err = w.PutWait(stream.Context(), key, rdd.Encoded(data), int64(len(data)), cls)
	} else {
		err = p.stores.Blocks.Put(key, rdd.Encoded(data), int64(len(data)), cls)
	}
	if err != nil {
		return status.Errorf(codes.ResourceExhausted, "block %s: %v", key, err)
	}
	return stream.SendAndClose(&clusterpb.PutBlockResponse{})
}

// Peers keeps one client connection per peer address.
type Peers struct {
	opts []grpc.DialOption
	net  Network

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool // Close ran: no connection is made any more
}

// NewPeers returns a pool whose connections present secret, over mutual
// TLS when t is set, dialed over n (TCP when nil).
func NewPeers(secret []byte, t *TLS, n Network) *Peers {
	return &Peers{opts: dialOptions(secret, t), net: n, conns: map[string]*grpc.ClientConn{}}
}

// errPeersClosed is what a connection asked of a closed pool fails with.
var errPeersClosed = errors.New("the process is stopping (its connections are closed)")

// Conn returns the connection to addr, creating it on first use (an error
// once Close has run).
func (ps *Peers) Conn(addr string) (*grpc.ClientConn, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if c, ok := ps.conns[addr]; ok {
		return c, nil
	}
	if ps.closed {
		// A late call (a task, a copy being made) as its process stops:
		// a connection made now would never be closed.
		return nil, fmt.Errorf("cluster: peer %s: %w", addr, errPeersClosed)
	}
	c, err := newClient(addr, ps.net, ps.opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer %s: %w", addr, err)
	}
	ps.conns[addr] = c
	return c, nil
}

// Reachable reports whether addr's process takes a connection within
// timeout. A call that failed with UNAVAILABLE met a broken connection: a
// dead process refuses the next one at once, while a reset link (or a
// lost packet's timeout) leaves a live process that answers.
//
// It dials a connection of its own, closed before it returns: the pool's
// may be gone (the peer dropped) or may remember an earlier failure.
func (ps *Peers) Reachable(ctx context.Context, addr string, timeout time.Duration) bool {
	c, err := newClient(addr, ps.net, ps.opts)
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.Connect()
	for {
		switch st := c.GetState(); st {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		default:
			if !c.WaitForStateChange(ctx, st) {
				return false
			}
		}
	}
}

// Remote returns what reads blocks from their holders for the process at
// self (the master: it reads to keep copies of what lost workers held).
func (ps *Peers) Remote(self string) rdd.Remote {
	return &remote{peers: ps, self: self, mapOutput: func(rdd.ID, int) string { return "" }}
}

// Redial makes the pool's connection to addr, if it waits out a failed
// attempt's backoff (failing every call at once meanwhile), try again now:
// after a probe found the peer reachable.
func (ps *Peers) Redial(addr string) {
	ps.mu.Lock()
	c := ps.conns[addr]
	ps.mu.Unlock()
	if c != nil {
		c.ResetConnectBackoff()
	}
}

// Peer returns the data-plane client of addr.
func (ps *Peers) Peer(addr string) (clusterpb.PeerClient, error) {
	c, err := ps.Conn(addr)
	if err != nil {
		return nil, err
	}
	return clusterpb.NewPeerClient(c), nil
}

// Drop closes the connection to addr (a lost peer).
func (ps *Peers) Drop(addr string) {
	ps.mu.Lock()
	c := ps.conns[addr]
	delete(ps.conns, addr)
	ps.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Close closes every connection.
func (ps *Peers) Close() {
	ps.mu.Lock()
	conns := ps.conns
	ps.conns = map[string]*grpc.ClientConn{}
	ps.closed = true
	ps.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Put stores an encoded replica of block key on the peer at addr.
func (ps *Peers) Put(ctx context.Context, addr, key, class string, data []byte) error {
	pc, err := ps.Peer(addr)
	if err != nil {
		return err
	}
	stream, err := pc.PutBlock(ctx)
	if err != nil {
		return fmt.Errorf("cluster: replicating block %s to %s: %w", key, addr, err)
	}
	first := true
	err = sendChunks(data, func(c []byte) error {
		m := &clusterpb.PutBlockRequest{Data: c}
		if first {
			m.Key, m.Class, first = key, class, false
		}
		return stream.Send(m)
	})
	if err == nil || err == io.EOF {
		_, err = stream.CloseAndRecv()
	}
	if err != nil {
		return fmt.Errorf("cluster: replicating block %s to %s: %w", key, addr, err)
	}
	return nil
}

// receive gathers a streamed bucket or block.
func receive[M interface{ GetData() []byte }](recv func() (M, error)) ([]byte, error) {
	var out []byte
	for {
		m, err := recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = appendChunk(out, m.GetData())
	}
}

// appendChunk appends a received piece to what came before it. The first
// piece is taken as it is, not copied: an unmarshalled message owns its
// bytes, and most buckets, blocks and objects come in one piece.
func appendChunk(out, c []byte) []byte {
	if out == nil {
		return c
	}
	return append(out, c...)
}

// notHeld wraps a NOT_FOUND answer in rdd.ErrNotHeld.
func notHeld(addr string, err error) error {
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%w (%s: %s)", rdd.ErrNotHeld, addr, status.Convert(err).Message())
	}
	return &rdd.PeerError{Addr: addr, Err: err}
}

// InputBlockPrefix begins the key of every input block (a receiver's, a
// queue's): the blocks a master keeps copies of when their holders are
// lost.
const InputBlockPrefix = "input_"

// remote is the rdd.Remote of a task: buckets come from where the master
// said the map outputs live, blocks from the locations the reader names.
type remote struct {
	peers *Peers
	self  string
	// fallback returns the address tried after an input block's named
	// locations fail: the current master, which keeps a copy of the input
	// blocks a lost worker held (nil: none).
	fallback func() string
	// mapOutput returns the address holding map output m of shuffle.
	mapOutput func(shuffle rdd.ID, m int) string
	// empty reports whether bucket r of map output m of shuffle is known
	// to be empty (nil: none is).
	empty func(shuffle rdd.ID, m, r int) bool
}

// EmptyBucket implements rdd.EmptyBucketer.
func (r *remote) EmptyBucket(shuffle rdd.ID, m, reduce int) bool {
	return r.empty != nil && r.empty(shuffle, m, reduce)
}

func (r *remote) Bucket(ctx context.Context, shuffle rdd.ID, m, reduce int) ([]byte, error) {
	addr := r.mapOutput(shuffle, m)
	switch addr {
	case "":
		return nil, fmt.Errorf("%w: no process is known to hold it", rdd.ErrNotHeld)
	case r.self:
		return nil, fmt.Errorf("%w: evicted from this process (%s)", rdd.ErrNotHeld, r.self)
	}
	var b []byte
	err := r.peers.call(ctx, addr, func(pc clusterpb.PeerClient) error {
		stream, err := pc.FetchBucket(ctx, &clusterpb.FetchBucketRequest{Shuffle: idToProto(shuffle), MapPartition: int32(m), ReducePartition: int32(reduce)})
		if err == nil {
			b, err = receive(stream.Recv)
		}
		return err
	})
	if err != nil {
		return nil, notHeld(addr, err)
	}
	return b, nil
}

// PushBucket implements rdd.BucketPusher: one call, not tried again (a
// push is a hint; its reader fetches the bucket when it is not there).
func (r *remote) PushBucket(ctx context.Context, addr string, shuffle rdd.ID, mapPart, reduce int, data []byte) error {
	pc, err := r.peers.Peer(addr)
	if err != nil {
		return err
	}
	_, err = pc.PushBucket(ctx, &clusterpb.PushBucketRequest{Shuffle: idToProto(shuffle), MapPartition: int32(mapPart), ReducePartition: int32(reduce), Data: data})
	return err
}

// pushTargets decodes RunTaskRequest's push_peers and push_to: each reduce
// partition's peer address, "" for none; nil when the master sent none or
// sent them malformed (a push is a hint: none is always right).
func pushTargets(peers []string, to []int32) []string {
	if len(to) == 0 {
		return nil
	}
	out := make([]string, len(to))
	for r, i := range to {
		switch {
		case i == 0:
		case i < 0 || int(i) > len(peers):
			return nil
		default:
			out[r] = peers[i-1]
		}
	}
	return out
}

// call calls f with addr's client, and once more when f fails with
// UNAVAILABLE but a new connection to addr succeeds (a reset link to a
// live peer, whose pooled connection would otherwise fail every call
// through gRPC's reconnection backoff).
//
// When the new connection fails too, the error wraps errPeerDown.
func (ps *Peers) call(ctx context.Context, addr string, f func(clusterpb.PeerClient) error) error {
	for attempt := 0; ; attempt++ {
		pc, err := ps.Peer(addr)
		if err != nil {
			return err
		}
		err = f(pc)
		if err == nil || status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return err
		}
		if !ps.Reachable(ctx, addr, probeTimeout) {
			if ctx.Err() != nil {
				return err // cancelled while probing: that says nothing of the peer
			}
			return fmt.Errorf("%w: %w", errPeerDown, err)
		}
		ps.Redial(addr)
		if attempt == 1 {
			return err
		}
	}
}

// errPeerDown marks a call's UNAVAILABLE error when a new connection to the
// peer failed too: the process is gone or cut off.
var errPeerDown = errors.New("unreachable")

func (r *remote) Block(ctx context.Context, key string, locations []string) ([]byte, error) {
	var errs []error
	if r.fallback != nil && strings.HasPrefix(key, InputBlockPrefix) {
		if fb := r.fallback(); fb != "" && !slices.Contains(locations, fb) {
			locations = append(locations[:len(locations):len(locations)], fb)
		}
	}
	for _, addr := range locations {
		if addr == r.self || addr == "" {
			continue
		}
		var b []byte
		err := r.peers.call(ctx, addr, func(pc clusterpb.PeerClient) error {
			stream, err := pc.FetchBlock(ctx, &clusterpb.FetchBlockRequest{Key: key})
			if err == nil {
				b, err = receive(stream.Recv)
			}
			return err
		})
		if err == nil {
			return b, nil
		}
		errs = append(errs, notHeld(addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: no other process holds it (locations %v)", rdd.ErrNotHeld, locations)
	}
	return nil, errors.Join(errs...)
}

func idToProto(id rdd.ID) *clusterpb.DatasetID {
	return &clusterpb.DatasetID{Op: id.Op, Time: id.Time, Seq: id.Seq}
}

func idFromProto(p *clusterpb.DatasetID) rdd.ID {
	return rdd.ID{Op: p.GetOp(), Time: p.GetTime(), Seq: p.GetSeq()}
}
