package rate

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/clock"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/source"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var _ Limiter = (*source.BlockGenerator)(nil)

// script is an Estimator returning the rates it is given, in turn, and
// recording what it was asked.
type script struct {
	mu    sync.Mutex
	rates []float64 // < 0: no estimate
	calls []batch
}

type batch struct {
	at                time.Time
	records           int64
	processing, sched time.Duration
}

func (s *script) Compute(at time.Time, n int64, p, sd time.Duration) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, batch{at, n, p, sd})
	if len(s.rates) == 0 {
		return 0, false
	}
	r := s.rates[0]
	s.rates = s.rates[1:]
	return r, r >= 0
}

// recorder is a Limiter recording every rate it is set to.
type recorder struct {
	mu    sync.Mutex
	rates []int
}

func (r *recorder) SetRate(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rates = append(r.rates, n)
}

func (r *recorder) got() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rates)
}

func TestNewControllerChecks(t *testing.T) {
	for _, cfg := range []ControllerConfig{
		{},
		{Estimator: &script{}, MaxRate: -1},
		{Estimator: &script{}, InitialRate: -1},
	} {
		if c, err := NewController(cfg); err == nil {
			t.Errorf("NewController(%+v) = %v, want an error", cfg, c)
		}
	}
}

func TestShare(t *testing.T) {
	tests := []struct {
		rate         float64
		n, max, want int
	}{
		{1000.9, 1, 0, 1000}, // truncated, as Spark's toLong
		{1000, 1, 600, 600},
		{1000, 2, 0, 500},
		{1001, 2, 0, 500},
		{1000, 2, 300, 300},
		{1000, 3, 0, 333},
		{1.5, 2, 0, 1}, // never below 1: 0 would mean unlimited
		{0.2, 1, 0, 1},
		{5e12, 1, 0, 1<<31 - 1},
		{5e12, 1, 100, 100},
		{1000, 0, 0, 1000}, // no receivers: as one
	}
	for _, tc := range tests {
		if got := Share(tc.rate, tc.n, tc.max); got != tc.want {
			t.Errorf("Share(%v, %d, %d) = %d, want %d", tc.rate, tc.n, tc.max, got, tc.want)
		}
	}
}

// TestControllerPublishes feeds scripted estimates to a controller with
// limiters registering and leaving along the way, and checks what each
// limiter was set to.
func TestControllerPublishes(t *testing.T) {
	// op is one step: register limiter reg (its index), unregister unreg, or
	// complete a batch whose estimate is the script's next.
	type op struct {
		reg, unreg int // -1: none
		batch      bool
	}
	register := func(i int) op { return op{reg: i, unreg: -1} }
	unregister := func(i int) op { return op{reg: -1, unreg: i} }
	complete := op{reg: -1, unreg: -1, batch: true}
	tests := []struct {
		name      string
		cfg       ControllerConfig
		estimates []float64
		ops       []op
		want      [][]int // per limiter
	}{
		{
			name:      "one receiver: every estimate, truncated",
			estimates: []float64{-1, 1000.7, 250, 250},
			ops:       []op{register(0), complete, complete, complete, complete},
			want:      [][]int{{1000, 250, 250}},
		},
		{
			name:      "capped by the maximum rate",
			cfg:       ControllerConfig{MaxRate: 600},
			estimates: []float64{-1, 1000, 250},
			ops:       []op{register(0), complete, complete, complete},
			want:      [][]int{{600, 600, 250}}, // the maximum at once, then the estimates
		},
		{
			name:      "initial rate before the first estimate",
			cfg:       ControllerConfig{InitialRate: 400},
			estimates: []float64{-1, 900},
			ops:       []op{register(0), complete, complete},
			want:      [][]int{{400, 900}},
		},
		{
			name:      "initial rate capped",
			cfg:       ControllerConfig{InitialRate: 400, MaxRate: 300},
			estimates: []float64{-1, 200},
			ops:       []op{register(0), complete, complete},
			want:      [][]int{{300, 200}},
		},
		{
			name:      "nothing known: the receiver keeps its rate",
			estimates: []float64{-1, 700},
			ops:       []op{register(0), complete, complete},
			want:      [][]int{{700}},
		},
		{
			name:      "two receivers share the stream's rate",
			cfg:       ControllerConfig{InitialRate: 400},
			estimates: []float64{-1, 1000, 3000},
			ops:       []op{register(0), register(1), complete, complete, complete},
			want:      [][]int{{400, 200, 500, 1500}, {200, 500, 1500}},
		},
		{
			name:      "each share capped",
			cfg:       ControllerConfig{MaxRate: 1000},
			estimates: []float64{5000, 1500},
			ops:       []op{register(0), register(1), complete, complete},
			want:      [][]int{{1000, 1000, 1000, 750}, {1000, 1000, 750}},
		},
		{
			name:      "a receiver joining late gets the current share; one leaving gives its share back",
			estimates: []float64{1200, 900},
			ops:       []op{register(0), complete, register(1), register(2), unregister(1), unregister(1), complete, unregister(0), unregister(2)},
			want:      [][]int{{1200, 600, 400, 600, 450}, {600, 400}, {400, 600, 450, 900}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Estimator = &script{rates: tc.estimates}
			tc.cfg.Logger = quiet
			c, err := NewController(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			recs := make([]*recorder, len(tc.want))
			unregs := make([]func(), len(tc.want))
			for i := range recs {
				recs[i] = &recorder{}
			}
			at := epoch
			for _, o := range tc.ops {
				switch {
				case o.reg >= 0:
					unregs[o.reg] = c.Register(recs[o.reg])
				case o.unreg >= 0:
					unregs[o.unreg]()
				case o.batch:
					at = at.Add(time.Second)
					c.OnBatchCompleted(at, 100, time.Second, 0)
				}
			}
			for i, r := range recs {
				if got := r.got(); !slices.Equal(got, tc.want[i]) {
					t.Errorf("limiter %d was set to %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestControllerRate(t *testing.T) {
	c, err := NewController(ControllerConfig{Estimator: &script{rates: []float64{-1, 123.5}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := c.Rate(); ok {
		t.Errorf("Rate() = %v before any estimate", r)
	}
	c.OnBatchCompleted(epoch, 1, time.Second, 0)
	c.OnBatchCompleted(epoch.Add(time.Second), 1, time.Second, 0)
	if r, ok := c.Rate(); !ok || r != 123.5 {
		t.Errorf("Rate() = %v, %v; want 123.5", r, ok)
	}
}

// TestControllerOnEvent checks what the controller passes its estimator
// from the bus's events.
func TestControllerOnEvent(t *testing.T) {
	bt := epoch.Add(10 * time.Second)
	done := listener.BatchInfo{
		Time: bt, Records: 500, SubmissionTime: bt, StartTime: bt.Add(300 * time.Millisecond),
		EndTime: bt.Add(1100 * time.Millisecond), SchedulingDelay: 300 * time.Millisecond, ProcessingTime: 800 * time.Millisecond,
	}
	failed := done
	failed.Time, failed.EndTime, failed.Err, failed.Records = bt.Add(time.Second), bt.Add(2*time.Second), io.EOF, 7
	want := batch{done.EndTime, 500, 800 * time.Millisecond, 300 * time.Millisecond}
	tests := []struct {
		name    string
		records func(listener.BatchInfo) (int64, bool)
		events  []listener.Event
		want    []batch
	}{
		{"a completed batch", nil, []listener.Event{listener.BatchCompleted{Batch: done}}, []batch{want}},
		{"other events are ignored", nil, []listener.Event{
			listener.BatchSubmitted{Batch: done}, listener.BatchStarted{Batch: done},
			listener.OutputOpCompleted{Time: bt}, listener.ReceiverError{Stream: 1},
		}, nil},
		{"a batch without an end is skipped", nil, []listener.Event{listener.BatchCompleted{Batch: listener.BatchInfo{Time: bt, Records: 5}}}, nil},
		{"failed batches count, as in Spark", nil, []listener.Event{listener.BatchCompleted{Batch: failed}},
			[]batch{{failed.EndTime, 7, 800 * time.Millisecond, 300 * time.Millisecond}}},
		{"the stream's records", func(b listener.BatchInfo) (int64, bool) { return b.Records / 5, true },
			[]listener.Event{listener.BatchCompleted{Batch: done}}, []batch{{done.EndTime, 100, 800 * time.Millisecond, 300 * time.Millisecond}}},
		{"a batch without the stream's count is skipped", func(listener.BatchInfo) (int64, bool) { return 0, false },
			[]listener.Event{listener.BatchCompleted{Batch: done}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{}
			c, err := NewController(ControllerConfig{Estimator: s, Records: tc.records, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tc.events {
				c.OnEvent(e)
			}
			if !slices.Equal(s.calls, tc.want) {
				t.Errorf("estimator got %+v, want %+v", s.calls, tc.want)
			}
		})
	}
}

// TestControllerOnTheBus wires a PID controller to a listener bus and a
// block generator, as the engine would: the generator's rate follows the
// completed batches.
func TestControllerOnTheBus(t *testing.T) {
	pid, err := NewDefaultPID(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewController(ControllerConfig{Estimator: pid, MaxRate: 50_000, InitialRate: 20_000, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	gen := source.NewBlockGenerator(source.GeneratorConfig{Clock: clock.NewManual(epoch), Sink: nopSink{}, Logger: quiet})
	unregister := c.Register(gen)
	if r := gen.Rate(); r != 20_000 {
		t.Fatalf("rate %d after registering, want the initial 20000", r)
	}
	bus := listener.NewBus(0)
	bus.Add(c)
	post := func(end time.Time, records int64, proc, sched time.Duration) {
		bus.Post(listener.BatchCompleted{Batch: listener.BatchInfo{Time: end.Add(-proc - sched), Records: records,
			EndTime: end, ProcessingTime: proc, SchedulingDelay: sched}})
	}
	post(epoch.Add(time.Second), 20_000, 2*time.Second, 0)             // 10000/s: recorded only
	post(epoch.Add(3*time.Second), 20_000, 2*time.Second, time.Second) // 10000 - 0 - 0.2*10000 = 8000
	post(epoch.Add(4*time.Second), 60_000, 500*time.Millisecond, 0)    // 120000/s: 8000 + 112000, capped
	bus.Stop()
	if r, ok := c.Rate(); !ok || r != 120_000 {
		t.Errorf("estimate %v, %v; want 120000", r, ok)
	}
	if r := gen.Rate(); r != 50_000 {
		t.Errorf("generator's rate %d, want the maximum 50000", r)
	}
	unregister()
	if err := gen.Stop(); err != nil {
		t.Fatal(err)
	}
}

type nopSink struct{}

func (nopSink) StoreBlock(_ context.Context, _ source.Block) error { return nil }

// TestControllerConcurrent registers, unregisters and completes batches
// from several goroutines; under -race this checks the locking, and every
// rate published is a valid share.
func TestControllerConcurrent(t *testing.T) {
	pid, err := NewPID(time.Second, 1, 0.2, 0.1, 10)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewController(ControllerConfig{Estimator: pid, MaxRate: 5000, InitialRate: 100, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	recs := make([]*recorder, 8)
	for i := range recs {
		recs[i] = &recorder{}
		wg.Go(func() {
			for range 50 {
				c.Register(recs[i])()
			}
		})
	}
	var mu sync.Mutex
	at := epoch
	for range 4 {
		wg.Go(func() {
			for j := range 200 {
				mu.Lock()
				at = at.Add(time.Second)
				now := at
				mu.Unlock()
				c.OnBatchCompleted(now, int64(1000+j), time.Second, time.Duration(j%3)*100*time.Millisecond)
			}
		})
	}
	wg.Wait()
	for i, r := range recs {
		for _, n := range r.got() {
			if n < 1 || n > 5000 {
				t.Fatalf("limiter %d set to %d, outside [1, 5000]", i, n)
			}
		}
	}
}
