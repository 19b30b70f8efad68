package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// workerModeEnv, when set to a master's address, makes the test binary run
// as a worker process (see TestMain) instead of running tests.
const workerModeEnv = "DSTREAM_CLUSTER_TEST_WORKER_OF"

func TestMain(m *testing.M) {
	if addr := os.Getenv(workerModeEnv); addr != "" {
		os.Exit(workerProcess(addr))
	}
	os.Exit(m.Run())
}

// workerProcess runs a worker until it is killed; it exits non-zero if the
// worker stops on its own.
func workerProcess(addr string) int {
	secret, err := LoadSecret("", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w, err := NewWorker(WorkerConfig{Master: addr, ID: "proc", Slots: 2, Graph: testGraph(), Secret: secret, Logger: discardLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err = w.Run(context.Background())
	fmt.Fprintln(os.Stderr, "worker stopped:", err)
	return 3
}

// TestKilledWorkerProcess runs a worker as a real process (this test binary
// re-executed), SIGKILLs it, and checks the master (real clock, default
// 500 ms heartbeats and 2 s timeout) reports it lost in time.
func TestKilledWorkerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	tm := startMaster(t, MasterConfig{})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerModeEnv+"="+tm.addr, SecretEnv+"="+string(testSecret))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	var added Event
	select {
	case added = <-tm.events:
	case err := <-exited:
		t.Fatalf("worker process exited before registering: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker process did not register within 20s")
	}
	if added.Kind != WorkerAdded || added.Worker.ID != "proc" || added.Worker.PID != int64(cmd.Process.Pid) {
		t.Fatalf("event %v %+v, want proc (pid %d) added", added.Kind, added.Worker, cmd.Process.Pid)
	}
	time.Sleep(1200 * time.Millisecond) // let it heartbeat a few times

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ev := tm.next(t)
	took := time.Since(killed)
	if ev.Kind != WorkerLost || ev.Worker.ID != "proc" {
		t.Fatalf("event %v %+v, want proc lost", ev.Kind, ev.Worker)
	}
	t.Logf("killed worker reported lost %v after SIGKILL (timeout %v, heartbeat every %v)", took.Round(time.Millisecond), DefaultWorkerTimeout, DefaultHeartbeatInterval)
	if limit := 5 * time.Second; took > limit {
		t.Fatalf("lost reported %v after the kill, want under %v", took, limit)
	}
	if w := tm.Workers(); len(w) != 1 || w[0].State != Lost {
		t.Fatalf("Workers() = %+v, want proc lost", w)
	}
}
