package dstream_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/dstreamtest"
)

// TestClusterPortRefusesGarbage attacks a running local-cluster master's
// cluster port with random bytes, a half-open connection, an HTTP/1.1
// request and gRPC calls with a wrong or missing secret: every one is
// refused, and the job keeps computing exact results on all its processes.
func TestClusterPortRefusesGarbage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[2]"})
	col := dstreamtest.Collect(dstream.ReduceByKey(h.In, add, 2))
	input := [][]kv{
		{p("a", 1), p("b", 2), p("a", 3)},
		{p("c", 5), p("a", 1), p("c", -2)},
		{p("b", 7), p("d", 1), p("b", 1), p("d", 1)},
	}
	want := [][]kv{
		{p("a", 4), p("b", 2)},
		{p("a", 1), p("c", 3)},
		{p("b", 8), p("d", 2)},
	}
	for _, b := range input {
		h.Input.Push(b...)
	}
	h.Start() // a worker process serves here, then skips the rest

	checkInterval := func(i int, at time.Time) {
		t.Helper()
		if err := col.Err(at); err != nil {
			t.Fatalf("interval %d failed: %v", i+1, err)
		}
		if got := dstreamtest.Sorted(col.At(at)); !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("interval %d: got %v, want %v", i+1, got, want[i])
		}
	}
	checkInterval(0, h.Tick())

	addr := h.Ctx.ClusterAddr()
	if addr == "" {
		t.Fatal("ClusterAddr() is empty under local-cluster[2]")
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// (b) Half-open: connected, never a byte sent, held open over the next
	// interval.
	idle := dial()

	// (a) Random bytes (a fixed seed, so every run sends the same ones): the
	// server must hang up, not wait for more.
	junk := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(0x6473747265616d, 1))
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	if bytes.HasPrefix(junk, []byte("PRI")) {
		t.Fatal("the random bytes begin like an HTTP/2 preface; pick another seed")
	}
	random := dial()
	random.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := random.Write(junk); err != nil && !isHangUp(err) {
		t.Fatalf("writing random bytes: %v", err)
	}
	if _, err := io.Copy(io.Discard, random); err != nil && !isHangUp(err) {
		t.Fatalf("random bytes: the server did not close the connection: %v", err)
	}

	// (c) HTTP/1.1: whatever comes back (an HTTP/2 SETTINGS frame, an error
	// response or nothing) is no success, and the connection is closed.
	http1 := dial()
	http1.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(http1, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil && !isHangUp(err) {
		t.Fatalf("writing HTTP/1.1 request: %v", err)
	}
	var reply bytes.Buffer
	if _, err := io.Copy(&reply, http1); err != nil && !isHangUp(err) {
		t.Fatalf("HTTP/1.1 request: the server did not close the connection: %v", err)
	}
	if r := reply.Bytes(); bytes.HasPrefix(r, []byte("HTTP/1.1 2")) || bytes.HasPrefix(r, []byte("HTTP/1.0 2")) {
		t.Fatalf("HTTP/1.1 request got a success: %q", r)
	}

	// (d) Real gRPC clients: a plainly wrong token, a well-formed token from
	// the wrong secret, and no token at all, on both services.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc, pc := clusterpb.NewClusterClient(conn), clusterpb.NewPeerClient(conn)
	mac := hmac.New(sha256.New, []byte("not the cluster's secret"))
	mac.Write([]byte("dstream cluster auth v1"))
	forged := hex.EncodeToString(mac.Sum(nil))
	call := func(token string) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-dstream-auth", token)
		}
		return ctx, cancel
	}
	wantUnauthenticated := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: got %v, want code Unauthenticated", what, err)
		}
	}
	for _, token := range []string{"wrong", forged, ""} {
		ctx, cancel := call(token)
		_, err := cc.Register(ctx, &clusterpb.RegisterRequest{WorkerId: "intruder", Address: "127.0.0.1:1", Pid: int64(os.Getpid()), Slots: 1})
		wantUnauthenticated("Register with token "+quoteToken(token), err)
		_, err = cc.Manifests(ctx, &clusterpb.ManifestsRequest{UpTo: time.Now().UnixMilli()})
		wantUnauthenticated("Manifests with token "+quoteToken(token), err)
		cancel()
	}
	for _, token := range []string{"", "wrong"} {
		ctx, cancel := call(token)
		stream, err := pc.FetchBlock(ctx, &clusterpb.FetchBlockRequest{Key: "input/0"})
		if err == nil {
			_, err = stream.Recv()
		}
		wantUnauthenticated("FetchBlock with token "+quoteToken(token), err)
		cancel()
	}
	if t.Failed() {
		t.FailNow()
	}

	// The job is unharmed: two more exact intervals, the first while the
	// half-open connection is still open.
	checkInterval(1, h.Tick())
	idle.Close()
	checkInterval(2, h.Tick())

	ws := h.Ctx.Workers()
	alive := 0
	for _, w := range ws {
		if w.State == "alive" {
			alive++
		}
	}
	if len(ws) != 3 || alive != 3 {
		t.Errorf("Workers() = %+v, want the master and two workers, all alive", ws)
	}
}

// isHangUp reports whether err is the server closing a connection while we
// wrote or read: a reset or a broken pipe (a clean close is io.EOF, which
// io.Copy does not report).
func isHangUp(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func quoteToken(token string) string {
	switch {
	case token == "":
		return "(none)"
	case len(token) > 12:
		return token[:12] + "…"
	}
	return token
}
