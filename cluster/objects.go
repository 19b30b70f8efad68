package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cluster/clusterpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The master's checkpoint store, served to its workers. A job with no
// checkpoint location of its own still checkpoints its state streams (a
// lost worker's state partitions are read back rather than recomputed from
// input that is gone): into a temporary folder of the master's, which the
// workers reach through the Peer service's object calls. Nothing is shared
// between machines but the network.

// PutObject implements clusterpb.PeerServer.
func (p *PeerServer) PutObject(stream grpc.ClientStreamingServer[clusterpb.PutObjectRequest, clusterpb.PutObjectResponse]) error {
	if p.stores.Checkpoint == nil {
		return noObjectStore()
	}
	var name string
	var data []byte
	for first := true; ; first = false {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first {
			name = m.GetName()
		}
		data = appendChunk(data, m.GetData())
	}
	if err := p.stores.Checkpoint.Put(stream.Context(), name, data); err != nil {
		return objectStatus(err)
	}
	return stream.SendAndClose(&clusterpb.PutObjectResponse{})
}

// GetObject implements clusterpb.PeerServer.
func (p *PeerServer) GetObject(req *clusterpb.GetObjectRequest, stream grpc.ServerStreamingServer[clusterpb.GetObjectResponse]) error {
	if p.stores.Checkpoint == nil {
		return noObjectStore()
	}
	b, err := p.stores.Checkpoint.Get(stream.Context(), req.GetName())
	if err != nil {
		return objectStatus(err)
	}
	return sendChunks(b, func(c []byte) error { return stream.Send(&clusterpb.GetObjectResponse{Data: c}) })
}

// ListObjects implements clusterpb.PeerServer.
func (p *PeerServer) ListObjects(ctx context.Context, req *clusterpb.ListObjectsRequest) (*clusterpb.ListObjectsResponse, error) {
	if p.stores.Checkpoint == nil {
		return nil, noObjectStore()
	}
	names, err := p.stores.Checkpoint.List(ctx, req.GetPrefix())
	if err != nil {
		return nil, objectStatus(err)
	}
	return &clusterpb.ListObjectsResponse{Names: names}, nil
}

// DeleteObject implements clusterpb.PeerServer.
func (p *PeerServer) DeleteObject(ctx context.Context, req *clusterpb.DeleteObjectRequest) (*clusterpb.DeleteObjectResponse, error) {
	if p.stores.Checkpoint == nil {
		return nil, noObjectStore()
	}
	if err := p.stores.Checkpoint.Delete(ctx, req.GetName()); err != nil {
		return nil, objectStatus(err)
	}
	return &clusterpb.DeleteObjectResponse{}, nil
}

func noObjectStore() error {
	return status.Error(codes.FailedPrecondition, "this process serves no checkpoint store")
}

// objectStatus carries a store's error to the caller: NOT_FOUND and
// INVALID_ARGUMENT keep their meaning (ErrNotFound, ErrInvalidName) on the
// other side.
func objectStatus(err error) error {
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, checkpoint.ErrInvalidName):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// RemoteStore is the checkpoint.Store a process serves through its Peer
// service (the master's, see PeerServer): a worker's view of its master's
// checkpoint folder.
type RemoteStore struct {
	peers *Peers
	addr  func() string
}

var _ checkpoint.Store = (*RemoteStore)(nil)

// NewRemoteStore returns the store served at addr, reached through peers.
func NewRemoteStore(peers *Peers, addr string) *RemoteStore {
	return NewRemoteStoreOf(peers, func() string { return addr })
}

// NewRemoteStoreOf returns the store served where addr says at each call
// (a worker's current master, Host.Master), reached through peers.
func NewRemoteStoreOf(peers *Peers, addr func() string) *RemoteStore {
	return &RemoteStore{peers: peers, addr: addr}
}

// remoteErr maps a call's status back to the store's errors.
func (r *RemoteStore) remoteErr(op, name string, err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w: %s (%s on %s)", checkpoint.ErrNotFound, name, op, r.addr())
	case codes.InvalidArgument:
		return fmt.Errorf("%w: %s", checkpoint.ErrInvalidName, status.Convert(err).Message())
	}
	return fmt.Errorf("checkpoint store on %s: %s %s: %w", r.addr(), op, name, err)
}

// Put implements checkpoint.Store.
func (r *RemoteStore) Put(ctx context.Context, name string, data []byte) error {
	if err := checkpoint.ValidName(name); err != nil {
		return err
	}
	err := r.peers.call(ctx, r.addr(), func(pc clusterpb.PeerClient) error {
		stream, err := pc.PutObject(ctx)
		if err != nil {
			return err
		}
		first := true
		err = sendChunks(data, func(c []byte) error {
			m := &clusterpb.PutObjectRequest{Data: c}
			if first {
				m.Name, first = name, false
			}
			return stream.Send(m)
		})
		if err == nil || err == io.EOF {
			_, err = stream.CloseAndRecv()
		}
		return err
	})
	if err != nil {
		return r.remoteErr("put", name, err)
	}
	return nil
}

// Get implements checkpoint.Store.
func (r *RemoteStore) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkpoint.ValidName(name); err != nil {
		return nil, err
	}
	var b []byte
	err := r.peers.call(ctx, r.addr(), func(pc clusterpb.PeerClient) error {
		stream, err := pc.GetObject(ctx, &clusterpb.GetObjectRequest{Name: name})
		if err == nil {
			b, err = receive(stream.Recv)
		}
		return err
	})
	if err != nil {
		return nil, r.remoteErr("get", name, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// List implements checkpoint.Store.
func (r *RemoteStore) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	err := r.peers.call(ctx, r.addr(), func(pc clusterpb.PeerClient) error {
		resp, err := pc.ListObjects(ctx, &clusterpb.ListObjectsRequest{Prefix: prefix})
		names = resp.GetNames()
		return err
	})
	if err != nil {
		return nil, r.remoteErr("list", prefix, err)
	}
	return names, nil
}

// Delete implements checkpoint.Store.
func (r *RemoteStore) Delete(ctx context.Context, name string) error {
	if err := checkpoint.ValidName(name); err != nil {
		return err
	}
	err := r.peers.call(ctx, r.addr(), func(pc clusterpb.PeerClient) error {
		_, err := pc.DeleteObject(ctx, &clusterpb.DeleteObjectRequest{Name: name})
		return err
	})
	if err != nil {
		return r.remoteErr("delete", name, err)
	}
	return nil
}
