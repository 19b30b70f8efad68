package checkpoint_test

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/dstream/dstream/checkpoint"
)

const casChildEnv = "DSTREAM_TEST_CAS_CHILD"

// Dir's compare-and-swap is atomic across processes: processes that each
// increment a counter object by read and conditional write, retrying on a
// conflict, lose no increment.
func TestDirPutIfAcrossProcesses(t *testing.T) {
	if dir := os.Getenv(casChildEnv); dir != "" {
		casChild(t, dir)
		return
	}
	dir := t.TempDir()
	d, err := checkpoint.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.PutIf(t.Context(), "counter", []byte("0"), ""); err != nil {
		t.Fatal(err)
	}
	const procs = 3
	var cmds []*exec.Cmd
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDirPutIfAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), casChildEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	b, err := d.Get(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != strconv.Itoa(procs*casIncrements) {
		t.Fatalf("counter = %s, want %d: increments were lost", got, procs*casIncrements)
	}
}

const casIncrements = 30

func casChild(t *testing.T, dir string) {
	d, err := checkpoint.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for done := 0; done < casIncrements; {
		b, v, err := d.GetVersion(t.Context(), "counter")
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatal(err)
		}
		switch _, err := d.PutIf(t.Context(), "counter", []byte(strconv.Itoa(n+1)), v); {
		case err == nil:
			done++
		case !errors.Is(err, checkpoint.ErrConflict):
			t.Fatal(err)
		}
	}
}
