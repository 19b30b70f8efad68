package graphspec

import (
	"fmt"
	"strings"
)

// UpgradeOptions say which changes Upgrade accepts beyond the compatible ones.
type UpgradeOptions struct {
	// AllowDroppedState accepts a new graph without a named state the
	// checkpoint has: that state is not restored (its checkpoints stay in
	// the store, unread).
	AllowDroppedState bool
}

// Plan is what a graph resumes of a checkpoint written by another (or the
// same) graph: Upgrade's answer.
type Plan struct {
	// Changed is false when the graphs are the same: everything resumes.
	Changed bool
	// States maps each state stream of the new graph that resumes a
	// checkpointed state (by operator ID) to the old graph's node of that
	// state: the same node when the graph is unchanged, else the node of
	// the same name.
	States map[int32]Node
	// Inputs holds the input streams of the new graph whose positions
	// (logged blocks, file selections, offset ranges) are restored: those
	// at the same operator ID as the same kind of input, with the same
	// record type and slide.
	Inputs map[int32]bool
	// Same holds the streams of the new graph that are the old graph's
	// stream of the same ID: the same description, read from streams that
	// are the same. Per-stream records (event-time progress) of other
	// streams are not restored.
	Same map[int32]bool
	// Fresh are the new graph's state streams that start empty.
	Fresh []Node
	// Dropped are the old graph's named states the new graph lacks
	// (accepted only with UpgradeOptions.AllowDroppedState).
	Dropped []Node
	// NewInputs start at their configured start; DroppedInputs are the
	// old graph's inputs the new graph lacks.
	NewInputs, DroppedInputs []Node
}

// IncompatibleError says why a graph cannot resume a checkpoint written by
// another: one line per problem, each naming the state or input it is about.
type IncompatibleError struct {
	Problems []string
}

func (e *IncompatibleError) Error() string {
	if len(e.Problems) == 1 {
		return "the graph cannot resume the checkpoint: " + e.Problems[0]
	}
	return "the graph cannot resume the checkpoint: " + strings.Join(e.Problems, "; ")
}

// Upgrade decides whether graph cur may resume a checkpoint written by
// graph old, and what it resumes. The same graph resumes everything. A
// changed graph resumes only if every state of old is named (unnamed state
// is matched by position, which any change may shift: the error says to
// name it), and every named state of old is in cur under the same name
// with the same operator, state type, partitions, partitioner, slide and
// window (a missing one is refused unless opts.AllowDroppedState).
// Outputs, stateless streams, new state streams and new inputs may be
// added or removed around them. An input of old found at another operator
// ID in cur is refused: its positions are kept by operator ID.
func Upgrade(old, cur []Node, opts UpgradeOptions) (*Plan, error) {
	p := &Plan{States: map[int32]Node{}, Inputs: map[int32]bool{}, Same: map[int32]bool{}}
	oldByID := map[int32]Node{}
	for _, n := range old {
		oldByID[n.ID] = n
	}
	for _, n := range cur {
		o, ok := oldByID[n.ID]
		if !ok || !sameDescription(o, n) {
			continue
		}
		same := true
		for _, par := range n.Parents {
			same = same && p.Same[par]
		}
		p.Same[n.ID] = same
	}
	p.Changed = len(old) != len(cur)
	for _, n := range cur {
		p.Changed = p.Changed || !p.Same[n.ID]
	}
	if !p.Changed {
		for _, n := range cur {
			if n.State {
				p.States[n.ID] = oldByID[n.ID]
			}
			if isInput(n) {
				p.Inputs[n.ID] = true
			}
		}
		return p, nil
	}

	var problems []string
	named := map[string]Node{}
	for _, n := range cur {
		if !n.State || n.StateName == "" {
			continue
		}
		if d, ok := named[n.StateName]; ok {
			problems = append(problems, fmt.Sprintf("state %q: two state streams have the name (operators %d and %d)", n.StateName, d.ID, n.ID))
			continue
		}
		named[n.StateName] = n
	}
	resumed := map[int32]bool{}
	for _, o := range old {
		if !o.State {
			continue
		}
		if o.StateName == "" {
			problems = append(problems, fmt.Sprintf("the checkpoint's state %s is unnamed, and a graph with unnamed state resumes only unchanged (%s); "+
				"name every state stream (Stream.Name) so that later versions of the graph can change around it, "+
				"and start this version from a fresh checkpoint folder (naming a state is itself a change)", o, firstDifference(old, cur)))
			continue
		}
		n, ok := named[o.StateName]
		if !ok {
			if opts.AllowDroppedState {
				p.Dropped = append(p.Dropped, o)
				continue
			}
			problems = append(problems, fmt.Sprintf("state %q (%s) is not in this graph; "+
				"to drop it, set Config.AllowDroppedState", o.StateName, o))
			continue
		}
		if why := stateChange(o, n); why != "" {
			problems = append(problems, fmt.Sprintf("state %q: %s", o.StateName, why))
			continue
		}
		p.States[n.ID] = o
		resumed[n.ID] = true
	}
	for _, n := range cur {
		if n.State && !resumed[n.ID] {
			p.Fresh = append(p.Fresh, n)
		}
	}

	curInputs := map[int32]Node{}
	for _, n := range cur {
		if isInput(n) {
			curInputs[n.ID] = n
			if p.Same[n.ID] {
				p.Inputs[n.ID] = true
			} else {
				p.NewInputs = append(p.NewInputs, n)
			}
		}
	}
	for _, o := range old {
		if !isInput(o) || p.Inputs[o.ID] {
			continue
		}
		moved := false
		for _, n := range cur {
			if isInput(n) && !p.Inputs[n.ID] && n.Name == o.Name && n.Type == o.Type && n.Slide == o.Slide {
				problems = append(problems, fmt.Sprintf("input %q of %s was operator %d and is operator %d in this graph: "+
					"an input's positions are kept by operator ID, so create the inputs first, in the same order", o.Name, o.Type, o.ID, n.ID))
				moved = true
				break
			}
		}
		if !moved {
			p.DroppedInputs = append(p.DroppedInputs, o)
		}
	}
	if len(problems) > 0 {
		return nil, &IncompatibleError{Problems: problems}
	}
	return p, nil
}

// isInput reports whether n is an input stream: a stream read from no other.
func isInput(n Node) bool { return n.Kind == "stream" && len(n.Parents) == 0 }

// stateChange says what makes state o, checkpointed, unreadable as n; ""
// when nothing does. A detail old left empty (a description written
// before it existed) is not compared.
func stateChange(o, n Node) string {
	switch {
	case o.Name != n.Name:
		return fmt.Sprintf("its operator changed from %s to %s", o.Name, n.Name)
	case o.StateType != "" && o.StateType != n.StateType, o.StateType == "" && o.Type != n.Type:
		return fmt.Sprintf("its record type changed from %s to %s (a key or value type changed: the checkpoint cannot be read as the new type)", o.Type, n.Type)
	case o.Partitions > 0 && o.Partitions != n.Partitions:
		return fmt.Sprintf("its partitions changed from %d to %d", o.Partitions, n.Partitions)
	case o.Partitioner != "" && o.Partitioner != n.Partitioner:
		return fmt.Sprintf("its partitioner changed from %s to %s", o.Partitioner, n.Partitioner)
	case o.Slide != n.Slide:
		return fmt.Sprintf("its slide changed from %v to %v", o.Slide, n.Slide)
	case o.Window != n.Window:
		return fmt.Sprintf("its window changed from %q to %q", o.Window, n.Window)
	}
	return ""
}

// sameDescription reports whether o and n describe the same operator at
// the same position: equal but for the details o left empty.
func sameDescription(o, n Node) bool {
	if o.StateType == "" {
		n.StateType = ""
	}
	if o.Partitions == 0 {
		n.Partitions = 0
	}
	if o.Partitioner == "" {
		n.Partitioner = ""
	}
	if o.Window == "" {
		n.Window = ""
	}
	return o.String() == n.String()
}

// firstDifference says where cur first differs from old, as Diff does.
func firstDifference(old, cur []Node) string {
	for i := range max(len(old), len(cur)) {
		switch {
		case i >= len(old):
			return fmt.Sprintf("operator %d is new: %s", i+1, cur[i])
		case i >= len(cur):
			return fmt.Sprintf("operator %d is gone: %s", i+1, old[i])
		case !sameDescription(old[i], cur[i]):
			return fmt.Sprintf("operator %d was %s and is %s", i+1, old[i], cur[i])
		}
	}
	return "the graphs are the same"
}
