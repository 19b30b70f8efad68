package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dstream/dstream/checkpoint"
)

func sample() *Interval {
	return &Interval{
		Version: Version, Zero: 1_700_000_000_000, Time: 1_700_000_003_000,
		Inputs: []Input{
			{Stream: 4, Blocks: []Block{{Key: "input_4_0", Records: 3, Bytes: 120}}},
			{Stream: 1, Blocks: []Block{{Key: "input_1_7", Records: 10, Bytes: 400}, {Key: "input_1_8", Records: 2, Bytes: 80, Locations: []string{"w1", "w2"}}}},
		},
		Checkpoints: []Checkpoint{{Stream: 6, Dataset: ID{Op: 6, Time: 1_700_000_002_000, Seq: 3}, Partitions: 2}},
	}
}

func TestRoundTripAndDeterministicBytes(t *testing.T) {
	m := sample()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, rest, err := Unmarshal(append(b, "next"...))
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "next" {
		t.Fatalf("rest = %q", rest)
	}
	if got.Records() != 15 || got.Bytes() != 600 || len(got.Input(1)) != 2 || got.Input(9) != nil {
		t.Fatalf("decoded %+v", got)
	}
	// The same manifest with its streams in another order marshals to the
	// same bytes.
	m2 := sample()
	m2.Inputs[0], m2.Inputs[1] = m2.Inputs[1], m2.Inputs[0]
	b2, err := m2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(b2) {
		t.Fatal("equal manifests marshal differently")
	}
	b3, _ := got.Marshal()
	if string(b3) != string(b) {
		t.Fatal("a decoded manifest marshals differently")
	}
	if !reflect.DeepEqual(m.Input(1), got.Input(1)) {
		t.Fatal("blocks changed in the round trip")
	}
}

func TestUnmarshalRefusesBadFrames(t *testing.T) {
	good, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x20
		return b
	}
	payload, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "shorter than a header"},
		{"not a manifest", []byte("GET / HTTP/1.1\r\n\r\n"), "not a manifest"},
		{"another kind of frame", checkpoint.Frame("dstream.commit", Version, payload), "not a manifest"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"payload bit flip", flip(len(good) - 10), "checksum"},
		{"future version", checkpoint.Frame(Kind, 9, payload), "version 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Unmarshal(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unmarshal = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if _, _, err := Unmarshal(good[:3]); !errors.Is(err, ErrCorrupt) || !errors.Is(err, checkpoint.ErrCorrupt) {
		t.Fatalf("short frame: %v is not ErrCorrupt", err)
	}
	for i := range good {
		if _, _, err := Unmarshal(flip(i)); err == nil {
			t.Fatalf("a frame with byte %d flipped was accepted", i)
		}
	}
}

// A file stream's files survive the round trip; a manifest without files
// (an older one) reads as before.
func TestFilesRoundTrip(t *testing.T) {
	m := sample()
	files := []File{{Name: "a.txt", Size: 12, ModTime: 1_700_000_002_500_000_123}, {Name: "b.txt", Size: 0, ModTime: 1_700_000_002_999_000_000}}
	m.Inputs = append(m.Inputs, Input{Stream: 7, Files: files})
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got.Inputs {
		if in.Stream == 7 && !reflect.DeepEqual(in.Files, files) {
			t.Fatalf("files = %+v, want %+v", in.Files, files)
		}
	}
	old, _ := sample().Marshal()
	if strings.Contains(string(old), "files") {
		t.Fatal("a manifest without files names them")
	}
}

// An offset stream's ranges survive the round trip, empty ones included;
// a manifest without them reads as before.
func TestRangesRoundTrip(t *testing.T) {
	m := sample()
	rs := []OffsetRange{{Topic: "a", Partition: 0, From: 10, Until: 20}, {Topic: "a", Partition: 1, From: 7, Until: 7}, {Topic: "b", Partition: 0, From: 0, Until: 1}}
	m.Inputs = append(m.Inputs, Input{Stream: 7, Ranges: rs})
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got.Inputs {
		if in.Stream == 7 && !reflect.DeepEqual(in.Ranges, rs) {
			t.Fatalf("ranges = %+v, want %+v", in.Ranges, rs)
		}
	}
	old, _ := sample().Marshal()
	if strings.Contains(string(old), "ranges") {
		t.Fatal("a manifest without ranges names them")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Interval)
		want string
	}{
		{"version", func(m *Interval) { m.Version = 2 }, "version"},
		{"time before zero", func(m *Interval) { m.Time = m.Zero }, "not after zero"},
		{"stream twice", func(m *Interval) { m.Inputs = append(m.Inputs, Input{Stream: 4}) }, "twice"},
		{"block without key", func(m *Interval) { m.Inputs[0].Blocks[0].Key = "" }, "malformed block"},
		{"checkpoint of another stream", func(m *Interval) { m.Checkpoints[0].Dataset.Op = 5 }, "malformed checkpoint"},
		{"checkpoint not before the interval", func(m *Interval) { m.Checkpoints[0].Dataset.Time = m.Time }, "malformed checkpoint"},
		{"file with a path", func(m *Interval) { m.Inputs = append(m.Inputs, Input{Stream: 9, Files: []File{{Name: "../x"}}}) }, "malformed file"},
		{"file without a name", func(m *Interval) { m.Inputs = append(m.Inputs, Input{Stream: 9, Files: []File{{Size: 1}}}) }, "malformed file"},
		{"file of negative size", func(m *Interval) { m.Inputs = append(m.Inputs, Input{Stream: 9, Files: []File{{Name: "a", Size: -1}}}) }, "malformed file"},
		{"files out of order", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Files: []File{{Name: "b"}, {Name: "a"}}})
		}, "not sorted"},
		{"a file twice", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Files: []File{{Name: "a"}, {Name: "a"}}})
		}, "not sorted"},
		{"range without a topic", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Ranges: []OffsetRange{{Partition: 0, From: 1, Until: 2}}})
		}, "malformed offset range"},
		{"range ending before it starts", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Ranges: []OffsetRange{{Topic: "t", From: 5, Until: 4}}})
		}, "malformed offset range"},
		{"negative offset", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Ranges: []OffsetRange{{Topic: "t", From: -1, Until: 4}}})
		}, "malformed offset range"},
		{"negative partition", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Ranges: []OffsetRange{{Topic: "t", Partition: -1}}})
		}, "malformed offset range"},
		{"ranges out of order", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Ranges: []OffsetRange{{Topic: "t", Partition: 1}, {Topic: "t", Partition: 0}}})
		}, "not sorted"},
		{"a partition twice", func(m *Interval) {
			m.Inputs = append(m.Inputs, Input{Stream: 9, Ranges: []OffsetRange{{Topic: "t", Partition: 1}, {Topic: "t", Partition: 1, From: 3, Until: 3}}})
		}, "not sorted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sample()
			tt.edit(m)
			if _, err := m.Marshal(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := sample().Marshal()
	f.Add(good)
	f.Add([]byte("DSFR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := Unmarshal(b)
		if err == nil {
			if _, err := m.Marshal(); err != nil {
				t.Fatalf("a decoded manifest does not marshal: %v", err)
			}
		}
	})
}

func TestLog(t *testing.T) {
	var l Log
	if l.Latest() != 0 || len(l.Between(0, 100)) != 0 {
		t.Fatal("an empty log holds something")
	}
	for _, ms := range []int64{3000, 1000, 2000, 4000} {
		l.Add(&Interval{Version: Version, Zero: 0, Time: ms})
	}
	var got []int64
	for _, m := range l.Between(1000, 3000) {
		got = append(got, m.Time)
	}
	if fmt.Sprint(got) != "[2000 3000]" {
		t.Errorf("Between(1000, 3000) = %v, want [2000 3000] in time order", got)
	}
	if l.Latest() != 4000 {
		t.Errorf("Latest = %d", l.Latest())
	}
	l.Forget(2000)
	if _, ok := l.Get(2000); ok {
		t.Error("Forget(2000) kept 2000")
	}
	if m, ok := l.Get(3000); !ok || m.Time != 3000 {
		t.Error("Forget(2000) dropped 3000")
	}
}

func TestEventTimesRoundTripAndValidate(t *testing.T) {
	m := sample()
	m.EventTimes = []EventTime{{Stream: 9, Max: 5000, Watermark: 3000}, {Stream: 2, Max: 100, Watermark: 100},
		{Stream: 4, Pending: true, Partitions: []PartitionTime{{Topic: "t", Partition: 0, Max: 70, Seen: true, Active: 1000}, {Topic: "t", Partition: 1, Active: 0, Idle: true}}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := got.EventTimeOf(9); !ok || e.Watermark != 3000 || got.EventTimes[0].Stream != 2 {
		t.Errorf("read back %+v: want both, sorted by stream", got.EventTimes)
	}
	if e, ok := got.EventTimeOf(4); !ok || e.HasWatermark() || !reflect.DeepEqual(e, m.EventTimes[2]) {
		t.Errorf("read back %+v, want %+v: a stream read per partition, no watermark yet", e, m.EventTimes[2])
	}
	for _, bad := range [][]EventTime{
		{{Stream: 1, Max: 1, Watermark: 2}},
		{{Stream: 1, Max: 5, Watermark: 2}, {Stream: 1, Max: 5, Watermark: 2}},
		{{Stream: 1, Max: 5, Watermark: 2, Partitions: []PartitionTime{{Topic: "t", Partition: 1}, {Topic: "t", Partition: 0}}}},
		{{Stream: 1, Max: 5, Watermark: 2, Partitions: []PartitionTime{{Topic: "", Partition: 0}}}},
		{{Stream: 1, Max: 5, Watermark: 2, Partitions: []PartitionTime{{Topic: "t", Partition: 0, Max: 9, Seen: true}}}},
	} {
		m.EventTimes = bad
		if err := m.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}
