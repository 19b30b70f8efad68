// Package cluster is the cluster runtime of dstream over gRPC: the master's
// registry of workers, the worker's side of joining, the running of tasks
// on workers and the moving of blocks between processes. Two services share
// one port (their wire types are generated into cluster/clusterpb from
// proto/dstream/cluster/v1): Cluster, served by the master, and Peer,
// served by every process. The package knows tasks only as rdd.TaskSpec and
// a worker's copy of the program only through the Program interface (the
// engine, internal/engine, provides it); it knows nothing of streams,
// receivers' sources or record types.
//
// # Control plane: membership
//
// Membership is the master's registry of workers as a pure core: fed
// registrations, heartbeats, ticks of the clock and drops, it returns the
// reply to the worker, the membership changes to deliver and the facts to
// log. It takes no locks, reads no clock and does no I/O, so transcripts
// test its rules (testdata/membership). Master is its shell: the Cluster
// service's handlers, a mutex, a clock, and the delivery of added and lost
// workers, in order, through MasterConfig.OnEvent (to the scheduler,
// sched.Core's AddWorker and LoseWorker). A worker registers with its graph
// description; the master refuses one whose graph differs from its own with
// FAILED_PRECONDITION and the message of graphspec.Diff. An admitted worker
// heartbeats (every 500 ms by default); the master declares it lost when no
// heartbeat came for the timeout (2 s by default) or when Drop says a call
// found it unreachable. The master also serves the interval manifests
// (Manifests), how its program was started (Program: what a standalone
// worker runs, see AskProgram) and the blocks receivers on workers report
// (AddBlock). Worker is the joining side: it registers, retrying, and
// heartbeats. When it finds another master process than the one it served
// (a restart) it rejoins it (WorkerConfig.Rejoin: its program forgets the
// old run and offers the input blocks it holds), or exits with
// ErrProgramChanged when the new master runs another graph; it gives up
// on a master unreachable for WorkerConfig.GiveUp (ErrMasterGone), and a
// master that stops gracefully releases it (Peer.Release, ErrReleased).
// A worker may be given a list of master addresses (ParseMasters, as a
// Kafka client's bootstrap list): it follows one, and moves to the next,
// round robin, when that one is unreachable (at once if it never
// answered, else after WorkerConfig.Failover) or answers as a standby
// (IsStandby: the hook for a standby master; none answers so yet);
// joining another master's session is a rejoin, as after a restart. What
// a worker host reads from its master (intervals, fallback input blocks,
// MasterStore) follows the master its worker follows (Host.Master).
//
// # Data plane: tasks and blocks
//
// PeerServer serves the Peer service: RunTask, FetchBucket and FetchBlock
// (streamed in chunks), PutBlock (an input block's replica), and starting,
// stopping and pacing receivers. Peers keeps one connection per peer; a
// call that fails with UNAVAILABLE declares the peer unreachable only if a
// new connection to it fails too (Peers.Reachable). Runner is the master's
// scheduler shell: a sched.Shell whose executor sends RunTask to the worker
// sched.Core chose, or runs a task pinned to the master itself. Host is a
// worker process's runtime: it serves the Peer service, joins through a
// Worker, learns from the master the manifests of the intervals up to a
// task's before running it, and runs the task in its Program.
//
// Manifests are learned as deltas (manifest.Delta). A host asks for the
// intervals after the latest it knows, for deltas, and names the manifest
// it learned last and the session of the master it learned it from; the
// master answers with its session, each frame a delta relative to the
// frame before it in the answer, and the first relative to the manifest
// named only when that is of its own session and it still remembers it
// (else the first frame is whole: a worker that joins late, rejoins a
// restarted master or follows another master of its list, or whose base
// the master forgot). The host applies each delta to the manifest it knows
// and its Program learns whole manifests, exactly what full frames would
// have said; a delta relative to another manifest is not applied, and the
// host asks again for full frames. Rejoining forgets the manifest learned
// last with everything else. A master that predates deltas ignores the
// request's fields and answers with full frames, which a host reads as
// before.
//
// A task usually carries its manifests, so an interval's first task on a
// worker makes no Manifests round trip. The Runner keeps, per worker, the
// latest interval a task it ran to the end made it learn (a hint, dropped
// when the worker joins again or is lost) and attaches the frames the
// Manifests call would answer from there (RunTaskRequest.manifests, with
// the interval they follow and the master's session; none before the
// worker's first task, and none past 16 frames or 1 MiB). The host learns
// them only if it follows that session and knows every interval up to the
// one they follow; a delta that does not fit, or anything else, and it
// asks as before, so the hint is never trusted for correctness.
//
// A host follows one master at a time: the one that accepted its latest
// registration, or the one it is rejoining (Host.Master). Session and
// address change together, so while the Worker tries another master of
// its list, the followed master's tasks still read its store and learn
// from it; and an answer from another session at the followed address (the
// master restarted) is not learned into the old one's run.
//
// # Processes
//
// Spawn starts a local-cluster's workers: copies of this executable, told
// by their environment (WorkerEnv) to be workers, each stopping when its
// stdin closes, so none outlives its master. AskProgram is how a standalone
// worker learns the master's program and arguments. Network is where
// processes listen and dial: TCP, or an in-memory network (package simnet)
// in the simulation.
//
// # Security
//
// Every call on either service carries an HMAC-SHA256 token of the cluster's
// shared secret (LoadSecret: --secret-file or $DSTREAM_SECRET;
// GenerateSecret for a local cluster), compared in constant time; a call
// with a wrong or missing token is refused with UNAUTHENTICATED and logged
// with the peer's address, never with the secret, which itself never
// crosses the wire. With TLS (LoadTLS: --tls-cert, --tls-key, --tls-ca)
// every connection is mutual TLS 1.3: a process is admitted by a
// certificate of the cluster's CA (names are not checked: peers dial
// whatever address a process advertises), and the token is still checked.
// Without TLS the token is visible on the network and can be replayed, so
// such a cluster belongs on a trusted network.
package cluster
