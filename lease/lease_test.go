package lease_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/s3store"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/lease"
)

const object = "lease/master"

var (
	start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg   = lease.Config{TTL: 9 * time.Second, Margin: 2 * time.Second, RenewEvery: 3 * time.Second, RetryEvery: time.Second}
)

// stores are two processes' views of one store; fail makes the first
// view's operations fail from now on, and heal (if not nil) undoes it.
type stores struct {
	a, b checkpoint.Conditional
	fail func()
	heal func()
}

// backends opens the stores the shell is tested over: two Dirs on one
// folder, as two processes on a machine, and two S3 clients of one
// server.
var backends = []struct {
	name string
	open func(t *testing.T) stores
}{
	{"Dir", func(t *testing.T) stores {
		path := t.TempDir()
		a, b := openDir(t, path), openDir(t, path)
		return stores{a: a, b: b, fail: func() { a.Close() }}
	}},
	{"S3", func(t *testing.T) stores {
		srv := s3test.NewServer(t, "ckpt")
		srv.Env(t)
		return stores{
			a: openS3(t, s3store.Options{MaxAttempts: 1}), b: openS3(t, s3store.Options{MaxAttempts: 1}),
			fail: func() { srv.Inject(s3test.Status, s3test.Forever, 503) },
			heal: srv.Heal,
		}
	}},
}

func openDir(t *testing.T, path string) *checkpoint.Dir {
	d, err := checkpoint.OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openS3(t *testing.T, opts s3store.Options) *s3store.Store {
	s, err := s3store.Open(context.Background(), "s3://ckpt/job", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// contender is one process contending for the lease, on its own manual
// clock, stepped by the test.
type contender struct {
	t       *testing.T
	name    string
	clk     *clock.Manual
	l       *lease.Lease
	changes []lease.Change
}

func newContender(t *testing.T, name string, s checkpoint.Conditional) *contender {
	c := &contender{t: t, name: name, clk: clock.NewManual(start)}
	conf := cfg
	conf.ID = name
	l, err := lease.New(s, object, c.clk, conf, lease.Options{OnChange: func(ch lease.Change) { c.changes = append(c.changes, ch) }})
	if err != nil {
		t.Fatal(err)
	}
	c.l = l
	return c
}

// step advances the contender's clock by d and steps it.
func (c *contender) step(d time.Duration) {
	c.clk.Advance(d)
	c.l.Step(c.t.Context())
}

func (c *contender) active() (uint64, bool) {
	epoch, _, ok := c.l.Active()
	return epoch, ok
}

// wantChanges checks the contender's changes of role: "+N" active with
// epoch N, "-N" stopped acting with it.
func (c *contender) wantChanges(want ...string) {
	c.t.Helper()
	var got []string
	for _, ch := range c.changes {
		sign := "-"
		if ch.Active {
			sign = "+"
		}
		got = append(got, sign+strconv.FormatUint(ch.Epoch, 10))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		c.t.Fatalf("%s's changes of role = %v, want %v (%+v)", c.name, got, want, c.changes)
	}
}

// both steps a and b by d, and checks that they are not both active.
func both(t *testing.T, a, b *contender, d time.Duration) {
	t.Helper()
	a.step(d)
	b.step(d)
	_, okA := a.active()
	_, okB := b.active()
	if okA && okB {
		t.Fatalf("at %v both %s and %s are active", a.clk.Now().Sub(start), a.name, b.name)
	}
}

func readRecord(t *testing.T, s checkpoint.Conditional) (lease.Record, string) {
	t.Helper()
	data, version, err := s.GetVersion(t.Context(), object)
	if err != nil {
		t.Fatal(err)
	}
	var r lease.Record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r, version
}

// One holder at a time; a holder paused past its TTL is taken over with
// the next epoch, and, resumed, finds out at once that it lost.
func TestTakeoverOfAPausedHolder(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			a, b := newContender(t, "a", s.a), newContender(t, "b", s.b)
			a.step(0)
			b.step(0)
			if epoch, ok := a.active(); !ok || epoch != 1 {
				t.Fatalf("a: active %v with epoch %d, want active with 1", ok, epoch)
			}
			for range 12 { // renewals keep a the holder
				both(t, a, b, time.Second)
			}
			if _, ok := b.active(); ok {
				t.Fatal("b took over a renewed lease")
			}
			_, aUntil, _ := a.l.Active()

			// a pauses: its clock stops; b's goes on.
			for range 20 {
				b.step(time.Second)
				if _, ok := b.active(); ok {
					break
				}
			}
			epoch, bFrom, ok := b.l.Active()
			if !ok || epoch != 2 {
				t.Fatalf("b: active %v with epoch %d after a's pause, want active with 2", ok, epoch)
			}
			if bFrom = bFrom.Add(-cfg.TTL); bFrom.Before(aUntil.Add(cfg.Margin)) {
				t.Fatalf("b took over at %v, before a's lease ended (%v) plus the margin", bFrom.Sub(start), aUntil.Sub(start))
			}
			if r, _ := readRecord(t, s.a); r.Holder != "b" || r.Epoch != 2 {
				t.Fatalf("record = %+v, want b's with epoch 2", r)
			}

			// a resumes: its clock jumps; it is no longer active, even
			// before its shell steps, and its step reports the loss.
			a.clk.Set(b.clk.Now())
			if _, ok := a.active(); ok {
				t.Fatal("a, resumed past its deadline, is still active")
			}
			a.l.Step(t.Context())
			a.wantChanges("+1", "-1")
			if !strings.Contains(a.changes[1].Why, "lapsed") {
				t.Errorf("a stopped because %q, want a lapse", a.changes[1].Why)
			}
			for range 30 {
				both(t, a, b, time.Second)
			}
			a.wantChanges("+1", "-1")
			b.wantChanges("+2")
		})
	}
}

// A holder whose renewal finds the lease object changed stops acting at
// its next renewal, before its deadline.
func TestHolderStopsOnConflict(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			a := newContender(t, "a", s.a)
			a.step(0)
			a.wantChanges("+1")
			// Someone else writes the object (a contender whose clock ran
			// too fast, say).
			_, version := readRecord(t, s.b)
			rogue, _ := json.Marshal(lease.Record{Holder: "rogue", Epoch: 2, Expiry: start, TTLMillis: 9000})
			if _, err := s.b.PutIf(t.Context(), object, rogue, version); err != nil {
				t.Fatal(err)
			}
			a.step(cfg.RenewEvery)
			a.wantChanges("+1", "-1")
			if _, ok := a.active(); ok {
				t.Fatal("a is still active after a conflict")
			}
			if !strings.Contains(a.changes[1].Why, "changed") {
				t.Errorf("a stopped because %q, want the object changed", a.changes[1].Why)
			}
		})
	}
}

// A holder whose store fails keeps its lease until its deadline, and then
// stops acting.
func TestHolderStopsWhenTheStoreFails(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			a := newContender(t, "a", s.a)
			a.step(0)
			_, until, ok := a.l.Active()
			if !ok {
				t.Fatal("a did not take the lease")
			}
			s.fail()
			for a.clk.Now().Add(time.Second).Before(until) {
				a.step(time.Second)
				if _, ok := a.active(); !ok {
					t.Fatalf("a stopped acting at %v, before its deadline %v", a.clk.Now().Sub(start), until.Sub(start))
				}
			}
			a.step(time.Second)
			a.wantChanges("+1", "-1")
			if _, ok := a.active(); ok {
				t.Fatal("a is still active past its deadline")
			}
			if s.heal == nil {
				return
			}
			// Healed, a waits for its own old record to lapse and takes
			// the lease again, with a new epoch.
			s.heal()
			for range 20 {
				a.step(time.Second)
			}
			a.wantChanges("+1", "-1", "+2")
		})
	}
}

// Run stops a holder at its deadline while its renewal hangs.
func TestRunStopsAHolderWhoseRenewalHangs(t *testing.T) {
	srv := s3test.NewServer(t, "ckpt")
	srv.Env(t)
	store := openS3(t, s3store.Options{MaxAttempts: 1, ResponseTimeout: time.Minute})
	clk := clock.NewManual(start)
	changes := make(chan lease.Change, 16)
	conf := cfg
	conf.ID = "a"
	l, err := lease.New(store, object, clk, conf, lease.Options{OnChange: func(ch lease.Change) { changes <- ch }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = l.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		if !errors.Is(runErr, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", runErr)
		}
	}()
	next := func() lease.Change {
		t.Helper()
		select {
		case ch := <-changes:
			return ch
		case <-time.After(10 * time.Second): // a hang, not a timing
			t.Fatal("no change of role")
		}
		return lease.Change{}
	}
	if ch := next(); !ch.Active || ch.Epoch != 1 {
		t.Fatalf("first change = %+v, want active with epoch 1", ch)
	}
	srv.Inject(s3test.Stall, s3test.Forever, 0)
	clk.Advance(cfg.RenewEvery)
	for giveUp := time.Now().Add(10 * time.Second); srv.Spoiled() == 0; { // the renewal is in flight, and hangs
		if time.Now().After(giveUp) {
			t.Fatal("no renewal")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Advance(cfg.TTL - cfg.RenewEvery)
	if ch := next(); ch.Active || ch.Epoch != 1 || !strings.Contains(ch.Why, "lapsed") {
		t.Fatalf("change = %+v, want epoch 1 lapsed", ch)
	}
	if _, _, ok := l.Active(); ok {
		t.Fatal("still active")
	}
}
