// Package s3store is a [checkpoint.Store] in an S3 bucket, or in any
// S3-compatible object store (MinIO, Ceph, R2, ...): the durable layer of a
// dstream job whose processes share no file system. Its init registers the
// scheme "s3" with [checkpoint.Open], so s3://BUCKET/PREFIX is a checkpoint
// location (Config.CheckpointDir, --checkpoint) in every dstream program.
//
// # Configuration
//
// As every S3 tool: the AWS SDK's default chain. AWS_REGION (or the shared
// config file's region), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a
// profile, web identity, an instance or pod role), and AWS_ENDPOINT_URL
// (or AWS_ENDPOINT_URL_S3) for an S3-compatible server, which is then
// addressed path-style (http://HOST/BUCKET/KEY), as such servers expect; its
// region defaults to us-east-1. AWS_MAX_ATTEMPTS bounds the attempts of one
// operation (default 6). Every process of a job needs the same
// configuration: workers inherit their environment from whoever starts them.
//
// # Semantics
//
// Object NAME lives at key PREFIX/NAME. Put is one PUT, atomic in S3 (a
// reader sees the old object or the new one, whole) and durable once it
// returns. List pages through ListObjectsV2 and returns the names in byte
// order; keys under the prefix that no [checkpoint.ValidName] accepts
// (written by other tools, folder markers) are not listed. Unlike [checkpoint.Dir],
// "a" and "a/b" may both be objects.
//
// # Faults
//
// Transient failures (HTTP 500, 502, 503, 504, throttling, a connection
// refused, reset or closed before the answer, no answer within
// [Options.ResponseTimeout]) are retried by the SDK's standard retryer,
// with exponential backoff and jitter, up to [Options.MaxAttempts] attempts;
// a GET whose body breaks off is retried as a whole, as often. Retrying a
// Put or a Delete whose answer was lost is safe: both are idempotent. What
// is still failing after that, or is not transient (a missing bucket,
// denied access), is returned with an error naming the operation, bucket
// and key.
//
// # Why the AWS SDK, and not gocloud.dev/blob or minio-go
//
// The SDK is what reads the configuration above the way every AWS tool
// does, and its retryer classifies S3's errors; gocloud.dev's s3blob is a
// portability layer over this same SDK, and [checkpoint.Store] already is
// ours: it would add a HEAD to every Delete (to report a missing object,
// which Store does not want), escape control characters in keys (so S3's
// listing order is no longer the names' byte order) and upload through the
// SDK's pre-1.0 transfer manager, with OpenTelemetry and Wire besides.
// minio-go speaks S3 well but reads none of the AWS configuration chain
// (profiles, web identity, instance and pod roles).
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/dstream/dstream/checkpoint"
)

// Scheme is the scheme of the locations this package opens.
const Scheme = "s3"

func init() {
	checkpoint.RegisterScheme(Scheme, checkpoint.Scheme{
		Check: func(location string) error {
			_, _, err := ParseLocation(location)
			return err
		},
		Open: func(ctx context.Context, location string) (checkpoint.Store, error) {
			return Open(ctx, location, Options{})
		},
	})
}

// Defaults of Options.
const (
	DefaultMaxAttempts     = 6
	DefaultResponseTimeout = 30 * time.Second
)

// Options tunes a Store. The zero value is the defaults.
type Options struct {
	// MaxAttempts bounds the attempts of one operation, the first one
	// included. Default: $AWS_MAX_ATTEMPTS (or the shared config file's
	// max_attempts), else DefaultMaxAttempts.
	MaxAttempts int
	// ResponseTimeout is how long an attempt waits for the server: for the
	// answer once the request is sent, and then between two reads of a
	// GET's body. An attempt that waits longer is abandoned and retried.
	// Default DefaultResponseTimeout.
	ResponseTimeout time.Duration
}

// Store is a [checkpoint.Store] under one prefix of one S3 bucket. It is
// safe for concurrent use.
type Store struct {
	client      *s3.Client
	transport   *http.Transport // ours, for Close
	bucket      string
	prefix      string // "" or ending with a slash
	maxAttempts int
	timeout     time.Duration
	pageSize    int32 // ListObjectsV2's MaxKeys; 0: the server's (1000)

	closeOnce sync.Once
}

var (
	_ checkpoint.Store       = (*Store)(nil)
	_ checkpoint.Lister      = (*Store)(nil)
	_ checkpoint.RangeGetter = (*Store)(nil)
)

// ParseLocation splits an s3://BUCKET/PREFIX location. The bucket name
// follows S3's rules (3 to 63 lowercase letters, digits, dots and hyphens,
// beginning and ending with a letter or a digit); the prefix, optional, is
// a folder: slash-separated elements as [checkpoint.ValidName] accepts
// them, with or without a trailing slash. The returned prefix is "" or ends
// with a slash. Nothing else is accepted: no query (configuration comes
// from the environment), no port, no credentials.
func ParseLocation(location string) (bucket, prefix string, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("s3store: location %q: %s (want s3://BUCKET or s3://BUCKET/PREFIX)", location, fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(location, Scheme+"://")
	if !ok {
		return "", "", bad("not an %s:// URL", Scheme)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return "", "", bad("%q is not allowed: S3 is configured through AWS_REGION, AWS_ENDPOINT_URL and the other AWS_ variables", rest[i:i+1])
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return "", "", bad("%v", err)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return bucket, "", nil
	}
	if err := checkpoint.ValidName(prefix); err != nil {
		return "", "", bad("prefix: %v", err)
	}
	return bucket, prefix + "/", nil
}

// checkBucket checks S3's rules for a bucket's name.
func checkBucket(name string) error {
	const rule = "3 to 63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or a digit"
	if name == "" {
		return errors.New("no bucket")
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if len(name) < 3 || len(name) > 63 || !alnum(name[0]) || !alnum(name[len(name)-1]) || strings.Contains(name, "..") {
		return fmt.Errorf("bucket %q: a bucket's name has %s", name, rule)
	}
	for i := range len(name) {
		if c := name[i]; !alnum(c) && c != '.' && c != '-' {
			return fmt.Errorf("bucket %q: %q is not allowed: a bucket's name has %s", name, c, rule)
		}
	}
	return nil
}

// Open returns the Store at location, s3://BUCKET/PREFIX (see
// [ParseLocation]), configured from the environment (see the package
// documentation) and opts. It reaches no server: a missing bucket or
// refused credentials are errors of the first operation. Close the Store
// when done.
func Open(ctx context.Context, location string, opts Options) (*Store, error) {
	bucket, prefix, err := ParseLocation(location)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3store: %s: loading the AWS configuration: %w", location, err)
	}
	s := &Store{bucket: bucket, prefix: prefix, maxAttempts: opts.MaxAttempts, timeout: opts.ResponseTimeout}
	if s.maxAttempts <= 0 {
		s.maxAttempts = cfg.RetryMaxAttempts
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = DefaultMaxAttempts
	}
	if s.timeout <= 0 {
		s.timeout = DefaultResponseTimeout
	}
	// Our own transport (with the configuration's TLS settings, such as
	// AWS_CA_BUNDLE): an answer's timeout, and idle connections to close.
	base, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		base = awshttp.NewBuildableClient()
	}
	s.transport = base.GetTransport()
	s.transport.ResponseHeaderTimeout = s.timeout
	httpClient := &http.Client{
		Transport: stallGuard{next: s.transport, timeout: s.timeout},
		// S3 answers a request to the wrong region with a redirect the
		// SDK must see, not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.HTTPClient = httpClient
		if r, ok := o.Retryer.(aws.RetryerV2); ok {
			o.Retryer = retryTruncated{r}
		}
		o.RetryMaxAttempts = s.maxAttempts // wraps the configured retryer
		if o.BaseEndpoint != nil {
			// An S3-compatible server: path-style addressing, and a region
			// only for signing.
			o.UsePathStyle = true
			if o.Region == "" {
				o.Region = "us-east-1"
			}
		}
	})
	if s.client.Options().Region == "" {
		return nil, fmt.Errorf("s3store: %s: no AWS region: set AWS_REGION (or AWS_ENDPOINT_URL for an S3-compatible server)", location)
	}
	return s, nil
}

// Location returns the store's location, s3://BUCKET/PREFIX.
func (s *Store) Location() string {
	return "s3://" + s.bucket + "/" + s.prefix
}

// Close releases the store's idle connections. Close is idempotent; the
// store remains usable (it dials again).
func (s *Store) Close() error {
	s.closeOnce.Do(s.transport.CloseIdleConnections)
	return nil
}

// key is the object key of name.
func (s *Store) key(name string) string { return s.prefix + name }

// fail is the error of operation op on key: the store's own wording for what
// it recognizes, the SDK's (which says what was attempted how often) with
// the bucket and key otherwise.
func (s *Store) fail(op, key string, err error) error {
	where := fmt.Sprintf("s3store: %s s3://%s/%s", op, s.bucket, key)
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey":
			return fmt.Errorf("%s: %w", where, checkpoint.ErrNotFound)
		case "NoSuchBucket":
			return fmt.Errorf("%s: bucket %q does not exist (create it first): %w", where, s.bucket, err)
		}
	}
	return fmt.Errorf("%s: %w", where, err)
}

func (s *Store) check(ctx context.Context, name string, valid func(string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return valid(name)
}

// Put implements [checkpoint.Store].
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, name, checkpoint.ValidName); err != nil {
		return err
	}
	key := s.key(name)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// Get implements [checkpoint.Store].
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if err := s.check(ctx, name, checkpoint.ValidName); err != nil {
		return nil, err
	}
	key := s.key(name)
	return s.retryBody(ctx, func() ([]byte, error) { return s.get(ctx, key) })
}

// retryBody runs read, one GET and the read of its body, again while its
// body broke off or stalled. The SDK retried until the answer began; such a
// body is retried here, as often, after a backoff as the SDK's (50 ms
// doubling, jittered).
func (s *Store) retryBody(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		b, err := read()
		var broken *brokenBodyError
		switch {
		case err == nil || !errors.As(err, &broken) || ctx.Err() != nil:
			return b, err
		case attempt >= s.maxAttempts:
			return nil, fmt.Errorf("%w (%d attempts)", err, attempt)
		}
		wait := time.Duration(rand.Int64N(int64(50*time.Millisecond) << min(attempt-1, 6)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
	}
}

// brokenBodyError is a GET whose body broke off or stalled: transient.
type brokenBodyError struct{ err error }

func (e *brokenBodyError) Error() string { return "reading the object: " + e.err.Error() }
func (e *brokenBodyError) Unwrap() error { return e.err }

// get is one GetObject, with the SDK's retries, and the read of its body.
func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 {
		buf.Grow(int(min(n, 1<<30)))
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		if ctx.Err() != nil {
			return nil, s.fail("get", key, ctx.Err())
		}
		return nil, s.fail("get", key, &brokenBodyError{err})
	}
	return buf.Bytes(), nil
}

// List implements [checkpoint.Store].
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.check(ctx, prefix, checkpoint.ValidPrefix); err != nil {
		return nil, err
	}
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.key(prefix))}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	var names []string
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s.fail("list", s.key(prefix), err)
		}
		for _, o := range page.Contents {
			name, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if ok && checkpoint.ValidName(name) == nil {
				names = append(names, name)
			}
		}
	}
	// S3 lists in UTF-8 binary order, which is byte order; not every
	// imitation does.
	slices.Sort(names)
	return slices.Compact(names), nil
}

// ListInfo implements [checkpoint.Lister]: one listing with delimiter "/",
// every page; the objects directly under prefix, with their sizes and
// modification times (S3's LastModified: when the upload began).
func (s *Store) ListInfo(ctx context.Context, prefix string) ([]checkpoint.Info, error) {
	if err := s.check(ctx, prefix, checkpoint.ValidPrefix); err != nil {
		return nil, err
	}
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.key(prefix)), Delimiter: aws.String("/")}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	var infos []checkpoint.Info
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s.fail("list", s.key(prefix), err)
		}
		for _, o := range page.Contents {
			name, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if ok && checkpoint.ValidName(name) == nil && !strings.Contains(name[len(prefix):], "/") {
				infos = append(infos, checkpoint.Info{Name: name, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
			}
		}
	}
	slices.SortFunc(infos, func(a, b checkpoint.Info) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(infos, func(a, b checkpoint.Info) bool { return a.Name == b.Name }), nil
}

// GetRange implements [checkpoint.RangeGetter]: a GetObject of the bytes
// [off, off+n). An offset at or past the object's end reads nothing.
func (s *Store) GetRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	if err := s.check(ctx, name, checkpoint.ValidName); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("s3store: get range of %q: negative offset %d or length %d", name, off, n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	key := s.key(name)
	return s.retryBody(ctx, func() ([]byte, error) { return s.getRange(ctx, key, off, n) })
}

// getRange is one ranged GetObject and the read of its body.
func (s *Store) getRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	// A part cannot be checked against a whole object's checksum (some
	// S3 imitations send that with a part): validate only when asked.
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}, func(o *s3.Options) {
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "InvalidRange" {
			return []byte{}, nil // off is at or past the end
		}
		return nil, s.fail("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(out.Body, n)); err != nil {
		if ctx.Err() != nil {
			return nil, s.fail("get", key, ctx.Err())
		}
		return nil, s.fail("get", key, &brokenBodyError{err})
	}
	return buf.Bytes(), nil
}

// Delete implements [checkpoint.Store].
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.check(ctx, name, checkpoint.ValidName); err != nil {
		return err
	}
	key := s.key(name)
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		if err := s.fail("delete", key, err); !errors.Is(err, checkpoint.ErrNotFound) {
			return err
		}
	}
	return nil
}

// retryTruncated is the configured retryer (standard, unless
// AWS_RETRY_MODE says adaptive), which also retries an answer whose body
// broke off before the SDK decoded it (a ListObjectsV2 page): the SDK
// takes it for a malformed answer.
type retryTruncated struct{ aws.RetryerV2 }

func (r retryTruncated) IsErrorRetryable(err error) bool {
	var de *smithy.DeserializationError
	if errors.As(err, &de) && errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

// stallGuard is an http.RoundTripper that abandons an answer whose body
// stops coming: once no byte came for timeout, the request's context is
// canceled, and the body's next (or pending) Read fails with a
// [stallError], which the SDK retries as a timeout. (The transport's
// ResponseHeaderTimeout watches the wait for the answer's headers.)
type stallGuard struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (g stallGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	resp, err := g.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	b := &guardedBody{body: resp.Body, cancel: cancel, timeout: g.timeout}
	b.timer = time.AfterFunc(g.timeout, func() {
		b.stalled.Store(true)
		cancel()
	})
	resp.Body = b
	return resp, nil
}

type guardedBody struct {
	body    io.ReadCloser
	cancel  context.CancelFunc
	timeout time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.timer.Stop()
	case err != nil && b.stalled.Load():
		err = &stallError{b.timeout}
	case n > 0:
		b.timer.Reset(b.timeout)
	}
	return n, err
}

func (b *guardedBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel()
	return err
}

// stallError is the error of a body read abandoned by a stallGuard.
type stallError struct{ timeout time.Duration }

func (e *stallError) Error() string {
	return fmt.Sprintf("the answer stalled: no data for %v", e.timeout)
}
func (e *stallError) Timeout() bool { return true }

var _ checkpoint.Conditional = (*Store)(nil)

// GetVersion implements [checkpoint.Conditional]: a GetObject; the version
// is the object's ETag.
func (s *Store) GetVersion(ctx context.Context, name string) ([]byte, string, error) {
	if err := s.check(ctx, name, checkpoint.ValidName); err != nil {
		return nil, "", err
	}
	key := s.key(name)
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, "", s.fail("get", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", s.fail("get", key, &brokenBodyError{err})
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return nil, "", fmt.Errorf("s3store: get s3://%s/%s: the server sent no ETag: it cannot version objects", s.bucket, key)
	}
	return b, etag, nil
}

// PutIf implements [checkpoint.Conditional]: a PutObject with If-None-Match
// "*" (version "") or If-Match the version (an ETag). S3's 412
// PreconditionFailed, and its 409 ConditionalRequestConflict (a concurrent
// conditional write won), are ErrConflict. A server that ignores the
// conditions (an old S3 imitation) breaks the guarantee: check yours.
func (s *Store) PutIf(ctx context.Context, name string, data []byte, version string) (string, error) {
	if err := s.check(ctx, name, checkpoint.ValidName); err != nil {
		return "", err
	}
	key := s.key(name)
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	}
	if version == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(version)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) {
			switch api.ErrorCode() {
			case "PreconditionFailed", "ConditionalRequestConflict":
				return "", fmt.Errorf("s3store: put s3://%s/%s if %s: %w (%v)", s.bucket, key, cond(version), checkpoint.ErrConflict, api.ErrorCode())
			}
		}
		return "", s.fail("put", key, err)
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return "", fmt.Errorf("s3store: put s3://%s/%s: the server sent no ETag: it cannot version objects", s.bucket, key)
	}
	return etag, nil
}

func cond(version string) string {
	if version == "" {
		return "absent"
	}
	return "at " + version
}
