package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/cluster"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/received"
	"github.com/dstream/dstream/source"
)

// Receivers on workers. In local-cluster[N] the master places each
// receiver on a worker (round robin), which opens it (binds its port), cuts
// what it takes in into blocks, stores each block, replicates it to one
// other worker and reports it to the master before acknowledging it. The
// master allocates reported blocks to intervals by when they reach it (its
// clock, so the workers' clocks do not matter). A graceful stop stops the
// receivers on their workers, which return once every block is stored and
// reported. A standalone master keeps its receivers: its workers join at
// any time, and a receiver must take records in from the start.

// placeReceivers starts every receiver on a worker of the local cluster.
func (c *Engine) placeReceivers() error {
	i := 0
	for _, in := range c.inputs {
		r, ok := in.(*ReceiverInput)
		if !ok {
			continue
		}
		if err := c.placeReceiver(r, i, ""); err != nil {
			return err
		}
		i++
	}
	return nil
}

// placeReceiver starts receiver r on the alive worker i (round robin),
// never on avoid (a worker just lost), and records where it runs.
func (c *Engine) placeReceiver(r *ReceiverInput, i int, avoid string) error {
	cr := c.cluster
	cr.mu.Lock()
	workers := slices.DeleteFunc(append([]string(nil), cr.alive...), func(w string) bool { return w == avoid })
	cr.mu.Unlock()
	if len(workers) == 0 {
		return errors.New("no worker to run the receivers on")
	}
	at := workers[i%len(workers)]
	pc, err := cr.peers.Peer(at)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	resp, err := pc.StartReceiver(ctx, &clusterpb.StartReceiverRequest{Stream: r.OpID(), Peers: workers})
	cancel()
	if err != nil {
		return fmt.Errorf("receiver %s on worker %s: %w", r.recv.Name(), at, err)
	}
	r.setWorker(at)
	c.rateRemote(r, at)
	if addr := resp.GetAddress(); addr != "" {
		if s, ok := r.recv.(interface{ RunsAt(string) error }); ok {
			if err := s.RunsAt(addr); err != nil {
				return err
			}
		}
	}
	c.log.Info("receiver placed", "stream", r.OpID(), "receiver", r.recv.Name(), "worker", at, "address", resp.GetAddress())
	return nil
}

// replaceReceivers starts the receivers that ran on addr, a worker just
// lost, on the workers left. A socket receiver listens at the address the
// program gives it, which its lost worker freed: senders that reconnect
// (dstream send does) carry on. Blocks the lost worker stored and reported
// are safe on their other copy; records it took in but had not yet stored,
// replicated and reported were never acknowledged.
func (c *Engine) replaceReceivers(addr string) {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if c.cluster == nil || r == nil || r.ctx.Err() != nil {
		return // not running yet (the receivers are being placed), or stopping
	}
	// One loss at a time: a receiver just placed on a worker lost next is
	// seen there by that loss's turn.
	c.cluster.placeMu.Lock()
	defer c.cluster.placeMu.Unlock()
	for i, in := range c.inputs {
		r, ok := in.(*ReceiverInput)
		if !ok || r.worker() != addr {
			continue
		}
		var err error
		for attempt := range 5 {
			if err = c.placeReceiver(r, i+attempt, addr); err == nil {
				break
			}
			if c.RunCtx().Err() != nil {
				return
			}
			time.Sleep(time.Duration(200<<attempt) * time.Millisecond) // the freed port may linger a moment
		}
		if err != nil {
			err = fmt.Errorf("receiver %s lost with worker %s, and not placed again: %w", r.recv.Name(), addr, err)
			c.log.Error("receiver not placed again", "stream", r.OpID(), "err", err)
			r.failed(err, c.cfg.Clock.Now())
			c.bus.Post(listener.ReceiverError{Stream: int(r.OpID()), Err: err})
		}
	}
}

// receiveRemote stands for a receiver running on a worker: when ctx is done
// it stops it there (wherever it runs then), and returns once the worker
// has stored and reported every block it took in.
func (c *Engine) receiveRemote(ctx context.Context, in *ReceiverInput) error {
	<-ctx.Done()
	at := in.worker()
	pc, err := c.cluster.peers.Peer(at)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A hard stop has cancelled the run already: the worker drops what
	// still waits for room rather than wait for intervals that will not run.
	now := c.RunCtx().Err() != nil
	if _, err := pc.StopReceiver(sctx, &clusterpb.StopReceiverRequest{Stream: in.OpID(), Now: now}); err != nil {
		return fmt.Errorf("stopping receiver %s on worker %s: %w", in.recv.Name(), at, err)
	}
	return nil
}

// addRemoteBlock takes a block a receiver on a worker reports.
func (c *Engine) addRemoteBlock(b cluster.BlockReport) error {
	in := c.receiverOf(b.Stream)
	if in == nil {
		return fmt.Errorf("stream %d has no receiver", b.Stream)
	}
	if b.Failure != "" {
		err := fmt.Errorf("receiver %s on worker %s cannot store its blocks: %s", in.recv.Name(), in.worker(), b.Failure)
		c.log.Error("receiver cannot store; stopping the job", "stream", b.Stream, "err", err)
		c.DurableFailed(err)
		return nil
	}
	blk := received.Block{Stream: b.Stream, Key: b.Key, Time: c.cfg.Clock.Now(), Records: int(b.Records), Bytes: b.Bytes, Locations: b.Locations}
	if c.cfg.WriteAheadLog {
		// The block's addition is logged before the answer, which
		// acknowledges it (wal.go). A resent report is logged again; the
		// replay takes it once.
		if err := c.walCommit(blk); err != nil {
			return err
		}
	}
	// A report resent after its answer was lost is taken once.
	if c.tracker.Add(blk) {
		in.written.Add(b.Records)
	}
	return nil
}

// receiverOf returns the receiver input of stream, or nil.
func (c *Engine) receiverOf(stream int32) *ReceiverInput {
	for _, in := range c.inputs {
		if r, ok := in.(*ReceiverInput); ok && r.OpID() == stream {
			return r
		}
	}
	return nil
}

// runningReceiver is a receiver a worker runs for its master.
type runningReceiver struct {
	cancel    context.CancelFunc
	cancelGen context.CancelFunc // ends the generator's waits: a hard stop
	done      chan struct{}
	err       error
	addr      string
}

// StartReceiver implements cluster.Receivers.
func (p workerProgram) StartReceiver(stream int32, env cluster.ReceiverEnv) (string, error) {
	c := p.c
	in := c.receiverOf(stream)
	if in == nil {
		return "", fmt.Errorf("stream %d has no receiver in this program", stream)
	}
	w := c.worker
	w.recvMu.Lock()
	defer w.recvMu.Unlock()
	if rr, ok := w.receivers[stream]; ok {
		return rr.addr, nil // asked again: it runs
	}
	if err := in.open(); err != nil {
		return "", err
	}
	var addr string
	if a, ok := in.recv.(interface{ Addr() net.Addr }); ok && a.Addr() != nil {
		addr = a.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	genCtx, cancelGen := context.WithCancel(c.RunCtx())
	rr := &runningReceiver{cancel: cancel, cancelGen: cancelGen, done: make(chan struct{}), addr: addr}
	sink := &workerSink{c: c, env: env, tag: strings.NewReplacer(":", "-", ".", "-", "[", "", "]", "").Replace(env.Self)}
	if c.cfg.WriteAheadLog {
		// Keys of this receiver run never collide with those of another
		// run (the log replays them).
		sink.tag += "-" + newRunTag()
	}
	go func() {
		defer close(rr.done)
		defer cancelGen()
		rr.err = in.receiveWith(ctx, genCtx, sink)
		if rr.err != nil && !errors.Is(rr.err, context.Canceled) {
			c.log.Error("receiver failed", "stream", stream, "err", rr.err)
		}
	}()
	if w.receivers == nil {
		w.receivers = map[int32]*runningReceiver{}
	}
	w.receivers[stream] = rr
	c.log.Info("worker: receiver started", "stream", stream, "receiver", in.recv.Name(), "address", addr)
	return addr, nil
}

// SetReceiverRate implements cluster.RateSetter: the master's rate
// controller sets the rate of a receiver running here.
func (p workerProgram) SetReceiverRate(stream int32, n int) error {
	in := p.c.receiverOf(stream)
	if in == nil {
		return fmt.Errorf("stream %d has no receiver in this program", stream)
	}
	g := in.gen.Load()
	if g == nil {
		return fmt.Errorf("the receiver of stream %d does not run here", stream)
	}
	g.SetRate(n)
	return nil
}

// StopReceiver implements cluster.Receivers.
func (p workerProgram) StopReceiver(stream int32, now bool) (int64, error) {
	c := p.c
	w := c.worker
	w.recvMu.Lock()
	rr, ok := w.receivers[stream]
	delete(w.receivers, stream)
	w.recvMu.Unlock()
	if !ok {
		return 0, fmt.Errorf("stream %d has no receiver running here", stream)
	}
	if now {
		rr.cancelGen()
	}
	rr.cancel()
	<-rr.done
	var n int64
	if in := c.receiverOf(stream); in != nil {
		n = in.written.Load()
	}
	if rr.err != nil && !errors.Is(rr.err, context.Canceled) {
		return n, rr.err
	}
	return n, nil
}

// stopReceivers stops what a worker runs for its master (the worker is
// stopping).
func (w *workerRole) stopReceivers() {
	w.recvMu.Lock()
	rrs := w.receivers
	w.receivers = nil
	w.recvMu.Unlock()
	for _, rr := range rrs {
		rr.cancelGen()
		rr.cancel()
		<-rr.done
	}
}

// workerSink stores the blocks of a receiver running on a worker: here,
// in the input share; on one other worker; then reported to the master.
// Only then is the block acknowledged.
type workerSink struct {
	c   *Engine
	env cluster.ReceiverEnv
	tag string // this worker, in block keys: keys from different workers never collide

	mu   sync.Mutex
	next int // where replica placement starts next
}

func (s *workerSink) StoreBlock(ctx context.Context, b source.Block) error {
	c := s.c
	key := fmt.Sprintf("input_%d_%s_%d", b.Stream, s.tag, b.Seq)
	size, err := c.storeInput(ctx, key, b)
	if err != nil {
		return err
	}
	if c.cfg.WriteAheadLog {
		// Durable before it is reported: the master logs the report, and
		// then the block is acknowledged (wal.go).
		if err := c.walWrite(ctx, int32(b.Stream), key, b.Records); err != nil {
			c.blocks.Remove(key)
			if ctx.Err() == nil {
				// The master stops the job: no block of this receiver can
				// be acknowledged.
				if rerr := s.env.Report(ctx, cluster.BlockReport{Stream: int32(b.Stream), Failure: err.Error()}); rerr != nil {
					c.log.Error("receiver cannot store, and could not tell the master", "err", err, "report", rerr)
				}
			}
			return err
		}
	}
	locs := []string{s.env.Self}
	if len(s.env.Peers) > 0 || s.env.Master != "" {
		data, err := rdd.Encode(b.Records)
		if err != nil {
			return fmt.Errorf("input block %s: %w", key, err)
		}
		s.mu.Lock()
		start := s.next
		s.next++
		s.mu.Unlock()
		// A peer, or the master when none takes it: a block is
		// acknowledged with two copies.
		targets := make([]string, 0, len(s.env.Peers)+1)
		for i := range s.env.Peers {
			targets = append(targets, s.env.Peers[(start+i)%len(s.env.Peers)])
		}
		if s.env.Master != "" {
			targets = append(targets, s.env.Master)
		}
		for _, peer := range targets {
			if err := s.env.Put(ctx, peer, key, data); err != nil {
				c.log.Warn("input block not replicated; trying another process", "block", key, "to", peer, "err", err)
				continue
			}
			locs = append(locs, peer)
			break
		}
		if len(locs) == 1 {
			c.log.Warn("input block acknowledged with one copy: no other process took a replica", "block", key)
		}
	}
	report := cluster.BlockReport{Stream: int32(b.Stream), Key: key, Records: int64(len(b.Records)), Bytes: size, Locations: locs}
	var rerr error
	for attempt := range 5 {
		if rerr = s.env.Report(ctx, report); rerr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return rerr
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
	// Not acknowledged: the receiver stops taking records (its generator
	// fails), and the block's copy here goes, as nothing will allocate it.
	c.blocks.Remove(key)
	return fmt.Errorf("reporting input block %s to the master: %w", key, rerr)
}

// ReceiverInfo describes a receiver, for the UI.
type ReceiverInfo struct {
	Stream  int32
	Name    string // the receiver's, e.g. "socket 127.0.0.1:9999"
	Address string // where it takes records in (a socket's address), if known
	Worker  string // the worker running it; "" for this process
	Active  bool   // receiving now
	Records int64  // records it has taken in (on a worker: stored, replicated and reported)
	// Dropped counts the records it dropped as malformed (a socket's line
	// over its MaxRecordBytes), each with a warning in the log.
	Dropped int64
	// LastError and LastErrorTime are its latest failure, if any.
	LastError     string
	LastErrorTime time.Time
}

// Receivers describes the context's receivers, in stream order.
func (c *Engine) Receivers() []ReceiverInfo {
	var out []ReceiverInfo
	for _, in := range c.inputs {
		r, ok := in.(*ReceiverInput)
		if !ok {
			continue
		}
		ri := ReceiverInfo{Stream: r.OpID(), Name: r.recv.Name(), Worker: r.worker(), Active: r.active.Load(), Records: r.written.Load()}
		if a, ok := r.recv.(interface{ Addr() net.Addr }); ok && a.Addr() != nil {
			ri.Address = a.Addr().String()
		}
		ri.Dropped = r.dropped()
		r.errMu.Lock()
		if r.lastErr != nil {
			ri.LastError, ri.LastErrorTime = r.lastErr.Error(), r.errTime
		}
		r.errMu.Unlock()
		out = append(out, ri)
	}
	return out
}

// droppingReceiver is a receiver that drops malformed records and counts
// them (source.Socket).
type droppingReceiver interface{ DroppedRecords() int64 }

// dropped is how many records the receiver dropped, here and, as their
// latest heartbeats reported it, on the workers that ran it.
func (in *ReceiverInput) dropped() int64 {
	var n int64
	if d, ok := in.recv.(droppingReceiver); ok {
		n = d.DroppedRecords()
	}
	if cr := in.c.cluster; cr != nil {
		if m := cr.master.Load(); m != nil {
			for _, w := range m.Workers() {
				n += w.ReceiverDropped[in.OpID()]
			}
		}
	}
	return n
}

// ReceiverDropped implements the worker's report of what the receivers it
// runs dropped (cluster.Host reads it before each heartbeat).
func (p workerProgram) ReceiverDropped() map[int32]int64 {
	c := p.c
	w := c.worker
	w.recvMu.Lock()
	defer w.recvMu.Unlock()
	var out map[int32]int64
	for stream := range w.receivers {
		if in := c.receiverOf(stream); in != nil {
			if d, ok := in.recv.(droppingReceiver); ok && d.DroppedRecords() > 0 {
				if out == nil {
					out = map[int32]int64{}
				}
				out[stream] = d.DroppedRecords()
			}
		}
	}
	return out
}

// DroppedRecords is how many records every receiver dropped as malformed.
func (c *Engine) DroppedRecords() int64 {
	var n int64
	for _, in := range c.inputs {
		if r, ok := in.(*ReceiverInput); ok {
			n += r.dropped()
		}
	}
	return n
}
