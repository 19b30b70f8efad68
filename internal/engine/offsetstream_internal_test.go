package engine

import (
	"strings"
	"testing"

	"github.com/dstream/dstream/manifest"
)

// checkRanges refuses a plan that would skip or repeat offsets.
func TestCheckRanges(t *testing.T) {
	r := func(topic string, p int32, from, until int64) manifest.OffsetRange {
		return manifest.OffsetRange{Topic: topic, Partition: p, From: from, Until: until}
	}
	next := map[Partition]int64{{"a", 0}: 10, {"a", 1}: 5}
	tests := []struct {
		name string
		rs   []manifest.OffsetRange
		want string // "" for accepted
	}{
		{"none", nil, ""},
		{"continuing", []manifest.OffsetRange{r("a", 0, 10, 20), r("a", 1, 5, 5)}, ""},
		{"a new partition starts anywhere", []manifest.OffsetRange{r("a", 0, 10, 11), r("b", 0, 7, 9)}, ""},
		{"a gap", []manifest.OffsetRange{r("a", 0, 11, 20)}, "does not start where"},
		{"a repeat", []manifest.OffsetRange{r("a", 1, 4, 9)}, "does not start where"},
		{"backwards", []manifest.OffsetRange{r("b", 0, 9, 8)}, "malformed"},
		{"unsorted", []manifest.OffsetRange{r("a", 1, 5, 6), r("a", 0, 10, 11)}, "not sorted"},
		{"twice", []manifest.OffsetRange{r("a", 0, 10, 11), r("a", 0, 10, 11)}, "not sorted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRanges(tt.rs, next)
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("checkRanges = %v, want %q", err, tt.want)
			}
		})
	}
}
