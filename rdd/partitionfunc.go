package rdd

import (
	"context"
	"fmt"
	"reflect"

	"github.com/dstream/dstream/codec"
)

// Partition functions: a named function of one partition's records and a
// run-time argument, registered when the graph is built (so every process
// has it) and run as a result task anywhere (KindPartitionFunc). Queries on
// a running stream are built from them: the function runs where the
// partition is, and only its result crosses to the submitter.

const partitionFuncKind = "func"

// KindPartitionFunc runs partition function id with arg.
func KindPartitionFunc(id int, arg string) ResultKind {
	return ResultKind{Name: partitionFuncKind, N: id, Arg: arg}
}

// partitionFunc is a registered partition function, typed inside.
type partitionFunc struct {
	in     reflect.Type // the record type it takes
	run    func(tc *TaskContext, d any, p int, arg string) (any, error)
	encode func(v any) ([]byte, error)
	decode func(b []byte) (any, error)
}

// RegisterPartitionFunc registers fn as partition function id of c: a
// result task of kind KindPartitionFunc(id, arg) over a dataset of T calls
// fn with the partition's records and arg, and its result (of a type with a
// codec: package codec) crosses to the submitting process. Register while
// the graph is built, in every process alike.
func RegisterPartitionFunc[T, R any](c *Context, id int, fn func(tc *TaskContext, records []T, arg string) (R, error)) error {
	rc, err := codec.For[R]()
	if err != nil {
		return fmt.Errorf("partition function %d: its result cannot cross processes: %w", id, err)
	}
	pf := &partitionFunc{
		in: reflect.TypeFor[T](),
		run: func(tc *TaskContext, d any, p int, arg string) (any, error) {
			ds, ok := d.(*Dataset[T])
			if !ok {
				return nil, fmt.Errorf("partition function %d takes %v records, not those of %v", id, reflect.TypeFor[T](), d)
			}
			xs := ds.partition(tc, p) // fn's own: it may reorder them
			tc.wrote(int64(len(xs)))
			return fn(tc, xs, arg)
		},
		encode: func(v any) ([]byte, error) { return rc.Append(nil, []R{v.(R)}) },
		decode: func(b []byte) (any, error) {
			rs, err := rc.Decode(b)
			if err != nil {
				return nil, err
			}
			if len(rs) != 1 {
				return nil, fmt.Errorf("partition function %d: %d results in one answer", id, len(rs))
			}
			return rs[0], nil
		},
	}
	if _, loaded := c.funcs.LoadOrStore(id, pf); loaded {
		return fmt.Errorf("partition function %d is registered twice", id)
	}
	return nil
}

func (c *Context) partitionFunc(id int) (*partitionFunc, error) {
	v, ok := c.funcs.Load(id)
	if !ok {
		return nil, fmt.Errorf("no partition function %d is registered", id)
	}
	return v.(*partitionFunc), nil
}

// RunPartitionFunc runs partition function id with arg on the given
// partitions of d (all when parts is nil) and returns the results in the
// order of parts.
func RunPartitionFunc[T, R any](ctx context.Context, d *Dataset[T], id int, arg string, parts []int) ([]R, error) {
	if parts == nil {
		parts = allPartitions(d.node.NumPartitions)
	}
	return runNamed[T, R](ctx, d, KindPartitionFunc(id, arg), parts)
}

// RunPartitionFuncBackground is RunPartitionFunc as a background job
// (Job.Background): its tasks take the workers' background slots, beside
// the tasks of the intervals that follow.
func RunPartitionFuncBackground[T, R any](ctx context.Context, d *Dataset[T], id int, arg string, parts []int) ([]R, error) {
	if parts == nil {
		parts = allPartitions(d.node.NumPartitions)
	}
	kind := KindPartitionFunc(id, arg)
	return runJob[T, R](ctx, d, &Job{Name: kind.Name, Final: d.node, Partitions: parts, Kind: kind, Background: true})
}
