package dstream

import (
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
