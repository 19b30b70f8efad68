// Package program runs a dstream program in its role and turns how it
// ended into the process's exit status.
//
// One binary plays two roles. Started by a person (or a script, or a
// Kubernetes pod) it is the master, or with Master local[N] the whole job:
// it runs intervals until it is told to stop. Started again by its master
// (local-cluster[N]) or by `APP worker --master ADDR` (a standalone
// cluster), with the same arguments so it builds the same graph, it is a
// worker: it serves the master's tasks until the master releases it. A main
// builds its *dstream.Context and hands it to Run, which starts it and waits
// in the right role; Signals gives the context that SIGINT and SIGTERM end;
// Exit prints how the command ended and returns its exit status:
//
//	0 (ExitOK)      a graceful stop: a signal, the run's duration, a worker released
//	1 (ExitFailed)  the job failed while running: a failed interval, an error on stop
//	2 (ExitUsage)   a usage error (UsageError) or a failure to start (StartError)
//
// The package also holds the command line conventions every command
// shares: ParseFlags (--help on stdout, one message for a bad command line)
// and the --memory flag (Bytes, MemoryFlag).
package program

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dstream/dstream"
)

// Signals returns a context that is done on the first SIGINT or SIGTERM the
// process receives (or when parent is done), and the function that stops
// catching them. While it catches them, neither signal kills the process: a
// command that waits on the context stops gracefully instead. A second
// signal closes the context's Forced channel: Run then stops the job at
// once, as Spark and most servers do.
func Signals(parent context.Context) (context.Context, context.CancelFunc) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	forced, quit := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.WithValue(parent, forcedKey{}, (<-chan struct{})(forced)))
	go func() {
		defer signal.Stop(sigs)
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		case <-quit:
			return
		}
		select {
		case <-sigs:
			close(forced)
		case <-quit:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(quit) })
		cancel()
	}
}

type forcedKey struct{}

// Forced returns the channel a second signal closes (Signals); nil, which
// never closes, for a context that is not Signals'.
func Forced(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(forcedKey{}).(<-chan struct{})
	return ch
}

// ErrForced is Run's error when a second signal forced the stop: intervals
// not yet processed were abandoned (exit status 1).
var ErrForced = errors.New("stop forced by a second signal: intervals not yet processed were abandoned")

// Reason says why a master's run ended (see Master.Stopping).
type Reason int

const (
	// Interrupted: the context given to Run is done (a signal).
	Interrupted Reason = iota + 1
	// Elapsed: Master.Duration has passed.
	Elapsed
	// StoppedItself: the dstream context stopped on its own, by default
	// because an interval failed (dstream.Config.OnBatchError).
	StoppedItself
	// Abandoned: Master.Abandon was closed; the job is stopped at once.
	Abandoned
)

// String names the reason.
func (r Reason) String() string {
	switch r {
	case Interrupted:
		return "interrupted"
	case Elapsed:
		return "elapsed"
	case StoppedItself:
		return "stopped by itself"
	case Abandoned:
		return "abandoned"
	}
	return "unknown"
}

// Master is what a program does in the master's role (or as a local job)
// beyond running intervals. The zero Master runs until a signal or until the
// job stops by itself. None of it is used in a worker.
type Master struct {
	// Duration, when positive, stops the job gracefully once it has run
	// this long on the context's clock (dstream.Config.Clock), counted
	// from its start.
	Duration time.Duration
	// Abandon, when closed, stops the job at once (dstream.Context.Stop
	// with graceful false): intervals not yet processed are abandoned. A
	// nil channel never closes.
	Abandon <-chan struct{}
	// Started is called once the context has started, before the wait.
	// run is done as soon as the wait ends, whatever ends it: work the
	// program starts beside the job (a generator feeding its socket) stops
	// with it. It must not block.
	Started func(run context.Context)
	// Stopping is called when the wait has ended, with why, before the
	// context is stopped (gracefully, unless Abandoned).
	Stopping func(why Reason)
}

// Run starts sctx, built and not yet started, and runs it in its role
// (sctx.IsWorker):
//
//   - a worker serves its master's tasks until the master releases it (or
//     is gone, or refuses it) or ctx is done; it is then stopped at once,
//     and Run returns the error it stopped with (nil when released);
//   - a master (or local job) runs until ctx is done, m.Duration has
//     passed, the job stops by itself or m.Abandon is closed (see Master);
//     it is then stopped, gracefully unless abandoned (every record
//     already received is processed and output), and Run returns the error
//     of the stop: nil after a clean stop, the failed interval's error
//     when the job stopped on it. A second signal during a graceful stop
//     (Forced(ctx) closes) stops the job at once: Run returns ErrForced.
//
// When sctx cannot start, Run returns the error as a *StartError and calls
// neither hook. Exit maps Run's outcomes to exit statuses.
func Run(ctx context.Context, sctx *dstream.Context, m Master) error {
	if err := startUnless(ctx, sctx); err != nil {
		if errors.Is(err, dstream.ErrStopped) && ctx.Err() != nil {
			return nil // stopped while a standby: nothing ran
		}
		return &StartError{Err: err}
	}
	if sctx.IsWorker() {
		select {
		case <-ctx.Done():
		case <-sctx.Done():
		}
		return sctx.Stop(false)
	}
	run, cancel := context.WithCancel(ctx)
	defer cancel()
	var elapsed chan struct{}
	if m.Duration > 0 {
		elapsed = make(chan struct{})
		clk := sctx.Clock()
		end := clk.Now().Add(m.Duration)
		go func() {
			if clk.WaitUntil(run, end) == nil {
				close(elapsed)
			}
		}()
	}
	if m.Started != nil {
		m.Started(run)
	}
	var why Reason
	select {
	case <-ctx.Done():
		why = Interrupted
	case <-elapsed:
		why = Elapsed
	case <-sctx.Done():
		why = StoppedItself
	case <-m.Abandon:
		why = Abandoned
	}
	cancel()
	if m.Stopping != nil {
		m.Stopping(why)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- sctx.Stop(why != Abandoned) }()
	select {
	case err := <-stopped:
		return err
	case <-Forced(ctx):
		// A graceful stop waits for what is in flight; a second signal
		// does not wait.
		_ = sctx.Stop(false)
		<-stopped
		return ErrForced
	}
}

// startUnless starts sctx unless ctx is done first: a standby master waits
// in Start for the lease another holds (dstream.Config.LeaseTTL), and a
// signal then stops the wait (Start returns dstream.ErrStopped).
func startUnless(ctx context.Context, sctx *dstream.Context) error {
	started := make(chan error, 1)
	go func() { started <- sctx.Start() }()
	select {
	case err := <-started:
		return err
	case <-ctx.Done():
		select {
		case err := <-started:
			return err
		default:
		}
		_ = sctx.Stop(false)
		return <-started
	}
}
