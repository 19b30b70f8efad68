package dstream_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/checkpoint/s3store/s3test"
	"github.com/dstream/dstream/dstreamtest"
	"github.com/dstream/dstream/rdd"
	"github.com/dstream/dstream/sched"
)

// TextFileStream and SaveAsTextFiles given a URL go through a
// checkpoint.Store (checkpoint.Open). These tests take the store path over
// local folders with file:// URLs; TestStoreLocationsOnS3 takes it to an
// S3 server when one is configured.

// storedOutput reads the interval folders under root that have a _SUCCESS
// marker, as a reader of the output must: "folder/part" -> the part's
// lines, sorted. Folders without a marker are not output.
func storedOutput(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "part-") {
			return nil
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "_SUCCESS")); err != nil {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var lines []string
		if len(b) > 0 {
			lines = dstreamtest.Sorted(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
		}
		out[filepath.ToSlash(rel)] = lines
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storeJob reads the files at in and writes the lines and their word
// counts under out (a folder or a URL).
func storeJob(h *dstreamtest.Harness[string], in, out string) {
	lines := dstream.TextFileStream(h.Ctx, in, dstream.FileStreamOptions{SplitBytes: 7, MinRemember: 5 * sec})
	counts := dstream.ReduceByKey(dstream.Map(dstream.FlatMap(lines, strings.Fields), func(w string) kv { return p(w, 1) }), add, 3)
	lines.SaveAsTextFiles(out+"/lines", "txt")
	counts.SaveAsTextFiles(out+"/counts", "")
}

// A job reading a store-backed folder and writing a store-backed prefix
// (file:// URLs) selects the same files, interval by interval, and writes
// the same output, part by part, as the same job over plain folders.
func TestStoreLocationsMatchPlainFolders(t *testing.T) {
	type run struct {
		files  []string            // the manifests' files, interval by interval
		output map[string][]string // storedOutput
	}
	runJob := func(url bool) run {
		in, out := t.TempDir(), t.TempDir()
		inLoc, outLoc := in, out
		if url {
			inLoc, outLoc = "file://"+in, "file://"+out
		}
		h := dstreamtest.New[string](t, dstreamtest.Options{})
		storeJob(h, inLoc, outLoc)
		placeFile(t, in, "early", "an early file\n", ms(-2000))
		h.Start()
		var r run
		for k := 1; k <= 4; k++ {
			placeFile(t, in, fmt.Sprintf("f%d", k), fmt.Sprintf("w%d common words\nand more w%d\n", k, k%2), ms((k-1)*1000+400))
			at := h.Tick()
			r.files = append(r.files, strings.Join(fileNames(h, at), " "))
			if k == 2 {
				placeFile(t, in, "late", "late words\n", ms(1500)) // interval 3 takes it
			}
		}
		if err := h.Ctx.Stop(true); err != nil {
			t.Fatal(err)
		}
		r.output = storedOutput(t, out)
		return r
	}
	plain, stored := runJob(false), runJob(true)
	if !slices.Equal(plain.files, stored.files) {
		t.Errorf("files taken over a store %q, over a folder %q", stored.files, plain.files)
	}
	if !strings.Contains(stored.files[2], "late:11") {
		t.Errorf("interval 3 took %q, want the late file among them", stored.files[2])
	}
	if len(plain.output) < 8 {
		t.Fatalf("the plain run wrote %d parts: %v", len(plain.output), slices.Sorted(maps.Keys(plain.output)))
	}
	if !maps.EqualFunc(plain.output, stored.output, slices.Equal) {
		t.Errorf("output over a store:\n%v\nover a folder:\n%v", stored.output, plain.output)
	}
}

// An interval whose marker was written before a master was killed is run
// again by the restarted master and not written again: its objects are the
// very files of the first run. The intervals missed while it was down are
// written once; nothing is duplicated.
func TestStoreOutputOnceAcrossRestart(t *testing.T) {
	in, out, ck := t.TempDir(), t.TempDir(), t.TempDir()
	withCk := dstreamtest.Options{Config: func(c *dstream.Config) { c.CheckpointDir = ck }}
	job := func(h *dstreamtest.Harness[string], block func(time.Time) bool) *dstreamtest.Collector[string] {
		lines := dstream.TextFileStream(h.Ctx, "file://"+in, dstream.FileStreamOptions{SplitBytes: 8})
		lines.SaveAsTextFiles("file://"+out+"/lines", "") // first: committed before the block below
		dstream.ForeachRDD(lines, func(ctx context.Context, _ *rdd.Dataset[string], at time.Time) error {
			if block != nil && block(at) {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		return dstreamtest.Collect(lines)
	}
	want := map[int][]string{}
	place := func(k int) {
		for i := range 3 {
			want[k] = append(want[k], fmt.Sprintf("k%d-line%d", k, i))
		}
		placeFile(t, in, fmt.Sprintf("f%d", k), strings.Join(want[k], "\n")+"\n", ms((k-1)*1000+500))
	}
	folder := func(k int) string {
		return filepath.Join(out, fmt.Sprintf("lines-%d", ms(k*1000).UnixMilli()))
	}

	first := dstreamtest.New[string](t, withCk)
	crashAt := ms(3000)
	entered := make(chan struct{})
	job(first, func(at time.Time) bool {
		if at.Equal(crashAt) {
			close(entered)
			return true
		}
		return false
	})
	first.Start()
	place(1)
	first.Tick()
	place(2)
	first.Tick()
	place(3)
	first.Clock.Advance(sec)
	<-entered // interval 3's output is committed; its next output hangs
	_ = first.Ctx.Stop(false)
	before := map[string]os.FileInfo{}
	for _, name := range []string{"_SUCCESS", "part-00000", "part-00001", "part-00002", "part-00003"} {
		fi, err := os.Stat(filepath.Join(folder(3), name))
		if err != nil {
			t.Fatalf("interval 3's output before the restart: %v", err)
		}
		before[name] = fi
	}

	place(4)
	place(5)
	second := dstreamtest.New[string](t, withCk)
	col := job(second, nil)
	second.Start()
	second.Clock.Advance(ms(5000).Sub(second.Clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := second.Ctx.AwaitBatch(ctx, ms(5000)); err != nil {
		t.Fatal(err)
	}
	if !col.Ran(ms(3000)) || col.Ran(ms(2000)) {
		t.Fatalf("the restarted master ran interval 3: %v, interval 2: %v; want 3 only", col.Ran(ms(3000)), col.Ran(ms(2000)))
	}
	for name, fi := range before {
		now, err := os.Stat(filepath.Join(folder(3), name))
		if err != nil || !os.SameFile(fi, now) {
			t.Errorf("interval 3's %s was written again by the restarted master (%v)", name, err)
		}
	}
	got := storedOutput(t, out)
	for k := 1; k <= 5; k++ {
		var lines []string
		for part, l := range got {
			if strings.HasPrefix(part, filepath.Base(folder(k))+"/") {
				lines = append(lines, l...)
			}
		}
		if slices.Sort(lines); !slices.Equal(lines, want[k]) {
			t.Errorf("interval %d's output %q, want %q", k, lines, want[k])
		}
	}
}

// An interval whose folder holds parts but no marker (an attempt cut short)
// is written afresh: what the folder held is gone, the parts are this
// run's, the marker last.
func TestStoreOutputRewritesAPartialInterval(t *testing.T) {
	dir := t.TempDir()
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	dstream.Repartition(h.In, 2).SaveAsTextFiles("file://"+dir+"/words", "")
	h.Input.Push("a", "b", "c")
	h.Start()
	t1 := h.Ctx.StartTime().Add(time.Second)
	folder := filepath.Join(dir, "words-"+itoa(t1.UnixMilli()))
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"part-00000", "part-00007"} {
		if err := os.WriteFile(filepath.Join(folder, name), []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.Tick()
	entries, err := os.ReadDir(folder)
	if err != nil {
		t.Fatal(err)
	}
	var names, lines []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, _ := os.ReadFile(filepath.Join(folder, e.Name()))
		lines = append(lines, strings.Fields(string(b))...)
	}
	slices.Sort(lines)
	if strings.Join(names, ",") != "_SUCCESS,part-00000,part-00001" || strings.Join(lines, ",") != "a,b,c" {
		t.Fatalf("interval folder holds %v with records %v", names, lines)
	}
}

// Start deletes the interval folders of its prefix and suffix that have no
// marker (a killed run's), and nothing else; its write check leaves
// nothing.
func TestStoreOutputStartRemovesPartialIntervals(t *testing.T) {
	for _, tc := range []struct {
		suffix  string
		entries map[string]bool // path -> removed
	}{
		{"", map[string]bool{
			"words-100/part-00000":     true,
			"words-500/sub/part-00000": true,
			"words-200/part-00000":     false, // complete
			"words-200/_SUCCESS":       false,
			"words-300.txt/part-00000": false, // another suffix
			"words-12a/part-00000":     false,
			"words-2-7/part-00000":     false,
			"other-400/part-00000":     false,
			"words-600":                false, // an object, not a folder
			"mine/words-700/part-0":    false,
		}},
		{"txt", map[string]bool{
			"words-100.txt/part-00000": true,
			"words-100/part-00000":     false,
			"words-100.csv/part-00000": false,
		}},
	} {
		t.Run("suffix="+tc.suffix, func(t *testing.T) {
			out := t.TempDir()
			nRemoved := 0
			for p, removed := range tc.entries {
				full := filepath.Join(out, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte("x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if removed {
					nRemoved++
				}
			}
			var logs lockedBuffer
			h := dstreamtest.New[string](t, dstreamtest.Options{Config: func(c *dstream.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			}})
			h.In.SaveAsTextFiles("file://"+out+"/words", tc.suffix)
			h.Start()
			for p, removed := range tc.entries {
				_, err := os.Stat(filepath.Join(out, filepath.FromSlash(p)))
				switch {
				case removed && err == nil:
					t.Errorf("partial %s was not removed", p)
				case !removed && err != nil:
					t.Errorf("%s was removed: %v", p, err)
				}
			}
			for _, leftover := range []string{"words-0", "words-0.txt"} {
				if _, err := os.Stat(filepath.Join(out, leftover)); err == nil {
					t.Errorf("Start's write check left %s", leftover)
				}
			}
			if l := logs.String(); !strings.Contains(l, "removed partial output of a killed run") || !strings.Contains(l, "objects="+itoa(int64(nRemoved))) {
				t.Errorf("no log of the removal with its count in:\n%s", l)
			}
		})
	}
}

// A store location that cannot be used fails Start with an error naming it
// and why.
func TestStoreLocationsStartErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		in             string // a file stream's location, if not ""
		prefix, suffix string
		want           []string
	}{
		{name: "output under a regular file", prefix: "file://" + file + "/sub/words",
			want: []string{"saveAsTextFiles: output location file://" + file + "/sub", "not a directory"}},
		{name: "output without a name", prefix: "s3://bucket",
			want: []string{`output prefix "s3://bucket"`, "s3://LOCATION/NAME"}},
		{name: "output named with a dot", prefix: "file://" + dir + "/.words",
			want: []string{"output prefix", "begins with a dot"}},
		{name: "suffix with a separator", prefix: "file://" + dir + "/words", suffix: "a/b",
			want: []string{`suffix "a/b" contains a path separator`}},
		{name: "unknown scheme", prefix: "nope://bucket/words",
			want: []string{"output location nope://bucket", `scheme "nope"`}},
		{name: "file stream under a regular file", in: "file://" + file + "/in",
			want: []string{"file stream file://" + file + "/in", "not a directory"}},
		{name: "file stream of an unknown scheme", in: "nope://bucket/in",
			want: []string{"file stream nope://bucket/in", `scheme "nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dstreamtest.New[string](t, dstreamtest.Options{})
			if tc.in != "" {
				dstreamtest.Collect(dstream.TextFileStream(h.Ctx, tc.in))
			} else {
				h.In.SaveAsTextFiles(tc.prefix, tc.suffix)
			}
			err := h.Ctx.Start()
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// In local-cluster the workers read the objects the manifest names through
// the store, and write the output's parts into it; the master reads none
// and writes the marker.
func TestLocalClusterStoreLocations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	in := dstreamtest.SharedDir(t, "DSTREAM_TEST_STORE_IN")
	out := dstreamtest.SharedDir(t, "DSTREAM_TEST_STORE_OUT")
	h := dstreamtest.New[string](t, dstreamtest.Options{Master: "local-cluster[2]", Config: func(c *dstream.Config) {
		// The lines are counted by the process that reads them, which is
		// not deterministic: a speculative copy of a map task would count
		// its lines under a second process as well.
		c.Speculation = &sched.Speculation{}
	}})
	lines := dstream.TextFileStream(h.Ctx, "file://"+in, dstream.FileStreamOptions{SplitBytes: 100})
	lines.SaveAsTextFiles("file://"+out+"/lines", "")
	pids := dstreamtest.Collect(dstream.ReduceByKey(dstream.Map(lines, func(string) dstream.Pair[int, int] { return dstream.KV(os.Getpid(), 1) }), add, 2))
	h.Start()
	var want []string
	for f := range 3 {
		var b strings.Builder
		for i := range 50 {
			l := fmt.Sprintf("file%d-line%02d", f, i)
			want = append(want, l)
			b.WriteString(l + "\n")
		}
		placeFile(t, in, fmt.Sprint("f", f), b.String(), ms(200+100*f))
	}
	t1 := h.Tick()
	total := 0
	for _, c := range pids.At(t1) {
		if c.Key == os.Getpid() {
			t.Errorf("%d lines were read on the master", c.Value)
		}
		total += c.Value
	}
	if total != len(want) {
		t.Errorf("lines per process %v, want %d in all", pids.At(t1), len(want))
	}
	var got []string
	for _, l := range storedOutput(t, out) {
		got = append(got, l...)
	}
	if slices.Sort(got); !slices.Equal(got, dstreamtest.Sorted(want)) {
		t.Errorf("the output holds %d lines, want the %d lines of the files", len(got), len(want))
	}
}

// The store path against an S3 server: an S3 server over HTTP in this
// process (gofakes3, package s3test), or, with DSTREAM_TEST_S3 set to an
// s3://BUCKET/PREFIX location, that one (the S3 client's endpoint and
// credentials in its usual environment). The test writes under a fresh
// prefix below it and deletes what it wrote.
func TestStoreLocationsOnS3(t *testing.T) {
	base := os.Getenv("DSTREAM_TEST_S3")
	if base == "" {
		s3test.NewServer(t, "files").Env(t)
		base = "s3://files/test"
	}
	root := strings.TrimSuffix(base, "/") + fmt.Sprintf("/dstream-test-%d", time.Now().UnixNano())
	ctx := t.Context()
	inStore, err := checkpoint.Open(ctx, root+"/in")
	if err != nil {
		if strings.Contains(err.Error(), "not supported") {
			t.Skipf("checkpoint.Open does not open s3:// locations yet: %v", err)
		}
		t.Fatal(err)
	}
	outStore, err := checkpoint.Open(ctx, root+"/out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, st := range []checkpoint.Store{inStore, outStore} {
			names, _ := st.List(context.Background(), "")
			for _, n := range names {
				_ = st.Delete(context.Background(), n)
			}
		}
	})
	h := dstreamtest.New[string](t, dstreamtest.Options{})
	lines := dstream.TextFileStream(h.Ctx, root+"/in", dstream.FileStreamOptions{SplitBytes: 10})
	lines.SaveAsTextFiles(root+"/out/lines", "")
	// The objects' modification times are the server's: run the manual
	// clock from the real time.
	h.Clock.Advance(time.Since(h.Clock.Now()))
	h.Start()
	want := []string{"s3 line one", "s3 line two", "s3 line three"}
	if err := inStore.Put(ctx, "a", []byte(strings.Join(want[:2], "\n")+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := inStore.Put(ctx, "b", []byte(want[2]+"\n")); err != nil {
		t.Fatal(err)
	}
	// The interval after the objects' modification times (and the clock
	// skew a server may have) takes them.
	at := h.Ctx.StartTime().Add(time.Since(h.Ctx.StartTime()).Truncate(time.Second) + 3*time.Second)
	h.Clock.Advance(at.Sub(h.Clock.Now()))
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := h.Ctx.AwaitBatch(wait, at); err != nil {
		t.Fatal(err)
	}
	names, err := outStore.List(ctx, "lines-")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		folder, part, _ := strings.Cut(n, "/")
		if !strings.HasPrefix(part, "part-") {
			continue
		}
		if _, err := outStore.Get(ctx, folder+"/_SUCCESS"); err != nil {
			continue
		}
		b, err := outStore.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		}
	}
	if slices.Sort(got); !slices.Equal(got, dstreamtest.Sorted(want)) {
		t.Errorf("the output on S3 holds %q, want %q", got, want)
	}
}
