package dstream

import "testing"

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1073741824", 1 << 30},
		{"100B", 100},
		{"4k", 4 << 10},
		{"4KB", 4 << 10},
		{"300M", 300 << 20},
		{"512MiB", 512 << 20},
		{"512mib", 512 << 20},
		{"1GiB", 1 << 30},
		{"2G", 2 << 30},
		{"2gb", 2 << 30},
		{"1TiB", 1 << 40},
		{" 64 MiB ", 64 << 20},
		{"9223372036854775807", 1<<63 - 1},
		{"8589934591G", 8589934591 << 30},
	} {
		got, err := ParseBytes(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", " ", "G", "MiB", "-1", "-1G", "+1G", "1.5GiB", "1e9", "1 2G", "12X", "1PiB", "1GiBs", "1iB", "0x10",
		"9223372036854775808", "8589934592G", "99999999999999999999",
	} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
}
