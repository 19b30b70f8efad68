package cluster

import (
	"time"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/graphspec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// graphToProto converts a graph description for the wire.
func graphToProto(g []graphspec.Node) []*clusterpb.GraphNode {
	out := make([]*clusterpb.GraphNode, len(g))
	for i, n := range g {
		p := &clusterpb.GraphNode{Id: n.ID, Kind: n.Kind, Name: n.Name, Type: n.Type, Parents: n.Parents, State: n.State,
			StateName: n.StateName, StateType: n.StateType, Partitions: int32(n.Partitions), Partitioner: n.Partitioner, Window: n.Window}
		if n.Slide != 0 {
			p.Slide = durationpb.New(n.Slide)
		}
		out[i] = p
	}
	return out
}

// graphFromProto converts a graph description from the wire; a nil node
// becomes a zero node (which differs from any real operator).
func graphFromProto(g []*clusterpb.GraphNode) []graphspec.Node {
	out := make([]graphspec.Node, len(g))
	for i, p := range g {
		var slide time.Duration
		if p.GetSlide() != nil {
			slide = p.GetSlide().AsDuration()
		}
		out[i] = graphspec.Node{ID: p.GetId(), Kind: p.GetKind(), Name: p.GetName(), Type: p.GetType(), Slide: slide, Parents: p.GetParents(), State: p.GetState(),
			StateName: p.GetStateName(), StateType: p.GetStateType(), Partitions: int(p.GetPartitions()), Partitioner: p.GetPartitioner(), Window: p.GetWindow()}
	}
	return out
}
