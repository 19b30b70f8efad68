package dstream_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/listener"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/source"
)

// The operator table runs under local[2], local-cluster[3] and
// local-cluster[2,2]: the cluster deployments start worker processes (this
// test binary, running the same subtest) and every interval's output must
// be identical.

// deployedOp is one row: a graph over a keyed queue input (clusterInput),
// and how many intervals it runs.
type deployedOp struct {
	name  string
	ticks int
	op    func(h *dstreamtest.Harness[kv]) []func(t time.Time) string // outputs, rendered per interval
}

func render[U any](c *dstreamtest.Collector[U]) func(t time.Time) string {
	return func(t time.Time) string {
		if !c.Ran(t) {
			return "-"
		}
		if err := c.Err(t); err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(dstreamtest.Sorted(c.At(t)))
	}
}

var deployedOps = []deployedOp{
	{name: "map-filter-window", ticks: 6, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		doubled := dstream.Map(dstream.Filter(h.In, func(x kv) bool { return x.Value > 0 }), func(x kv) kv { return p(x.Key, 2*x.Value) })
		return []func(time.Time) string{
			render(dstreamtest.Collect(dstream.Window(doubled, 3*sec, sec))),
			render(dstreamtest.Collect(dstream.CountByWindow(h.In, 2*sec, sec))),
		}
	}},
	{name: "reduceByKeyAndWindow", ticks: 7, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		return []func(time.Time) string{
			render(dstreamtest.Collect(dstream.ReduceByKeyAndWindow(h.In, add, 3*sec, sec, 2))),
			render(dstreamtest.Collect(dstream.ReduceByKeyAndWindowInv(h.In, add, sub, 3*sec, sec, 3, func(x kv) bool { return x.Value != 0 }))),
		}
	}},
	// More partitions than task slots: tasks also run away from the
	// process holding their kept input, so a worker plans them through its
	// own lineage (a state stream's lineage cut on the master but not on
	// the workers failed such tasks: the demo's standalone failure).
	{name: "state-over-more-partitions-than-slots", ticks: 6, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		return []func(time.Time) string{
			render(dstreamtest.Collect(dstream.ReduceByKeyAndWindowInv(h.In, add, sub, 3*sec, sec, 16, func(x kv) bool { return x.Value != 0 }))),
			render(dstreamtest.Collect(dstream.UpdateStateByKey(h.In, runningSum, 16))),
		}
	}},
	{name: "countByValueAndWindow", ticks: 6, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		keys := dstream.Map(h.In, func(x kv) string { return x.Key })
		return []func(time.Time) string{render(dstreamtest.Collect(dstream.CountByValueAndWindow(keys, 2*sec, sec, 2)))}
	}},
	{name: "updateStateByKey", ticks: 8, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		st := dstream.UpdateStateByKey(h.In, runningSum, 3)
		return []func(time.Time) string{render(dstreamtest.Collect(st))}
	}},
	{name: "mapWithState", ticks: 6, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		m := dstream.MapWithState(h.In, dstream.StateSpec[string, int, int, string]{
			Func: func(_ time.Time, key string, v dstream.Opt[int], st *dstream.State[int]) dstream.Opt[string] {
				if st.IsTimingOut() {
					return dstream.Some(key + " timed out")
				}
				_ = st.Update(st.Get() + v.Value)
				return dstream.Some(fmt.Sprintf("%s=%d", key, st.Get()))
			},
			Timeout:       2 * sec,
			NumPartitions: 2,
		})
		return []func(time.Time) string{render(dstreamtest.Collect(m.Stream)), render(dstreamtest.Collect(m.StateSnapshots()))}
	}},
	{name: "joins-and-groups", ticks: 6, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		shifted := dstream.Map(h.In, func(x kv) kv { return p(x.Key, x.Value*10) })
		win := dstream.Window(shifted, 2*sec, sec)
		return []func(time.Time) string{
			render(dstreamtest.Collect(dstream.Join(h.In, win, 2))),
			render(dstreamtest.Collect(dstream.Cogroup(h.In, win, 3))),
			render(dstreamtest.Collect(dstream.GroupByKey(dstream.Repartition(h.In, 3), 2))),
		}
	}},
	{name: "sortByKey-in-transform", ticks: 6, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		// The sort samples its input to choose range bounds while the
		// interval's datasets are built: in every process, from the same
		// data, so the bounds agree.
		sorted := dstream.Transform(h.In, func(ds *rdd.Dataset[kv], _ time.Time) (*rdd.Dataset[kv], error) {
			return rdd.SortByKey(context.Background(), ds, true, 3)
		})
		ordered := []func(time.Time) string{render(dstreamtest.Collect(sorted))}
		// Collected in partition order: the global order must hold.
		var mu sync.Mutex
		got := map[int64]string{}
		dstream.ForeachRDD(sorted, func(ctx context.Context, ds *rdd.Dataset[kv], t time.Time) error {
			xs, err := ds.Collect(ctx)
			mu.Lock()
			defer mu.Unlock()
			got[t.UnixMilli()] = fmt.Sprint(xs)
			if !slices.IsSortedFunc(xs, func(a, b kv) int { return strings.Compare(a.Key, b.Key) }) {
				got[t.UnixMilli()] = "out of order: " + fmt.Sprint(xs)
			}
			return err
		})
		return append(ordered, func(t time.Time) string { mu.Lock(); defer mu.Unlock(); return got[t.UnixMilli()] })
	}},
	{name: "transform-with-static", ticks: 5, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		static := rdd.Parallelize(h.Ctx.Datasets(), []dstream.Pair[string, string]{{Key: "a", Value: "alpha"}, {Key: "b", Value: "beta"}}, 2)
		joined := dstream.Transform(h.In, func(ds *rdd.Dataset[kv], _ time.Time) (*rdd.Dataset[dstream.Pair[string, dstream.Pair[int, string]]], error) {
			return rdd.Join(ds, static, 2), nil
		})
		return []func(time.Time) string{render(dstreamtest.Collect(joined))}
	}},
	{name: "eventTimeWindows", ticks: 7, op: func(h *dstreamtest.Harness[kv]) []func(time.Time) string {
		return eventTimeRow(h.In)
	}},
}

var clusterInput = [][]kv{
	{p("a", 1), p("b", 2)},
	{p("a", 2), p("c", 1), p("b", 1)},
	{},
	{p("b", 3), p("a", -1)},
	{p("c", 2), p("c", 2), p("d", 1)},
	{p("a", 5)},
}

// runDeployed runs row op under master and renders every output per interval.
func runDeployed(t *testing.T, op deployedOp, master string) []string {
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master})
	outs := op.op(h)
	for _, b := range clusterInput {
		h.Input.Push(b...)
	}
	h.Start()
	var lines []string
	for range op.ticks {
		at := h.Tick()
		var parts []string
		for _, r := range outs {
			parts = append(parts, r(at))
		}
		lines = append(lines, strings.Join(parts, " | "))
	}
	return lines
}

func TestOperatorsAcrossDeployments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	for _, op := range deployedOps {
		t.Run(op.name, func(t *testing.T) {
			var local, clustered, slotted, standalone []string
			t.Run("local", func(t *testing.T) { local = runDeployed(t, op, "local[2]") })
			t.Run("cluster", func(t *testing.T) { clustered = runDeployed(t, op, "local-cluster[3]") })
			// Two slots a worker: a worker builds several intervals'
			// datasets at once.
			t.Run("cluster-2-slots", func(t *testing.T) { slotted = runDeployed(t, op, "local-cluster[2,2]") })
			// A standalone master that three workers join, with no
			// checkpoint folder: nothing shared but the network.
			t.Run("standalone", func(t *testing.T) { standalone = runDeployed(t, op, "cluster") })
			if dstreamtest.InWorker() || t.Failed() {
				return
			}
			for name, got := range map[string][]string{"local-cluster[3]": clustered, "local-cluster[2,2]": slotted, "standalone": standalone} {
				if !reflect.DeepEqual(local, got) {
					t.Errorf("outputs differ\nlocal[2]:\n  %s\n%s:\n  %s", strings.Join(local, "\n  "), name, strings.Join(got, "\n  "))
				}
			}
			for i, l := range local {
				if strings.Contains(l, "error") || (i == 0 && strings.Count(l, "[]") == strings.Count(l, "|")+1) {
					t.Errorf("interval %d: %s", i+1, l)
				}
			}
		})
	}
}

func TestLocalClusterRunsTasksOnWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]"})
	pids := dstream.Map(h.In, func(kv) dstream.Pair[int, int] { return dstream.KV(os.Getpid(), 1) })
	col := dstreamtest.Collect(dstream.ReduceByKey(pids, add, 2))
	var batch []kv
	for i := range 600 {
		batch = append(batch, p(fmt.Sprint(i), i))
	}
	h.Input.Push(batch...)
	h.Start()
	t1 := h.Tick()
	total := 0
	for _, c := range col.At(t1) {
		if c.Key == os.Getpid() {
			t.Errorf("%d records were computed on the master", c.Value)
		}
		total += c.Value
	}
	if total != len(batch) || len(col.At(t1)) < 2 {
		t.Errorf("records per process %v: want all %d records, spread over several workers", col.At(t1), len(batch))
	}
	// Every input block was on two workers before it was acknowledged (the
	// master then dropped its own copy), and the manifest says where.
	m, ok := h.Ctx.Manifest(t1)
	if !ok || len(m.Inputs) == 0 {
		t.Fatalf("no manifest with inputs for interval 1: %+v", m)
	}
	for _, in := range m.Inputs {
		for _, b := range in.Blocks {
			if len(b.Locations) != 2 || slices.Contains(b.Locations, h.Ctx.ClusterAddr()) {
				t.Errorf("block %s is at %v, want two workers", b.Key, b.Locations)
			}
		}
	}
	workers := 0
	for _, w := range h.Ctx.Workers() {
		if w.State == "alive" {
			workers++
		}
	}
	if workers != 4 {
		t.Errorf("Workers() = %+v, want the master and three workers", h.Ctx.Workers())
	}
}

func TestLocalClusterSurvivesKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	input := [][]kv{
		{p("a", 1), p("b", 2), p("c", 3)},
		{p("a", 2), p("b", 1)},
		{p("c", 5), p("a", 1)},
		{p("b", 4)},
	}
	want := []string{
		"[(a,1) (b,2) (c,3)]",
		"[(a,3) (b,3) (c,3)]",
		"[(a,4) (b,3) (c,8)]",
		"[(a,3) (b,5) (c,5)]",
	}
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]"})
	col := dstreamtest.Collect(dstream.ReduceByKeyAndWindow(h.In, add, 3*sec, sec, 3))
	for _, b := range input {
		h.Input.Push(b...)
	}
	h.Start()
	check := func(i int, at time.Time) {
		t.Helper()
		if err := col.Err(at); err != nil {
			t.Fatalf("interval %d failed: %v", i+1, err)
		}
		if got := fmt.Sprint(dstreamtest.Sorted(col.At(at))); got != want[i] {
			t.Errorf("interval %d = %s, want %s", i+1, got, want[i])
		}
	}
	check(0, h.Tick())
	check(1, h.Tick())
	// SIGKILL one worker: it held map outputs and input replicas the next
	// windows need. Its work is redone on the others from lineage and the
	// input's other copies, and it leaves the master's view.
	victim := dstreamtest.KillWorker(t, h.Ctx, nil)
	check(2, h.Tick())
	check(3, h.Tick())
	deadline := time.Now().Add(10 * time.Second)
	for {
		lost := false
		for _, w := range h.Ctx.Workers() {
			if w.Address == victim.Address && w.State == "lost" {
				lost = true
			}
		}
		if lost {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed worker %s is still in the master's view: %+v", victim.ID, h.Ctx.Workers())
		}
		time.Sleep(20 * time.Millisecond) // polling the real heartbeat clock
	}
}

// A worker holding state partitions is SIGKILLed between intervals: its
// partitions of the kept states (UpdateStateByKey, and the incremental
// window's per-interval reductions) are recomputed on the survivors from
// lineage, back to the last durable checkpoint, and every later interval is
// exactly what a run without the kill outputs. Checkpoints are written every
// three intervals, so both a checkpoint and lineage since it are read.
//
// It runs under local-cluster[3] and under a standalone master that three
// worker processes join: with no CheckpointDir, the checkpoints go to a
// temporary folder of the master's, which serves it to its workers (nothing
// is shared but the network).
func TestLocalClusterRecoversLostState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	for _, master := range []string{"local-cluster[3]", "cluster"} {
		t.Run(master, func(t *testing.T) { recoversLostState(t, master) })
	}
}

func recoversLostState(t *testing.T, master string) {
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master, Config: func(c *dstream.Config) {
		c.CheckpointInterval = 3 * sec
	}})
	st := dstreamtest.Collect(dstream.UpdateStateByKey(h.In, runningSum, 4))
	win := dstreamtest.Collect(dstream.ReduceByKeyAndWindowInv(h.In, add, sub, 3*sec, sec, 4, nil))
	const keys, intervals = 300, 9
	input := make([][]kv, intervals)
	for i := range input {
		for k := range keys {
			if (k+i)%3 != 0 { // not every key every interval
				input[i] = append(input[i], p(fmt.Sprint("k", k), 1+i+k%7))
			}
		}
		h.Input.Push(input[i]...)
	}
	// The naive reference: running sums, and sums over the last 3 intervals.
	wantState := make([]map[string]int, intervals)
	wantWin := make([]map[string]int, intervals)
	sum := map[string]int{}
	for i := range input {
		for _, r := range input[i] {
			sum[r.Key] += r.Value
		}
		wantState[i] = maps.Clone(sum)
		wantWin[i] = map[string]int{}
		for j := max(0, i-2); j <= i; j++ {
			for _, r := range input[j] {
				wantWin[i][r.Key] += r.Value
			}
		}
	}
	h.Start()
	check := func(i int, at time.Time) {
		t.Helper()
		for name, c := range map[string]*dstreamtest.Collector[kv]{"state": st, "window": win} {
			if err := c.Err(at); err != nil {
				t.Fatalf("interval %d, %s: %v", i+1, name, err)
			}
			want := wantState[i]
			if name == "window" {
				want = wantWin[i]
			}
			got := map[string]int{}
			for _, r := range c.At(at) {
				if r.Value != 0 || name == "state" {
					got[r.Key] = r.Value
				}
			}
			if !maps.Equal(got, want) {
				t.Fatalf("interval %d, %s: %d keys, want %d (first difference: %s)", i+1, name, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	for i := range 4 {
		check(i, h.Tick())
	}
	dstreamtest.KillWorker(t, h.Ctx, nil)
	for i := 4; i < intervals; i++ {
		check(i, h.Tick())
	}
}

// firstDiff names the first key (in order) on which got and want differ.
func firstDiff(got, want map[string]int) string {
	keys := slices.Sorted(maps.Keys(want))
	keys = append(keys, slices.Sorted(maps.Keys(got))...)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		if g != w || gok != wok {
			return fmt.Sprintf("%s: got %d (%v), want %d (%v)", k, g, gok, w, wok)
		}
	}
	return "none"
}

// socketWordCount starts a word count of a socket receiver's lines in
// local-cluster[3].
func socketWordCount(t *testing.T) (*dstreamtest.Harness[kv], *source.Socket, *dstreamtest.Collector[kv]) {
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]"})
	sock := source.NewSocket("127.0.0.1:0", source.SocketOptions{Logger: slog.New(slog.DiscardHandler)})
	lines := dstream.ReceiverStream(h.Ctx, sock)
	words := dstream.Map(dstream.FlatMap(lines, strings.Fields), func(w string) kv { return p(w, 1) })
	col := dstreamtest.Collect(dstream.ReduceByKey(words, add, 2))
	h.Start()
	return h, sock, col
}

// In local-cluster the master runs each receiver on a worker: the socket
// listens there, and every block is stored on that worker and one other
// before it is acknowledged (the master holds none), as the manifest says.
func TestLocalClusterReceiversRunOnWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	h, sock, col := socketWordCount(t)
	if sock.Addr() == nil {
		t.Fatal("the master does not know where the receiver listens")
	}
	const n = 5000
	if _, err := client.Send(context.Background(), client.Options{To: sock.Addr().String(), Generate: "words", Seed: 7, Count: n, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.Ctx.ReceivedRecords() < n { // the worker's receiver runs on the wall clock
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d records", h.Ctx.ReceivedRecords(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t1 := h.Tick()
	total := 0
	for _, c := range col.At(t1) {
		total += c.Value
	}
	m, _ := h.Ctx.Manifest(t1)
	if total == 0 || m == nil || len(m.Inputs) == 0 {
		t.Fatalf("interval 1 counted %d words; manifest %+v", total, m)
	}
	for _, b := range m.Inputs[0].Blocks {
		if len(b.Locations) != 2 || b.Locations[0] == b.Locations[1] || slices.Contains(b.Locations, h.Ctx.ClusterAddr()) {
			t.Errorf("block %s is at %v; want two workers, not the master", b.Key, b.Locations)
		}
	}
	if got := h.Ctx.ReceivedRecords(); got != n {
		t.Errorf("received %d records, want %d", got, n)
	}
}

// When the worker running a receiver is SIGKILLed, the master places the
// receiver on another worker: records sent there afterwards are received
// and counted, and every interval's totals are exact.
func TestLocalClusterPlacesReceiverAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	h, _, col := socketWordCount(t)
	quiet := slog.New(slog.DiscardHandler)
	send := func(n int64, want int64) {
		t.Helper()
		if _, err := client.Send(context.Background(), client.Options{To: h.Ctx.Receivers()[0].Address, Generate: "words", Seed: 7, Count: n, Logger: quiet}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for h.Ctx.ReceivedRecords() < want { // the worker's receiver runs on the wall clock
			if time.Now().After(deadline) {
				t.Fatalf("received %d of %d records", h.Ctx.ReceivedRecords(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	words1 := func(at time.Time) (total int) {
		for _, c := range col.At(at) {
			total += c.Value
		}
		return total
	}
	const n = 3000
	send(n, n)
	first := h.Ctx.Receivers()[0]
	w1 := words1(h.Tick())
	dstreamtest.KillWorker(t, h.Ctx, func(w dstream.WorkerInfo) bool { return w.Address == first.Worker })
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := h.Ctx.Receivers()[0]
		if r.Worker != first.Worker && r.Worker != "" && r.Address != "" {
			t.Logf("receiver moved from %s (%s) to %s (%s)", first.Worker, first.Address, r.Worker, r.Address)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver still runs on the killed worker: %+v", r)
		}
		time.Sleep(20 * time.Millisecond) // the real heartbeat clock notices the loss
	}
	send(n, 2*n)
	w2 := words1(h.Tick())
	if w1 == 0 || w2 != w1 {
		t.Fatalf("interval 1 counted %d words, interval 2 %d; want the same, non-zero (the same %d lines)", w1, w2, n)
	}
}

// The worker running a socket receiver is SIGKILLed while a client sends
// with acknowledgements: the receiver starts again on another worker at the
// same address, the client reconnects and resends what was not
// acknowledged, and every record sent is counted (at least once: a record
// stored whose acknowledgement was lost comes twice).
func TestLocalClusterKilledReceiverLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	// The workers are this test binary: they must listen at the same
	// address, so the master picks the port and they inherit it.
	const portEnv = "DSTREAM_TEST_RECEIVER_PORT"
	if os.Getenv(portEnv) == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(portEnv, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		l.Close()
	}
	addr := "127.0.0.1:" + os.Getenv(portEnv)
	h := dstreamtest.New[kv](t, dstreamtest.Options{Master: "local-cluster[3]"})
	quiet := slog.New(slog.DiscardHandler)
	sock := source.NewSocket(addr, source.SocketOptions{Logger: quiet})
	col := dstreamtest.Collect(dstream.ReceiverStream(h.Ctx, sock))
	h.Start()
	const n = 60000
	var lines strings.Builder
	for i := range n {
		fmt.Fprintf(&lines, "r%06d\n", i)
	}
	file := filepath.Join(t.TempDir(), "records")
	if err := os.WriteFile(file, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		st  client.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := client.Send(context.Background(), client.Options{To: addr, File: file, Rate: 20000, Ack: true, Logger: quiet})
		done <- result{st, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for h.Ctx.ReceivedRecords() < n/3 {
		if time.Now().After(deadline) {
			t.Fatalf("received %d records before the kill", h.Ctx.ReceivedRecords())
		}
		time.Sleep(10 * time.Millisecond) // the receiver runs on the wall clock
	}
	first := h.Ctx.Receivers()[0]
	dstreamtest.KillWorker(t, h.Ctx, func(w dstream.WorkerInfo) bool { return w.Address == first.Worker })
	var res result
	seen := map[string]int{}
	var times []time.Time
	for finished := false; ; {
		if !finished {
			select {
			case res = <-done:
				finished = true
			default:
			}
		}
		at := h.Tick()
		times = append(times, at)
		if err := col.Err(at); err != nil {
			t.Fatalf("interval %v: %v", at, err)
		}
		for _, r := range col.At(at) {
			seen[r]++
		}
		if finished && len(seen) >= n {
			break
		}
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("%d of %d records counted (client: %+v, %v)", len(seen), n, res.st, res.err)
		}
		time.Sleep(50 * time.Millisecond) // let records arrive between intervals
	}
	if res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	dups := 0
	for i := range n {
		c := seen[fmt.Sprintf("r%06d", i)]
		if c == 0 {
			t.Fatalf("record r%06d was acknowledged and never counted", i)
		}
		dups += c - 1
	}
	if len(seen) != n {
		t.Errorf("%d distinct records counted, want %d", len(seen), n)
	}
	t.Logf("receiver moved from %s; client resent %d records, acknowledged %d; %d counted twice, over %d intervals", first.Worker, res.st.Resent, res.st.Acked, dups, len(times))
}

// bucketMoves counts, per interval, the buckets its tasks fetched from
// other processes and pushed to them (listener.TaskEnded's figures), over
// the jobs count says to count.
type bucketMoves struct {
	mu    sync.Mutex
	count func(listener.JobStarted) bool
	jobs  map[int]bool
	by    map[time.Time]*moved
}

// moved is one interval's buckets fetched from and pushed to other processes.
type moved struct{ remote, pushes int64 }

// countBucketMoves counts ctx's tasks of the jobs count says to count.
func countBucketMoves(ctx *dstream.Context, count func(listener.JobStarted) bool) *bucketMoves {
	b := &bucketMoves{count: count, jobs: map[int]bool{}, by: map[time.Time]*moved{}}
	ctx.AddListener(listener.Func(func(e listener.Event) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := e.(type) {
		case listener.JobStarted:
			b.jobs[e.Job] = count(e)
		case listener.TaskEnded:
			if e.Err != nil || !b.jobs[e.Job] {
				return
			}
			m := b.by[e.Time]
			if m == nil {
				m = &moved{}
				b.by[e.Time] = m
			}
			m.remote += e.ShuffleRemoteReads
			m.pushes += e.ShufflePushes
		}
	}))
	return b
}

// byInterval returns the counts so far, by interval.
func (b *bucketMoves) byInterval() map[time.Time]moved {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[time.Time]moved, len(b.by))
	for t, m := range b.by {
		out[t] = *m
	}
	return out
}

// A state stream's datasets are kept where the interval's output computed
// them (rdd.PinOnCompute): the workers report what they pinned with the
// task, and the master runs no keep job of its own, while the kept
// partitions stay on the workers and every output is the local one's.
// A map task pushes its buckets to the worker that ran the same reduce
// partition last interval, where the window's state now draws that reduce
// task, so from the second interval on the output's reduce tasks fetch no
// bucket across processes; the output is local[2]'s. (Two partitions, one
// slot a worker: with more reduce tasks than slots, a task takes whichever
// slot frees first, and a guess can miss.)
func TestLocalClusterPushesBucketsToTheirReducers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const ticks = 8
	type scratch struct {
		held    int64
		spilled int
		ok      bool
	}
	var folder scratch // the master's temporary checkpoint folder, after the run
	run := func(master string) (lines []string, byTick map[time.Time]moved) {
		h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master})
		out := render(dstreamtest.Collect(dstream.ReduceByKeyAndWindowInv(h.In, add, sub, 3*sec, sec, 2, func(x kv) bool { return x.Value != 0 })))
		// The output's jobs, not the state checkpoints'.
		moves := countBucketMoves(h.Ctx, func(e listener.JobStarted) bool { return e.OutputOp >= 0 && !strings.Contains(e.Name, "checkpoint") })
		for i := range ticks {
			h.Input.Push(clusterInput[i%len(clusterInput)]...)
		}
		h.Start()
		for range ticks {
			lines = append(lines, out(h.Tick()))
		}
		folder.held, folder.spilled, folder.ok = h.Ctx.ScratchCheckpoint()
		return lines, moves.byInterval()
	}
	want, _ := run("local[2]")
	if folder.ok {
		t.Errorf("local[2] reports a temporary checkpoint folder: %+v", folder)
	}
	got, byTick := run("local-cluster[2]")
	if dstreamtest.InWorker() {
		return
	}
	// The window's reductions, written every interval, are in the master's
	// memory, not files (checkpoint.Spilling).
	if !folder.ok || folder.held <= 0 || folder.spilled != 0 {
		t.Errorf("the master's temporary checkpoint folder: %+v; want bytes held in memory and no file", folder)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outputs differ\nlocal[2]:\n  %s\nlocal-cluster[2]:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
	times := slices.SortedFunc(maps.Keys(byTick), time.Time.Compare)
	var pushes int64
	for i, tt := range times {
		r := byTick[tt]
		t.Logf("interval %d: %d buckets fetched, %d pushed", i, r.remote, r.pushes)
		pushes += r.pushes
		if i >= 1 && r.remote != 0 {
			t.Errorf("interval %d: %d buckets fetched across processes; want every one pushed to its reader", i, r.remote)
		}
	}
	if pushes == 0 || len(times) < ticks {
		t.Errorf("%d pushes in %d intervals; want pushes in each of %d", pushes, len(times), ticks)
	}
}

// A reduce task reads no empty bucket across processes and a map task
// pushes none: the map tasks say which of theirs are empty and the master
// tells the readers. With eight reduce partitions and a few records an
// interval most buckets are empty; an interval's buckets fetched or pushed
// across processes are at most its records (each record is in one bucket).
func TestLocalClusterSkipsEmptyBuckets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	run := func(master string) (lines []string, byTick map[time.Time]moved, records map[time.Time]int64) {
		h := dstreamtest.New[kv](t, dstreamtest.Options{Master: master})
		out := render(dstreamtest.Collect(dstream.ReduceByKey(h.In, add, 8)))
		moves := countBucketMoves(h.Ctx, func(listener.JobStarted) bool { return true })
		for _, in := range clusterInput {
			h.Input.Push(in...)
		}
		h.Start()
		records = map[time.Time]int64{}
		for i := range clusterInput {
			lines = append(lines, out(h.Tick()))
			records[h.Ctx.StartTime().Add(time.Duration(i+1)*sec)] = int64(len(clusterInput[i]))
		}
		return lines, moves.byInterval(), records
	}
	want, _, _ := run("local[2]")
	got, byTick, records := run("local-cluster[2]")
	if dstreamtest.InWorker() {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outputs differ\nlocal[2]:\n  %s\nlocal-cluster[2]:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
	for i, tt := range slices.SortedFunc(maps.Keys(byTick), time.Time.Compare) {
		m, n := byTick[tt], records[tt]
		t.Logf("interval %d: %d records, %d buckets fetched, %d pushed", i, n, m.remote, m.pushes)
		if m.remote+m.pushes > n {
			t.Errorf("interval %d: %d buckets fetched and %d pushed across processes for %d records: empty buckets moved", i, m.remote, m.pushes, n)
		}
	}
}

func TestLocalClusterKeepsStateWhereTheOutputComputedIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const ticks = 6
	run := func(master string) (lines []string, keeps int, h *dstreamtest.Harness[kv]) {
		var mu sync.Mutex
		h = dstreamtest.New[kv](t, dstreamtest.Options{Master: master})
		out := render(dstreamtest.Collect(dstream.ReduceByKeyAndWindowInv(h.In, add, sub, 3*sec, sec, 4, func(x kv) bool { return x.Value != 0 })))
		h.Ctx.AddListener(listener.Func(func(e listener.Event) {
			if js, ok := e.(listener.JobStarted); ok && strings.HasPrefix(js.Name, "keep ") {
				mu.Lock()
				keeps++
				mu.Unlock()
			}
		}))
		for _, b := range clusterInput {
			h.Input.Push(b...)
		}
		h.Start()
		for range ticks {
			lines = append(lines, out(h.Tick()))
		}
		mu.Lock()
		defer mu.Unlock()
		return lines, keeps, h
	}
	want, _, _ := run("local[2]")
	got, keeps, h := run("local-cluster[2]")
	if dstreamtest.InWorker() {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outputs differ\nlocal[2]:\n  %s\nlocal-cluster[2]:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
	if keeps != 0 {
		t.Errorf("the master ran %d keep jobs; want none (every state partition was computed by the output)", keeps)
	}
	m, ok := h.Ctx.Manifest(h.Clock.Now())
	if !ok || len(m.Checkpoints) == 0 {
		t.Fatalf("no kept state in the last manifest: %+v", m)
	}
	for _, c := range m.Checkpoints {
		if !c.Kept {
			continue
		}
		if len(c.Locations) != c.Partitions || slices.Contains(c.Locations, h.Ctx.ClusterAddr()) || slices.Contains(c.Locations, "") {
			t.Errorf("kept %s at %v: want each of its %d partitions on a worker", c.Name, c.Locations, c.Partitions)
		}
	}
}
