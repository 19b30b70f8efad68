package dstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/dstreamtest"
)

// The master's lease (Config.LeaseTTL) in one process: two contexts with
// the same checkpoint location stand for two masters. The process tests
// in cmd/dstream kill and pause real masters.

// withLease sets the checkpoint location and the lease's TTL.
func withLease(location string, ttl time.Duration) dstreamtest.Options {
	return dstreamtest.Options{Config: func(c *dstream.Config) {
		c.CheckpointDir, c.LeaseTTL = location, ttl
	}}
}

// holdTTL is the TTL of the tests in which a master must hold its lease
// throughout: longer than any of their waits, so a renewal the loaded
// machine delays changes nothing.
const holdTTL = 5 * time.Second

// A second master with the same checkpoint location waits in Start as a
// standby (Ready says so; nothing runs) while the first holds the lease.
// When the first stops cleanly it releases the lease, and the standby
// takes over at once: it resumes from the metadata log, and the intervals
// it runs have a fault-free run's output.
func TestStandbyTakesOverAfterACleanStop(t *testing.T) {
	ref := dstreamtest.New[kv](t, dstreamtest.Options{})
	refOut := restartJob(ref, false)
	ref.Start()
	var times []time.Time
	for range 6 {
		times = append(times, ref.Tick())
	}
	want := func(i int) string { return fmt.Sprint(dstreamtest.Sorted(refOut.At(times[i]))) }

	location := t.TempDir()
	first := dstreamtest.New[kv](t, withLease(location, holdTTL))
	out1 := restartJob(first, false)
	first.Start()
	for i := range 3 {
		if at := first.Tick(); fmt.Sprint(dstreamtest.Sorted(out1.At(at))) != want(i) {
			t.Fatalf("first master, interval %d = %v, want %s", i+1, out1.At(at), want(i))
		}
	}

	second := dstreamtest.New[kv](t, withLease(location, holdTTL))
	out2 := restartJob(second, false)
	started := make(chan error, 1)
	go func() { started <- second.Ctx.Start() }()
	awaitStandby(t, second.Ctx)
	select {
	case err := <-started:
		t.Fatalf("the second master started (%v) while the first held the lease", err)
	case <-time.After(time.Second):
	}
	if err := first.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("the standby's Start: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take over within 10s of a clean stop")
	}
	if err := second.Ctx.Ready(); err != nil {
		t.Errorf("the new master's Ready: %v", err)
	}
	advanceTo(t, second, times[5])
	for i := 3; i < 6; i++ {
		if got := fmt.Sprint(dstreamtest.Sorted(out2.At(times[i]))); got != want(i) {
			t.Errorf("after the takeover, interval %d = %s, want %s", i+1, got, want(i))
		}
	}
	for i := range 3 {
		if out2.Ran(times[i]) {
			t.Errorf("the new master ran interval %d again; the first completed it", i+1)
		}
	}
}

// A standby stopped while it waits returns from Start with ErrStopped and
// leaves the lease alone.
func TestStandbyStoppedWhileWaiting(t *testing.T) {
	location := t.TempDir()
	first := dstreamtest.New[kv](t, withLease(location, holdTTL))
	restartJob(first, false)
	first.Start()
	second := dstreamtest.New[kv](t, withLease(location, holdTTL))
	restartJob(second, false)
	started := make(chan error, 1)
	go func() { started <- second.Ctx.Start() }()
	awaitStandby(t, second.Ctx)
	if err := second.Ctx.Stop(false); err != nil {
		t.Fatalf("Stop of a standby: %v", err)
	}
	select {
	case err := <-started:
		if !errors.Is(err, dstream.ErrStopped) {
			t.Fatalf("a stopped standby's Start = %v, want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the standby's wait")
	}
	first.Tick() // the first master still acts
}

// A master cut off from its checkpoint store cannot renew its lease: it
// stops when the lease lapses, with a *LeaseLostError, before a standby
// could take over.
func TestMasterCutOffFromTheStoreStops(t *testing.T) {
	srv := s3test.NewServer(t, "lease")
	srv.Env(t)
	h := dstreamtest.New[kv](t, withLease("s3://lease/job", time.Second))
	restartJob(h, false)
	h.Start()
	h.Tick()
	srv.Inject(s3test.Status, s3test.Forever, 503)
	select {
	case <-h.Ctx.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("a master cut off from the store still acts 15s later (lease TTL 1s)")
	}
	srv.Heal()
	var lost *dstream.LeaseLostError
	if err := h.Ctx.Stop(false); !errors.As(err, &lost) || !strings.Contains(err.Error(), "lapsed") {
		t.Fatalf("Stop = %v; want a *LeaseLostError saying the lease lapsed", err)
	}
}

// The metadata log is fenced: when another master appends to it (it took
// over while this one was paused), this master's next append conflicts
// and it stops with a *LeaseLostError, writing nothing more.
func TestMetadataLogFencesAnOldMaster(t *testing.T) {
	location := t.TempDir()
	h := dstreamtest.New[kv](t, withLease(location, holdTTL))
	restartJob(h, false)
	h.Start()
	h.Tick()
	store, err := checkpoint.Open(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	log, err := checkpoint.OpenLog(t.Context(), store, "meta/log")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(t.Context(), "epoch", []byte(`{"epoch":99,"holder":"another master"}`)); err != nil {
		t.Fatal(err)
	}
	intruder := log.Next() - 1
	h.Clock.Advance(time.Second) // the next interval's manifest is appended, or not
	select {
	case <-h.Ctx.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the master goes on after another appended to its log")
	}
	var lost *dstream.LeaseLostError
	if err := h.Ctx.Stop(false); !errors.As(err, &lost) || !strings.Contains(err.Error(), "another master appended") {
		t.Fatalf("Stop = %v; want a *LeaseLostError saying another master appended", err)
	}
	after, err := checkpoint.OpenLog(context.Background(), store, "meta/log")
	if err != nil {
		t.Fatal(err)
	}
	if next := after.Next(); next != intruder+1 {
		t.Errorf("the log's next record is %d, want %d: the fenced master appended after the intruder", next, intruder+1)
	}
}

// An interval that runs again after a change of master, whose folder has
// a marker but lacks parts (a late commit of the master before, landing
// after the new master cleared the folder), is written again: the marker
// is only good with its parts.
func TestRerunRewritesAMarkerWithoutItsParts(t *testing.T) {
	ck, out := t.TempDir(), t.TempDir()
	job := func() (*dstreamtest.Harness[kv], *dstreamtest.Collector[kv]) {
		h := dstreamtest.New[kv](t, withLease(ck, holdTTL))
		col := restartJob(h, false)
		dstream.Map(h.In, func(p kv) string { return fmt.Sprint(p) }).SaveAsTextFiles("file://"+out+"/lines", "")
		return h, col
	}
	first, _ := job()
	first.Start()
	var times []time.Time
	for range 4 {
		times = append(times, first.Tick())
	}
	if err := first.Ctx.Stop(true); err != nil {
		t.Fatal(err)
	}
	folder := fmt.Sprintf("%s/lines-%d", out, times[3].UnixMilli())
	parts, _ := filepath.Glob(folder + "/part-*")
	if len(parts) == 0 {
		t.Fatalf("no parts in %s", folder)
	}
	want := map[string]string{}
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want[filepath.Base(p)] = string(b)
		if err := os.Remove(p); err != nil { // what a late marker leaves
			t.Fatal(err)
		}
	}
	forgetCompletion(t, ck, times[3])

	second, _ := job()
	second.Start()
	advanceTo(t, second, times[3].Add(time.Second))
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join(folder, name))
		if err != nil || string(b) != w {
			t.Errorf("%s after the re-run = %q, %v; want %q", name, b, err, w)
		}
	}
	if b, err := os.ReadFile(filepath.Join(folder, "_SUCCESS")); err != nil || !strings.Contains(string(b), `"epoch":2`) {
		t.Errorf("the marker after the re-run = %q, %v; want the new master's epoch 2", b, err)
	}
}

// awaitStandby waits until ctx's Start waits as a standby (its Ready says
// so), polling: the wait is another goroutine's.
func awaitStandby(t *testing.T, ctx *dstream.Context) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for err := ctx.Ready(); err == nil || !strings.Contains(err.Error(), "standby"); err = ctx.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the second master's Ready = %v; want it to say it is a standby", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
