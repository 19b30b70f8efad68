package main

import (
	"bytes"
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
		{[]string{"help"}, 0, "Usage"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("dstream %v: exit %d, output %q; want exit %d mentioning %q", c.args, code, out.String()+errb.String(), c.code, c.want)
		}
	}
}

func TestDemoRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for a second")
	}
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--duration", "1500ms", "--batch", "250ms", "--window", "1s", "--rate", "2000"}, &out, &errb)
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "top hashtags") || !strings.Contains(out.String(), "#") || !strings.Contains(out.String(), "records in") {
		t.Errorf("demo output lacks hashtags or the summary:\n%s", out.String())
	}
}
