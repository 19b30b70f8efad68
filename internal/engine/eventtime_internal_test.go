package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/dstream/dstream/manifest"
)

// A stream read per partition: the watermark follows the slowest partition
// not idle. Each row runs intervals 1..n (batch 1000 ms, delay 500 ms)
// with, per interval, each partition's largest event time (-1: the
// partition was read, with no record), and wants the watermark after each
// ("-": none).
func TestAdvanceEventTimePerPartition(t *testing.T) {
	for _, tc := range []struct {
		name     string
		idleness time.Duration
		in       [][]int64 // per interval, per partition (0, 1, 2)
		want     []string
	}{
		{
			name: "the slowest partition holds it",
			in:   [][]int64{{5000, 5000, 2000}, {9000, 8000, 3000}, {9500, 9000, 3100}},
			want: []string{"1500", "2500", "2600"},
		},
		{
			name: "no watermark until every partition carried a record",
			in:   [][]int64{{5000, 5000, -1}, {6000, 6000, -1}, {7000, 7000, 4000}},
			want: []string{"-", "-", "3500"},
		},
		{
			name: "a quiet partition holds it without idleness",
			in:   [][]int64{{5000, 5000, 5000}, {6000, 6000, -1}, {7000, 7000, -1}, {8000, 8000, -1}},
			want: []string{"4500", "4500", "4500", "4500"},
		},
		{
			name: "idle after 2 s without records: left out, then back",
			// Partition 2 is quiet in intervals 2 and 3: idle after 3
			// (3000 - 1000 >= 2000); its record at 4 (event time 6000,
			// behind) brings it back, and the watermark does not move back.
			idleness: 2 * time.Second,
			in:       [][]int64{{5000, 5000, 5000}, {6000, 6000, -1}, {7000, 7000, -1}, {8000, 8000, 6000}, {9000, 9000, 9000}},
			want:     []string{"4500", "4500", "6500", "6500", "8500"},
		},
		{
			name:     "a partition that never carried a record is idle from its first interval's start",
			idleness: 2 * time.Second,
			in:       [][]int64{{5000, -1, -1}, {6000, -1, -1}, {7000, -1, -1}},
			want:     []string{"-", "5500", "6500"},
		},
		{
			name:     "every partition idle: the watermark stays",
			idleness: time.Second,
			in:       [][]int64{{5000, 4000, 3000}, {-1, -1, -1}, {-1, -1, -1}},
			want:     []string{"2500", "2500", "2500"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e manifest.EventTime
			had := false
			for i, row := range tc.in {
				st := EventTimeStats{Partitions: map[Partition]PartitionStats{}}
				for p, mx := range row {
					ps := PartitionStats{}
					if mx >= 0 {
						ps = PartitionStats{Max: mx, Records: 1}
						st.Max, st.Records = max(st.Max, mx), st.Records+1
					}
					st.Partitions[Partition{"t", int32(p)}] = ps
				}
				e, had = advanceEventTime(e, had, 7, st, int64(i+1)*1000, 1000, 500*time.Millisecond, tc.idleness)
				got := "-"
				if had && e.HasWatermark() {
					got = fmt.Sprint(e.Watermark)
				}
				if got != tc.want[i] {
					t.Errorf("after interval %d: watermark %s, want %s (%+v)", i+1, got, tc.want[i], e)
				}
				m := manifest.Interval{Version: manifest.Version, Time: int64(i+2) * 1000, EventTimes: []manifest.EventTime{e}}
				if err := m.Validate(); err != nil {
					t.Errorf("after interval %d: %v", i+1, err)
				}
			}
		})
	}
}

// A stream not read per partition: the largest event time so far, less the
// delay; an interval without records changes nothing.
func TestAdvanceEventTimeWholeStream(t *testing.T) {
	var e manifest.EventTime
	had := false
	var got []string
	for i, st := range []EventTimeStats{{}, {Max: 5000, Records: 2}, {}, {Max: 4000, Records: 1}, {Max: 7000, Records: 1}} {
		e, had = advanceEventTime(e, had, 3, st, int64(i+1)*1000, 1000, time.Second, 0)
		got = append(got, fmt.Sprint(had, e.Watermark))
	}
	if want := "[false 0 true 4000 true 4000 true 4000 true 6000]"; fmt.Sprint(got) != want {
		t.Errorf("watermarks %v, want %s", got, want)
	}
}
