// Package graphspec describes a stream graph as data: its operators in
// creation order, a fingerprint of them, and the first difference between
// two. Every process of a program builds the same graph; a master compares
// a joining worker's description with its own and refuses a worker whose
// graph differs, naming the first difference. A master restarted on a
// checkpoint written by another graph asks Upgrade which state and inputs
// the new graph resumes (upgrade.go).
package graphspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Node describes one operator of a graph the way every process that
// builds the graph must see it: a master and a worker agree on the graph
// when they agree on every node, in order.
type Node struct {
	ID      int32         // operator ID, in creation order
	Kind    string        // "stream" or "output"
	Name    string        // the operator's name, e.g. "map", "reduceByKeyAndWindow", "saveAsTextFiles"
	Type    string        // the element type of the stream (of the stream an output reads)
	Slide   time.Duration // how often the stream produces a dataset (streams)
	Parents []int32       // the streams it reads
	State   bool          // checkpointed every interval

	// State streams only: what a checkpoint of the state depends on.
	// Empty in descriptions written before they existed (Upgrade then
	// does not compare them).
	StateName   string `json:",omitempty"` // the name the program gave the state (Stream.Name); "" unnamed
	StateType   string `json:",omitempty"` // TypeFingerprint of the state's record type
	Partitions  int    `json:",omitempty"` // how many partitions the state has
	Partitioner string `json:",omitempty"` // how keys are placed in them ("hash")
	Window      string `json:",omitempty"` // the window the state covers, as the operator describes it; "" none
}

func (n Node) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s of %s", n.Kind, n.ID, n.Name, n.Type)
	if n.Kind == "stream" {
		fmt.Fprintf(&b, " sliding %v", n.Slide)
	}
	if len(n.Parents) > 0 {
		fmt.Fprintf(&b, " from %v", n.Parents)
	}
	if n.State {
		b.WriteString(" (state")
		if n.StateName != "" {
			fmt.Fprintf(&b, " %q", n.StateName)
		}
		if n.StateType != "" {
			fmt.Fprintf(&b, " type %s", n.StateType)
		}
		if n.Partitions > 0 {
			fmt.Fprintf(&b, " %d %s partitions", n.Partitions, n.Partitioner)
		}
		if n.Window != "" {
			fmt.Fprintf(&b, " %s", n.Window)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Fingerprint is a short, stable digest of a graph description: equal
// graphs have equal fingerprints in every process and every build.
func Fingerprint(g []Node) string {
	h := sha256.New()
	for _, n := range g {
		fmt.Fprintf(h, "%s\n", n)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Diff returns nil when the graphs are equal, else an error naming
// the first difference: the operator, its position, and what each side has.
// A worker whose graph differs from its master's is refused with it.
func Diff(ours, theirs []Node) error {
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
