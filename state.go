package dstream

import (
	"errors"
	"time"

	"github.com/dstream/dstream/rdd"
)

// Opt is an optional value (rdd.Opt).
type Opt[T any] = rdd.Opt[T]

// Some wraps a present value.
func Some[T any](v T) Opt[T] { return Opt[T]{Value: v, OK: true} }

// None is an absent value.
func None[T any]() Opt[T] { return Opt[T]{} }

// stateStream builds a stream whose dataset at t is step(state at t-slide,
// input at t); it is checkpointed every interval so its lineage stays one
// interval deep and old states can be forgotten.
func stateStream[K comparable, V, S any](s *Stream[Pair[K, V]], name string, n int,
	step func(t time.Time, prev *rdd.Dataset[Pair[K, S]], in *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, S]]) *Stream[Pair[K, S]] {
	c := s.ctx
	var self *Stream[Pair[K, S]]
	self = newStream(c, name, s.slide, func(t time.Time) (*rdd.Dataset[Pair[K, S]], error) {
		prev, err := self.At(t.Add(-s.slide))
		if err != nil {
			return nil, err
		}
		if prev == nil {
			prev = rdd.Empty[Pair[K, S]](c.rctx())
		}
		in, err := s.rt.AtOrEmpty(t)
		if err != nil {
			return nil, err
		}
		return step(t, prev, in), nil
	}, s)
	self.rt.MarkState(n, "")
	self.rt.RememberAtLeast(2 * s.slide)
	return self
}

// UpdateStateByKey keeps a state per key across intervals: every interval,
// update is called for every key that has new values or a state, with the
// key's new values (in arrival order) and its previous state; returning an
// empty Opt removes the key. The stream yields every key's state each interval.
func UpdateStateByKey[K comparable, V, S any](s *Stream[Pair[K, V]], update func(values []V, state Opt[S]) Opt[S], n int) *Stream[Pair[K, S]] {
	return stateStream(s, "updateStateByKey", n, func(_ time.Time, prev *rdd.Dataset[Pair[K, S]], in *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, S]] {
		cg := rdd.Cogroup(prev, in, n)
		return rdd.FlatMapSameKey(cg, func(kg Pair[K, rdd.Grouped[S, V]]) []Pair[K, S] {
			var st Opt[S]
			if len(kg.Value.Left) > 0 {
				st = Some(kg.Value.Left[0])
			}
			next := update(kg.Value.Right, st)
			if !next.OK {
				return nil
			}
			return []Pair[K, S]{{Key: kg.Key, Value: next.Value}}
		})
	})
}

// State is the per-key state handed to a MapWithState function.
type State[S any] struct {
	value     S
	exists    bool
	timingOut bool
	updated   bool
	removed   bool
}

// ErrTimingOut is returned by Update and Remove on a state that is timing out.
var ErrTimingOut = errors.New("dstream: state is timing out; it cannot be updated or removed")

// Exists reports whether the key has a state.
func (s *State[S]) Exists() bool { return s.exists }

// Get returns the state (the zero value if none).
func (s *State[S]) Get() S { return s.value }

// Update sets the state.
func (s *State[S]) Update(v S) error {
	if s.timingOut {
		return ErrTimingOut
	}
	s.value, s.exists, s.updated, s.removed = v, true, true, false
	return nil
}

// Remove deletes the state.
func (s *State[S]) Remove() error {
	if s.timingOut {
		return ErrTimingOut
	}
	var zero S
	s.value, s.exists, s.removed, s.updated = zero, false, true, false
	return nil
}

// IsTimingOut reports whether the call is the key's timeout call: no new
// value, the state idle for the spec's timeout, and removed after the call.
func (s *State[S]) IsTimingOut() bool { return s.timingOut }

// StateSpec configures MapWithState.
type StateSpec[K, V, S, U any] struct {
	// Func is called once per new record of a key (value set), and once with
	// an empty value when the key times out. Its result, when present, is
	// emitted on the mapped stream.
	Func func(t time.Time, key K, value Opt[V], state *State[S]) Opt[U]
	// Timeout removes a key's state after it has seen no record for this
	// long (measured in interval time); 0 keeps states until removed.
	Timeout time.Duration
	// NumPartitions of the state; <= 0 uses the context's default.
	NumPartitions int
}

// mwsEntry is the per-key record of mapWithState's internal state stream:
// the state, when it was last updated, and what the interval emitted.
type mwsEntry[S, U any] struct {
	State   S
	Exists  bool
	Updated int64 // interval ms of the last record
	Emitted []U
}

// MapWithStateStream is the stream of values emitted by a MapWithState
// function; StateSnapshots gives the states themselves.
type MapWithStateStream[K comparable, S, U any] struct {
	*Stream[U]
	snapshots *Stream[Pair[K, S]]
}

// StateSnapshots yields, every interval, every key's current state.
func (m *MapWithStateStream[K, S, U]) StateSnapshots() *Stream[Pair[K, S]] { return m.snapshots }

// MapWithState keeps a state per key and maps every record through
// spec.Func with access to it; unlike UpdateStateByKey it calls the function
// only for keys with new records (and timed-out ones). The state stays hash
// partitioned from interval to interval, so only the new records are
// shuffled; each state partition is still rebuilt every interval (a copy
// proportional to the state, not a shuffle).
func MapWithState[K comparable, V, S, U any](s *Stream[Pair[K, V]], spec StateSpec[K, V, S, U]) *MapWithStateStream[K, S, U] {
	timeout := spec.Timeout.Milliseconds()
	internal := stateStream(s, "mapWithState", spec.NumPartitions, func(t time.Time, prev *rdd.Dataset[Pair[K, mwsEntry[S, U]]], in *rdd.Dataset[Pair[K, V]]) *rdd.Dataset[Pair[K, mwsEntry[S, U]]] {
		now := t.UnixMilli()
		cg := rdd.Cogroup(prev, in, spec.NumPartitions)
		return rdd.FlatMapSameKey(cg, func(kg Pair[K, rdd.Grouped[mwsEntry[S, U], V]]) []Pair[K, mwsEntry[S, U]] {
			var e mwsEntry[S, U]
			if len(kg.Value.Left) > 0 {
				e = kg.Value.Left[0]
			}
			e.Emitted = nil
			st := State[S]{value: e.State, exists: e.Exists}
			if len(kg.Value.Right) > 0 {
				for _, v := range kg.Value.Right {
					st.updated, st.removed = false, false
					if out := spec.Func(t, kg.Key, Some(v), &st); out.OK {
						e.Emitted = append(e.Emitted, out.Value)
					}
				}
				e.Updated = now
			} else if e.Exists && timeout > 0 && now-e.Updated >= timeout {
				st.timingOut = true
				if out := spec.Func(t, kg.Key, None[V](), &st); out.OK {
					e.Emitted = append(e.Emitted, out.Value)
				}
				st.exists = false
			}
			e.State, e.Exists = st.value, st.exists
			if !e.Exists && len(e.Emitted) == 0 {
				return nil
			}
			return []Pair[K, mwsEntry[S, U]]{{Key: kg.Key, Value: e}}
		})
	})
	mapped := FlatMap(internal, func(p Pair[K, mwsEntry[S, U]]) []U { return p.Value.Emitted })
	snaps := FlatMap(internal, func(p Pair[K, mwsEntry[S, U]]) []Pair[K, S] {
		if !p.Value.Exists {
			return nil
		}
		return []Pair[K, S]{{Key: p.Key, Value: p.Value.State}}
	})
	mapped.nameTarget, snaps.nameTarget = internal, internal
	return &MapWithStateStream[K, S, U]{Stream: mapped, snapshots: snaps}
}

// Name names the operator's state (Stream.Name). It returns m.
func (m *MapWithStateStream[K, S, U]) Name(name string) *MapWithStateStream[K, S, U] {
	m.nameTarget.nameState(name, caller())
	return m
}
