package rdd

import (
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestPadding(t *testing.T) {
	for _, size := range []uintptr{1, 7, 8, 24, 64, 100, 128, 129, 4096} {
		if p := padding(size); uintptr(p)*size < cacheLine || uintptr(p-1)*size >= cacheLine {
			t.Errorf("padding(%d) = %d elements: not the fewest covering %d bytes", size, p, cacheLine)
		}
	}
	if p := padding(0); p != 0 {
		t.Errorf("padding(0) = %d", p)
	}
}

func TestPaddedSlices(t *testing.T) {
	for _, n := range []int{1, 2, 7} {
		s := padded[int64](n)
		if len(s) != n || cap(s) != n {
			t.Fatalf("padded(%d): len %d cap %d", n, len(s), cap(s))
		}
		// The padding after s is not reachable by append: cap stops at n.
		before := unsafe.SliceData(s)
		s = append(s, 1)
		if unsafe.SliceData(s) == before {
			t.Fatalf("append wrote into the padding")
		}
	}
	if z := padded[struct{}](3); len(z) != 3 {
		t.Fatalf("zero-size: len %d", len(z))
	}
	c := cell[[3]int]()
	c[2] = 1
	if *c != [3]int{0, 0, 1} {
		t.Fatal(*c)
	}
}

// ignoring yields 0..n-1 and ignores yield's answer, as a careless user
// iterator might.
func ignoring(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			yield(i)
		}
	}
}

func TestGuardedNeverYieldsAfterStop(t *testing.T) {
	var got []int
	body, stopped := guarded(func(x int) bool {
		got = append(got, x)
		return len(got) < 3
	})
	ignoring(10)(body)
	if !slices.Equal(got, []int{0, 1, 2}) || !stopped() {
		t.Fatalf("got %v, stopped %v", got, stopped())
	}
	body2, stopped2 := guarded(func(int) bool { return true })
	ignoring(4)(body2)
	if stopped2() {
		t.Fatal("stopped without being told to")
	}
}

func TestLoopHelpers(t *testing.T) {
	seq := slices.Values([]int{3, 1, 4, 1, 5})
	if n := countOf(seq); n != 5 {
		t.Errorf("countOf = %d", n)
	}
	if n := countOf(slices.Values([]int(nil))); n != 0 {
		t.Errorf("countOf(empty) = %d", n)
	}
	if xs := collectOf(seq); !slices.Equal(xs, []int{3, 1, 4, 1, 5}) {
		t.Errorf("collectOf = %v", xs)
	}
	tc := NewTaskContext(t.Context(), 0, 0, 0, 0)
	op := opID("fold-test")
	f := foldOf(tc, op, seq, func(a, b int) int { return a*10 + b })
	if !f.ok || f.v != 31415 || tc.op != op {
		t.Errorf("foldOf = %+v, op %d", f, tc.op)
	}
	if f := foldOf(tc, op, slices.Values([]int(nil)), func(a, b int) int { return a + b }); f.ok {
		t.Errorf("foldOf(empty) = %+v", f)
	}
}

var (
	// loopState is range-over-func loop state the compiler moved to the heap.
	loopState = regexp.MustCompile(`: moved to heap: ([a-z]+\.)?(#state\d+|#next)`)
	// hotFiles are the files whose loops run once per record.
	hotFiles = regexp.MustCompile(`(^|/)(rdd/[a-z]+|ops|window|state|input|output)\.go:\d+:\d+: moved to heap: ([a-z]+\.)?(#state\d+|#next)`)
)

// No per-record loop of the engine keeps range-over-func state on the heap,
// where two tasks' states can share a cache line (loop.go). The compiler's
// escape analysis says where each variable lives; this builds the module
// with it on and reads the answer.
func TestPerRecordLoopsKeepNoLoopStateOnTheHeap(t *testing.T) {
	if long, _ := strconv.ParseBool(os.Getenv("DSTREAM_LONG")); !long || testing.Short() {
		t.Skip("builds the module's engine again with escape analysis on (up to a minute on two cores when not cached): set DSTREAM_LONG=1 (CI does)")
	}
	if raceDetector {
		// The escape analysis is the compiler's, the same with or without
		// -race: CI runs this test in its step without -race, beside the
		// simulation's extra seeds.
		t.Skip("reads the compiler's escape analysis, which -race does not change: run without -race")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("not in the module's tree")
	}
	// ./bench imports the root package (its per-record operators are among
	// hotFiles) and holds the sentinel loop (TopKCount): the rest of the
	// module has no per-record loop of its own.
	cmd := exec.Command(goTool, "build", "-o", os.DevNull, "-gcflags=github.com/dstream/dstream/...=-m", "./rdd/...", "./bench")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		// The module does not build: say why, without the escape analysis.
		var why []string
		for line := range strings.Lines(string(out)) {
			if !strings.Contains(line, ": moved to heap") && !strings.Contains(line, "escape") && !strings.Contains(line, "inlin") && !strings.Contains(line, "bounds check") {
				why = append(why, line)
			}
		}
		t.Fatalf("go build: %v\n%s", err, strings.Join(why[:min(len(why), 40)], ""))
	}
	var bad []string
	seen := false // any loop state on the heap, anywhere: the check still reads the compiler right
	for line := range strings.Lines(string(out)) {
		seen = seen || loopState.MatchString(line)
		if hotFiles.MatchString(line) && !strings.Contains(line, "_test.go") {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	if !seen {
		// The bench's TopKCount ranges over MapPartitions' sequence, as
		// user code does, so its loop state is on the heap: a build
		// without any such line means the compiler names it differently
		// now, and hotFiles must learn the new name.
		t.Fatal("no range-over-func state moved to heap anywhere in the module: has the compiler's -m output changed?")
	}
	slices.Sort(bad)
	bad = slices.Compact(bad)
	if len(bad) > 0 {
		t.Errorf("per-record loops with loop state on the heap (call the sequence directly; see loop.go):\n%s", strings.Join(bad, "\n"))
	}
}
