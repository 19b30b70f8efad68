package bench

import (
	"testing"
	"time"
)

func TestUnion(t *testing.T) {
	at := func(ms int) time.Time { return time.UnixMilli(int64(ms)) }
	tests := []struct {
		name  string
		spans [][2]time.Time
		want  time.Duration
	}{
		{"none", nil, 0},
		{"one", [][2]time.Time{{at(0), at(5)}}, 5 * time.Millisecond},
		{"overlapping, out of order", [][2]time.Time{{at(3), at(8)}, {at(0), at(5)}}, 8 * time.Millisecond},
		{"a gap", [][2]time.Time{{at(0), at(2)}, {at(4), at(5)}}, 3 * time.Millisecond},
		{"nested", [][2]time.Time{{at(0), at(10)}, {at(2), at(3)}, {at(12), at(13)}}, 11 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := union(tt.spans); got != tt.want {
				t.Fatalf("union = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmptyIntervalHasEveryPartition(t *testing.T) {
	p := NewPool(1000)
	parts := p.Interval(3, 0, 4)
	if len(parts) != 4 {
		t.Fatalf("%d partitions, want 4 (empty)", len(parts))
	}
	for i, part := range parts {
		if len(part) != 0 {
			t.Fatalf("partition %d holds %d records", i, len(part))
		}
	}
}
