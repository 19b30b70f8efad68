package dstream

import (
	"reflect"

	"github.com/dstream/dstream/graphspec"
)

// GraphNode describes one operator of a graph (graphspec.Node).
type GraphNode = graphspec.Node

// GraphFingerprint is a short, stable digest of a graph description
// (graphspec.Fingerprint).
func GraphFingerprint(g []GraphNode) string { return graphspec.Fingerprint(g) }

// DiffGraphs returns nil when the graphs are equal, else an error naming the
// first difference (graphspec.Diff).
func DiffGraphs(ours, theirs []GraphNode) error { return graphspec.Diff(ours, theirs) }

// Graph describes the context's graph: every stream, then every output, in
// creation order.
func (c *Context) Graph() []GraphNode { return c.e.Graph() }

func (s *Stream[T]) describe() GraphNode {
	n := GraphNode{ID: s.id, Kind: "stream", Name: s.name, Type: reflect.TypeFor[T]().String(), Slide: s.slide, State: s.isState}
	if s.isState {
		n.StateName, n.StateType = s.stateName, graphspec.TypeFingerprint(reflect.TypeFor[T]())
		n.Partitions, n.Partitioner, n.Window = s.partitions, "hash", s.window
	}
	for _, p := range s.parents {
		n.Parents = append(n.Parents, p.OpID())
	}
	return n
}
