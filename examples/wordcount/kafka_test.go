package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaEndToEnd: wordcount reads a topic of an in-process Kafka
// cluster of three brokers (kfake) with --kafka-brokers and --topic, in one
// process and as a master with three worker processes, and the counts
// summed over every interval equal the records' words exactly; the
// completed intervals' offsets are committed to the group.
func TestKafkaEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Parallel()
	wcBin, _ := buildBinaries(t)
	for _, master := range []string{"local[2]", "local-cluster[3]"} {
		t.Run(master, func(t *testing.T) {
			kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "lines"))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			brokers := strings.Join(kc.ListenAddrs(), ",")
			want, records := produceLines(t, kc.ListenAddrs(), 6000)
			out := filepath.Join(t.TempDir(), "out")
			wc := exec.Command(wcBin, "--ui-listen", "", "--kafka-brokers", brokers, "--topic", "lines", "--kafka-group", "wc",
				"--batch", "200ms", "--max-rate-per-partition", "5000", "--out", out, "--master", master)
			stdout, err := wc.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := &bytes.Buffer{}
			wc.Stderr = stderr
			if err := wc.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = wc.Process.Kill() })
			// Every record read (the intervals' records, summed), then a
			// graceful stop.
			lines := bufio.NewScanner(stdout)
			var read int64
			for read < records && lines.Scan() {
				f := strings.Fields(lines.Text())
				if len(f) >= 4 && f[1] == "interval" {
					n, _ := strconv.ParseInt(f[3], 10, 64)
					read += n
				}
			}
			if read != records {
				t.Fatalf("wordcount read %d records, want %d\n%s", read, records, stderr.String())
			}
			go func() {
				for lines.Scan() {
				}
			}()
			stopWordcount(t, wc, stderr)
			got := readCounts(t, out)
			if len(got) != len(want) {
				t.Errorf("got %d distinct words, want %d", len(got), len(want))
			}
			for w, n := range want {
				if got[w] != n {
					t.Errorf("word %q: counted %d, want %d", w, got[w], n)
				}
			}
			// The group's offsets: the end of every partition.
			var committed int64
			if gi := kc.GroupInfo("wc"); gi != nil {
				for _, c := range gi.Commits["lines"] {
					committed += c.Offset
				}
			}
			if committed != records {
				t.Errorf("the group's offsets sum to %d, want %d (every record)", committed, records)
			}
		})
	}
}

// produceLines writes n lines of words to topic "lines", spread over its
// partitions, and returns the words' counts and how many records it wrote.
func produceLines(t *testing.T, brokers []string, n int) (map[string]int64, int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("lines"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]int64{}
	var rs []*kgo.Record
	for i := range n {
		line := fmt.Sprintf("w%d w%d  w%d", i%97, i%13, (i*7)%101)
		if i%500 == 0 {
			line = "bad\xff\xfeutf8 \t word"
		}
		for _, w := range strings.Fields(line) {
			want[w]++
		}
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(line)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return want, int64(n)
}
