package cluster

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestMembershipTranscripts replays scripts (testdata/membership/*) against
// a Membership and prints its decisions, as the scheduler core's transcripts
// do (go test -run TestMembershipTranscripts -rewrite rewrites the expected
// output). Commands:
//
//	new [timeout=MS] [max=N]   a fresh core: the master (re)started. Zero
//	                           values take the defaults; every script starts
//	                           with one.
//	register ID [addr=A] [pid=N] [slots=N] [peer=P]
//	                           a registration; ID - asks the core for an id.
//	                           Defaults: addr ID:7000, pid 100, slots 4,
//	                           peer ADDR's host:50000.
//	heartbeat ID inc=N [mem=N] [blocks=N]
//	                           a heartbeat from incarnation N of ID
//	tick MS                    the clock reads MS; the core is ticked
//	drop ADDR [reason=WORD]    a peer found ADDR unreachable
//	workers                    print the registry
//
// Every command takes an optional at=MS: the clock reads MS first (ms since
// the transcript's start). The clock may move back: a shell reads its clock
// before it locks the core, so concurrent calls reach the core with their
// times out of order. The time is 0 until moved.
//
// Output: the reply (admitted ID#INCARNATION, or refused WHY), Tick's next
// deadline, then the facts to log (log KIND ...) and the events to deliver
// (event KIND ID#INCARNATION), each in the order they happened.
func TestMembershipTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/membership", func(t *testing.T, path string) {
		var (
			core *Membership
			now  = t0
		)
		ms := func(at time.Time) int64 { return at.Sub(t0).Milliseconds() }
		name := func(w WorkerInfo) string { return fmt.Sprintf("%s#%d", w.ID, w.Incarnation) }
		reply := func(r Reply) string {
			switch r.Refusal {
			case Admitted:
				return "admitted " + name(r.Worker)
			case RefusedHeld:
				return fmt.Sprintf("refused held: %s alive with pid=%d addr=%s", name(r.Worker), r.Worker.PID, r.Worker.Address)
			}
			return "refused " + r.Refusal.String()
		}
		changes := func(lines []string, ch Changes) string {
			for _, f := range ch.Facts {
				line := "log " + f.Kind.String() + " " + name(f.Worker)
				switch f.Kind {
				case FactRegistered:
					line += fmt.Sprintf(" addr=%s pid=%d slots=%d", f.Worker.Address, f.Worker.PID, f.Worker.Slots)
				case FactExpired:
					line += fmt.Sprintf(" last_heartbeat=%d", ms(f.Worker.LastHeartbeat))
				case FactDropped:
					line += ": " + f.Reason
				}
				lines = append(lines, line)
			}
			for _, ev := range ch.Events {
				line := fmt.Sprintf("event %s %s", ev.Kind, name(ev.Worker))
				if want := map[EventKind]WorkerState{WorkerAdded: Alive, WorkerLost: Lost}[ev.Kind]; ev.Worker.State != want {
					line += " (state " + ev.Worker.State.String() + ")"
				}
				lines = append(lines, line)
			}
			if len(lines) == 0 {
				return "(no changes)\n"
			}
			return strings.Join(lines, "\n") + "\n"
		}
		setTime := func(d *datadriven.TestData, v string) {
			n, err := strconv.Atoi(v)
			if err != nil {
				d.Fatalf(t, "time %q: %v", v, err)
			}
			now = t0.Add(time.Duration(n) * time.Millisecond)
		}
		intArg := func(d *datadriven.TestData, key string, def int64) int64 {
			if !d.HasArg(key) {
				return def
			}
			var v string
			d.ScanArgs(t, key, &v)
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				d.Fatalf(t, "%s=%q: %v", key, v, err)
			}
			return n
		}
		strArg := func(d *datadriven.TestData, key, def string) string {
			if !d.HasArg(key) {
				return def
			}
			var v string
			d.ScanArgs(t, key, &v)
			return v
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.HasArg("at") {
				setTime(d, strArg(d, "at", ""))
			}
			if core == nil && d.Cmd != "new" {
				d.Fatalf(t, "%s before new", d.Cmd)
			}
			if d.Cmd != "new" && d.Cmd != "workers" && len(d.CmdArgs) == 0 {
				d.Fatalf(t, "%s needs an argument", d.Cmd)
			}
			switch d.Cmd {
			case "new":
				core = NewMembership(time.Duration(intArg(d, "timeout", 0))*time.Millisecond, int(intArg(d, "max", 0)))
				return fmt.Sprintf("timeout %v, max %d\n", core.timeout, core.max)
			case "register":
				id := d.CmdArgs[0].Key
				if id == "-" {
					id = ""
				}
				addr := strArg(d, "addr", id+":7000")
				host, _, _ := strings.Cut(addr, ":")
				r := Registration{
					ID: id, Address: addr, Peer: strArg(d, "peer", host+":50000"),
					PID: intArg(d, "pid", 100), Slots: int(intArg(d, "slots", 4)), MemoryBytes: 1 << 30,
				}
				rep, ch := core.Register(now, r)
				return changes([]string{reply(rep)}, ch)
			case "heartbeat":
				rep := core.Heartbeat(now, d.CmdArgs[0].Key, uint64(intArg(d, "inc", 0)), Stats{MemoryUsed: intArg(d, "mem", 0), Blocks: intArg(d, "blocks", 0)})
				out := reply(rep)
				if rep.Refusal == Admitted {
					out += fmt.Sprintf(" last_heartbeat=%d", ms(rep.Worker.LastHeartbeat))
				}
				return out + "\n"
			case "tick":
				setTime(d, d.CmdArgs[0].Key)
				next, ch := core.Tick(now)
				return changes([]string{fmt.Sprintf("next %d", ms(next))}, ch)
			case "drop":
				return changes(nil, core.Drop(d.CmdArgs[0].Key, strArg(d, "reason", "unreachable")))
			case "workers":
				var lines []string
				for _, w := range core.Workers() {
					lines = append(lines, fmt.Sprintf("%s %s addr=%s peer=%s pid=%d slots=%d registered=%d last_heartbeat=%d mem=%d blocks=%d",
						name(w), w.State, w.Address, w.Peer, w.PID, w.Slots, ms(w.Registered), ms(w.LastHeartbeat), w.MemoryUsed, w.Blocks))
				}
				if len(lines) == 0 {
					return "(none)\n"
				}
				return strings.Join(lines, "\n") + "\n"
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}
