package cluster

import (
	"slices"
	"strconv"
	"time"
)

// Membership is the master's registry of workers as a pure core, as
// sched.Core is for tasks: it is fed events (a registration, a heartbeat, a
// tick of the clock, a worker dropped because a peer found it unreachable)
// and returns decisions (the reply to the worker, the membership changes to
// deliver, the facts worth logging, when to tick next). It takes no locks,
// reads no clock, does no I/O and starts no goroutines, so the same events
// and times always give the same decisions; transcripts test it
// (testdata/membership). Master is its shell: a mutex around it, a clock, the
// gRPC handlers and the delivery of changes.
//
// The registry holds alive and lost workers, by id, in registration order,
// at most MaxWorkers of them (alive and lost). A worker's registration is
// an incarnation: each admitted registration gets the next number (1, 2, …,
// counted by this core), and heartbeats must name the alive incarnation.
//
// Rules:
//
//   - Register under an id held by an alive worker with another pid or
//     address is refused (RefusedHeld), so two processes sharing an id cannot
//     take turns replacing each other; the client retries until the holder
//     is lost. One from the same pid and address (the process registering
//     again) replaces the alive registration: it is declared lost
//     (FactReplaced, a WorkerLost event), then the new one added. One under
//     the id of a lost worker replaces that entry silently.
//   - Register with an empty id gets "worker-N", the first N not in the
//     registry.
//   - When the registry is full, the oldest lost entry is forgotten
//     (FactForgotten) to make room; if every entry is alive the registration
//     is refused (RefusedFull).
//   - A heartbeat from an id and incarnation not registered alive is refused
//     (RefusedNotRegistered): the worker must register again, as a new
//     incarnation. A heartbeat moves the worker's LastHeartbeat forward
//     (never back) and records its stats.
//   - Tick(now) declares lost every alive worker whose last heartbeat is at
//     least WorkerTimeout before now (FactExpired).
//   - Drop(address) declares lost every alive worker serving at address
//     (FactDropped).
//
// A lost worker stays in the registry (Workers shows it) until it registers
// again or is forgotten to make room.
type Membership struct {
	timeout time.Duration
	max     int

	workers map[string]*WorkerInfo
	order   []string // registry ids, oldest registration first
	nextID  uint64   // for core-assigned ids
	nextInc uint64
}

// NewMembership returns an empty registry in which a worker without a
// heartbeat for workerTimeout is lost and which holds at most maxWorkers
// entries. Zero or negative values take DefaultWorkerTimeout and
// DefaultMaxWorkers.
func NewMembership(workerTimeout time.Duration, maxWorkers int) *Membership {
	if workerTimeout <= 0 {
		workerTimeout = DefaultWorkerTimeout
	}
	if maxWorkers <= 0 {
		maxWorkers = DefaultMaxWorkers
	}
	return &Membership{timeout: workerTimeout, max: maxWorkers, workers: make(map[string]*WorkerInfo)}
}

// Registration is what a worker registers with: its RegisterRequest, once
// the shell has checked its graph and fields, and the address its
// connection came from.
type Registration struct {
	ID          string // "" lets the core assign one
	Address     string // where the worker serves its peers
	Peer        string // the address its connection came from
	PID         int64
	Slots       int
	MemoryBytes int64
}

// Refusal says why a registration or heartbeat was refused, if it was.
type Refusal int

const (
	// Admitted: not refused.
	Admitted Refusal = iota
	// RefusedHeld: an alive worker with another pid or address holds the
	// id (Reply.Worker is that worker).
	RefusedHeld
	// RefusedFull: the registry is full of alive workers.
	RefusedFull
	// RefusedNotRegistered: a heartbeat from an id and incarnation that is
	// not registered alive.
	RefusedNotRegistered
)

func (r Refusal) String() string {
	switch r {
	case Admitted:
		return "admitted"
	case RefusedHeld:
		return "held"
	case RefusedFull:
		return "full"
	case RefusedNotRegistered:
		return "not-registered"
	}
	return "Refusal(" + strconv.Itoa(int(r)) + ")"
}

// Reply is the answer to a registration or heartbeat.
type Reply struct {
	Refusal Refusal
	// Worker is the worker as the registry now holds it when admitted (its
	// ID and Incarnation are the reply's), the alive holder of the id when
	// RefusedHeld, and zero otherwise.
	Worker WorkerInfo
}

// FactKind says what a Fact records.
type FactKind int

const (
	// FactRegistered: a worker was admitted.
	FactRegistered FactKind = iota
	// FactReplaced: an alive worker was declared lost because the same
	// process registered again.
	FactReplaced
	// FactExpired: an alive worker was declared lost because its last
	// heartbeat is WorkerTimeout old.
	FactExpired
	// FactDropped: an alive worker was declared lost by Drop.
	FactDropped
	// FactForgotten: a lost worker was removed from the registry to make
	// room for a registration.
	FactForgotten
)

func (k FactKind) String() string {
	switch k {
	case FactRegistered:
		return "registered"
	case FactReplaced:
		return "replaced"
	case FactExpired:
		return "expired"
	case FactDropped:
		return "dropped"
	case FactForgotten:
		return "forgotten"
	}
	return "FactKind(" + strconv.Itoa(int(k)) + ")"
}

// Fact is something worth logging that an event caused, with the worker as
// it was then.
type Fact struct {
	Kind   FactKind
	Worker WorkerInfo
	Reason string // FactDropped: Drop's reason
}

// Changes are what one event changed: the membership events to deliver, in
// the order they happened, and the facts worth logging, in the same order.
type Changes struct {
	Events []Event
	Facts  []Fact
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Events) == 0 && len(c.Facts) == 0 }

func (c *Changes) lose(w *WorkerInfo, kind FactKind, reason string) {
	w.State = Lost
	c.Events = append(c.Events, Event{WorkerLost, *w})
	c.Facts = append(c.Facts, Fact{Kind: kind, Worker: *w, Reason: reason})
}

// Workers returns a copy of the registry, alive and lost workers, in
// registration order.
func (m *Membership) Workers() []WorkerInfo {
	out := make([]WorkerInfo, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, *m.workers[id])
	}
	return out
}

// Register admits r at now, or refuses it; see Membership for the rules.
func (m *Membership) Register(now time.Time, r Registration) (Reply, Changes) {
	var ch Changes
	id := r.ID
	if id == "" {
		for {
			m.nextID++
			id = "worker-" + strconv.FormatUint(m.nextID, 10)
			if _, taken := m.workers[id]; !taken {
				break
			}
		}
	}
	if old, ok := m.workers[id]; ok {
		if old.State == Alive && (old.PID != r.PID || old.Address != r.Address) {
			return Reply{Refusal: RefusedHeld, Worker: *old}, ch
		}
		if old.State == Alive {
			ch.lose(old, FactReplaced, "")
		}
		m.remove(id)
	}
	if !m.makeRoom(&ch) {
		return Reply{Refusal: RefusedFull}, ch
	}
	m.nextInc++
	w := &WorkerInfo{
		ID: id, Incarnation: m.nextInc, Address: r.Address, Peer: r.Peer,
		PID: r.PID, Slots: r.Slots, MemoryBytes: r.MemoryBytes,
		Registered: now, LastHeartbeat: now, State: Alive,
	}
	m.workers[id] = w
	m.order = append(m.order, id)
	ch.Events = append(ch.Events, Event{WorkerAdded, *w})
	ch.Facts = append(ch.Facts, Fact{Kind: FactRegistered, Worker: *w})
	return Reply{Worker: *w}, ch
}

func (m *Membership) remove(id string) {
	delete(m.workers, id)
	m.order = slices.DeleteFunc(m.order, func(s string) bool { return s == id })
}

// makeRoom makes room for one more entry by forgetting the oldest lost
// worker if needed; it reports whether there is room.
func (m *Membership) makeRoom(ch *Changes) bool {
	if len(m.order) < m.max {
		return true
	}
	for _, id := range m.order {
		if w := m.workers[id]; w.State == Lost {
			ch.Facts = append(ch.Facts, Fact{Kind: FactForgotten, Worker: *w})
			m.remove(id)
			return true
		}
	}
	return false
}

// Heartbeat records a heartbeat at now from worker id's incarnation, with
// the memory it uses and the blocks it holds, or refuses it
// (RefusedNotRegistered) unless that incarnation is registered alive. A
// heartbeat changes no membership.
func (m *Membership) Heartbeat(now time.Time, id string, incarnation uint64, st Stats) Reply {
	w, ok := m.workers[id]
	if !ok || w.Incarnation != incarnation || w.State != Alive {
		return Reply{Refusal: RefusedNotRegistered}
	}
	if now.After(w.LastHeartbeat) {
		w.LastHeartbeat = now
	}
	w.MemoryUsed, w.Blocks, w.ReceiverDropped = st.MemoryUsed, st.Blocks, st.ReceiverDropped
	return Reply{Worker: *w}
}

// Stats are what a worker's heartbeat reports of it.
type Stats struct {
	MemoryUsed, Blocks int64
	// ReceiverDropped: by stream, what the receivers running on it dropped
	// as malformed; the core keeps the map as given.
	ReceiverDropped map[int32]int64
}

// Tick declares lost every alive worker whose last heartbeat is at least
// WorkerTimeout before now, and returns when it should be called next: the
// earliest deadline of an alive worker, or now+WorkerTimeout if that is
// earlier (as it is when none is alive). A worker registered after now has
// a deadline after now+WorkerTimeout, so a shell that sleeps until next
// misses no expiry.
func (m *Membership) Tick(now time.Time) (next time.Time, ch Changes) {
	next = now.Add(m.timeout)
	for _, id := range m.order {
		w := m.workers[id]
		if w.State != Alive {
			continue
		}
		deadline := w.LastHeartbeat.Add(m.timeout)
		if !now.Before(deadline) {
			ch.lose(w, FactExpired, "")
		} else if deadline.Before(next) {
			next = deadline
		}
	}
	return next, ch
}

// Drop declares lost every alive worker serving at address, for reason (a
// peer found it unreachable). If such a worker is in fact alive, its next
// heartbeat is refused and it registers again, as a new incarnation.
func (m *Membership) Drop(address, reason string) Changes {
	var ch Changes
	for _, id := range m.order {
		if w := m.workers[id]; w.State == Alive && w.Address == address {
			ch.lose(w, FactDropped, reason)
		}
	}
	return ch
}
