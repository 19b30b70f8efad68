package dstream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// A shuffle several times larger than the block store: with a work folder,
// the map outputs that do not fit are spilled and read back, and every
// interval is exact, in one process and on workers with as little memory.
func TestShuffleLargerThanMemorySpills(t *testing.T) {
	if testing.Short() {
		t.Skip("moves megabytes through a small store")
	}
	const parts, perPart = 4, 6000
	pad := strings.Repeat("x", 100)
	for _, master := range []string{"local[2]", "local-cluster[2]"} {
		t.Run(master, func(t *testing.T) {
			work := t.TempDir()
			h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master, Config: func(c *dstream.Config) {
				c.MemoryBytes = 4 << 20 // a 2.4 MB store; the shuffle is about 6 MB
				c.WorkDir = work
			}})
			in := dstream.GeneratedStream(h.Ctx, "records", func(t time.Time) [][]string {
				out := make([][]string, parts)
				for p := range out {
					for i := range perPart {
						out[p] = append(out[p], fmt.Sprintf("k%03d %s %d", (p*perPart+i)%200, pad, t.Unix()))
					}
				}
				return out
			})
			pairs := dstream.Map(in, func(s string) dstream.Pair[string, string] { k, v, _ := strings.Cut(s, " "); return dstream.KV(k, v) })
			sizes := dstream.Map(dstream.GroupByKey(pairs, 3), func(g dstream.Pair[string, []string]) kv { return p(g.Key, len(g.Value)) })
			col := dstreamtest.Collect(sizes)
			h.Start()
			for range 2 {
				at := h.Tick()
				if err := col.Err(at); err != nil {
					t.Fatalf("interval %d: %v", at.UnixMilli(), err)
				}
				got := col.At(at)
				if len(got) != 200 {
					t.Fatalf("interval %d: %d keys, want 200", at.UnixMilli(), len(got))
				}
				for _, g := range got {
					if g.Value != parts*perPart/200 {
						t.Fatalf("interval %d: key %s has %d values, want %d", at.UnixMilli(), g.Key, g.Value, parts*perPart/200)
					}
				}
			}
			if master == "local[2]" {
				if st := h.Ctx.BlockStats(); st.Spills == 0 {
					t.Errorf("nothing was spilled: %+v", st)
				}
			}
		})
	}
}
