// Package cluster is the cluster's control plane: a Master that workers
// join over gRPC, and the Worker client that joins it.
//
// Every call is authenticated with the cluster's shared secret (LoadSecret:
// --secret-file or $DSTREAM_SECRET); a call with a wrong or missing secret
// is refused with UNAUTHENTICATED and logged with the peer's address, never
// with the secret. The worker sends an HMAC of the secret, not the secret
// itself; there is no TLS yet, so the token is visible on the network and
// links should stay on trusted networks.
//
// A worker registers with its graph description; the master refuses one
// whose graph differs from its own with FAILED_PRECONDITION and the message
// of graphspec.Diff. An admitted worker heartbeats (every 500 ms by
// default); the master declares it lost when no heartbeat came for the
// timeout (2 s by default) and reports added and lost workers through
// MasterConfig.OnEvent, for the scheduler core (sched.Core.AddWorker and
// LoseWorker). Task execution is not part of this package yet.
//
// The wire types are generated into cluster/clusterpb; see that package for
// the regenerate command.
package cluster
