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
