package rate

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var epoch = time.UnixMilli(1_700_000_000_000)

// ms is a time n milliseconds after epoch, as Spark's suite counts time.
func ms(n int64) time.Time { return epoch.Add(time.Duration(n) * time.Millisecond) }

func msd(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func TestNewPIDChecksRanges(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name                string
		batch               time.Duration
		kp, ki, kd, minRate float64
		ok                  bool
	}{
		{"defaults", time.Second, 1, 0.2, 0, 100, true},
		{"zero gains", 100 * time.Millisecond, 0, 0, 0, 10, true},
		{"tiny min rate", 100 * time.Millisecond, 1, 1, 1, 1e-9, true},
		// Spark's "estimator checks ranges".
		{"zero batch interval", 0, 1, 2, 3, 10, false},
		{"negative batch interval", -time.Second, 1, 2, 3, 10, false},
		{"negative proportional", 100 * time.Millisecond, -1, 2, 3, 10, false},
		{"negative integral", 100 * time.Millisecond, 0, -1, 3, 10, false},
		{"negative derivative", 100 * time.Millisecond, 0, 0, -1, 10, false},
		{"zero min rate", 100 * time.Millisecond, 0, 0, 0, 0, false},
		{"negative min rate", 100 * time.Millisecond, 0, 0, 0, -10, false},
		{"NaN proportional", 100 * time.Millisecond, nan, 0, 0, 10, false},
		{"NaN min rate", 100 * time.Millisecond, 0, 0, 0, nan, false},
		{"infinite integral", 100 * time.Millisecond, 0, math.Inf(1), 0, 10, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPID(tc.batch, tc.kp, tc.ki, tc.kd, tc.minRate)
			if tc.ok != (err == nil) || (err == nil) != (p != nil) {
				t.Fatalf("NewPID(%v, %v, %v, %v, %v) = %v, %v; want ok %v", tc.batch, tc.kp, tc.ki, tc.kd, tc.minRate, p, err, tc.ok)
			}
		})
	}
}

func TestDefaultPID(t *testing.T) {
	p, err := NewDefaultPID(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.kp != 1 || p.ki != 0.2 || p.kd != 0 || p.minRate != 100 || p.batch != time.Second {
		t.Errorf("default PID %+v, want Spark's 1, 0.2, 0, 100", p)
	}
}

// call is one Compute call and what it must return.
type call struct {
	at                time.Time
	elements          int64
	processing, sched time.Duration
	want              float64
	ok                bool
}

func TestPIDCompute(t *testing.T) {
	type gains struct {
		batch               time.Duration
		kp, ki, kd, minRate float64
	}
	// Spark's suite's createDefaultEstimator: new PIDRateEstimator(20, 1, 0, 0, 10).
	sparkDefault := gains{20 * time.Millisecond, 1, 0, 0, 10}
	tests := []struct {
		name  string
		g     gains
		calls []call
	}{
		{"first estimate is none", sparkDefault, []call{
			{ms(0), 10, msd(10), 0, 0, false},
		}},
		{"second estimate is the processing rate", sparkDefault, []call{
			{ms(0), 10, msd(10), 0, 0, false},
			{ms(10), 10, msd(10), 0, 1000, true}, // 10 records in 10 ms
		}},
		{"no estimate without a time difference", sparkDefault, []call{
			{ms(0), 10, msd(10), 0, 0, false},
			{ms(10), 10, msd(10), 0, 1000, true},
			{ms(10), 10, msd(10), 0, 0, false},
			{ms(5), 10, msd(10), 0, 0, false}, // earlier: ignored too
			// The ignored calls changed nothing: error 1000-500, rate 1000-500.
			{ms(20), 5, msd(10), 0, 500, true},
		}},
		{"no estimate without records", sparkDefault, []call{
			{ms(0), 10, msd(10), 0, 0, false},
			{ms(10), 0, msd(10), 0, 0, false},
			{ms(20), -10, msd(10), 0, 0, false},
			{ms(30), 20, msd(10), 0, 2000, true},
		}},
		{"no estimate without processing delay", sparkDefault, []call{
			{ms(0), 10, msd(10), 0, 0, false},
			{ms(10), 10, 0, 0, 0, false},
			{ms(20), 10, msd(-10), 0, 0, false},
			{ms(30), 10, msd(5), 0, 2000, true},
		}},
		{"a first call without records does not count as the first", sparkDefault, []call{
			{ms(0), 0, msd(10), 0, 0, false},
			{ms(10), 10, 0, 0, 0, false},
			{ms(20), 10, msd(10), 0, 0, false}, // the first accepted call
			{ms(30), 10, msd(20), 0, 500, true},
		}},
		{"sub-millisecond processing delays count", sparkDefault, []call{
			{ms(0), 1, 500 * time.Microsecond, 0, 0, false},
			{ms(20), 1, 500 * time.Microsecond, 0, 2000, true},
		}},
		{"proportional gain", gains{time.Second, 0.5, 0, 0, 1}, []call{
			{ms(0), 100, msd(100), 0, 0, false}, // 1000/s: the latest rate
			// error 1000-2000 = -1000; 1000 - 0.5*-1000
			{ms(1000), 200, msd(100), 0, 1500, true},
			// error 1500-1000 = 500; 1500 - 0.5*500
			{ms(2000), 100, msd(100), 0, 1250, true},
		}},
		{"integral term: scheduling delay is accumulated error", gains{time.Second, 1, 0.2, 0, 100}, []call{
			{ms(1000), 1000, msd(500), 0, 0, false}, // 2000/s
			// error 0; historical 0.5 s * 2000/s / 1 s = 1000; 2000 - 0.2*1000
			{ms(2000), 1000, msd(500), msd(500), 1800, true},
			// 1500/s: error 1800-1500 = 300; historical 1 s * 1500/s / 1 s = 1500;
			// 1800 - 300 - 0.2*1500
			{ms(3000), 900, msd(600), msd(1000), 1200, true},
			// 1000/s: error 1200-1000 = 200; historical 0.25 s * 1000/s / 1 s
			// = 250; 1200 - 200 - 0.2*250
			{ms(4000), 1000, msd(1000), msd(250), 950, true},
		}},
		{"integral term over a short batch interval", gains{200 * time.Millisecond, 1, 0.2, 0, 1}, []call{
			{ms(200), 100, msd(100), 0, 0, false}, // 1000/s
			// historical 100 ms * 1000/s / 200 ms = 500; 1000 - 0.2*500
			{ms(400), 100, msd(100), msd(100), 900, true},
		}},
		{"derivative term: the change of the error per second", gains{time.Second, 1, 0, 0.5, 10}, []call{
			{ms(0), 1000, msd(1000), 0, 0, false}, // 1000/s; latest error 0
			// error 1000-500 = 500; dError (500-0)/1 s; 1000 - 500 - 0.5*500
			{ms(1000), 500, msd(1000), 0, 250, true},
			// Two seconds later: error 250-1000 = -750; dError (-750-500)/2 s = -625;
			// 250 + 750 + 0.5*625
			{ms(3000), 1000, msd(1000), 0, 1312.5, true},
		}},
		{"all three terms", gains{time.Second, 0.5, 0.1, 0.2, 1}, []call{
			{ms(0), 2000, msd(1000), 0, 0, false}, // 2000/s
			// 4000/s: error -2000; historical 0.5 s * 4000 / 1 s = 2000;
			// dError -2000/s; 2000 + 1000 - 200 + 400
			{ms(1000), 2000, msd(500), msd(500), 3200, true},
		}},
		{"never below the minimum rate", gains{time.Second, 1, 0.2, 0, 100}, []call{
			{ms(0), 1000, msd(1000), 0, 0, false},
			// historical 10 s * 1000/s / 1 s = 10000: 1000 - 2000 < 100
			{ms(1000), 1000, msd(1000), msd(10000), 100, true},
			// The latest rate is now the minimum: error 100-1000; 100 + 900 - 0
			{ms(2000), 1000, msd(1000), 0, 1000, true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPID(tc.g.batch, tc.g.kp, tc.g.ki, tc.g.kd, tc.g.minRate)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range tc.calls {
				got, ok := p.Compute(c.at, c.elements, c.processing, c.sched)
				if ok != c.ok || got != c.want {
					t.Errorf("call %d: Compute(+%v, %d, %v, %v) = %v, %v; want %v, %v",
						i, c.at.Sub(epoch), c.elements, c.processing, c.sched, got, ok, c.want, c.ok)
				}
			}
		})
	}
}

// series runs n calls, one every 20 ms from time 0 as in Spark's suite.
func series(p *PID, n int, elements func(i int) int64, proc func(i int) time.Duration, sched func(i int) time.Duration) []*float64 {
	res := make([]*float64, n)
	for i := range n {
		if r, ok := p.Compute(ms(int64(i)*20), elements(i), proc(i), sched(i)); ok {
			res[i] = &r
		}
	}
	return res
}

func TestPIDSeries(t *testing.T) {
	tests := []struct {
		name                string
		kp, ki, kd, minRate float64
		elements            func(i int) int64
		proc, sched         func(i int) time.Duration
		want                func(i int) float64 // for i >= 1
	}{
		{
			// Spark: "estimate is never less than min rate": 1 record in 20 ms
			// (50/s), with 100 ms of scheduling delay at every batch: the
			// historical error 100*50/20 = 250 pushes below 0, so minRate.
			name: "never less than min rate", kp: 1, ki: 1, kd: 0, minRate: 5,
			elements: func(int) int64 { return 1 },
			proc:     func(int) time.Duration { return msd(20) },
			sched:    func(int) time.Duration { return msd(100) },
			want:     func(int) float64 { return 5 },
		},
		{
			// Spark: "with no accumulated or positive error, |I| > 0, follow
			// the processing speed": (i+1)*20 records in 20 ms each.
			name: "increasing: follow the processing speed", kp: 1, ki: 1, kd: 0, minRate: 10,
			elements: func(i int) int64 { return int64(i+1) * 20 },
			proc:     func(int) time.Duration { return msd(20) },
			sched:    func(int) time.Duration { return 0 },
			want:     func(i int) float64 { return float64(i+1) * 1000 },
		},
		{
			// Spark: "with no accumulated but some positive error, |I| > 0,
			// follow the processing speed": (50-i)*20 records in 20 ms each.
			name: "decreasing: follow the processing speed", kp: 1, ki: 1, kd: 0, minRate: 10,
			elements: func(i int) int64 { return int64(50-i) * 20 },
			proc:     func(int) time.Duration { return msd(20) },
			sched:    func(int) time.Duration { return 0 },
			want:     func(i int) float64 { return float64(50-i) * 1000 },
		},
		{
			// A constant input at the processing capacity, 5000/s, settles at
			// once and stays.
			name: "a constant input converges", kp: 1, ki: 0.2, kd: 0, minRate: 100,
			elements: func(int) int64 { return 100 },
			proc:     func(int) time.Duration { return msd(20) },
			sched:    func(int) time.Duration { return 0 },
			want:     func(int) float64 { return 5000 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPID(20*time.Millisecond, tc.kp, tc.ki, tc.kd, tc.minRate)
			if err != nil {
				t.Fatal(err)
			}
			res := series(p, 50, tc.elements, tc.proc, tc.sched)
			if res[0] != nil {
				t.Errorf("first estimate = %v, want none", *res[0])
			}
			for i := 1; i < 50; i++ {
				if res[i] == nil || *res[i] != tc.want(i) {
					t.Fatalf("estimate %d = %v, want %v", i, show(res[i]), tc.want(i))
				}
			}
		})
	}
}

func show(r *float64) any {
	if r == nil {
		return "none"
	}
	return *r
}

// TestPIDStaysBelowProcessingSpeed is Spark's "with some accumulated and some
// positive error, |I| > 0, stay below the processing speed", with a fixed
// seed (and at least one record per batch, which Spark's random input may
// miss, making its test flaky), checked against Spark's formula evaluated in
// Spark's units (milliseconds).
func TestPIDStaysBelowProcessingSpeed(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		p, err := NewPID(20*time.Millisecond, 1, 0.01, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		ref := sparkPID{batchMillis: 20, kp: 1, ki: 0.01, kd: 0, minRate: 10, latestTime: -1, latestRate: -1, latestError: -1, firstRun: true}
		for i := range 50 {
			elements := 1 + rng.Int64N(999)
			sched := rng.Int64N(19)
			got, ok := p.Compute(ms(int64(i)*20), elements, msd(20), msd(sched))
			want, wantOK := ref.compute(int64(i)*20, elements, 20, sched)
			if ok != wantOK || math.Abs(got-want) > 1e-9*want {
				t.Fatalf("seed %d, batch %d: Compute = %v, %v; Spark's formula gives %v, %v", seed, i, got, ok, want, wantOK)
			}
			if i == 0 {
				if ok {
					t.Fatalf("seed %d: first estimate %v", seed, got)
				}
				continue
			}
			if !ok {
				t.Fatalf("seed %d, batch %d: no estimate", seed, i)
			}
			if speed := float64(elements) / 20 * 1000; got > 0 && sched > 0 && got >= speed {
				t.Fatalf("seed %d, batch %d: rate %v with a scheduling delay of %d ms, not below the processing speed %v", seed, i, got, sched, speed)
			}
		}
	}
}

// sparkPID is PIDRateEstimator.compute transcribed literally, in Spark's
// units (times and delays in milliseconds), as an independent reference.
type sparkPID struct {
	batchMillis             int64
	kp, ki, kd, minRate     float64
	firstRun                bool
	latestTime              int64
	latestRate, latestError float64
}

func (s *sparkPID) compute(time, numElements, processingDelay, schedulingDelay int64) (float64, bool) {
	if time > s.latestTime && numElements > 0 && processingDelay > 0 {
		delaySinceUpdate := float64(time-s.latestTime) / 1000
		processingRate := float64(numElements) / float64(processingDelay) * 1000
		e := s.latestRate - processingRate
		historicalError := float64(schedulingDelay) * processingRate / float64(s.batchMillis)
		dError := (e - s.latestError) / delaySinceUpdate
		newRate := math.Max(s.latestRate-s.kp*e-s.ki*historicalError-s.kd*dError, s.minRate)
		s.latestTime = time
		if s.firstRun {
			s.latestRate, s.latestError, s.firstRun = processingRate, 0, false
			return 0, false
		}
		s.latestRate, s.latestError = newRate, e
		return newRate, true
	}
	return 0, false
}
