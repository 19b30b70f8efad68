package dstream_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dstream/dstream/dstreamtest"
)

// kcat (librdkafka's command-line client, an implementation of the
// protocol independent of franz-go) produces the lines the job reads, and
// consumes, reading committed records only, what its sink wrote: every
// interval's counts once. CI installs kcat (.ci/run); without it the test
// is skipped, unless DSTREAM_LONG is set.
func TestKafkaWithKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("DSTREAM_LONG") != "" {
			t.Fatal("kcat is not installed (apt-get install kcat; .ci/run does)")
		}
		t.Skip("kcat is not installed")
	}
	const parts, batches = 3, 3
	kc, brokers := kafkaCluster(t, "DSTREAM_TEST_KAFKA", parts)
	if err := kc.CreateTopic("counts", 2, nil); err != nil {
		t.Fatal(err)
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{})
	sinkJob(h, brokers, nil)
	h.Start()
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kcat, append([]string{"-b", strings.Join(brokers, ",")}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	// Each batch's lines go to their partitions with kcat, then an
	// interval takes them.
	for k := 1; k <= batches; k++ {
		for p, lines := range sinkBatch(k, parts) {
			run(strings.Join(lines, "\n")+"\n", "-P", "-t", kafkaTopic, "-p", strconv.Itoa(int(p)))
		}
		h.Tick()
	}
	got := map[string]int{}
	records := 0
	for _, line := range strings.Split(strings.TrimSpace(run("", "-C", "-t", "counts", "-e", "-q", "-X", "isolation.level=read_committed", "-f", "%k %s\n")), "\n") {
		var w string
		var c int
		if _, err := fmt.Sscan(line, &w, &c); err != nil {
			t.Fatalf("kcat consumed %q: %v", line, err)
		}
		got[w] += c
		records++
	}
	want, wantRecords := wantSink(batches, parts)
	if !reflect.DeepEqual(got, want) || records != wantRecords {
		t.Errorf("kcat read %d records, totals %v\nwant %d, totals %v", records, got, wantRecords, want)
	}
}
