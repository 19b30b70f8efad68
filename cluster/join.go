package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AskProgram asks the master at addr how its program was started, so that a
// worker started by hand can run the same program with the same arguments.
// addr may be a comma-separated list of masters (ParseMasters): each is
// asked in turn, round robin, until one answers as the active master (a
// standby, IsStandby, is passed over). It retries while no master answers
// (telling onRetry, if set, why), until ctx is done; a refusal (wrong
// secret) is returned at once.
func AskProgram(ctx context.Context, addr string, secret []byte, t *TLS, onRetry func(error)) (ProgramInfo, error) {
	addrs, err := ParseMasters(addr)
	if err != nil {
		return ProgramInfo{}, fmt.Errorf("cluster: %w", err)
	}
	clients := make([]clusterpb.ClusterClient, len(addrs))
	for i, a := range addrs {
		conn, err := grpc.NewClient(a, dialOptions(secret, t)...)
		if err != nil {
			return ProgramInfo{}, fmt.Errorf("cluster: master %s: %w", a, err)
		}
		defer conn.Close()
		clients[i] = clusterpb.NewClusterClient(conn)
	}
	backoff := DefaultMinBackoff
	for i := 0; ; i = (i + 1) % len(addrs) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := clients[i].Program(cctx, &clusterpb.ProgramRequest{})
		cancel()
		if err == nil {
			return ProgramInfo{Args: resp.GetArgs(), Parallelism: int(resp.GetParallelism())}, nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
			return ProgramInfo{}, fmt.Errorf("cluster: master %s refused this worker: %s", addrs[i], status.Convert(err).Message())
		}
		if onRetry != nil {
			if len(addrs) > 1 {
				err = fmt.Errorf("%s: %w", addrs[i], err)
			}
			onRetry(err)
		}
		select {
		case <-ctx.Done():
			return ProgramInfo{}, fmt.Errorf("cluster: master %s not reachable: %w", addr, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, DefaultMaxBackoff)
	}
}
