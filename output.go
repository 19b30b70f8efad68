package dstream

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dstream/dstream/rdd"
)

// outputOp is an output operation: it runs one job per interval of its stream.
type outputOp struct {
	id   int32 // from the same sequence as stream operators
	name string
	run  func(t time.Time) error
	// open, when set, runs once in Start before any receiver opens; its
	// error fails Start (an output folder that cannot be written).
	open func() error
}

func addOutput[T any](s *Stream[T], name string, fn func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error) {
	c := s.ctx
	op := &outputOp{name: name}
	op.run = func(t time.Time) (err error) {
		// Driver-side user code (Transform functions while the interval's
		// datasets are built, fn itself) fails the interval, not the process.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%s: panic in driver-side code: %v", name, r)
			}
		}()
		ds, err := s.At(t)
		if err != nil {
			return err
		}
		if ds == nil {
			return nil // the stream produces nothing at t
		}
		// Datasets fn builds are named in the output's scope for t, so they
		// are process-independent and forgotten after the interval.
		c.rctx.InScope(op.id, t.UnixMilli(), func() { err = fn(c.runCtx(), ds, t) })
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateNew {
		c.graphErr = firstErr(c.graphErr, fmt.Errorf("%s: outputs must be registered before the context starts", name))
		return
	}
	c.nextOp++
	op.id = c.nextOp
	c.outputs = append(c.outputs, op)
}

// ForeachRDD runs fn on the driver for every interval's dataset, given the
// interval time and a context that is cancelled when the streaming context
// stops hard. fn typically runs actions on the dataset; its error fails the
// interval.
func ForeachRDD[T any](s *Stream[T], fn func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error) {
	addOutput(s, "foreachRDD", fn)
}

// Print writes the first n records of every interval to the context's Out,
// under a header naming the interval, as Spark's print does.
func (s *Stream[T]) Print(n int) {
	c := s.ctx
	addOutput(s, "print", func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		xs, err := ds.Take(ctx, n+1)
		if err != nil {
			return err
		}
		b := fmt.Appendf(nil, "-------------------------------------------\nTime: %d ms\n-------------------------------------------\n", t.UnixMilli())
		for i, x := range xs {
			if i == n {
				b = append(b, "...\n"...)
				break
			}
			b = fmt.Appendln(b, x)
		}
		b = append(b, '\n')
		_, err = c.cfg.Out.Write(b)
		return err
	})
}

// SaveAsTextFiles writes every interval's dataset as text, one record per
// line (fmt.Sprint), into the directory "prefix-<interval ms>[.suffix]"
// holding one part-NNNNN file per partition and an empty _SUCCESS marker, as
// Spark lays them out. The directory appears atomically (written under a
// temporary name, then renamed), and an interval whose directory is already
// complete is not written again, so re-running an interval after a failure
// leaves exactly one copy of its output.
func (s *Stream[T]) SaveAsTextFiles(prefix, suffix string) {
	addOutput(s, "saveAsTextFiles", func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
		dir := fmt.Sprintf("%s-%d", prefix, t.UnixMilli())
		if suffix != "" {
			dir += "." + suffix
		}
		return saveText(ctx, ds, dir)
	})
}

func saveText[T any](ctx context.Context, ds *rdd.Dataset[T], dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err == nil {
		return nil // already complete: exactly once
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	err = ds.ForeachPartition(ctx, func(p int, records []T) error {
		// A local slice, not a strings.Builder: fmt would move a Builder
		// to the heap, where another task's writes may share its cache
		// line (rdd/loop.go).
		var b []byte
		for _, r := range records {
			b = fmt.Appendln(b, r)
		}
		return writeFileSync(filepath.Join(tmp, fmt.Sprintf("part-%05d", p)), b)
	})
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, "_SUCCESS"), nil); err != nil {
		return err
	}
	// A partial directory left by a crash before the rename would block the
	// rename; it never has _SUCCESS, so it is safe to replace.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if d, err := os.Open(parent); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func writeFileSync(name string, data []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
