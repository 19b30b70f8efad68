package cluster

import (
	"sync"

	"github.com/dstream/dstream/cluster/clusterpb"
	"github.com/dstream/dstream/rdd"
)

// placements remembers where each stream shuffle's reduce tasks last ran,
// by the shuffle's place in the graph (its operator and sequence number:
// the same shuffle of every interval), so that the next interval's map
// tasks push their buckets there (RunTaskRequest.push_to) and its reduce
// tasks, when nothing else draws them, go back there: Drizzle's reuse of
// placement across intervals, learned from the last interval rather than
// fixed for a group. Wrong guesses cost a push and a fetch, never a
// result: the map outputs stay where they were written.
//
// It holds one entry per stream shuffle of the graph (static datasets'
// shuffles, new with every job, are not remembered), at most
// maxPlacements. It is safe for concurrent use.
type placements struct {
	mu sync.Mutex
	m  map[shuffleSlot][]string
}

// shuffleSlot is a stream shuffle's place in the graph.
type shuffleSlot struct{ op, seq int32 }

// maxPlacements bounds the shuffles remembered: past it, the oldest
// guesses are all dropped (a graph has far fewer shuffles).
const maxPlacements = 4096

func slotOf(id rdd.ID) (shuffleSlot, bool) {
	return shuffleSlot{id.Op, id.Seq}, id.Time != 0
}

// note records that reduce partition r of shuffle (of n reduce partitions)
// ran on worker.
func (p *placements) note(shuffle rdd.ID, n, r int, worker string) {
	k, ok := slotOf(shuffle)
	if !ok || r < 0 || r >= n {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPlacements {
		p.m = make(map[shuffleSlot][]string)
	}
	locs := p.m[k]
	if len(locs) != n {
		locs = make([]string, n)
		p.m[k] = locs
	}
	locs[r] = worker
}

// of returns where reduce partition r of shuffle last ran ("" unknown).
func (p *placements) of(shuffle rdd.ID, r int) string {
	k, ok := slotOf(shuffle)
	if !ok {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if locs := p.m[k]; r >= 0 && r < len(locs) {
		return locs[r]
	}
	return ""
}

// pushTo sets req's push targets for a map task of shuffle (n reduce
// partitions) running on worker: every partition last reduced elsewhere.
func (p *placements) pushTo(req *clusterpb.RunTaskRequest, shuffle rdd.ID, n int, worker string) {
	k, ok := slotOf(shuffle)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	locs := p.m[k]
	if len(locs) != n {
		return
	}
	to := make([]int32, n)
	var peers []string
	index := map[string]int32{}
	for r, addr := range locs {
		if addr == "" || addr == worker {
			continue
		}
		i, ok := index[addr]
		if !ok {
			peers = append(peers, addr)
			i = int32(len(peers))
			index[addr] = i
		}
		to[r] = i
	}
	if len(peers) > 0 {
		req.PushPeers, req.PushTo = peers, to
	}
}

// forget drops every guess naming worker (lost, or joined again).
func (p *placements) forget(worker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, locs := range p.m {
		for r, addr := range locs {
			if addr == worker {
				locs[r] = ""
			}
		}
	}
}
