package program_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/dstream/dstream/program"
)

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
		var b program.Bytes
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
			var again program.Bytes
			if err := again.Set(b.String()); err != nil || again != b {
				t.Errorf("Set(%q) after String: %v, %d; want %d", b.String(), err, again, b)
			}
		}
	}
}

// TestMemoryFlag: --memory in every command is a Bytes with the default
// DefaultMemory, and its help names the placeholder and the default.
func TestMemoryFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int64
		err  string
	}{
		{nil, program.DefaultMemory, ""},
		{[]string{"--memory", "512MiB"}, 512 << 20, ""},
		{[]string{"--memory=2G"}, 2 << 30, ""},
		{[]string{"--memory", "268435456"}, 256 << 20, ""},
		{[]string{"--memory", "lots"}, 0, `invalid value "lots" for flag -memory`},
		{[]string{"--memory", "0"}, 0, "must be positive"},
	} {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		memory := program.MemoryFlag(fs)
		err := program.ParseFlags(fs, "cmd [flags]", c.args, &bytes.Buffer{})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || program.ExitCode(err) != program.ExitUsage {
				t.Errorf("%q: %v; want a usage error mentioning %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || *memory != c.want {
			t.Errorf("%q: %v, memory %d; want %d", c.args, err, *memory, c.want)
		}
	}
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	program.MemoryFlag(fs)
	var out bytes.Buffer
	_ = program.ParseFlags(fs, "cmd [flags]", []string{"--help"}, &out)
	if !strings.Contains(out.String(), "  -memory size\n") || !strings.Contains(out.String(), "(default 1GiB)") {
		t.Errorf("help:\n%s", out.String())
	}
}

func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args   []string
		err    string // in the error; "" for none
		code   int    // ExitCode of the error
		stdout string // in stdout; "" for nothing
	}{
		{args: []string{"--n", "3"}},
		{args: []string{"--help"}, code: program.ExitOK, err: flag.ErrHelp.Error(), stdout: "Usage: cmd --n N [flags]\n\nFlags:\n  -n count\n    \tthe count"},
		{args: []string{"-h"}, code: program.ExitOK, err: flag.ErrHelp.Error(), stdout: "Usage: cmd --n N"},
		{args: []string{"--bogus"}, code: program.ExitUsage, err: "flag provided but not defined: -bogus"},
		{args: []string{"--n", "three"}, code: program.ExitUsage, err: `invalid value "three" for flag -n`},
		{args: []string{"--n", "3", "extra"}, code: program.ExitUsage, err: `unexpected arguments ["extra"]`},
	} {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		fs.Int("n", 0, "the `count`")
		var out bytes.Buffer
		err := program.ParseFlags(fs, "cmd --n N [flags]", c.args, &out)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.args, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || program.ExitCode(err) != c.code):
			t.Errorf("%q: %v (exit status %d); want an error mentioning %q, exit status %d", c.args, err, program.ExitCode(err), c.err, c.code)
		}
		if c.stdout == "" && out.Len() > 0 || !strings.Contains(out.String(), c.stdout) {
			t.Errorf("%q printed %q, want %q", c.args, out.String(), c.stdout)
		}
	}
}

func TestExit(t *testing.T) {
	failed := errors.New("interval 1700000001000 failed: disk full")
	for _, c := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{program.Usagef("--batch %v must be positive", 0), 2, "wc: --batch 0 must be positive\nRun 'wc --help' for its flags.\n"},
		{fmt.Errorf("parsing: %w", program.UsageError{Err: errors.New("bad")}), 2, "wc: parsing: bad\nRun 'wc --help' for its flags.\n"},
		{&program.StartError{Err: errors.New("listen: address already in use")}, 2, "wc: listen: address already in use\n"},
		{fmt.Errorf("starting: %w", &program.StartError{Err: errors.New("no folder")}), 2, "wc: starting: no folder\n"},
		{failed, 1, "wc: interval 1700000001000 failed: disk full\n"},
	} {
		var stderr bytes.Buffer
		code := program.Exit("wc", c.err, &stderr)
		if code != c.code || stderr.String() != c.stderr || program.ExitCode(c.err) != c.code {
			t.Errorf("Exit(%v) = %d, printed %q; want %d, %q", c.err, code, stderr.String(), c.code, c.stderr)
		}
	}
	if !errors.Is(program.Usagef("x: %w", failed), failed) || !errors.Is(&program.StartError{Err: failed}, failed) {
		t.Error("UsageError and StartError do not unwrap")
	}
}
