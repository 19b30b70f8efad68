package cluster

import (
	"context"
	"net"

	"google.golang.org/grpc"
)

// Network is how the cluster's processes reach each other: where a master
// or a worker listens, and how a client connection dials. Nil in a config
// means TCP. A simulation puts an in-memory network here (package simnet),
// so a whole cluster runs in one process, over links it can slow, cut and
// partition.
type Network interface {
	Listen(addr string) (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// DialOptioner is a Network's optional capability: gRPC options added to
// every client connection dialed over it (a simulation's message faults,
// as client interceptors).
type DialOptioner interface {
	DialOptions() []grpc.DialOption
}

// tcp is the Network of real deployments.
type tcp struct{}

func (tcp) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func (tcp) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// orTCP returns n, or TCP when n is nil.
func orTCP(n Network) Network {
	if n == nil {
		return tcp{}
	}
	return n
}

// Listen listens at addr on n (TCP when n is nil).
func Listen(n Network, addr string) (net.Listener, error) { return orTCP(n).Listen(addr) }

// newClient returns a client connection to addr: over TCP through gRPC's
// own resolver and dialer when n is nil, else over n.
func newClient(addr string, n Network, opts []grpc.DialOption) (*grpc.ClientConn, error) {
	if n == nil {
		return grpc.NewClient(addr, opts...)
	}
	opts = append(opts[:len(opts):len(opts)], grpc.WithContextDialer(n.Dial))
	if d, ok := n.(DialOptioner); ok {
		opts = append(opts, d.DialOptions()...)
	}
	// passthrough: the address goes to the dialer as it is, never to a
	// name resolver.
	return grpc.NewClient("passthrough:///"+addr, opts...)
}
