package engine

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

// EnvHeapProfile names a file prefix: every process of the job (the master
// as "master", each worker as its ID) writes a heap profile (pprof, in-use
// space after a collection) to PREFIX-ID-N every EnvHeapProfilePeriod and
// when it stops, and logs the live heap ("heap profile written", live) each
// time: to see whether a long run's memory is live data or the heap's
// slack. Only the first and the last keepHeapProfiles-1 profiles of a
// process stay on disk.
const EnvHeapProfile = "DSTREAM_HEAPPROFILE"

// EnvHeapProfilePeriod is the period of EnvHeapProfile's profiles, a Go
// duration (default one minute).
const EnvHeapProfilePeriod = "DSTREAM_HEAPPROFILE_PERIOD"

// keepHeapProfiles is how many of a process's heap profiles stay on disk:
// the first (the early base to diff against) and the latest ones.
const keepHeapProfiles = 8

// heapProfiler writes one process's heap profiles.
type heapProfiler struct {
	prefix string // PREFIX-ID-
	log    *slog.Logger
	id     string
	mu     sync.Mutex
	n      int // profiles written
}

// profileHeap starts the process's periodic heap profiles when
// EnvHeapProfile asks, and returns what writes the last one and stops
// them. A period that does not parse is said and the default used.
func profileHeap(id string, log *slog.Logger) func() {
	prefix := os.Getenv(EnvHeapProfile)
	if prefix == "" {
		return func() {}
	}
	period := time.Minute
	if s := os.Getenv(EnvHeapProfilePeriod); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			log.Warn("heap profile: the period is not a positive duration; every minute", EnvHeapProfilePeriod, s)
		} else {
			period = d
		}
	}
	p := &heapProfiler{prefix: prefix + "-" + cmp.Or(id, strconv.Itoa(os.Getpid())) + "-", log: log, id: id}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.write()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		p.write()
	}
}

// write collects, writes the next profile, logs the live heap, and
// deletes the profile that falls out of the kept ones.
func (p *heapProfiler) write() {
	p.mu.Lock()
	defer p.mu.Unlock()
	runtime.GC()
	p.n++
	name := p.prefix + strconv.Itoa(p.n)
	err := writeHeapProfile(name)
	if err != nil {
		p.log.Warn("heap profile: not written", "process", p.id, "err", err)
		return
	}
	p.log.Info("heap profile written", "process", p.id, "file", name, "live", liveHeapBytes())
	if old := p.n - (keepHeapProfiles - 1); old > 1 {
		_ = os.Remove(p.prefix + strconv.Itoa(old))
	}
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// liveHeapBytes is the heap the last collection found live
// (runtime/metrics /gc/heap/live:bytes).
func liveHeapBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
