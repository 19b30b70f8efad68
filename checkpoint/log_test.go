package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

type record struct {
	Seq     uint64
	Kind    string
	Payload string
}

func openLog(t testing.TB, s Store) *Log {
	t.Helper()
	l, err := OpenLog(context.Background(), s, "meta/log")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func appendN(t testing.TB, l *Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		seq, err := l.Append(context.Background(), "manifest", []byte(fmt.Sprint("interval ", i)))
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i) {
			t.Fatalf("Append %d returned seq %d", i, seq)
		}
	}
}

func replay(l *Log) ([]record, error) {
	var got []record
	err := l.Replay(context.Background(), func(seq uint64, kind string, payload []byte) error {
		got = append(got, record{seq, kind, string(payload)})
		return nil
	})
	return got, err
}

func want(from, to int) []record {
	var out []record
	for i := from; i <= to; i++ {
		out = append(out, record{uint64(i), "manifest", fmt.Sprint("interval ", i)})
	}
	return out
}

func TestLogRoundTrip(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	l := openLog(t, d)
	if got, err := replay(l); err != nil || len(got) != 0 {
		t.Fatalf("an empty log replays %v, %v", got, err)
	}
	appendN(t, l, 1, 5)
	mustPut(t, d, "meta/log/not-a-record", []byte("ignored"))
	if got, err := replay(l); err != nil || !reflect.DeepEqual(got, want(1, 5)) {
		t.Fatalf("Replay = %v, %v", got, err)
	}
	// Reopened, the log continues its numbering.
	l = openLog(t, d)
	if l.Next() != 6 {
		t.Fatalf("reopened Next = %d, want 6", l.Next())
	}
	appendN(t, l, 6, 7)
	if err := l.Truncate(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got, err := replay(l); err != nil || !reflect.DeepEqual(got, want(4, 7)) {
		t.Fatalf("after Truncate(4) Replay = %v, %v", got, err)
	}
	// Truncating past the end keeps the last record, so numbering
	// survives a reopen.
	if err := l.Truncate(ctx, 100); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d)
	if got, err := replay(l); err != nil || !reflect.DeepEqual(got, want(7, 7)) {
		t.Fatalf("after Truncate(100) Replay = %v, %v", got, err)
	}
	appendN(t, l, 8, 8)

	// fn's error stops Replay and is returned as is.
	stop := errors.New("stop")
	n := 0
	err := l.Replay(ctx, func(uint64, string, []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("Replay = %v after %d records, want fn's error after 1", err, n)
	}
	if _, err := OpenLog(ctx, d, "/abs"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("OpenLog(/abs) = %v", err)
	}
	if _, err := l.Append(ctx, strings.Repeat("k", MaxKind+1), nil); err == nil {
		t.Fatal("Append accepted an overlong kind")
	}
}

func TestLogTornTail(t *testing.T) {
	tests := []struct {
		name string
		tear func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-2] }},
		{"header only", func(b []byte) []byte { return b[:fixedHeader] }},
		{"empty", func([]byte) []byte { return nil }},
		{"bit flipped", func(b []byte) []byte { b[len(b)/2] ^= 4; return b }},
		{"garbage", func([]byte) []byte { return []byte("\x00\x00\x00\x00 zeroes") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			d := openDir(t, t.TempDir())
			l := openLog(t, d)
			appendN(t, l, 1, 3)
			last := l.name(3)
			b, err := d.Get(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, d, last, tt.tear(b))

			got, err := replay(l)
			var torn *TornTailError
			if !errors.As(err, &torn) || torn.Seq != 3 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Replay = %v, want a TornTailError for record 3", err)
			}
			if !reflect.DeepEqual(got, want(1, 2)) {
				t.Fatalf("Replay delivered %v, want records 1 and 2", got)
			}
			// Reopened, the log continues after the last valid record,
			// overwriting the torn one.
			l = openLog(t, d)
			if l.Next() != 3 {
				t.Fatalf("reopened Next = %d, want 3", l.Next())
			}
			appendN(t, l, 3, 4)
			if got, err := replay(l); err != nil || !reflect.DeepEqual(got, want(1, 4)) {
				t.Fatalf("after recovery Replay = %v, %v", got, err)
			}
		})
	}
}

func TestLogDamageBeforeTheEnd(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, d *Dir, l *Log)
		want    string
		wantErr error
		got     []record
	}{
		{"corrupt middle record", func(t *testing.T, d *Dir, l *Log) {
			mustPut(t, d, l.name(2), []byte("DSFR\x01rubbish"))
		}, "record 2", ErrCorrupt, want(1, 1)},
		{"missing middle record", func(t *testing.T, d *Dir, l *Log) {
			d.Delete(context.Background(), l.name(2))
		}, "record 2 missing", ErrCorrupt, want(1, 1)},
		{"last record from a newer program", func(t *testing.T, d *Dir, l *Log) {
			mustPut(t, d, l.name(4), Frame("manifest", logVersion+1, nil))
		}, "record 4", ErrUnknownVersion, want(1, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, t.TempDir())
			l := openLog(t, d)
			appendN(t, l, 1, 4)
			tt.damage(t, d, l)
			got, err := replay(l)
			var torn *TornTailError
			if err == nil || errors.As(err, &torn) || !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Replay = %v, want an error wrapping %v naming %q, not a torn tail", err, tt.wantErr, tt.want)
			}
			if !reflect.DeepEqual(got, tt.got) {
				t.Fatalf("Replay delivered %v, want %v", got, tt.got)
			}
		})
	}
}

// A failed Append does not advance the log: the next one reuses its
// number, whether or not the failed one was written.
func TestLogAppendFailure(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	fs := &FaultStore{Store: d, Inject: FailNth(OpPut, 2)}
	l, err := OpenLog(ctx, fs, "meta/log/")
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 1)
	if _, err := l.Append(ctx, "manifest", []byte("lost")); !errors.Is(err, ErrInjected) {
		t.Fatalf("Append = %v, want the injected fault", err)
	}
	appendN(t, l, 2, 3)
	if got, err := replay(l); err != nil || !reflect.DeepEqual(got, want(1, 3)) {
		t.Fatalf("Replay = %v, %v", got, err)
	}
	// A failing List makes OpenLog and Replay fail, not report an empty
	// log.
	fs.Inject = FailPrefix(OpList, "meta/")
	if _, err := OpenLog(ctx, fs, "meta/log"); !errors.Is(err, ErrInjected) {
		t.Fatalf("OpenLog = %v", err)
	}
	if _, err := replay(l); !errors.Is(err, ErrInjected) {
		t.Fatalf("Replay = %v", err)
	}
}

// loseAnswers is a Dir whose next conditional writes are applied but
// answered with an error, as when the answer is lost.
type loseAnswers struct {
	*Dir
	lose int
}

func (s *loseAnswers) PutIf(ctx context.Context, name string, data []byte, version string) (string, error) {
	v, err := s.Dir.PutIf(ctx, name, data, version)
	if err == nil && s.lose > 0 {
		s.lose--
		return "", errors.New("answer lost")
	}
	return v, err
}

// In a Conditional store, a second writer's append fences the first off.
func TestLogFencing(t *testing.T) {
	ctx := t.Context()
	d := openDir(t, t.TempDir())
	old := openLog(t, d)
	appendN(t, old, 1, 2)
	// A new writer takes over: it opens the log and appends at once.
	cur := openLog(t, d)
	appendN(t, cur, 3, 3)
	for range 2 { // fenced off, for good
		if seq, err := old.Append(ctx, "manifest", []byte("stale")); !errors.Is(err, ErrConflict) {
			t.Fatalf("the old writer's Append = %d, %v; want ErrConflict", seq, err)
		}
	}
	appendN(t, cur, 4, 4)
	if got, err := replay(cur); err != nil || !reflect.DeepEqual(got, want(1, 4)) {
		t.Fatalf("Replay = %v, %v; want records 1 to 4, none stale", got, err)
	}
}

// An Append whose answer was lost recognizes its own record: retried, it
// succeeds once; followed by another, the other goes after it.
func TestLogAppendLostAnswer(t *testing.T) {
	ctx := t.Context()
	s := &loseAnswers{Dir: openDir(t, t.TempDir())}
	l := openLog(t, s)
	appendN(t, l, 1, 1)
	s.lose = 1
	if _, err := l.Append(ctx, "manifest", []byte("interval 2")); err == nil {
		t.Fatal("Append with a lost answer succeeded")
	}
	appendN(t, l, 2, 2) // the same record again: it is there
	s.lose = 1
	if _, err := l.Append(ctx, "manifest", []byte("interval 3")); err == nil {
		t.Fatal("Append with a lost answer succeeded")
	}
	appendN(t, l, 4, 4) // another record: after the one written
	if got, err := replay(l); err != nil || !reflect.DeepEqual(got, want(1, 4)) {
		t.Fatalf("Replay = %v, %v; want records 1 to 4", got, err)
	}
}
