package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/program"
)

// `dstream drill-store`, not for people: the S3 server of `dstream drill
// --hosts --store s3`, on a host of its own, so the checkpoint location and
// the job's outputs are object storage that every process reaches over the
// network (and a link cut can separate from the master or a worker). It is gofakes3 (github.com/johannesboyne/
// gofakes3, the S3 server the checkpoint package's tests use too) on its
// afero backend over --dir: a bucket is a folder and an object a file (with
// its metadata beside it), so what the store was given is on disk, and the
// bucket is made on first use. It prints "drill-store: listening ADDR" once
// it serves, and stops on SIGTERM or SIGINT.

// drillBucket is the bucket of the drill's checkpoint location (ckpt/) and
// outputs (out/).
const drillBucket = "drill"

// s3Supported reports whether checkpoint.Open knows s3:// locations.
func s3Supported() error { return checkpoint.CheckLocation("s3://" + drillBucket + "/ckpt") }

func runDrillStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drill-store", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to serve S3 on")
	dir := fs.String("dir", "", "`folder` of the store's database file (required)")
	if err := parseFlags(fs, "--dir DIR [--listen ADDR]", args, stdout); err != nil {
		return err
	}
	if *dir == "" {
		return program.Usagef("--dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	backend, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), *dir))
	if err != nil {
		return fmt.Errorf("drill-store: %w", err)
	}
	if err := backend.CreateBucket(drillBucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		return fmt.Errorf("drill-store: bucket %s: %w", drillBucket, err)
	}
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(true), gofakes3.WithLogger(gofakes3.DiscardLog()))
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("drill-store: %w", err)
	}
	srv := &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(slog.NewTextHandler(stderr, nil), slog.LevelWarn)}
	fmt.Fprintf(stdout, "drill-store: listening %s\n", lis.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case err := <-done:
		return fmt.Errorf("drill-store: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
