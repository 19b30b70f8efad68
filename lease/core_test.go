package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/dstream/dstream/checkpoint"
)

// base is the time 0s of the transcripts.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestCoreTranscripts runs the transcripts in testdata/: each command
// feeds one event to a core and prints its output, then its role. Run with
// -rewrite to regenerate them, and read the diff.
//
//	new id=a [ttl=9s margin=2s renew=3s retry=1s]
//	tick t=5s
//	read t=5s absent | holder=b epoch=3 ttl=9s version=v1 | garbage version=v1 | err=unreachable
//	write t=5s version=v2 | conflict | err=unreachable
//	abandon t=5s
func TestCoreTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var c *Core
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			dur := func(key string) time.Duration {
				if !d.HasArg(key) {
					return 0
				}
				var s string
				d.ScanArgs(t, key, &s)
				v, err := time.ParseDuration(s)
				if err != nil {
					t.Fatalf("%s: %v", d.Pos, err)
				}
				return v
			}
			str := func(key string) string {
				var s string
				if d.HasArg(key) {
					d.ScanArgs(t, key, &s)
				}
				return s
			}
			now := base.Add(dur("t"))
			var out Output
			switch d.Cmd {
			case "new":
				var err error
				c, err = NewCore(Config{ID: str("id"), TTL: dur("ttl"), Margin: dur("margin"), RenewEvery: dur("renew"), RetryEvery: dur("retry")})
				if err != nil {
					return "error: " + err.Error()
				}
				return "ok"
			case "tick":
				out = c.Tick(now)
			case "read":
				switch {
				case d.HasArg("absent"):
					out = c.ReadDone(now, nil, "", fmt.Errorf("get: %w", checkpoint.ErrNotFound))
				case d.HasArg("err"):
					out = c.ReadDone(now, nil, "", errors.New(str("err")))
				case d.HasArg("garbage"):
					out = c.ReadDone(now, []byte("{not json"), str("version"), nil)
				default:
					var epoch uint64
					d.ScanArgs(t, "epoch", &epoch)
					rec := Record{Holder: str("holder"), Epoch: epoch, Expiry: now.Add(dur("ttl")), TTLMillis: dur("ttl").Milliseconds(), Released: d.HasArg("released")}
					data, _ := json.Marshal(rec)
					out = c.ReadDone(now, data, str("version"), nil)
				}
			case "write":
				switch {
				case d.HasArg("conflict"):
					out = c.WriteDone(now, "", fmt.Errorf("put: %w", checkpoint.ErrConflict))
				case d.HasArg("err"):
					out = c.WriteDone(now, "", errors.New(str("err")))
				default:
					out = c.WriteDone(now, str("version"), nil)
				}
			case "abandon":
				out = c.Abandon(now)
			case "release":
				out = c.Release(now)
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			return describe(t, c, out)
		})
	})
}

// rel prints a time as an offset from base.
func rel(t time.Time) string { return "+" + t.Sub(base).String() }

func describe(t *testing.T, c *Core, out Output) string {
	var b strings.Builder
	if out.Read && out.Write != nil {
		t.Fatal("both a read and a write asked for")
	}
	if out.Change != nil {
		if out.Change.Active {
			fmt.Fprintf(&b, "ACTIVE epoch=%d\n", out.Change.Epoch)
		} else {
			fmt.Fprintf(&b, "STOPPED epoch=%d: %s\n", out.Change.Epoch, out.Change.Why)
		}
	}
	if out.Err != nil {
		fmt.Fprintf(&b, "err: %v\n", out.Err)
	}
	if out.Read {
		b.WriteString("do: read\n")
	}
	if w := out.Write; w != nil {
		rec, err := parseRecord(w.Data)
		if err != nil {
			t.Fatalf("the core wrote a bad record: %v", err)
		}
		cond := "absent"
		if w.Version != "" {
			cond = "at " + w.Version
		}
		released := ""
		if rec.Released {
			released = " released"
		}
		fmt.Fprintf(&b, "do: write if %s: holder=%s epoch=%d expiry=%s ttl=%dms%s\n", cond, rec.Holder, rec.Epoch, rel(rec.Expiry), rec.TTLMillis, released)
	}
	if out.Wake.IsZero() {
		b.WriteString("wake: after the operation\n")
	} else {
		fmt.Fprintf(&b, "wake: %s\n", rel(out.Wake))
	}
	if role, epoch, deadline := c.Role(); role == Active {
		fmt.Fprintf(&b, "role: active epoch=%d until %s", epoch, rel(deadline))
	} else {
		b.WriteString("role: standby")
	}
	return b.String()
}
