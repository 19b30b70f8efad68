package ui

import (
	"net/http"
	"slices"

	"github.com/dstream/dstream"
)

// GraphNode is one operator of the application's stream graph, in
// GET /api/v1/graph: a stream, or an output that reads one.
type GraphNode struct {
	// ID ("id") is the operator's ID, in creation order.
	ID int32 `json:"id"`
	// Kind ("kind"): stream or output.
	Kind string `json:"kind"`
	// Name ("name") is the operator, e.g. "socket", "map",
	// "reduceByKeyAndWindow", "print".
	Name string `json:"name"`
	// Type ("type") is the element type of the stream (of the stream an
	// output reads), e.g. "string".
	Type string `json:"type"`
	// Slide ("slide") is how often a stream produces a dataset, in ms; null
	// for an output.
	Slide *int64 `json:"slide"`
	// Parents ("parents") are the IDs of the streams it reads.
	Parents []int32 `json:"parents"`
	// State ("state") marks a stream checkpointed every interval (state,
	// incremental windows).
	State bool `json:"state"`
}

// GraphNodes converts a context's graph description (dstream.Context.Graph)
// for SetGraph.
func GraphNodes(g []dstream.GraphNode) []GraphNode {
	out := make([]GraphNode, len(g))
	for i, n := range g {
		out[i] = GraphNode{ID: n.ID, Kind: n.Kind, Name: n.Name, Type: n.Type, Parents: slices.Clone(n.Parents), State: n.State}
		if out[i].Parents == nil {
			out[i].Parents = []int32{}
		}
		if n.Kind != "output" {
			out[i].Slide = ptr(n.Slide.Milliseconds())
		}
	}
	return out
}

// SetGraph sets the graph GET /api/v1/graph serves (a copy of nodes). Until
// it is called the Server serves its context's own graph
// (GraphNodes(sctx.Graph())), read at each request.
func (s *Server) SetGraph(nodes []GraphNode) {
	g := make([]GraphNode, len(nodes))
	for i, n := range nodes {
		n.Parents = slices.Clone(n.Parents)
		if n.Parents == nil {
			n.Parents = []int32{}
		}
		g[i] = n
	}
	s.graph.Store(&g)
}

// graphDoc serves GET /api/v1/graph.
func (s *Server) graphDoc(w http.ResponseWriter, r *http.Request) {
	if g := s.graph.Load(); g != nil {
		writeJSON(w, http.StatusOK, *g)
		return
	}
	writeJSON(w, http.StatusOK, GraphNodes(s.sctx.Graph()))
}
