package kubernetes_test

// No container engine runs where the tests run, so the image is not built
// here; this test reads ../../Containerfile and checks what the manifests
// rely on, so that it cannot drift from them unnoticed.

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// parseContainerfile splits a Containerfile into instructions: comments and
// blank lines dropped, lines ending in a backslash joined to the next.
func parseContainerfile(data string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func readContainerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("../../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	return parseContainerfile(string(b))
}

// containerfileUser is the final stage's numeric USER.
func containerfileUser(t *testing.T) int64 {
	t.Helper()
	var user string
	for _, in := range readContainerfile(t) {
		switch in.cmd {
		case "FROM":
			user = ""
		case "USER":
			user = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.ParseInt(uid, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("Containerfile: the final stage's USER is %q; want a numeric user other than root (runAsNonRoot checks a number)", user)
	}
	return n
}

// stage is a FROM and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

func TestContainerfile(t *testing.T) {
	var stages []stage
	for _, in := range readContainerfile(t) {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{image: f[len(f)-1]}
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				s.image, s.name = f[len(f)-3], f[len(f)-1]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Containerfile line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if len(stages) != 2 {
		t.Fatalf("Containerfile has %d stages, want 2 (build, run)", len(stages))
	}
	build, run := stages[0], stages[1]

	// The build stage: the Go toolchain go.mod asks for, a static binary.
	goMod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(m[1]); !strings.Contains(build.image, want) {
		t.Errorf("build stage FROM %s: want the %s image (go.mod says go %s)", build.image, want, m[1])
	}
	if build.name == "" {
		t.Fatalf("build stage FROM %s has no name (AS build)", build.image)
	}
	var out string
	for _, in := range build.body {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/dstream", "--mount=type=cache,target=/go/pkg/mod"} {
			if !strings.Contains(in.args, want) {
				t.Errorf("Containerfile line %d: go build without %s", in.line, want)
			}
		}
		if f := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(in.args); f != nil {
			out = f[1]
		}
	}
	if out == "" {
		t.Fatal("the build stage has no RUN go build -o FILE")
	}

	// The run stage: distroless static (nonroot) or scratch, the binary
	// where the manifests run it, non-root, /tmp a volume.
	if !strings.HasPrefix(run.image, "gcr.io/distroless/static") && run.image != "scratch" {
		t.Errorf("run stage FROM %s: want gcr.io/distroless/static...:nonroot or scratch", run.image)
	}
	var copied, entry []string
	var volume bool
	for _, in := range run.body {
		switch in.cmd {
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+build.name && f[1] == out {
				copied = append(copied, f[2])
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entry); err != nil {
				t.Errorf("Containerfile line %d: ENTRYPOINT %s: want the exec form [\"...\"]: %v", in.line, in.args, err)
			}
		case "VOLUME":
			volume = volume || strings.Contains(in.args, `"/tmp"`) || in.args == "/tmp"
		case "RUN":
			t.Errorf("Containerfile line %d: RUN in the run stage (it has no shell)", in.line)
		}
	}
	if !slices.Equal(copied, []string{binary}) {
		t.Errorf("run stage copies %s from the build stage to %q, want to %s", out, copied, binary)
	}
	if !slices.Equal(entry, []string{binary}) {
		t.Errorf("ENTRYPOINT %q, want [%q]", entry, binary)
	}
	if !volume {
		t.Error("run stage declares no VOLUME /tmp")
	}
	containerfileUser(t) // numeric, not root

	// The manifests run what the image holds.
	c := load(t)
	for _, o := range c.deployments {
		for _, ctr := range o.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers {
			if len(ctr.Command) > 0 && ctr.Command[0] != binary {
				t.Errorf("%v: containers[%s].command %q is not the image's %s", o, ctr.Name, ctr.Command, binary)
			}
		}
	}

	// The build context keeps what the build needs.
	for _, f := range []string{"../../.dockerignore", "../../.containerignore"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("%v (the build context would hold .git and build outputs)", err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			switch strings.TrimSpace(line) {
			case "go.mod", "go.sum", "cmd", "*.go", "**/*.go", "ui":
				t.Errorf("%s leaves out %s, which the build needs", f, line)
			}
		}
	}
}

func TestParseContainerfile(t *testing.T) {
	got := parseContainerfile("# c\nFROM a AS b\n\nRUN x \\\n  y\n# c2\nuser 1\n")
	want := []instruction{{2, "FROM", "a AS b"}, {4, "RUN", "x  y"}, {7, "USER", "1"}}
	if !slices.Equal(got, want) {
		t.Errorf("parseContainerfile = %+v, want %+v", got, want)
	}
}
