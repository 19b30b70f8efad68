package cluster

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// guard authenticates the calls a process serves (the master's Cluster and
// Peer services, a worker's Peer service) and keeps a panicking handler
// from taking the process down.
type guard struct {
	token string // expected auth token; empty when insecure without secret
	log   *slog.Logger
}

// server returns a gRPC server whose every call passes the guard, over
// mutual TLS when t is set.
func (g guard) server(handshake, heartbeat time.Duration, t *TLS) *grpc.Server {
	return grpc.NewServer(append(t.serverOption(),
		grpc.ChainUnaryInterceptor(g.recoverUnary, g.authUnary),
		grpc.ChainStreamInterceptor(g.recoverStream, g.authStream),
		grpc.ConnectionTimeout(handshake),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxConcurrentStreams(256),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: heartbeat / 2, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)...)
}

// authorize checks the call's token; it never logs the token or the secret.
func (g guard) authorize(ctx context.Context, method string) error {
	if g.token == "" {
		return nil
	}
	var got string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(authKey); len(v) == 1 {
			got = v[0]
		}
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) == 1 {
		return nil
	}
	reason := "wrong secret"
	if got == "" {
		reason = "missing secret"
	}
	g.log.Warn("cluster: connection refused: "+reason, "peer", peerAddr(ctx), "method", method)
	return status.Error(codes.Unauthenticated, "cluster: authentication failed")
}

func (g guard) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := g.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (g guard) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := g.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// recoverUnary turns a panic in a handler into an INTERNAL error.
func (g guard) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("cluster: handler panicked", "method", info.FullMethod, "peer", peerAddr(ctx), "panic", r)
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

// recoverStream turns a panic in a streaming handler into an INTERNAL error.
func (g guard) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("cluster: handler panicked", "method", info.FullMethod, "peer", peerAddr(ss.Context()), "panic", r)
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(srv, ss)
}

// dialOptions are a client's options toward a peer: the transport (mutual
// TLS when t is set), the token on every call, and room for large results.
func dialOptions(secret []byte, t *TLS) []grpc.DialOption {
	token := authToken(secret)
	withToken := func(ctx context.Context) context.Context {
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, authKey, token)
		}
		return ctx
	}
	return []grpc.DialOption{
		t.dialOption(),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(withToken(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(withToken(ctx), desc, cc, method, opts...)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResultSize)),
		// A peer that stops answering (frozen, or cut off without a reset)
		// fails the calls waiting on it within about 15 s, so a fetch from
		// it becomes a fetch failure instead of a hang.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	}
}
