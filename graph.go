package dstream

import (
	"fmt"
	"runtime"
	"time"

	"github.com/dstream/dstream/internal/engine"
	"github.com/dstream/dstream/rdd"
)

// parent is a stream another is computed from, whatever its record type.
type parent interface{ engineNode() engine.Node }

// Stream is a discretized stream of T: one dataset per interval (per slide,
// for windowed streams). Streams are built with this package's functions and
// computed lazily, interval by interval, once the context runs. Its runtime
// (the datasets by interval, a state stream's checkpoints) is the engine's
// Series; the Stream adds the API.
type Stream[T any] struct {
	ctx   *Context
	rt    *engine.Series[T]
	id    int32
	name  string
	slide time.Duration
	// nameTarget, on a stream an operator derives from its state stream
	// (MapWithState's), is the state stream Name names.
	nameTarget stateNamer
	companions []stateNamer // other state streams of the operator, named with it (Name)
}

// stateNamer is a state stream of any record type, named by Name.
type stateNamer interface{ nameState(name, at string) }

// newStream registers a stream in c's graph. Operator IDs are assigned in
// creation order, so every process that builds the same graph agrees on them.
func newStream[T any](c *Context, name string, slide time.Duration, compute func(time.Time) (*rdd.Dataset[T], error), parents ...parent) *Stream[T] {
	var nodes []engine.Node
	for _, p := range parents {
		nodes = append(nodes, p.engineNode())
	}
	rt := engine.NewSeries(c.e, name, slide, compute, nodes)
	return &Stream[T]{ctx: c, rt: rt, id: rt.OpID(), name: name, slide: slide}
}

func (s *Stream[T]) engineNode() engine.Node { return s.rt }

// Context returns the stream's context.
func (s *Stream[T]) Context() *Context { return s.ctx }

// Slide returns how often the stream produces a dataset.
func (s *Stream[T]) Slide() time.Duration { return s.slide }

func (s *Stream[T]) String() string { return s.rt.String() }

// At returns the stream's dataset for interval t, generating it (and what it
// depends on) on first use. It returns nil when the stream produces nothing
// at t (t is not a multiple of its slide, or precedes the start).
func (s *Stream[T]) At(t time.Time) (*rdd.Dataset[T], error) { return s.rt.At(t) }

// checkSlide records a graph error unless d is a positive multiple of the
// parent's slide.
func checkMultiple(c *Context, op, what string, d, base time.Duration) bool {
	if d <= 0 || d%base != 0 {
		c.setErr(fmt.Errorf("%s (%s): %s %v must be a positive multiple of %v", op, caller(), what, d, base))
		return false
	}
	return true
}

// checkSameSlide records a graph error unless the streams slide together.
func checkSameSlide(c *Context, op string, a, b time.Duration) bool {
	if a != b {
		c.setErr(fmt.Errorf("%s (%s): streams slide by %v and %v; they must slide together", op, caller(), a, b))
		return false
	}
	return true
}

// caller names the user's line that called into this package.
func caller() string {
	for skip := 2; skip < 12; skip++ {
		pc, file, line, ok := runtime.Caller(skip)
		if !ok {
			break
		}
		fn := runtime.FuncForPC(pc)
		if fn != nil && !isOwnFrame(fn.Name()) {
			return fmt.Sprintf("%s:%d", file, line)
		}
	}
	return "unknown caller"
}

func isOwnFrame(name string) bool {
	const pkg = "github.com/dstream/dstream."
	return len(name) > len(pkg) && name[:len(pkg)] == pkg
}
