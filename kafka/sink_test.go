package kafka

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func newWriter(t *testing.T, brokers []string) *Writer {
	t.Helper()
	w, err := NewWriter(WriterOptions{Brokers: brokers, Topic: "t", TransactionalID: "job-out", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func recs(vs ...string) []Record {
	var out []Record
	for _, v := range vs {
		out = append(out, Record{Key: []byte(v), Value: []byte(v)})
	}
	return out
}

// committed reads every committed record of topic t's partitions.
func committed(t *testing.T, brokers []string, parts int32) []string {
	t.Helper()
	s := newSource(t, Options{Brokers: brokers, Topics: []string{"t"}})
	rs, _, err := s.Plan(testCtx(t), nil, Limit{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if err := s.Fetch(testCtx(t), r, func(rec Record) bool { out = append(out, string(rec.Value)); return true }); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

// Each interval's output partition is committed once, whatever writes it
// again: the same writer, another process's, after the interval, or for
// an earlier interval; a zombie producer's open transaction is aborted.
func TestWriterWritesEachIntervalsPartitionOnce(t *testing.T) {
	_, brokers := cluster(t, 3)
	ctx := testCtx(t)
	w1, w2 := newWriter(t, brokers), newWriter(t, brokers)
	if err := w1.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		w    *Writer
		t    int64
		p    int
		vals []string
	}{
		{w1, 1000, 0, []string{"a", "b"}},
		{w1, 1000, 1, []string{"c"}},
		{w1, 1000, 0, []string{"a", "b"}}, // a retry here
		{w2, 1000, 0, []string{"a", "b"}}, // a retry elsewhere
		{w2, 2000, 0, []string{"d"}},
		{w1, 2000, 0, []string{"d"}}, // the writer that was fenced
		{w1, 1000, 1, []string{"c"}},
		{w2, 2000, 1, nil},                // nothing to write
		{w1, 1000, 0, []string{"a", "b"}}, // an earlier interval
	} {
		if err := step.w.Write(ctx, step.t, step.p, recs(step.vals...)); err != nil {
			t.Fatalf("Write(%d, %d): %v", step.t, step.p, err)
		}
	}

	// A zombie: a producer of partition 0's ID left a transaction open.
	zombie, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("job-out-0"), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(ctx, 3000, 0, recs("e")); err != nil {
		t.Fatal(err)
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the zombie's commit succeeded after a new writer of its ID")
	}
	if got, want := committed(t, brokers, 3), []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("committed records %v, want %v", got, want)
	}
}

func TestWriterOptions(t *testing.T) {
	for _, tt := range []struct {
		o    WriterOptions
		want string
	}{
		{WriterOptions{Topic: "t", TransactionalID: "x"}, "no brokers"},
		{WriterOptions{Brokers: []string{"h:1"}, TransactionalID: "x"}, "no topic"},
		{WriterOptions{Brokers: []string{"h:1"}, Topic: "t"}, "transactional ID"},
		{WriterOptions{Brokers: []string{"h:1"}, Topic: "t", TransactionalID: "a b"}, "white space"},
	} {
		if _, err := NewWriter(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewWriter(%+v) = %v, want %q", tt.o, err, tt.want)
		}
	}
	_, brokers := cluster(t, 1)
	w, _ := NewWriter(WriterOptions{Brokers: brokers, Topic: "missing", TransactionalID: "x"})
	defer w.Close()
	if err := w.Check(testCtx(t)); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Check = %v, want the missing topic", err)
	}
}
