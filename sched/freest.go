package sched

import "container/heap"

// freest orders a core's workers for placement: the most free slots first,
// ties to the earliest added (the order Core documents). It is a binary
// heap indexed by each worker's position, so that placing a task or
// freeing a slot costs O(log workers), where a scan of every worker per
// task made a cluster's per-task cost grow with its size
// (BenchmarkCoreInterval).
type freest struct {
	h   workerHeap
	seq uint64 // the last addition's number
}

// add places a new worker.
func (f *freest) add(w *worker) {
	f.seq++
	w.seq = f.seq
	heap.Push(&f.h, w)
}

// remove takes a worker out.
func (f *freest) remove(w *worker) { heap.Remove(&f.h, w.pos) }

// fix restores the order after w.free changed.
func (f *freest) fix(w *worker) { heap.Fix(&f.h, w.pos) }

// best returns the freest worker with a free slot that skip does not
// reject, or nil. It visits the heap best first, so it looks at one worker
// more than skip rejects: skip is for a few exclusions (the reserved
// worker, the one a task already runs on).
func (f *freest) best(skip func(*worker) bool) *worker {
	if len(f.h) == 0 {
		return nil
	}
	frontier := []int{0}
	for len(frontier) > 0 {
		b := 0
		for i := 1; i < len(frontier); i++ {
			if f.h.Less(frontier[i], frontier[b]) {
				b = i
			}
		}
		at := frontier[b]
		w := f.h[at]
		if w.free <= 0 {
			return nil // the best left has no slot: nor has any below it
		}
		if !skip(w) {
			return w
		}
		frontier = append(frontier[:b], frontier[b+1:]...)
		for _, c := range [...]int{2*at + 1, 2*at + 2} {
			if c < len(f.h) {
				frontier = append(frontier, c)
			}
		}
	}
	return nil
}

// workerHeap is container/heap's view of the workers, each knowing its
// position.
type workerHeap []*worker

func (h workerHeap) Len() int { return len(h) }

func (h workerHeap) Less(i, j int) bool {
	if h[i].free != h[j].free {
		return h[i].free > h[j].free
	}
	return h[i].seq < h[j].seq
}

func (h workerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}

func (h *workerHeap) Push(x any) {
	w := x.(*worker)
	w.pos = len(*h)
	*h = append(*h, w)
}

func (h *workerHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return w
}
