package rdd

import (
	"bufio"
	"fmt"
	"iter"
	"os"
)

// Parallelize distributes data over parts partitions (the context's
// parallelism when parts <= 0). The slice must not be modified afterwards.
func Parallelize[T any](c *Context, data []T, parts int) *Dataset[T] {
	if parts <= 0 {
		parts = c.cfg.Parallelism
	}
	n := len(data)
	return newDataset(c, "parallelize", parts, func(tc *TaskContext, p int) iter.Seq[T] {
		lo, hi := p*n/parts, (p+1)*n/parts
		return sliceSeq(tc, data[lo:hi])
	})
}

// FromPartitions makes a dataset whose partition i is parts[i]. The stream
// layer builds each interval's input dataset from received blocks this way.
func FromPartitions[T any](c *Context, name string, parts [][]T) *Dataset[T] {
	return newDataset(c, name, len(parts), func(tc *TaskContext, p int) iter.Seq[T] {
		return sliceSeq(tc, parts[p])
	})
}

// Empty is a dataset with no records and one partition.
func Empty[T any](c *Context) *Dataset[T] {
	return FromPartitions[T](c, "empty", [][]T{nil})
}

// TextFile reads a text file's lines (without line terminators) as one
// partition per chunk of about size/parts bytes, split at line boundaries.
func TextFile(c *Context, path string, parts int) (*Dataset[string], error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("textFile: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("textFile: %s is a directory", path)
	}
	if parts <= 0 {
		parts = c.cfg.Parallelism
	}
	size := st.Size()
	return newDataset(c, "textFile", parts, func(tc *TaskContext, p int) iter.Seq[string] {
		// Partition p owns the lines that start in [lo, hi): Hadoop's rule.
		lo, hi := size*int64(p)/int64(parts), size*int64(p+1)/int64(parts)
		return func(yield func(string) bool) {
			f, err := os.Open(path)
			if err != nil {
				tc.Fail(fmt.Errorf("textFile: %w", err))
			}
			defer f.Close()
			pos := lo
			if lo > 0 {
				// Skip to the start of the first line that begins at or after lo.
				if _, err := f.Seek(lo-1, 0); err != nil {
					tc.Fail(fmt.Errorf("textFile: %w", err))
				}
				pos = lo - 1
			}
			lines := 0
			defer func() { tc.read(lines) }()
			r := bufio.NewReaderSize(f, 64<<10)
			if lo > 0 {
				skipped, err := r.ReadSlice('\n')
				for err == bufio.ErrBufferFull {
					pos += int64(len(skipped))
					skipped, err = r.ReadSlice('\n')
				}
				pos += int64(len(skipped))
				if err != nil {
					return
				}
			}
			for pos < hi {
				line, err := r.ReadString('\n')
				pos += int64(len(line))
				if len(line) > 0 {
					line = trimEOL(line)
					lines++
					if !yield(line) {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}
	}), nil
}

func trimEOL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
	}
	return s
}

// FromFunc makes a dataset with parts partitions computed by compute, with
// no parents. Sources (input blocks, files) are built with it. The records
// compute yields count as read by the task (TaskFigures.RecordsRead).
func FromFunc[T any](c *Context, name string, parts int, compute func(tc *TaskContext, p int) iter.Seq[T]) *Dataset[T] {
	return newDataset(c, name, parts, func(tc *TaskContext, p int) iter.Seq[T] {
		seq := compute(tc, p)
		return func(yield func(T) bool) {
			seq(func(x T) bool {
				tc.fig.RecordsRead++
				return yield(x)
			})
		}
	})
}

// FromSliceFunc is FromFunc for a source that holds each partition's
// records whole (a stored block, a generated slice): compute returns
// partition p's records when the task reads it, and they are counted as read
// once per partition, not per record.
func FromSliceFunc[T any](c *Context, name string, parts int, compute func(tc *TaskContext, p int) []T) *Dataset[T] {
	return newDataset(c, name, parts, func(tc *TaskContext, p int) iter.Seq[T] {
		return func(yield func(T) bool) { sliceSeq(tc, compute(tc, p))(yield) }
	})
}

// sliceSeq yields xs, the records of a stored or given partition, and counts
// those it yielded as read when it returns (or a failure unwinds it): in
// the task's context once, not per record.
func sliceSeq[T any](tc *TaskContext, xs []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		n := 0 // on this goroutine's stack
		defer func() { tc.read(n) }()
		for _, x := range xs {
			n++
			if !yield(x) {
				return
			}
		}
	}
}
