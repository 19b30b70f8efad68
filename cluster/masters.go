package cluster

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A worker may be given its master as a list of addresses
// ("A:7077,B:7077", as a Kafka client's bootstrap list): it follows one of
// them at a time, the current master, and moves to the next one, round
// robin, when the current one is gone (unreachable past
// WorkerConfig.Failover) or answers that it is a standby. A single address
// behaves as it always did.

// DefaultFailover is how long a worker keeps trying a master that answered
// before and stopped answering before it tries the next address of its
// list (WorkerConfig.Failover): a few heartbeats, so a reset link does not
// move it, while a master that is gone is left within seconds. An address
// that never answered is left at its first failure.
const DefaultFailover = 2 * time.Second

// StandbyMessage is the status message (with FAILED_PRECONDITION) of a
// master that is up but not the active one: a standby waiting to take
// over. A worker given a list of masters moves on to the next one when it
// gets this answer (IsStandby). No master answers so yet: this is the hook
// for a standby master.
const StandbyMessage = "standby"

// StandbyError is the error a standby master answers the Cluster service's
// calls with.
func StandbyError() error { return status.Error(codes.FailedPrecondition, StandbyMessage) }

// IsStandby reports whether err is a master's answer that it is a standby.
func IsStandby(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.FailedPrecondition && s.Message() == StandbyMessage
}

// ParseMasters splits a comma-separated list of master addresses
// (HOST:PORT each; blanks around commas are ignored) and checks each. A
// single address is a list of one.
func ParseMasters(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("no master address")
	}
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("master list %q: an empty address", list)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("master address %q: want HOST:PORT: %w", a, err)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// JoinMasters is the inverse of ParseMasters: the list as one string, the
// form EnvWorkerOf carries.
func JoinMasters(addrs []string) string { return strings.Join(addrs, ",") }
