package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/cluster/clustertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// loadTLS is the identity of a process whose certificate signer issued and
// that trusts ca.
func loadTLS(t *testing.T, ca, signer *clustertest.CA, dir, name string) *TLS {
	t.Helper()
	cert, key := signer.Issue(t, dir, name)
	id, err := LoadTLS(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := clustertest.NewCA(t, dir, "cluster")
	other := clustertest.NewCA(t, dir, "other")
	tm := startMaster(t, MasterConfig{TLS: loadTLS(t, ca, ca, dir, "master"), Program: ProgramInfo{Args: []string{"demo"}, Parallelism: 4}})

	// A worker with a certificate of the cluster's CA (and the secret) joins.
	w := runWorker(t, WorkerConfig{Master: tm.addr, Slots: 1, Graph: testGraph(), Secret: testSecret, TLS: loadTLS(t, ca, ca, dir, "worker")})
	w.waitRegistered(t)
	if ev := tm.next(t); ev.Kind != WorkerAdded {
		t.Fatalf("event %v, want added", ev.Kind)
	}
	info, err := AskProgram(context.Background(), tm.addr, testSecret, loadTLS(t, ca, ca, dir, "joiner"), nil)
	if err != nil || len(info.Args) != 1 || info.Parallelism != 4 {
		t.Fatalf("AskProgram over mutual TLS = %+v, %v", info, err)
	}

	// Refused before any call is served: no client certificate (plain
	// gRPC), a certificate of another CA, and the right CA without the
	// secret (the secret is still checked).
	call := func(opts []grpc.DialOption) error {
		conn, err := grpc.NewClient(tm.addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = clusterpb.NewClusterClient(conn).Program(ctx, &clusterpb.ProgramRequest{})
		return err
	}
	for name, opts := range map[string][]grpc.DialOption{
		"plaintext":     dialOptions(testSecret, nil),
		"another CA":    dialOptions(testSecret, loadTLS(t, ca, other, dir, "stranger")),
		"trusts no one": dialOptions(testSecret, loadTLS(t, other, ca, dir, "suspicious")),
	} {
		if err := call(opts); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: got %v, want the connection refused (Unavailable)", name, err)
		}
	}
	if err := call(dialOptions([]byte("wrong"), loadTLS(t, ca, ca, dir, "nosecret"))); status.Code(err) != codes.Unauthenticated {
		t.Errorf("right certificate, wrong secret: got %v, want Unauthenticated", err)
	}
	tm.noEvent(t)
}

func TestLoadTLSErrors(t *testing.T) {
	dir := t.TempDir()
	ca := clustertest.NewCA(t, dir, "cluster")
	cert, key := ca.Issue(t, dir, "p")
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][3]string{
		{cert, key, ""},
		{cert, "", ca.File},
		{cert, key, garbage},
		{garbage, key, ca.File},
		{cert, key, filepath.Join(dir, "missing")},
	} {
		if _, err := LoadTLS(c[0], c[1], c[2]); err == nil {
			t.Errorf("LoadTLS(%q) succeeded", c)
		}
	}
}

// A worker that registers again and finds another master process (the
// master restarted on the same address) stops with ErrMasterRestarted: its
// process must restart to join the new run.
func TestWorkerStopsWhenTheMasterRestarted(t *testing.T) {
	serve := func(lis net.Listener) (stop func()) {
		m, err := NewMaster(MasterConfig{Secret: testSecret, Graph: testGraph(), Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Serve(ctx, lis) }()
		return func() { cancel(); <-done }
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	stop := serve(lis)
	w := runWorker(t, WorkerConfig{Master: addr, Secret: testSecret})
	w.waitRegistered(t)
	stop()
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer serve(lis2)()
	if err := w.result(t, 20*time.Second); !errors.Is(err, ErrMasterRestarted) {
		t.Fatalf("Run = %v, want ErrMasterRestarted", err)
	}
}
