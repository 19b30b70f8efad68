// Package s3test runs a real S3 server in a test's process: gofakes3
// (github.com/johannesboyne/gofakes3, in memory) behind an httptest.Server,
// with a fault-injecting handler in front of it that spoils the next
// requests as a failing server or network would: an error status, no
// answer, an answer lost after the request was applied, a body that breaks
// off or stalls. [Server.Env] points the AWS environment at it, so that the
// code under test opens its store exactly as in production (s3://BUCKET/...
// through checkpoint.Open).
//
// It is for tests only; it imports package testing.
package s3test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// A Fault is what the server does to a spoiled request.
type Fault int

const (
	// Status answers an error status (Inject's status: 500, 503, ...)
	// with S3's XML error body, without applying the request.
	Status Fault = iota
	// Stall never answers, nor applies the request: the client gives up
	// (its response timeout) and closes the connection.
	Stall
	// StallAfter applies the request, then never answers.
	StallAfter
	// Lose applies the request, then closes the connection without an
	// answer: the response is lost.
	Lose
	// BreakBody applies the request and answers its status and headers,
	// then half its body, and closes the connection.
	BreakBody
	// StallBody applies the request and answers its status, headers and
	// half its body, then nothing more.
	StallBody
)

func (f Fault) String() string {
	switch f {
	case Status:
		return "status"
	case Stall:
		return "stall"
	case StallAfter:
		return "stall-after"
	case Lose:
		return "lose"
	case BreakBody:
		return "break-body"
	case StallBody:
		return "stall-body"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Forever, as Inject's count, spoils every request until Heal.
const Forever = -1

// Server is an S3 server with faults. Its methods are safe for concurrent
// use.
type Server struct {
	URL     string // http://127.0.0.1:PORT, the endpoint
	Backend *s3mem.Backend

	srv  *httptest.Server
	s3   http.Handler
	quit chan struct{} // closed at cleanup: stalled handlers return

	mu     sync.Mutex
	fault  Fault
	status int
	left   int // requests still to spoil; Forever; 0: none

	requests atomic.Int64
	spoiled  atomic.Int64
}

// NewServer starts a server holding the given (empty) buckets, closed when
// the test ends.
func NewServer(t testing.TB, buckets ...string) *Server {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatalf("s3test: creating bucket %q: %v", b, err)
		}
	}
	s := &Server{
		Backend: backend,
		s3:      gofakes3.New(backend).Server(),
		quit:    make(chan struct{}),
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.quit)
		s.srv.Close()
	})
	return s
}

// Inject makes the server spoil the next n requests (Forever: all, until
// Heal) with fault; status is the Status fault's HTTP status.
func (s *Server) Inject(fault Fault, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.left, s.status = fault, n, status
}

// Heal stops spoiling requests.
func (s *Server) Heal() { s.Inject(Status, 0, 0) }

// Requests returns how many requests the server received.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// Spoiled returns how many requests the server spoiled.
func (s *Server) Spoiled() int { return int(s.spoiled.Load()) }

// take returns the fault of the request arriving, if it is to be spoiled.
func (s *Server) take() (Fault, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left == 0 {
		return 0, 0, false
	}
	if s.left > 0 {
		s.left--
	}
	return s.fault, s.status, true
}

// ServeHTTP implements http.Handler: gofakes3, behind the faults.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	fault, status, spoil := s.take()
	if !spoil {
		s.s3.ServeHTTP(w, r)
		return
	}
	s.spoiled.Add(1)
	switch fault {
	case Status:
		io.Copy(io.Discard, r.Body)
		code := map[int]string{500: "InternalError", 503: "ServiceUnavailable", 403: "AccessDenied", 400: "InvalidRequest"}[status]
		if code == "" {
			code = "InjectedFault"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by s3test</Message></Error>`, code)
	case Stall:
		// The body read, the server notices the client closing.
		io.Copy(io.Discard, r.Body)
		s.wait(r)
	case StallAfter:
		s.s3.ServeHTTP(httptest.NewRecorder(), r)
		s.wait(r)
	case Lose:
		s.s3.ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler) // the server closes the connection, silently
	case BreakBody, StallBody:
		rec := httptest.NewRecorder()
		s.s3.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		if fault == StallBody {
			s.wait(r)
			return
		}
		panic(http.ErrAbortHandler)
	default:
		panic(fmt.Sprintf("s3test: unknown fault %d", fault))
	}
}

// wait returns once the client gave up on r, or the test ended.
func (s *Server) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.quit:
	}
}

// Env points the AWS environment of this process at the server, for the
// rest of t, and isolates it from the machine's: a region, test
// credentials, no shared config or credentials file, no instance metadata,
// nothing else the SDK would read. Child processes inherit it. Tests that
// call Env cannot run in parallel (t.Setenv).
func (s *Server) Env(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            s.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "s3test",
		"AWS_SECRET_ACCESS_KEY":       "s3test-secret",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
		"AWS_CA_BUNDLE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"} {
		t.Setenv(k, "") // restored at the end of t
		os.Unsetenv(k)
	}
}
