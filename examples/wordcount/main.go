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
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9999", "address the socket source listens on")
	batch := fs.Duration("batch", time.Second, "batch interval")
	out := fs.String("out", "", "output folder (required)")
	master := fs.String("master", "local[2]", "where tasks run: local[N]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, err := dstream.NewContext(dstream.Config{Master: *master, BatchInterval: *batch, Logger: logger})
	if err != nil {
		return err
	}
	lines := dstream.SocketTextStream(ctx, *listen)
	words := dstream.FlatMap(lines, strings.Fields)
	pairs := dstream.Map(words, func(w string) dstream.Pair[string, int64] { return dstream.KV(w, int64(1)) })
	counts := dstream.ReduceByKey(pairs, func(a, b int64) int64 { return a + b }, 0)
	text := dstream.Map(counts, func(p dstream.Pair[string, int64]) string {
		return p.Key + "\t" + strconv.FormatInt(p.Value, 10)
	})
	text.SaveAsTextFiles(filepath.Join(*out, "words"), "")
	return ctx.Run()
}
