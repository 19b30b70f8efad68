package bench

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dstream/dstream/plot"
)

// The figures of `dstream bench --json` results (BENCHMARKS.md, "Cluster
// against local, and latency against the interval"): TestBenchFigures reads
// the results' JSON lines and draws the charts.
var (
	figLatency = flag.String("figures.latency", "", "JSON lines of `dstream bench --rate R --json` runs of one workload at several --batch, each under local[2] and local-cluster[2]: draw latency at R against the interval to the .svg of the same name")
	figRatio   = flag.String("figures.ratio", "", "JSON lines of `dstream bench --json` runs, each local[2] then local-cluster[2] (a pair): draw the cluster/local ratio of each pair to the .svg of the same name")
)

// readResults reads JSON lines of Results.
func readResults(file string) ([]Result, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// pair is a local[N] run and the local-cluster[N] run right after it.
type pair struct{ local, cluster Result }

func (p pair) ratio() float64 {
	if p.local.RecordsPerSec == 0 {
		return 0
	}
	return p.cluster.RecordsPerSec / p.local.RecordsPerSec
}

// pairs pairs each local-cluster result with the local result of the same
// workload and interval just before it.
func pairs(rs []Result) []pair {
	var ps []pair
	for i := 1; i < len(rs); i++ {
		l, c := rs[i-1], rs[i]
		if strings.HasPrefix(l.Master, "local[") && strings.HasPrefix(c.Master, "local-cluster[") && l.Workload == c.Workload && l.BatchMs == c.BatchMs {
			ps = append(ps, pair{l, c})
		}
	}
	return ps
}

// latencyChart is p50 and p99 latency against the interval, per master, of
// runs at one fixed rate (`dstream bench --rate`).
func latencyChart(ps []pair) plot.Chart {
	series := []plot.Series{{Name: "local[2] p50"}, {Name: "local[2] p99"}, {Name: "local-cluster[2] p50"}, {Name: "local-cluster[2] p99"}}
	add := func(s *plot.Series, x, y float64) {
		if y > 0 {
			s.X, s.Y = append(s.X, x), append(s.Y, y)
		}
	}
	slices.SortFunc(ps, func(a, b pair) int { return int(a.local.BatchMs - b.local.BatchMs) })
	var workload string
	var rate float64
	for _, p := range ps {
		workload, rate = p.local.Workload, p.local.RecordsPerSec
		x := float64(p.local.BatchMs)
		add(&series[0], x, p.local.P50LatencyMs)
		add(&series[1], x, p.local.P99LatencyMs)
		add(&series[2], x, p.cluster.P50LatencyMs)
		add(&series[3], x, p.cluster.P99LatencyMs)
	}
	return plot.Chart{Title: fmt.Sprintf("%s at %.0f records/s: end-to-end latency against the interval (15 s runs on a loaded, shared 2-core machine)", workload, rate),
		XLabel: "interval (ms)", YLabel: "latency (ms)", Series: series}
}

// ratioChart is each pair's cluster/local ratio of sustained rates, per
// workload, against the pair's number, with the 0.9 target.
func ratioChart(ps []pair) plot.Chart {
	var series []plot.Series
	byName := map[string]int{}
	for _, p := range ps {
		i, ok := byName[p.local.Workload]
		if !ok {
			i = len(series)
			byName[p.local.Workload] = i
			series = append(series, plot.Series{Name: p.local.Workload})
		}
		s := &series[i]
		s.X, s.Y = append(s.X, float64(len(s.X)+1)), append(s.Y, p.ratio())
	}
	target := plot.Series{Name: "target 0.9", Color: "#888888"}
	for _, s := range series {
		for _, x := range s.X {
			if !slices.Contains(target.X, x) {
				target.X, target.Y = append(target.X, x), append(target.Y, 0.9)
			}
		}
	}
	slices.Sort(target.X)
	series = append(series, target)
	return plot.Chart{Title: "local-cluster[2] / local[2] sustained rate, memory source, pairs run in turn (short runs on a shared 2-core machine)",
		XLabel: "pair", YLabel: "cluster / local", Series: series}
}

// ratioTable is the pairs as a Markdown table.
func ratioTable(ps []pair) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| workload | pair | local[2] records/s | probes | local-cluster[2] records/s | probes | cluster/local |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|")
	n := map[string]int{}
	for _, p := range ps {
		n[p.local.Workload]++
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %s | %d | %.2f |\n", p.local.Workload, n[p.local.Workload],
			sustained(p.local), p.local.Probes, sustained(p.cluster), p.cluster.Probes, p.ratio())
	}
	return b.String()
}

// latencyTable is the latency pairs as a Markdown table.
func latencyTable(ps []pair) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| interval | local[2] records/s | p50 / p99 | local-cluster[2] records/s | p50 / p99 |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|")
	for _, p := range ps {
		fmt.Fprintf(&b, "| %d ms | %s | %.0f / %.0f ms | %s | %.0f / %.0f ms |\n", p.local.BatchMs, sustained(p.local), p.local.P50LatencyMs, p.local.P99LatencyMs,
			sustained(p.cluster), p.cluster.P50LatencyMs, p.cluster.P99LatencyMs)
	}
	return b.String()
}

// sustained is a result's rate, starred when no rate was sustained.
func sustained(r Result) string {
	s := fmt.Sprintf("%.0f", r.RecordsPerSec)
	if !r.Sustained {
		s += "*"
	}
	return s
}

// TestBenchFigures draws the figures of -figures.latency and -figures.ratio
// (skipped without them):
//
//	go test -count=1 -run TestBenchFigures -v ./bench -figures.latency=../docs/bench-latency.jsonl -figures.ratio=../docs/bench-ratio.jsonl
//
// (BENCHMARKS.md has the commands that made the JSON lines.)
func TestBenchFigures(t *testing.T) {
	if *figLatency == "" && *figRatio == "" {
		t.Skip("no -figures.latency or -figures.ratio")
	}
	draw := func(file string, chart func([]pair) plot.Chart, table func([]pair) string) {
		rs, err := readResults(file)
		if err != nil {
			t.Fatal(err)
		}
		ps := pairs(rs)
		if len(ps) == 0 {
			t.Fatalf("%s: no local[N] then local-cluster[N] pair", file)
		}
		writeChart(t, strings.TrimSuffix(file, ".jsonl")+".svg", chart(ps))
		t.Logf("%s:\n%s", file, table(ps))
	}
	if *figLatency != "" {
		draw(*figLatency, latencyChart, latencyTable)
	}
	if *figRatio != "" {
		draw(*figRatio, ratioChart, ratioTable)
	}
}

// writeChart writes chart as SVG to file.
func writeChart(t *testing.T, file string, chart plot.Chart) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := chart.SVG(f); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

func TestPairsAndCharts(t *testing.T) {
	r := func(w, master string, batch int64, rate, p50 float64) Result {
		return Result{Workload: w, Master: master, BatchMs: batch, RecordsPerSec: rate, P50LatencyMs: p50, P99LatencyMs: 2 * p50, Sustained: true}
	}
	rs := []Result{
		r("grep", "local[2]", 1000, 100, 0), r("grep", "local-cluster[2]", 1000, 80, 0),
		r("wordcount", "local-cluster[2]", 1000, 50, 0), // no local run before it: no pair
		r("wordcount", "local[2]", 500, 40, 300), r("wordcount", "local-cluster[2]", 500, 30, 400),
		r("grep", "local[2]", 1000, 100, 0), r("grep", "local-cluster[2]", 1000, 90, 0),
	}
	ps := pairs(rs)
	if len(ps) != 3 {
		t.Fatalf("%d pairs, want 3", len(ps))
	}
	if got := ps[0].ratio(); got != 0.8 {
		t.Errorf("grep's first ratio %v, want 0.8", got)
	}
	c := ratioChart(ps)
	if len(c.Series) != 3 || c.Series[0].Name != "grep" || len(c.Series[0].Y) != 2 || c.Series[0].Y[1] != 0.9 {
		t.Errorf("ratio chart series %+v", c.Series)
	}
	l := latencyChart(ps[1:2])
	if len(l.Series[0].X) != 1 || l.Series[0].X[0] != 500 || l.Series[2].Y[0] != 400 {
		t.Errorf("latency chart series %+v", l.Series)
	}
	var b strings.Builder
	if err := c.SVG(&b); err != nil || !strings.Contains(b.String(), "<svg") {
		t.Errorf("SVG: %v", err)
	}
	if tab := ratioTable(ps); !strings.Contains(tab, "| grep | 2 | 100 | 0 | 90 | 0 | 0.90 |") {
		t.Errorf("table:\n%s", tab)
	}
}
