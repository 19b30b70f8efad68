// Package admission sizes the block store's input share: how much received
// input may wait for its interval, so that the interval that runs next still
// finds room for the shuffle outputs it will make. It measures each
// interval's input and shuffle bytes (Measured) and answers the share
// (InputShare); it holds no lock and does no I/O: the engine's runner feeds
// it.
package admission

import "github.com/dstream/dstream/block"

// Memory: the budget (Config.MemoryBytes) is split as Spark's unified memory
// manager splits an executor's heap. storeFraction of it is the block store;
// the rest is for what running tasks hold outside it and for the runtime.
// Inside the store (package block): input and state are pinned and together
// never take the execution reserve; input holds at most the input share;
// shuffle outputs of running intervals are evicted only for other shuffle
// outputs and for state; cached partitions yield to everything.
//
// The input share adapts to the job. An interval whose input is I holds
// E(I) bytes of shuffle outputs while it runs, and when a backlog of input
// fills the share, the interval that runs next must still find E(I) bytes,
// or it would evict its own map outputs until its stage gives up. E is
// unknown but measured: after every interval the admission records (I, E),
// E being the shuffle bytes the interval added over what it started with
// (earlier intervals' shuffles a window or the remember duration still
// keeps). Shuffles grow with their input at most linearly (map-side
// combining makes them grow less: distinct keys), so one measurement
// (I_k, E_k) bounds E everywhere: E(I) <= E_k for I <= I_k, and
// E(I) <= I*E_k/I_k beyond. Once an interval is forgotten, the share is the
// largest I that some recent measurement proves safe beside what the next
// interval will start with (the state and the shuffles still kept):
//
//	I + state + kept shuffles + headroom*max(E_k, I*E_k/I_k) <= store
//
// within [minInputFraction, block.DefaultInputFraction] of the store. Before
// any measurement it assumes E = initialShuffleRatio*I.

const (
	// initialShuffleRatio is E/I before any interval has been measured:
	// a word count's combined pairs can take about twice its lines.
	initialShuffleRatio = 2.0
	// headroom covers intervals that shuffle more than the ones measured.
	headroom = 1.25
	// measurements is how many recent intervals the admission remembers.
	measurements = 8
	// minInputFraction of the store always stays open to input, so a job
	// whose shuffles are large still makes progress.
	minInputFraction = 0.1
)

// measurement is one interval's input bytes and most shuffle bytes held.
type measurement struct{ input, shuffle int64 }

// admission sets the block store's input share from measured intervals.
// Only the interval runner uses it.
type Admission struct {
	recent       []measurement // oldest first, at most measurements
	StartShuffle int64         // shuffle bytes held when the running interval started (the runner sets it)
}

// Measured records an interval that held peakShuffle bytes of shuffle
// outputs for inputBytes of input. Intervals with almost no input say
// nothing about input's shuffles and are skipped.
func (a *Admission) Measured(inputBytes, peakShuffle, storeBytes int64) {
	if inputBytes <= 0 || inputBytes < storeBytes/1000 {
		return
	}
	if len(a.recent) == measurements {
		a.recent = append(a.recent[:0], a.recent[1:]...)
	}
	a.recent = append(a.recent, measurement{inputBytes, peakShuffle})
}

// InputShare is the input share for a store of storeBytes of which held
// bytes (state, shuffles still kept) are not for the next interval (see
// above).
func (a *Admission) InputShare(storeBytes, held int64) int64 {
	room := float64(storeBytes - held)
	share := room / (1 + headroom*initialShuffleRatio)
	if len(a.recent) > 0 {
		share = 0
		for _, m := range a.recent {
			ratio := float64(m.shuffle) / float64(m.input)
			share = max(share, min(room-headroom*float64(m.shuffle), room/(1+headroom*ratio)))
		}
	}
	lo, hi := minInputFraction*float64(storeBytes), block.DefaultInputFraction*float64(storeBytes)
	return int64(max(lo, min(hi, share)))
}
