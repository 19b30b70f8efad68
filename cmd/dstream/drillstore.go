package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
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
// it serves, and stops on SIGTERM or SIGINT. A listing without a
// delimiter walks only the folder its prefix names (prefixLister): s3afero
// walks the whole bucket for one, reading every object's metadata, so the
// job's intervals grew slower with the bucket (a 500 ms interval took
// over a second after two minutes).

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
	base := afero.NewBasePathFs(afero.NewOsFs(), *dir)
	multi, err := s3afero.MultiBucket(base)
	if err != nil {
		return fmt.Errorf("drill-store: %w", err)
	}
	backend := prefixLister{MultiBucketBackend: multi, buckets: afero.NewBasePathFs(base, "buckets")}
	if err := backend.CreateBucket(drillBucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		return fmt.Errorf("drill-store: bucket %s: %w", drillBucket, err)
	}
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(true), gofakes3.WithLogger(gofakes3.DiscardLog()))
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("drill-store: %w", err)
	}
	counts := &requestCounts{started: time.Now(), by: map[string]int{}}
	srv := &http.Server{Handler: counts.wrap(faker.Server()), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(slog.NewTextHandler(stderr, nil), slog.LevelWarn)}
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
	fmt.Fprintf(stderr, "drill-store: %s\n", counts)
	return nil
}

// requestCounts counts the store's requests, those of the masters' lease
// object (…/meta/lease) apart: what the lease costs the store.
type requestCounts struct {
	mu      sync.Mutex
	started time.Time
	all     int
	by      map[string]int // lease requests by method
}

func (c *requestCounts) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.all++
		if strings.HasSuffix(r.URL.Path, "/meta/lease") {
			c.by[r.Method]++
		}
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// String says how many requests, and how many a second, over how long.
func (c *requestCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	secs := time.Since(c.started).Seconds()
	lease := 0
	var b strings.Builder
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		lease += c.by[m]
		if c.by[m] > 0 {
			fmt.Fprintf(&b, ", %s %d (%.2f/s)", m, c.by[m], float64(c.by[m])/secs)
		}
	}
	return fmt.Sprintf("%d requests in %.1fs (%.1f/s); of the lease object meta/lease: %d (%.2f/s)%s",
		c.all, secs, float64(c.all)/secs, lease, float64(lease)/secs, b.String())
}

// prefixLister is s3afero's backend whose listings without a delimiter
// walk only the folder their prefix names ("a/b/" of "a/b/c"), not the
// whole bucket.
type prefixLister struct {
	*s3afero.MultiBucketBackend
	buckets afero.Fs // the backend's folder of buckets, a folder each
}

func (b prefixLister) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil || !prefix.HasPrefix || prefix.HasDelimiter || !page.IsEmpty() || gofakes3.ValidateBucketName(bucket) != nil {
		return b.MultiBucketBackend.ListBucket(bucket, prefix, page)
	}
	if ok, err := b.BucketExists(bucket); err != nil || !ok {
		return b.MultiBucketBackend.ListBucket(bucket, prefix, page)
	}
	list := gofakes3.NewObjectList()
	root := filepath.FromSlash(path.Join(bucket, path.Dir(prefix.Prefix)))
	err := afero.Walk(b.buckets, root, func(name string, info os.FileInfo, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // the prefix's folder is not there (yet, or any more)
		case err != nil:
			return err
		case info.IsDir():
			return nil
		}
		key, ok := strings.CutPrefix(filepath.ToSlash(name), bucket+"/")
		if !ok || !strings.HasPrefix(key, prefix.Prefix) {
			return nil
		}
		obj, err := b.HeadObject(bucket, key)
		if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		list.Add(&gofakes3.Content{Key: key, LastModified: gofakes3.NewContentTime(info.ModTime()), ETag: gofakes3.FormatETag(obj.Hash), Size: obj.Size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}
