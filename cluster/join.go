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
// It retries while the master is unreachable (telling onRetry, if set, why),
// until ctx is done; a refusal (wrong secret) is returned at once.
func AskProgram(ctx context.Context, addr string, secret []byte, t *TLS, onRetry func(error)) (ProgramInfo, error) {
	conn, err := grpc.NewClient(addr, dialOptions(secret, t)...)
	if err != nil {
		return ProgramInfo{}, fmt.Errorf("cluster: master %s: %w", addr, err)
	}
	defer conn.Close()
	client := clusterpb.NewClusterClient(conn)
	backoff := DefaultMinBackoff
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := client.Program(cctx, &clusterpb.ProgramRequest{})
		cancel()
		if err == nil {
			return ProgramInfo{Args: resp.GetArgs(), Parallelism: int(resp.GetParallelism())}, nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
			return ProgramInfo{}, fmt.Errorf("cluster: master %s refused this worker: %s", addr, status.Convert(err).Message())
		}
		if onRetry != nil {
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
