// Command wordcount counts the words (fields split on white space, as
// strings.Fields does) of every interval received on a socket and saves each
// interval as lines "word<TAB>count" under DIR/words-<interval ms>/part-NNNNN.
//
//	go run ./examples/wordcount --listen 127.0.0.1:9999 --batch 1s --out /tmp/wc
//	go run ./cmd/dstream send --to 127.0.0.1:9999 --file input.txt
//
// SIGTERM or Ctrl-C stops it gracefully: it stops receiving, finishes every
// record already received, writes those intervals and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/source"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9999", "address the socket source listens on (port 0 picks a free port)")
	batch := fs.Duration("batch", time.Second, "batch interval")
	out := fs.String("out", "", "output folder (required)")
	master := fs.String("master", "local[2]", "where tasks run: local[N]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, err := dstream.NewContext(dstream.Config{Master: *master, BatchInterval: *batch, Logger: logger})
	if err != nil {
		return err
	}
	sock := source.NewSocket(*listen, source.SocketOptions{Logger: logger})
	lines := dstream.ReceiverStream(ctx, sock)
	words := dstream.FlatMap(lines, strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 0)
	text := dstream.Map(counts, func(p dstream.Pair[string, int64]) string {
		return p.Key + "\t" + strconv.FormatInt(p.Value, 10)
	})
	text.SaveAsTextFiles(filepath.Join(*out, "words"), "")

	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ctx.Start(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wordcount: listening on %s, writing to %s\n", sock.Addr(), *out)
	<-sig.Done()
	fmt.Fprintln(stdout, "wordcount: stopping gracefully")
	return ctx.Stop(true)
}
