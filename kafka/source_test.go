package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestValidate(t *testing.T) {
	ok := Options{Brokers: []string{"h:9092"}, Topics: []string{"t"}}
	tests := []struct {
		name string
		edit func(*Options)
		want string // "" for valid
	}{
		{"valid", func(*Options) {}, ""},
		{"pattern", func(o *Options) { o.Topics, o.TopicPattern = nil, "^t" }, ""},
		{"no brokers", func(o *Options) { o.Brokers = nil }, "no brokers"},
		{"broker without port", func(o *Options) { o.Brokers = []string{"h"} }, "host:port"},
		{"no topic", func(o *Options) { o.Topics = nil }, "no topic"},
		{"empty topic", func(o *Options) { o.Topics = []string{""} }, "empty topic"},
		{"both", func(o *Options) { o.TopicPattern = "x" }, "exclusive"},
		{"bad pattern", func(o *Options) { o.Topics, o.TopicPattern = nil, "(" }, "pattern"},
		{"committed without group", func(o *Options) { o.Start = Committed }, "group"},
		{"commit without group", func(o *Options) { o.CommitOffsets = true }, "group"},
		{"negative offset", func(o *Options) { o.Offsets = map[string]map[int32]int64{"t": {0: -1}} }, "at least 0"},
		{"unknown start", func(o *Options) { o.Start = 7 }, "start position"},
		{"unknown policy", func(o *Options) { o.OnMissing = 3 }, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			err := o.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCapRanges(t *testing.T) {
	r := func(from, until int64) Range { return Range{Topic: "t", From: from, Until: until} }
	tests := []struct {
		name  string
		in    []Range
		limit Limit
		want  []Range
	}{
		{"no cap", []Range{r(0, 100), r(5, 5)}, Limit{}, []Range{r(0, 100), r(5, 5)}},
		{"per partition", []Range{r(0, 100), r(10, 12)}, Limit{PerPartition: 10}, []Range{r(0, 10), r(10, 12)}},
		{"total shared by lag", []Range{r(0, 300), r(0, 100), r(7, 7)}, Limit{Total: 40}, []Range{r(0, 30), r(0, 10), r(7, 7)}},
		{"total over lag", []Range{r(0, 3), r(0, 1)}, Limit{Total: 40}, []Range{r(0, 3), r(0, 1)}},
		{"at least one a lagging partition", []Range{r(0, 1000), r(0, 1)}, Limit{Total: 10}, []Range{r(0, 9), r(0, 1)}},
		{"both", []Range{r(0, 1000), r(0, 1000)}, Limit{PerPartition: 100, Total: 50}, []Range{r(0, 25), r(0, 25)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capRanges(tt.in, tt.limit)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Fatalf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
}

// cluster starts a kfake cluster of three brokers with topic "t" in parts
// partitions.
func cluster(t *testing.T, parts int32) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func newSource(t *testing.T, o Options) *Source {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// write produces values to partition p of topic "t"; with txn, in a
// transaction committed (or aborted when commit is false).
func write(t *testing.T, brokers []string, p int32, txn string, commit bool, values ...string) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("t")}
	if txn != "" {
		opts = append(opts, kgo.TransactionalID(txn))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	if txn != "" {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Partition: p, Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if txn != "" {
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
}

func fetchAll(t *testing.T, s *Source, rs []Range) []string {
	t.Helper()
	var out []string
	for _, r := range rs {
		err := s.Fetch(testCtx(t), r, func(rec Record) bool {
			out = append(out, fmt.Sprintf("%d@%d:%s", rec.Partition, rec.Offset, rec.Value))
			if len(rec.Headers) != 1 || rec.Headers[0].Key != "h" || rec.Timestamp.IsZero() {
				t.Errorf("record %+v: headers or timestamp lost", rec)
			}
			return true
		})
		if err != nil {
			t.Fatalf("Fetch %+v: %v", r, err)
		}
	}
	return out
}

// Ranges planned interval after interval cover every record once, the
// consecutive ranges of a partition fetched by the reader that read the
// one before; committed transactions' records are read, aborted ones and
// the markers passed over, and a range ending on a marker completes.
func TestPlanAndFetchReadEveryCommittedRecordOnce(t *testing.T) {
	_, brokers := cluster(t, 2)
	s := newSource(t, Options{Brokers: brokers, Topics: []string{"t"}})
	ctx := testCtx(t)
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	next := map[Partition]int64{}
	plan := func(limit Limit) []Range {
		t.Helper()
		rs, _, err := s.Plan(ctx, next, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			next[Partition{r.Topic, r.Partition}] = r.Until
		}
		return rs
	}
	write(t, brokers, 0, "", false, "a", "b", "c")
	write(t, brokers, 1, "tx", true, "d", "e")
	write(t, brokers, 1, "tx", false, "aborted")
	got := fetchAll(t, s, plan(Limit{PerPartition: 2}))
	got = append(got, fetchAll(t, s, plan(Limit{}))...)
	write(t, brokers, 1, "tx", true, "f")
	write(t, brokers, 0, "", false, "g")
	got = append(got, fetchAll(t, s, plan(Limit{}))...)
	want := []string{"0@0:a", "0@1:b", "1@0:d", "1@1:e", "0@2:c", "0@3:g", "1@5:f"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fetched %v, want %v", got, want)
	}
	if rs := plan(Limit{}); len(rs) != 2 || rs[0].Records() != 0 || rs[1].Records() != 0 {
		t.Fatalf("nothing new, planned %+v; want two empty ranges", rs)
	}
}

// Offsets deleted before they were read stop the stream, naming them,
// unless the policy skips them: at the master's plan and at a task's fetch.
func TestMissingOffsets(t *testing.T) {
	c, brokers := cluster(t, 1)
	write(t, brokers, 0, "", false, "a", "b", "c", "d", "e", "f")
	if err := c.DeleteRecords("t", 0, 4); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	next := map[Partition]int64{{"t", 0}: 2}
	s := newSource(t, Options{Brokers: brokers, Topics: []string{"t"}})
	_, _, err := s.Plan(ctx, next, Limit{})
	var me *OffsetsMissingError
	if !errors.As(err, &me) || me.From != 2 || me.LogStart != 4 {
		t.Fatalf("Plan = %v, want an OffsetsMissingError from 2, log start 4", err)
	}
	err = s.Fetch(ctx, Range{Topic: "t", From: 1, Until: 6}, func(Record) bool { return true })
	if !errors.As(err, &me) {
		t.Fatalf("Fetch = %v, want an OffsetsMissingError", err)
	}

	skip := newSource(t, Options{Brokers: brokers, Topics: []string{"t"}, OnMissing: SkipMissing})
	rs, _, err := skip.Plan(ctx, next, Limit{})
	if err != nil || len(rs) != 1 || rs[0].From != 4 || rs[0].Until != 6 {
		t.Fatalf("Plan skipping = %+v, %v; want [4, 6)", rs, err)
	}
	if got := fetchAll(t, skip, []Range{{Topic: "t", From: 1, Until: 6}}); !reflect.DeepEqual(got, []string{"0@4:e", "0@5:f"}) {
		t.Fatalf("Fetch skipping = %v", got)
	}
}

// A partition with no position starts where the options say: the
// earliest offset, the latest at Check, the group's committed offset, or
// an explicit one; positions committed are the ranges' ends.
func TestStartPositions(t *testing.T) {
	_, brokers := cluster(t, 2)
	write(t, brokers, 0, "", false, "a", "b", "c")
	write(t, brokers, 1, "", false, "d", "e")
	ctx := testCtx(t)
	starts := func(o Options) string {
		t.Helper()
		o.Brokers, o.Topics = brokers, []string{"t"}
		s := newSource(t, o)
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
		write(t, brokers, 1, "", false, "late")
		rs, _, err := s.Plan(ctx, nil, Limit{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, rs); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(rs)
	}
	if got, want := starts(Options{}), "[{t 0 0 3} {t 1 0 3}]"; got != want {
		t.Errorf("earliest: %s, want %s", got, want)
	}
	if got, want := starts(Options{Start: Latest}), "[{t 0 3 3} {t 1 3 4}]"; got != want {
		t.Errorf("latest: %s, want %s", got, want)
	}
	if got, want := starts(Options{Offsets: map[string]map[int32]int64{"t": {1: 2}}}), "[{t 0 0 3} {t 1 2 5}]"; got != want {
		t.Errorf("explicit: %s, want %s", got, want)
	}
	// A group that committed the first partition's offset 2 only.
	if got, want := starts(Options{Group: "g", CommitOffsets: true, Offsets: map[string]map[int32]int64{"t": {0: 2, 1: 6}}}), "[{t 0 2 3} {t 1 6 6}]"; got != want {
		t.Errorf("explicit, committed: %s, want %s", got, want)
	}
	if got, want := starts(Options{Group: "g", Start: Committed}), "[{t 0 3 3} {t 1 6 7}]"; got != want {
		t.Errorf("committed: %s, want %s", got, want)
	}
}

// A pattern picks up topics created while the stream runs; a named topic
// that does not exist is an error at Check.
func TestTopics(t *testing.T) {
	c, brokers := cluster(t, 1)
	ctx := testCtx(t)
	missing := newSource(t, Options{Brokers: brokers, Topics: []string{"t", "nope"}})
	if err := missing.Check(ctx); err == nil || !strings.Contains(err.Error(), `"nope" does not exist`) {
		t.Fatalf("Check = %v, want the missing topic named", err)
	}
	s := newSource(t, Options{Brokers: brokers, TopicPattern: "^t", ClientOptions: []kgo.Opt{kgo.MetadataMinAge(10 * time.Millisecond)}})
	rs, _, err := s.Plan(ctx, nil, Limit{})
	if err != nil || len(rs) != 1 {
		t.Fatalf("Plan = %+v, %v; want topic t's partition", rs, err)
	}
	if err := c.CreateTopic("t2", 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic("other", 1, nil); err != nil {
		t.Fatal(err)
	}
	// Within the metadata's age (here 10 ms), as at a later interval.
	for {
		rs, _, err = s.Plan(ctx, nil, Limit{})
		if err == nil && fmt.Sprint(rs) == "[{t 0 0 0} {t2 0 0 0} {t2 1 0 0}]" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Plan = %+v, %v; want t and t2's partitions", rs, err)
		}
		time.Sleep(10 * time.Millisecond) // the client's metadata age, on the wall clock
	}
}
