package dstream_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/source"
)

// A line over the socket source's limit is dropped and counted where the
// receiver runs: in local-cluster on a worker, whose heartbeats report the
// count to the master. Every other record is received and counted.
func TestLocalClusterCountsDroppedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[2]"})
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: slog.New(slog.DiscardHandler), MaxRecordBytes: 1 << 10})
	lines := dstream.ReceiverStream(h.Ctx, sock)
	words := dstream.Map(dstream.FlatMap(lines, strings.Fields), func(w string) kv { return p(w, 1) })
	col := dstreamtest.Collect(dstream.ReduceByKey(words, add, 2))
	h.Start()
	addr := sock.Addr().String()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(strings.Repeat("x", 2<<10) + "\n")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	const n = 100
	if _, err := client.Send(context.Background(), client.Options{To: addr, Generate: "words", Seed: 3, Count: n, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.Ctx.ReceivedRecords() < n || h.Ctx.DroppedRecords() < 1 { // the worker's receiver runs on the wall clock
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d records, dropped %d of 1", h.Ctx.ReceivedRecords(), n, h.Ctx.DroppedRecords())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t1 := h.Tick()
	if got := h.Ctx.DroppedRecords(); got != 1 {
		t.Errorf("dropped %d records, want 1", got)
	}
	rs := h.Ctx.Receivers()
	if len(rs) != 1 || rs[0].Dropped != 1 || rs[0].Worker == "" {
		t.Errorf("receivers: %+v; want one, on a worker, that dropped 1", rs)
	}
	total := 0
	for _, c := range col.At(t1) {
		total += c.Value
		if strings.Contains(c.Key, "xxx") {
			t.Errorf("the over-long line was counted: %q", c.Key[:10])
		}
	}
	if total == 0 {
		t.Error("interval 1 counted no word")
	}
}
