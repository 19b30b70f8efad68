package admission

import "testing"

func TestAdmissionInputShare(t *testing.T) {
	const store = 1000_000
	tests := []struct {
		name   string
		recent []measurement
		state  int64
		want   int64
	}{
		{"no measurement: E = 2I", nil, 0, store * 10 / 35},
		{"no shuffle: the default share", []measurement{{100_000, 0}}, 0, store / 2},
		{"linear shuffle E = I", []measurement{{100_000, 100_000}}, 0, store * 4 / 9},
		{"state leaves less room", []measurement{{100_000, 100_000}}, 100_000, 900_000 * 4 / 9},
		{"a fixed-size shuffle (distinct keys) allows more than its ratio",
			[]measurement{{50_000, 300_000}, {200_000, 300_000}}, 0, 347826}, // 1e6 / (1 + 1.25*1.5): the larger input proves more
		{"large shuffles: the floor", []measurement{{10_000, 700_000}}, 0, store / 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Admission{recent: tt.recent}
			if got := a.InputShare(store, tt.state); got != tt.want {
				t.Errorf("inputShare = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAdmissionRemembersRecentIntervals(t *testing.T) {
	var a Admission
	a.Measured(0, 500, 1000_000)   // no input: skipped
	a.Measured(999, 500, 1000_000) // under a thousandth of the store: skipped
	if len(a.recent) != 0 {
		t.Fatalf("recorded %v", a.recent)
	}
	for i := range int64(measurements + 3) {
		a.Measured(1000+i, 10, 1000_000)
	}
	if len(a.recent) != measurements || a.recent[0].input != 1003 {
		t.Fatalf("recent = %v, want the last %d", a.recent, measurements)
	}
}
