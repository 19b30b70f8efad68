package ui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/source"
)

func TestReceiversEndpoint(t *testing.T) {
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: slog.New(slog.DiscardHandler), MaxRecordBytes: 64})
	f := newFixture(t, 0, nil, func(in *dstream.Stream[string]) {
		dstream.ReceiverStream(in.Context(), sock).Print(1)
	})
	addr := sock.Addr().String()
	if _, err := client.Send(context.Background(), client.Options{To: addr, Generate: "words", Count: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	// A line over the source's limit is dropped and counted.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(strings.Repeat("x", 100) + "\n")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for f.h.Ctx.ReceivedRecords() < 3 || f.h.Ctx.DroppedRecords() < 1 { // the socket is read on the wall clock
		if time.Now().After(deadline) {
			t.Fatalf("received %d of 3 records, dropped %d of 1", f.h.Ctx.ReceivedRecords(), f.h.Ctx.DroppedRecords())
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.expect(t, "/api/v1/receivers", 200, fmt.Sprintf(`[{"streamId": 2, "streamName": "socket 127.0.0.1:0", "address": %q, "worker": null,
		"isActive": true, "records": 3, "droppedRecords": 1, "lastError": null, "lastErrorTime": null}]`, addr))
	if got := render(scrape(t, f.url), "dstream_stream_dropped_records_total"); got != "# TYPE dstream_stream_dropped_records_total counter\n"+
		`dstream_stream_dropped_records_total{receiver="socket 127.0.0.1:0",stream="2"} 1`+"\n" {
		t.Errorf("/metrics:\n%s", got)
	}
	// /metrics counts the same records, per receiver.
	if got := render(scrape(t, f.url), "dstream_stream_received_records_total"); got != "# TYPE dstream_stream_received_records_total counter\n"+
		`dstream_stream_received_records_total{receiver="socket 127.0.0.1:0",stream="2"} 3`+"\n" {
		t.Errorf("/metrics:\n%s", got)
	}
	if code, _, _ := request(t, http.MethodDelete, f.url+"/api/v1/receivers"); code != 405 {
		t.Errorf("DELETE: %d, want 405", code)
	}
}
