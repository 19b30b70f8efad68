package dstream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// GraphNode describes one operator of a graph the way every process that
// builds the graph must see it: a master and a worker agree on the graph
// when they agree on every node, in order.
type GraphNode struct {
	ID      int32         // operator ID, in creation order
	Kind    string        // "stream" or "output"
	Name    string        // the operator's name, e.g. "map", "reduceByKeyAndWindow", "saveAsTextFiles"
	Type    string        // the element type of the stream (of the stream an output reads)
	Slide   time.Duration // how often the stream produces a dataset (streams)
	Parents []int32       // the streams it reads
	State   bool          // checkpointed every interval
}

func (n GraphNode) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s of %s", n.Kind, n.ID, n.Name, n.Type)
	if n.Kind == "stream" {
		fmt.Fprintf(&b, " sliding %v", n.Slide)
	}
	if len(n.Parents) > 0 {
		fmt.Fprintf(&b, " from %v", n.Parents)
	}
	if n.State {
		b.WriteString(" (state)")
	}
	return b.String()
}

// Graph describes the context's graph: every stream, then every output, in
// creation order.
func (c *Context) Graph() []GraphNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := make([]GraphNode, 0, len(c.nodes)+len(c.outputs))
	for _, n := range c.nodes {
		g = append(g, n.describe())
	}
	for _, op := range c.outputs {
		g = append(g, GraphNode{ID: op.id, Kind: "output", Name: op.name, Type: op.elem, Parents: []int32{op.from}})
	}
	slices.SortStableFunc(g, func(a, b GraphNode) int { return int(a.ID) - int(b.ID) })
	return g
}

func (s *Stream[T]) describe() GraphNode {
	n := GraphNode{ID: s.id, Kind: "stream", Name: s.name, Type: reflect.TypeFor[T]().String(), Slide: s.slide, State: s.isState}
	for _, p := range s.parents {
		n.Parents = append(n.Parents, p.opID())
	}
	return n
}

// GraphFingerprint is a short, stable digest of a graph description: equal
// graphs have equal fingerprints in every process and every build.
func GraphFingerprint(g []GraphNode) string {
	h := sha256.New()
	for _, n := range g {
		fmt.Fprintf(h, "%s\n", n)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// DiffGraphs returns nil when the graphs are equal, else an error naming
// the first difference: the operator, its position, and what each side has.
// A worker whose graph differs from its master's is refused with it.
func DiffGraphs(ours, theirs []GraphNode) error {
	for i := range max(len(ours), len(theirs)) {
		switch {
		case i >= len(ours):
			return fmt.Errorf("graphs differ at operator %d: only the other side has %s (it has %d operators, this one %d)", i+1, theirs[i], len(theirs), len(ours))
		case i >= len(theirs):
			return fmt.Errorf("graphs differ at operator %d: only this side has %s (it has %d operators, the other %d)", i+1, ours[i], len(ours), len(theirs))
		case ours[i].String() != theirs[i].String():
			return fmt.Errorf("graphs differ at operator %d: this side has %s, the other %s", i+1, ours[i], theirs[i])
		}
	}
	return nil
}
