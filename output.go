package dstream

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// addOutput registers an output named name that runs fn for every interval
// of s; open, if not nil, becomes the output's Start hook.
func addOutput[T any](s *Stream[T], name string, open func() error, fn func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error) *engine.Output {
	c := s.ctx
	op := &engine.Output{Name: name, Open: open, From: s.id, Elem: reflect.TypeFor[T]().String()}
	op.Run = func(t time.Time) (err error) {
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
		ctx := c.e.OutputContext(t)
		c.rctx().InScope(op.ID, t.UnixMilli(), func() { err = fn(ctx, ds, t) })
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	c.e.AddOutput(op)
	return op
}

// Rerun reports whether ctx, a ForeachRDD function's context, belongs to an
// interval that was started before a restart of the master and is run
// again: its output may already have been written, in part or whole, so an
// external write should be idempotent (keyed by the interval time).
func Rerun(ctx context.Context) bool { return engine.Rerun(ctx) }

// Epoch returns the epoch of the master's lease (Config.LeaseTTL) that a
// ForeachRDD function's context runs under: it grows with every change of
// master, so an external sink can fence (refuse a write that carries an
// epoch lower than one it has seen), as Kafka fences a producer. It is 0
// when the job has no lease (no checkpoint location).
func Epoch(ctx context.Context) uint64 { return engine.Epoch(ctx) }

// Holding returns nil while the master a ForeachRDD function's context
// belongs to still holds its lease, and otherwise a *LeaseLostError: check
// it just before an external commit. A master that lost its lease stops,
// but an output already running finishes unless it checks.
func Holding(ctx context.Context) error { return engine.Holding(ctx) }

// ForeachRDD runs fn on the driver for every interval's dataset, given the
// interval time and a context that is cancelled when the streaming context
// stops hard. fn typically runs actions on the dataset; its error fails the
// interval.
func ForeachRDD[T any](s *Stream[T], fn func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error) {
	_ = addOutput(s, "foreachRDD", nil, fn)
}

// Print writes the first n records of every interval to the context's Out,
// under a header naming the interval, as Spark's print does.
func (s *Stream[T]) Print(n int) {
	c := s.ctx
	_ = addOutput(s, "print", nil, func(ctx context.Context, ds *rdd.Dataset[T], t time.Time) error {
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
