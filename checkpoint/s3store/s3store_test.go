package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/checkpoint/storetest"
)

const bucket = "ckpt"

// testTimeout is the stores' response timeout in the tests of stalls: how
// long a stalled attempt takes to be abandoned, and long enough for an
// answer from a healthy server on a loaded machine. Other tests keep the
// default, so that no healthy answer is ever taken for a stall.
const testTimeout = 300 * time.Millisecond

// timeoutFor is the response timeout of a test of fault.
func timeoutFor(fault s3test.Fault) time.Duration {
	switch fault {
	case s3test.Stall, s3test.StallAfter, s3test.StallBody:
		return testTimeout
	}
	return 0
}

// open returns a store at s3://ckpt/PREFIX on srv, opened as a program
// opens it (the environment), with opts.
func open(t testing.TB, srv *s3test.Server, prefix string, opts Options) *Store {
	t.Helper()
	srv.Env(t)
	s, err := Open(context.Background(), "s3://"+bucket+"/"+prefix, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		location       string
		bucket, prefix string
		why            string // "" when valid
	}{
		{"s3://ckpt", "ckpt", "", ""},
		{"s3://ckpt/", "ckpt", "", ""},
		{"s3://ckpt/job", "ckpt", "job/", ""},
		{"s3://ckpt/job/", "ckpt", "job/", ""},
		{"s3://my.bucket-2/jobs/wordcount/v1", "my.bucket-2", "jobs/wordcount/v1/", ""},
		{"s3://", "", "", "no bucket"},
		{"s3:///job", "", "", "no bucket"},
		{"s3://ab/job", "", "", "3 to 63"},
		{"s3://" + strings.Repeat("b", 64), "", "", "3 to 63"},
		{"s3://Ckpt/job", "", "", "lowercase letters"}, {"s3://cKpt/job", "", "", "'K' is not allowed"},
		{"s3://ck_pt/job", "", "", "'_' is not allowed"},
		{"s3://-ckpt/job", "", "", "beginning and ending"},
		{"s3://ckpt./job", "", "", "beginning and ending"},
		{"s3://ck..pt/job", "", "", "3 to 63"},
		{"s3://ckpt:9000/job", "", "", "':' is not allowed"},
		{"s3://key:secret@ckpt/job", "", "", "':' is not allowed"},
		{"s3://ckpt/job?region=eu-west-1", "", "", "AWS_REGION"},
		{"s3://ckpt/job#x", "", "", `"#" is not allowed`},
		{"s3://ckpt//job", "", "", "begins with a slash"},
		{"s3://ckpt/job//x", "", "", "empty element"},
		{"s3://ckpt/a/../b", "", "", `".."`},
		{"s3://ckpt/.hidden", "", "", "begins with a dot"},
		{"s3://ckpt/a\\b", "", "", "backslash"},
		{"S3://ckpt/job", "", "", "not an s3:// URL"},
		{"/var/lib/ckpt", "", "", "not an s3:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			b, p, err := ParseLocation(tt.location)
			if tt.why == "" {
				if err != nil || b != tt.bucket || p != tt.prefix {
					t.Fatalf("ParseLocation = %q, %q, %v; want %q, %q", b, p, err, tt.bucket, tt.prefix)
				}
				if err := checkpoint.CheckLocation(tt.location); err != nil {
					t.Fatalf("checkpoint.CheckLocation = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), "s3://BUCKET/PREFIX") {
				t.Fatalf("ParseLocation = %q, %q, %v; want an error saying %q and the syntax", b, p, err, tt.why)
			}
			if strings.HasPrefix(tt.location, "s3://") {
				if cerr := checkpoint.CheckLocation(tt.location); cerr == nil || cerr.Error() != err.Error() {
					t.Fatalf("checkpoint.CheckLocation = %v, want ParseLocation's error", cerr)
				}
			}
		})
	}
}

// The store keeps the Store contract: opened directly, with pages of two
// keys (List pages through every test's objects), and through
// checkpoint.Open, as the engine opens it.
func TestStoreKeepsTheStoreContract(t *testing.T) {
	t.Run("Open/pages-of-2", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) checkpoint.Store {
			s := open(t, s3test.NewServer(t, bucket), "job/1", Options{})
			s.pageSize = 2
			return s
		})
	})
	t.Run("checkpoint.Open", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) checkpoint.Store {
			s3test.NewServer(t, bucket).Env(t)
			s, err := checkpoint.Open(t.Context(), "s3://"+bucket)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.(*Store).Close() })
			return s
		})
	})
}

// Object NAME is key PREFIX/NAME; stores under different prefixes of one
// bucket do not see each other's objects, and List ignores keys no name
// can have (written by other tools).
func TestPrefixesAndForeignKeys(t *testing.T) {
	srv := s3test.NewServer(t, bucket)
	job1 := open(t, srv, "jobs/1", Options{})
	job2 := open(t, srv, "jobs/2/", Options{})
	root := open(t, srv, "", Options{})
	ctx := t.Context()
	for _, s := range []*Store{job1, job2} {
		if err := s.Put(ctx, "meta/start", []byte(s.prefix)); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"jobs/1/", "jobs/1/dir/", "jobs/1/.hidden", "jobs/1//double", "jobs/10/other"} {
		if _, err := root.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		s      *Store
		prefix string
		want   []string
	}{
		{job1, "", []string{"meta/start"}},
		{job2, "", []string{"meta/start"}},
		{root, "jobs/", []string{"jobs/1/meta/start", "jobs/10/other", "jobs/2/meta/start"}},
		{root, "jobs/1/", []string{"jobs/1/meta/start"}},
	}
	for _, tt := range tests {
		got, err := tt.s.List(ctx, tt.prefix)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s List(%q) = %q, %v; want %q", tt.s.Location(), tt.prefix, got, err, tt.want)
		}
	}
	if got, err := job2.Get(ctx, "meta/start"); err != nil || string(got) != "jobs/2/" {
		t.Errorf("job 2's Get = %q, %v", got, err)
	}
}

// op is one store operation under test, on a store holding a few objects.
type op struct {
	name    string
	healthy int // requests it makes against a healthy server
	run     func(ctx context.Context, s *Store) error
}

var ops = []op{
	{"put", 1, func(ctx context.Context, s *Store) error {
		if err := s.Put(ctx, "new/object", []byte("new")); err != nil {
			return err
		}
		return expect(ctx, s, "new/object", "new")
	}},
	{"get", 1, func(ctx context.Context, s *Store) error {
		b, err := s.Get(ctx, "obj/2")
		if err == nil && !bytes.Equal(b, payload(2)) {
			err = fmt.Errorf("Get = %d bytes, not the %d put", len(b), len(payload(2)))
		}
		return err
	}},
	{"list", 3, func(ctx context.Context, s *Store) error { // pages of 2
		names, err := s.List(ctx, "obj/")
		if want := []string{"obj/0", "obj/1", "obj/2", "obj/3", "obj/4"}; err == nil && !reflect.DeepEqual(names, want) {
			err = fmt.Errorf("List = %q, want %q", names, want)
		}
		return err
	}},
	{"delete", 1, func(ctx context.Context, s *Store) error {
		if err := s.Delete(ctx, "obj/3"); err != nil {
			return err
		}
		if _, err := s.Get(ctx, "obj/3"); !errors.Is(err, checkpoint.ErrNotFound) {
			return fmt.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		return nil
	}},
}

// payload is object obj/i's content: 100 KiB, distinct per object.
func payload(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 100<<10) }

func expect(ctx context.Context, s *Store, name, want string) error {
	got, err := s.Get(ctx, name)
	if err != nil || string(got) != want {
		return fmt.Errorf("Get(%q) = %q, %v; want %q", name, got, err, want)
	}
	return nil
}

// fill puts obj/0 .. obj/4 and returns a store that lists in pages of two.
func fill(t *testing.T, srv *s3test.Server, opts Options) *Store {
	t.Helper()
	s := open(t, srv, "job", opts)
	s.pageSize = 2
	for i := range 5 {
		if err := s.Put(t.Context(), fmt.Sprintf("obj/%d", i), payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Transient faults, a few times in a row, are retried away: every
// operation succeeds with the right result, having made exactly one
// request more per spoiled one.
func TestRetriesHealTransientFaults(t *testing.T) {
	faults := []struct {
		fault  s3test.Fault
		n      int
		status int
		ops    string // the operations it applies to
	}{
		{s3test.Status, 3, 503, "put get list delete"},
		{s3test.Status, 3, 500, "put get list delete"},
		{s3test.Status, 2, 502, "put get"},
		{s3test.Stall, 1, 0, "put get list delete"},
		{s3test.StallAfter, 1, 0, "put get delete"},
		{s3test.Lose, 2, 0, "put get list delete"},
		{s3test.BreakBody, 2, 0, "get list"},
		{s3test.StallBody, 1, 0, "get list"},
	}
	for _, f := range faults {
		for _, o := range ops {
			if !strings.Contains(f.ops, o.name) {
				continue
			}
			t.Run(fmt.Sprintf("%s/%v×%d/%d", o.name, f.fault, f.n, f.status), func(t *testing.T) {
				srv := s3test.NewServer(t, bucket)
				s := fill(t, srv, Options{ResponseTimeout: timeoutFor(f.fault)})
				before := srv.Requests()
				srv.Inject(f.fault, f.n, f.status)
				if err := o.run(t.Context(), s); err != nil {
					t.Fatalf("%s through %d %v faults: %v", o.name, f.n, f.fault, err)
				}
				// The check after a put or delete is one more request.
				want := o.healthy + f.n
				if o.name == "put" || o.name == "delete" {
					want++
				}
				if got := srv.Requests() - before; srv.Spoiled() != f.n || got != want {
					t.Errorf("%d requests, %d spoiled; want %d, %d", got, srv.Spoiled(), want, f.n)
				}
			})
		}
	}
}

// Faults that persist, or are not transient, end in an error naming the
// operation, the bucket and the key, after a bounded number of attempts
// (one for what retrying cannot heal); none is taken for a missing object.
func TestPersistentFaultsFailClearly(t *testing.T) {
	const attempts = 3
	tests := []struct {
		op       string
		fault    s3test.Fault
		status   int
		requests int
		says     []string
	}{
		{"put", s3test.Status, 503, attempts, []string{"put s3://ckpt/job/new/object", "StatusCode: 503", "ServiceUnavailable", "exceeded maximum number of attempts, 3"}},
		{"get", s3test.Status, 500, attempts, []string{"get s3://ckpt/job/obj/2", "StatusCode: 500", "InternalError"}},
		{"list", s3test.Stall, 0, attempts, []string{"list s3://ckpt/job/obj/", "timeout awaiting response headers"}},
		{"delete", s3test.Lose, 0, attempts, []string{"delete s3://ckpt/job/obj/3", "EOF"}},
		{"get", s3test.BreakBody, 0, attempts, []string{"get s3://ckpt/job/obj/2", "reading the object", "unexpected EOF", "(3 attempts)"}},
		{"get", s3test.StallBody, 0, attempts, []string{"get s3://ckpt/job/obj/2", "the answer stalled: no data for 300ms", "(3 attempts)"}},
		{"list", s3test.BreakBody, 0, attempts, []string{"list s3://ckpt/job/obj/", "unexpected EOF"}},
		{"list", s3test.StallBody, 0, attempts, []string{"list s3://ckpt/job/obj/", "the answer stalled"}},
		{"put", s3test.Status, 403, 1, []string{"put s3://ckpt/job/new/object", "StatusCode: 403", "AccessDenied"}},
		{"get", s3test.Status, 400, 1, []string{"get s3://ckpt/job/obj/2", "StatusCode: 400"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v/%d", tt.op, tt.fault, tt.status), func(t *testing.T) {
			srv := s3test.NewServer(t, bucket)
			s := fill(t, srv, Options{MaxAttempts: attempts, ResponseTimeout: timeoutFor(tt.fault)})
			i := slicesIndex(tt.op)
			before := srv.Requests()
			srv.Inject(tt.fault, s3test.Forever, tt.status)
			err := ops[i].run(t.Context(), s)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("%v", err)
			if errors.Is(err, checkpoint.ErrNotFound) {
				t.Errorf("a failure reported as a missing object: %v", err)
			}
			for _, want := range tt.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q", want)
				}
			}
			if got := srv.Requests() - before; got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
		})
	}
}

func slicesIndex(name string) int {
	for i, o := range ops {
		if o.name == name {
			return i
		}
	}
	panic(name)
}

// A missing bucket is one request and an error saying so; a missing
// object is ErrNotFound, whose Delete is no error.
func TestMissingBucketAndObject(t *testing.T) {
	srv := s3test.NewServer(t) // no bucket
	s := open(t, srv, "job", Options{})
	ctx := t.Context()
	err := s.Put(ctx, "a", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), `bucket "ckpt" does not exist`) || errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("Put in a missing bucket = %v", err)
	}
	if _, err := s.Get(ctx, "a"); err == nil || errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("Get in a missing bucket = %v; want an error that is not ErrNotFound", err)
	}
	if srv.Requests() != 2 {
		t.Errorf("%d requests, want one per operation", srv.Requests())
	}
	if err := srv.Backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "a")
	if !errors.Is(err, checkpoint.ErrNotFound) || !strings.Contains(err.Error(), "get s3://ckpt/job/a") {
		t.Errorf("Get of a missing object = %v", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Errorf("Delete of a missing object = %v", err)
	}
}

// The environment configures the store as it does every S3 tool.
func TestEnvironment(t *testing.T) {
	srv := s3test.NewServer(t, bucket)
	ctx := t.Context()

	srv.Env(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	s, err := Open(ctx, "s3://ckpt/job", Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Inject(s3test.Status, s3test.Forever, 503)
	if err := s.Put(ctx, "a", nil); err == nil || srv.Requests() != 2 {
		t.Errorf("with AWS_MAX_ATTEMPTS=2: Put = %v after %d requests; want an error after 2", err, srv.Requests())
	}
	srv.Heal()

	// An endpoint needs no region; AWS itself does.
	t.Setenv("AWS_REGION", "")
	if s, err := Open(ctx, "s3://ckpt/job", Options{}); err != nil {
		t.Errorf("Open with an endpoint and no region = %v", err)
	} else if err := s.Put(ctx, "a", []byte("x")); err != nil {
		t.Errorf("Put with an endpoint and no region = %v", err)
	}
	t.Setenv("AWS_ENDPOINT_URL", "")
	if _, err := Open(ctx, "s3://ckpt/job", Options{}); err == nil || !strings.Contains(err.Error(), "set AWS_REGION") {
		t.Errorf("Open of AWS with no region = %v", err)
	}
	if _, err := Open(ctx, "s3://ckpt/job?region=x", Options{}); err == nil {
		t.Error("Open of a malformed location succeeded")
	}
}

// A Put's data and a Get's result go through S3 byte for byte, ETags and
// all: the SDK's checksums (on by default) agree with the server's.
func TestLargeObject(t *testing.T) {
	s := open(t, s3test.NewServer(t, bucket), "job", Options{})
	data := make([]byte, 8<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := s.Put(t.Context(), "big", data); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), "big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %d bytes, %v; want the %d put", len(got), err, len(data))
	}
}

// BenchmarkPutGet64KiB: a Put and a Get of one 64 KiB object, against S3
// (gofakes3 over loopback HTTP) and against a local Dir (which syncs).
func BenchmarkPutGet64KiB(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	run := func(b *testing.B, s checkpoint.Store) {
		ctx := context.Background()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			name := fmt.Sprintf("bench/%d", i%64)
			if err := s.Put(ctx, name, data); err != nil {
				b.Fatal(err)
			}
			if got, err := s.Get(ctx, name); err != nil || len(got) != len(data) {
				b.Fatal(len(got), err)
			}
		}
	}
	b.Run("s3", func(b *testing.B) {
		run(b, open(b, s3test.NewServer(b, bucket), "job", Options{}))
	})
	b.Run("dir", func(b *testing.B) {
		d, err := checkpoint.OpenDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		run(b, d)
	})
}

// ListInfo lists one level of names with sizes and times; GetRange reads
// parts of an object, nothing past its end.
func TestListInfoAndGetRange(t *testing.T) {
	srv := s3test.NewServer(t, bucket)
	s := open(t, srv, "in", Options{})
	s.pageSize = 2
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	for name, data := range map[string]string{"a": "alpha", "b": "", "c": "charlie", "sub/d": "delta", "sub/e": "echo", "bb": "bravo"} {
		if err := s.Put(ctx, name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		prefix string
		want   string
	}{
		{"", "a:5 b:0 bb:5 c:7"},
		{"b", "b:0 bb:5"},
		{"sub/", "sub/d:5 sub/e:4"},
		{"sub/e", "sub/e:4"},
		{"none/", ""},
	} {
		infos, err := s.ListInfo(ctx, c.prefix)
		if err != nil {
			t.Fatalf("ListInfo(%q): %v", c.prefix, err)
		}
		var got []string
		for _, in := range infos {
			got = append(got, fmt.Sprintf("%s:%d", in.Name, in.Size))
			if in.ModTime.Before(before) {
				t.Errorf("ListInfo(%q): %s modified at %v", c.prefix, in.Name, in.ModTime)
			}
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("ListInfo(%q) = %q, want %q", c.prefix, g, c.want)
		}
	}
	for _, c := range []struct {
		name    string
		off, n  int64
		want    string
		missing bool
	}{
		{"c", 0, 7, "charlie", false},
		{"c", 2, 3, "arl", false},
		{"c", 5, 10, "ie", false},
		{"c", 7, 4, "", false},
		{"c", 100, 4, "", false},
		{"c", 3, 0, "", false},
		{"nope", 0, 4, "", true},
	} {
		b, err := s.GetRange(ctx, c.name, c.off, c.n)
		switch {
		case c.missing:
			if !errors.Is(err, checkpoint.ErrNotFound) {
				t.Errorf("GetRange(%s, %d, %d): %v, want ErrNotFound", c.name, c.off, c.n, err)
			}
		case err != nil || string(b) != c.want:
			t.Errorf("GetRange(%s, %d, %d) = %q, %v; want %q", c.name, c.off, c.n, b, err, c.want)
		}
	}
}

// Store keeps the Conditional contract against gofakes3's conditional
// writes.
func TestStoreKeepsTheConditionalContract(t *testing.T) {
	storetest.RunConditional(t, func(t *testing.T) checkpoint.Conditional {
		return open(t, s3test.NewServer(t, bucket), "job/1", Options{})
	})
}

// The metadata log is fenced in S3: a second writer's append fences the
// first off; an append whose answer was lost, retried by the SDK into a
// 412, recognizes its own record.
func TestLogIsFenced(t *testing.T) {
	ctx := t.Context()
	srv := s3test.NewServer(t, bucket)
	a, b := open(t, srv, "job/1", Options{}), open(t, srv, "job/1", Options{})
	old, err := checkpoint.OpenLog(ctx, a, "meta/log")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Append(ctx, "m", []byte("1")); err != nil {
		t.Fatal(err)
	}
	srv.Inject(s3test.Lose, 1, 0)
	if seq, err := old.Append(ctx, "m", []byte("2")); err != nil || seq != 2 {
		t.Fatalf("Append with a lost answer = %d, %v; want 2", seq, err)
	}
	cur, err := checkpoint.OpenLog(ctx, b, "meta/log")
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := cur.Append(ctx, "m", []byte("3")); err != nil || seq != 3 {
		t.Fatalf("the new writer's Append = %d, %v; want 3", seq, err)
	}
	if seq, err := old.Append(ctx, "m", []byte("stale")); !errors.Is(err, checkpoint.ErrConflict) {
		t.Fatalf("the old writer's Append = %d, %v; want ErrConflict", seq, err)
	}
	var got []string
	if err := cur.Replay(ctx, func(seq uint64, kind string, payload []byte) error {
		got = append(got, string(payload))
		return nil
	}); err != nil || strings.Join(got, " ") != "1 2 3" {
		t.Fatalf("Replay = %q, %v; want 1 2 3", got, err)
	}
}
