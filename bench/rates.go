package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// rates is the records per interval of a context the capacity search keeps
// running across its probes: from interval from on, n records, until the
// next step. The search sets a step before it advances the clock to the
// step's first interval, so every interval's size is known before the
// interval is cut.
//
// In local[N] the schedule lives in memory. A local-cluster worker builds
// the graph from its own process, so the master also writes the schedule to
// a file (replaced whole, by rename, so a reader sees one version or the
// next) and the workers read it (ratesFile): every process generates the
// same records for an interval.
type rates struct {
	mu    sync.Mutex
	path  string // "" when in memory only
	steps []rateStep
}

type rateStep struct {
	from int64 // the first interval, counted from the context's start (1 is the first)
	n    int
}

// newRates returns a schedule of n records from the first interval on,
// written under dir when dir is not "".
func newRates(dir string, n int) (*rates, error) {
	r := &rates{}
	if dir != "" {
		r.path = filepath.Join(dir, "rates")
	}
	return r, r.set(1, n)
}

// set makes every interval from from on take n records. from must be at
// or past the last step's (a schedule only grows; at it, set replaces the
// last step, whose intervals have not been cut yet).
func (r *rates) set(from int64, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 {
		return fmt.Errorf("bench: %d records an interval", n)
	}
	switch last := len(r.steps) - 1; {
	case last >= 0 && from < r.steps[last].from:
		return fmt.Errorf("bench: rate step at interval %d is before the last one (%d)", from, r.steps[last].from)
	case last >= 0 && from == r.steps[last].from:
		r.steps[last].n = n
	default:
		r.steps = append(r.steps, rateStep{from, n})
	}
	if r.path == "" {
		return nil
	}
	var b strings.Builder
	for _, s := range r.steps {
		fmt.Fprintf(&b, "%d %d\n", s.from, s.n)
	}
	tmp := r.path + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}

// at returns the records of interval k.
func (r *rates) at(k int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return stepAt(r.steps, k)
}

// stepAt is the n of the last step starting at or before k (the first
// step's before it; 0 with no steps).
func stepAt(steps []rateStep, k int64) int {
	i, found := slices.BinarySearchFunc(steps, k, func(s rateStep, k int64) int {
		switch {
		case s.from < k:
			return -1
		case s.from > k:
			return 1
		}
		return 0
	})
	switch {
	case len(steps) == 0:
		return 0
	case found:
		return steps[i].n
	case i == 0:
		return steps[0].n
	}
	return steps[i-1].n
}

// parseRates reads a schedule file's steps: lines "from n", from
// increasing.
func parseRates(text string) ([]rateStep, error) {
	var steps []rateStep
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: %q: want \"interval records\"", line, sc.Text())
		}
		from, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || n < 0 {
			return nil, fmt.Errorf("line %d: %q: want \"interval records\"", line, sc.Text())
		}
		if len(steps) > 0 && from <= steps[len(steps)-1].from {
			return nil, fmt.Errorf("line %d: interval %d is not past the last step's %d", line, from, steps[len(steps)-1].from)
		}
		steps = append(steps, rateStep{from, n})
	}
	return steps, sc.Err()
}

// ratesFile is a worker's view of the schedule the master writes to path:
// it reads the file again for each interval (a few short lines), since the
// master may have added a step since. If the file cannot be read it keeps
// the last steps it read; the first read is in newRatesFile, so a worker
// whose schedule is missing fails to start rather than generate nothing.
type ratesFile struct {
	path  string
	mu    sync.Mutex
	steps []rateStep
}

func newRatesFile(path string) (*ratesFile, error) {
	f := &ratesFile{path: path}
	if err := f.read(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *ratesFile) read() error {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	steps, err := parseRates(string(b))
	if err != nil {
		return fmt.Errorf("bench: rate schedule %s: %w", f.path, err)
	}
	if len(steps) == 0 {
		return fmt.Errorf("bench: rate schedule %s is empty", f.path)
	}
	f.mu.Lock()
	f.steps = steps
	f.mu.Unlock()
	return nil
}

// at returns the records of interval k.
func (f *ratesFile) at(k int64) int {
	_ = f.read() // on failure, the last steps read
	f.mu.Lock()
	defer f.mu.Unlock()
	return stepAt(f.steps, k)
}
