package dstream_test

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/dstreamtest"
)

// A job whose checkpoint location is s3://BUCKET/PREFIX (a real S3 server
// in the test process, reached through the AWS environment as in
// production) writes its metadata log and state checkpoints there, through
// a few failed requests that retries heal; stopped hard after interval 4
// and started again on the same location while the clock moved on to
// interval 7, it resumes: the intervals it missed run, with a fault-free
// run's output, and the ones it completed do not run again.
func TestRestartResumesFromS3(t *testing.T) {
	srv := s3test.NewServer(t, "ckpt")
	srv.Env(t)
	const location = "s3://ckpt/jobs/restart"

	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut := restartJob(ref, false)
	ref.Start()
	var times []time.Time
	for range 7 {
		times = append(times, ref.Tick())
	}
	want := func(i int) string { return fmt.Sprint(dstreamtest.Sorted(refOut.At(times[i]))) }

	withS3 := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = location }}
	first := dstreamtest.New[kv](t, withS3)
	out1 := restartJob(first, false)
	first.Start()
	for i := range 4 {
		if i == 2 {
			srv.Inject(s3test.Status, 2, 503)
		}
		if at := first.Tick(); fmt.Sprint(dstreamtest.Sorted(out1.At(at))) != want(i) {
			t.Fatalf("first run, interval %d = %v, want %s", i+1, out1.At(at), want(i))
		}
	}
	if err := first.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	if srv.Spoiled() != 2 {
		t.Fatalf("%d requests failed, want 2", srv.Spoiled())
	}
	store, err := checkpoint.Open(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"meta/", "state/"} {
		if names, err := store.List(t.Context(), prefix); err != nil || len(names) == 0 {
			t.Fatalf("List(%q) in the bucket = %q, %v; want the job's objects", prefix, names, err)
		}
	}

	second := dstreamtest.New[kv](t, withS3)
	out2 := restartJob(second, false)
	second.Start()
	if got := second.Ctx.StartTime(); !got.Equal(ref.Ctx.StartTime()) {
		t.Fatalf("resumed with zero %v, want the first run's %v", got, ref.Ctx.StartTime())
	}
	advanceTo(t, second, times[6])
	for i := 4; i < 7; i++ {
		if got := fmt.Sprint(dstreamtest.Sorted(out2.At(times[i]))); got != want(i) {
			t.Errorf("resumed, interval %d = %s, want %s", i+1, got, want(i))
		}
	}
	for i := range 4 {
		if out2.Ran(times[i]) {
			t.Errorf("resumed job ran interval %d again; it had completed", i+1)
		}
	}
}

// A malformed checkpoint location is a clear error at startup, from the
// Config and from --checkpoint; a folder given to --checkpoint becomes
// absolute (workers started elsewhere find it), an S3 location stays as
// it is.
func TestCheckpointLocation(t *testing.T) {
	for _, bad := range []string{"s3://Bad_Bucket/x", "s3://ckpt/a//b", "s3://ckpt/x?region=eu", "gs://ckpt/x"} {
		if _, err := dstream.NewContext(dstream.Config{CheckpointDir: bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("NewContext with CheckpointDir %q = %v; want an error naming it", bad, err)
		}
		if err := (dstream.Config{CheckpointDir: bad}).Validate(); err == nil {
			t.Errorf("Validate accepts CheckpointDir %q", bad)
		}
		if _, err := applyJobFlags(t, "--checkpoint", bad); err == nil || !strings.Contains(err.Error(), "--checkpoint") || !strings.Contains(err.Error(), bad) {
			t.Errorf("--checkpoint %s = %v; want an error naming the flag and the location", bad, err)
		}
	}
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ flag, want string }{
		{"s3://ckpt/jobs/1", "s3://ckpt/jobs/1"},
		{"s3://ckpt", "s3://ckpt"},
		{"ckpt/job", filepath.Join(wd, "ckpt/job")},
		{"/var/lib/ckpt", "/var/lib/ckpt"},
		{"file://ckpt", "file://" + filepath.Join(wd, "ckpt")},
		{"", ""},
	}
	for _, tt := range tests {
		cfg, err := applyJobFlags(t, "--checkpoint", tt.flag)
		if err != nil || cfg.CheckpointDir != tt.want {
			t.Errorf("--checkpoint %q: CheckpointDir %q, %v; want %q", tt.flag, cfg.CheckpointDir, err, tt.want)
		}
	}
}

func applyJobFlags(t *testing.T, args ...string) (dstream.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	apply := dstream.JobFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var cfg dstream.Config
	err := apply(&cfg)
	return cfg, err
}

// In local-cluster the workers, separate processes that inherit the AWS
// environment, write their state partitions' checkpoints to the same
// s3:// location; after a worker holding partitions is killed, the
// survivors carry on from those checkpoints and lineage, and every
// interval's state is exact.
func TestLocalClusterCheckpointsToS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	if !dstreamtest.InWorker() { // a worker inherits the environment
		s3test.NewServer(t, "ckpt").Env(t)
	}
	const location = "s3://ckpt/jobs/cluster"
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]", Config: func(c *dstream.Config) {
		c.CheckpointDir, c.CheckpointInterval = location, 2*sec
	}})
	st := dstreamtest.Collect(dstream.UpdateStateByKey(h.In, runningSum, 4))
	const keys, intervals = 50, 6
	sum := map[string]int{}
	var want []string
	for i := range intervals {
		var in []kv
		for k := range keys {
			in = append(in, p(fmt.Sprint("k", k), 1+i+k%5))
			sum[fmt.Sprint("k", k)] += 1 + i + k%5
		}
		h.Input.Push(in...)
		var w []kv
		for k, v := range sum {
			w = append(w, p(k, v))
		}
		want = append(want, fmt.Sprint(dstreamtest.Sorted(w)))
	}
	h.Start()
	for i := range intervals {
		if i == 4 {
			dstreamtest.KillWorker(t, h.Ctx, nil)
		}
		at := h.Tick()
		if err := st.Err(at); err != nil {
			t.Fatalf("interval %d: %v", i+1, err)
		}
		if got := fmt.Sprint(dstreamtest.Sorted(st.At(at))); got != want[i] {
			t.Fatalf("interval %d = %s\nwant %s", i+1, got, want[i])
		}
	}
	store, err := checkpoint.Open(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	names, err := store.List(t.Context(), "state/")
	if err != nil {
		t.Fatal(err)
	}
	parts := 0
	for _, n := range names {
		if strings.Contains(n, "/part-") {
			parts++
		}
	}
	if parts < 4 {
		t.Fatalf("state objects in the bucket: %q; want the workers' parts of at least one checkpoint", names)
	}
}
