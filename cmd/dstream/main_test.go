package main

import (
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"send", "--generate", "tweets"}, 2, "--to"},
		{[]string{"send", "--to", "127.0.0.1:1", "--bogus"}, 2, "bogus"},
		{[]string{"demo", "--batch", "soon"}, 2, "invalid value"},
		{[]string{"demo", "--batch", "0s"}, 2, "too short"},
		{[]string{"demo", "--master", "yarn"}, 2, "master"},
		{[]string{"demo", "--memory", "lots"}, 2, "memory"},
		{[]string{"demo", "--memory", "0"}, 2, "positive"},
		{[]string{"demo", "--memory", "100"}, 2, "too small"},
		{[]string{"demo", "extra"}, 2, "unexpected"},
		{[]string{"demo", "--ui-listen", "4040"}, 2, `--ui-listen "4040": want HOST:PORT`},
		{[]string{"demo", "--source", "pigeon"}, 2, `--source "pigeon"`},
		{[]string{"demo", "--brokers", "127.0.0.1:9092"}, 2, "--brokers needs --source kafka"},
		{[]string{"help"}, 0, "Usage"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("dstream %v: exit %d, output %q; want exit %d mentioning %q", c.args, code, out.String()+errb.String(), c.code, c.want)
		}
	}
}

// TestFlagErrorsPrintOnce: the flag package's error is printed once, by
// run, not a second time by the flag package with the flags after it.
func TestFlagErrorsPrintOnce(t *testing.T) {
	for _, cmd := range []string{"demo", "send", "bench"} {
		var out, errb bytes.Buffer
		code := run([]string{cmd, "--bogus"}, &out, &errb)
		if code != 2 || out.Len() != 0 || strings.Count(errb.String(), "-bogus") != 1 || strings.Contains(errb.String(), "-batch") {
			t.Errorf("dstream %s --bogus: exit %d, stdout %q, stderr %q; want exit 2 and the error once on stderr", cmd, code, out.String(), errb.String())
		}
	}
}

// TestHelp: --help prints the command's flags to stdout and exits 0.
func TestHelp(t *testing.T) {
	for cmd, flag := range map[string]string{"demo": "-memory", "send": "-generate", "bench": "-workload"} {
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			code := run([]string{cmd, h}, &out, &errb)
			if code != 0 || !strings.Contains(out.String(), "Usage: dstream "+cmd) || !strings.Contains(out.String(), flag) || errb.Len() != 0 {
				t.Errorf("dstream %s %s: exit %d, stdout %q, stderr %q; want exit 0 and the flags on stdout", cmd, h, code, out.String(), errb.String())
			}
		}
	}
}

// TestBenchValidatesFirst: every bench flag is checked before anything is
// printed (no workload header before the error).
func TestBenchValidatesFirst(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workload", "nope"}, "--workload"},
		{[]string{"--workload", "grep", "--batch", "0s"}, "--batch"},
		{[]string{"--workload", "grep", "--batch", "-1s"}, "--batch"},
		{[]string{"--workload", "grep", "--duration", "0s"}, "--duration"},
		{[]string{"--workload", "grep", "--duration", "-5s"}, "--duration"},
		{[]string{"--workload", "grep", "--master", "yarn"}, "master"},
		{[]string{"--workload", "grep", "--source", "kafka"}, "--source"},
		{[]string{"--workload", "grep", "--batch", "2s", "--window", "7s"}, "--window"},
		{[]string{"--workload", "all", "--window", "-1s"}, "--window"},
		{[]string{"--workload", "grep", "--json", "--source", "file"}, "--source"},
		{[]string{"--workload", "grep", "--rate", "-5"}, "--rate"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"bench"}, c.args...), &out, &errb)
		if code != 2 || out.Len() != 0 || strings.Contains(errb.String(), "==") || !strings.Contains(errb.String(), c.want) {
			t.Errorf("dstream bench %v: exit %d, stdout %q, stderr %q; want exit 2, nothing printed but an error mentioning %q", c.args, code, out.String(), errb.String(), c.want)
		}
	}
}

func TestDemoRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for a second")
	}
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--duration", "1500ms", "--batch", "250ms", "--window", "1s", "--rate", "2000", "--ui-listen", "127.0.0.1:0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "top hashtags") || !strings.Contains(out.String(), "#") || !strings.Contains(out.String(), "records in") {
		t.Errorf("demo output lacks hashtags or the summary:\n%s", out.String())
	}
	if !regexp.MustCompile(`(?m)^dstream demo: UI at http://127\.0\.0\.1:[1-9][0-9]* `).MatchString(out.String()) {
		t.Errorf("demo did not print the UI's URL:\n%s", out.String())
	}
}

// The demo with --source kafka and no --brokers starts an in-process
// broker and a producer, and its job reads the topic directly.
func TestDemoKafkaRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for a second")
	}
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--source", "kafka", "--duration", "1500ms", "--batch", "250ms", "--window", "1s", "--rate", "2000", "--ui-listen", ""}, &out, &errb)
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "in-process Kafka broker") || !strings.Contains(out.String(), "top hashtags") || !strings.Contains(out.String(), "#") {
		t.Errorf("demo output lacks the broker or hashtags:\n%s", out.String())
	}
	if !regexp.MustCompile(`interval [0-9:]+: [1-9][0-9]* records in`).MatchString(out.String()) {
		t.Errorf("no interval read records:\n%s", out.String())
	}
}

// TestDemoUIPortInUse: a UI port in use fails the demo at once, naming it.
func TestDemoUIPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--ui-listen", busy.Addr().String()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "cannot listen on "+busy.Addr().String()) || strings.Contains(out.String(), "top hashtags") {
		t.Errorf("demo with the UI port in use: exit %d, stdout %q, stderr %q; want exit 1 naming %s", code, out.String(), errb.String(), busy.Addr())
	}
}

// --log-json writes every log line as a JSON object.
func TestLogJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the sender logs its retries
	var out, errb bytes.Buffer
	if code := run([]string{"send", "--log-json", "--to", addr, "--generate", "words", "--count", "1", "--connect-timeout", "250ms"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("stderr %q: want log lines and the error", errb.String())
	}
	for _, l := range lines[:len(lines)-1] {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["level"] != "WARN" || rec["msg"] == nil {
			t.Errorf("log line %q is not a slog JSON record: %v", l, err)
		}
	}
}

// TestHelpPlaceholders renders every command's --help and checks each
// flag's line: the flag package takes a back-quoted word in a usage text as
// the value's placeholder ("-out folder"), so a back-quoted command there
// would garble it ("-master dstream worker --master ADDR").
func TestHelpPlaceholders(t *testing.T) {
	for _, cmd := range []string{"demo", "send", "query", "bench", "bench-worker", "drill", "drill-job", "worker"} {
		var out, errb bytes.Buffer
		if code := run([]string{cmd, "--help"}, &out, &errb); code != 0 {
			t.Errorf("dstream %s --help: exit %d\n%s", cmd, code, errb.String())
			continue
		}
		// `dstream worker` (dstream.WorkerMain) prints its flags to stderr.
		if bad := garbledFlags(out.String() + errb.String()); len(bad) > 0 || !strings.Contains(out.String()+errb.String(), "  -") {
			t.Errorf("dstream %s --help: flags with a garbled placeholder: %q\n%s", cmd, bad, out.String()+errb.String())
		}
	}
}

// garbledFlags returns the flag lines of flag.PrintDefaults output whose
// placeholder is not one lower-case word.
func garbledFlags(help string) []string {
	var bad []string
	for line := range strings.SplitSeq(help, "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		head, _, _ := strings.Cut(line, "\t") // a one-letter flag's usage follows a tab
		if f := strings.Fields(head); len(f) > 2 || len(f) == 2 && !regexp.MustCompile(`^[a-z]+$`).MatchString(f[1]) {
			bad = append(bad, line)
		}
	}
	return bad
}

// TestGarbledFlags: the check above catches the garbled line.
func TestGarbledFlags(t *testing.T) {
	help := "  -master dstream worker --master ADDR\n    \twhere tasks run\n  -v\tlog more\n  -out folder\n    \toutput\n  -n int\n"
	if got := garbledFlags(help); len(got) != 1 || !strings.HasPrefix(got[0], "  -master") {
		t.Errorf("garbledFlags = %q, want the -master line", got)
	}
}
