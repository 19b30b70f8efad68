package bytesize

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
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
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", " ", "G", "MiB", "-1", "-1G", "+1G", "1.5GiB", "1e9", "1 2G", "12X", "1PiB", "1GiBs", "1iB", "0x10",
		"9223372036854775808", "8589934592G", "99999999999999999999",
	} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64  // 0: an error
		str  string // String of the value set
		err  string // in the error
	}{
		{in: "512MiB", want: 512 << 20, str: "512MiB"},
		{in: "2G", want: 2 << 30, str: "2GiB"},
		{in: "2gb", want: 2 << 30, str: "2GiB"},
		{in: "1GiB", want: 1 << 30, str: "1GiB"},
		{in: "1024", want: 1 << 10, str: "1KiB"},
		{in: "1073741824", want: 1 << 30, str: "1GiB"},
		{in: "1000", want: 1000, str: "1000"},
		{in: "1536K", want: 1536 << 10, str: "1536KiB"},
		{in: "3T", want: 3 << 40, str: "3TiB"},
		{in: " 300m ", want: 300 << 20, str: "300MiB"},
		{in: "0", err: "positive"},
		{in: "0GiB", err: "positive"},
		{in: "lots", err: "want a whole number"},
		{in: "", err: "want a whole number"},
		{in: "-1G", err: "want a whole number"},
		{in: "1.5G", err: "want a whole number"},
		{in: "12PiB", err: "want a whole number"},
		{in: "9999999999T", err: "too large"},
	} {
		var b Bytes
		err := b.Set(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) || b != 0 {
				t.Errorf("Set(%q): %v, value %d; want an error mentioning %q and the value unchanged", c.in, err, b, c.err)
			}
		case err != nil || int64(b) != c.want || b.String() != c.str:
			t.Errorf("Set(%q): %v, value %d %q; want %d %q", c.in, err, b, b.String(), c.want, c.str)
		default:
			// What String prints, Set takes back.
			var again Bytes
			if err := again.Set(b.String()); err != nil || again != b {
				t.Errorf("Set(%q) after String: %v, %d; want %d", b.String(), err, again, b)
			}
		}
	}
}

// TestMemoryFlag: --memory in every command is a Bytes with its default, and its help names the placeholder and the default.
func TestMemoryFlag(t *testing.T) {
	const def = 1 << 30
	for _, c := range []struct {
		args []string
		want int64
		err  string
	}{
		{nil, def, ""},
		{[]string{"--memory", "512MiB"}, 512 << 20, ""},
		{[]string{"--memory=2G"}, 2 << 30, ""},
		{[]string{"--memory", "268435456"}, 256 << 20, ""},
		{[]string{"--memory", "lots"}, 0, `invalid value "lots" for flag -memory`},
		{[]string{"--memory", "0"}, 0, "must be positive"},
	} {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		memory := MemoryFlag(fs, def)
		err := fs.Parse(c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v; want a usage error mentioning %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || *memory != c.want {
			t.Errorf("%q: %v, memory %d; want %d", c.args, err, *memory, c.want)
		}
	}
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	MemoryFlag(fs, def)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.PrintDefaults()
	if !strings.Contains(out.String(), "  -memory size\n") || !strings.Contains(out.String(), "(default 1GiB)") {
		t.Errorf("help:\n%s", out.String())
	}
}
