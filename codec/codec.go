package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"sync"
)

// Codec encodes and decodes blocks: slices of records of type T.
//
// A Codec is safe for concurrent use. The codecs For returns are stateless.
type Codec[T any] interface {
	// Append appends the encoding of xs, one self-describing block, to dst
	// and returns the extended buffer. It fails only when a type's own
	// MarshalBinary or GobEncode, or a registered codec, fails (or a slice
	// holds more than 2^24 struct{}); then it returns the buffer cut back to
	// dst's length, holding dst's contents, and an error naming the record.
	Append(dst []byte, xs []T) ([]byte, error)
	// Decode returns the records of a block Append wrote. The records never
	// alias src. A block of another type fails with a *MismatchError, a
	// block of another format version with an error saying so, and
	// truncated or garbage input with an error wrapping ErrCorrupt.
	Decode(src []byte) ([]T, error)
}

// ErrCorrupt is wrapped by every error Decode returns for input that is
// truncated, has trailing bytes, or is otherwise not a block this codec
// wrote.
var ErrCorrupt = errors.New("corrupt block")

// MismatchError is Decode's error for a well-formed block of another record
// type: decoding it as the wanted type would yield garbage.
type MismatchError struct {
	// Have names the block's record type, when this process has built a
	// codec for it (in an SPMD program it has); otherwise it says the type
	// is unknown and gives its fingerprint.
	Have string
	// Want names the record type of the codec that was asked to decode.
	Want string
}

func (e *MismatchError) Error() string {
	return "codec: block holds " + e.Have + ", want " + e.Want
}

// UnsupportedTypeError is For's error for a record type that cannot be
// encoded without losing data or meaning.
type UnsupportedTypeError struct {
	// Type is the record type For was asked for.
	Type reflect.Type
	// Path locates the culprit inside Type: "" for Type itself, then
	// ".Field" for a struct field, "[i]" for a slice or array element,
	// "{key}" for a map key, "[k]" for a map value and "*" for what a
	// pointer points to; for example ".Value.Next*".
	Path string
	// Culprit is the type that cannot be encoded.
	Culprit reflect.Type
	// Reason says why, and what to do instead.
	Reason string
}

func (e *UnsupportedTypeError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("codec: cannot encode %v: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("codec: cannot encode %v: %s (%v): %s", e.Type, e.Path, e.Culprit, e.Reason)
}

// For returns the codec for records of type T, choosing it from T the first
// time (see the package documentation for which type goes to which codec)
// and returning the same codec afterwards. A type that cannot be encoded
// fails with an *UnsupportedTypeError; such failures are not cached, so a
// later Register can still make the type encodable. For is safe for
// concurrent use; callers on a hot path should keep the codec rather than
// calling For per block.
func For[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	if c, ok := codecs.Load(t); ok {
		return c.(Codec[T]), nil
	}
	mu.Lock()
	defer mu.Unlock()
	if c, ok := codecs.Load(t); ok {
		return c.(Codec[T]), nil
	}
	comp := compiler{top: t, visiting: make(map[reflect.Type]bool)}
	n, err := comp.node(t, "")
	if err != nil {
		return nil, err
	}
	h := newHeader(t, n)
	var c Codec[T]
	if r, ok := registry[t]; ok {
		h.min = -1 // the body is the registered codec's own: no bound per record
		c = &registeredCodec[T]{h: h, c: r.codec.(Codec[T])}
	} else {
		c = fastCodec[T](h, n)
		if c == nil {
			c = &treeCodec[T]{h: h, n: n, zero: n.min == 0}
		}
	}
	if old, ok := names.LoadOrStore(h.fp, t.String()); ok && old != t.String() {
		// Two types with one fingerprint: a 64-bit FNV collision. Blocks
		// of one would decode as the other, so refuse the second.
		return nil, &UnsupportedTypeError{Type: t, Culprit: t, Reason: fmt.Sprintf("its fingerprint %016x collides with %s's; rename one", h.fp, old)}
	}
	comp.commit()
	codecs.Store(t, c)
	return c, nil
}

// Register makes c the codec for T everywhere T appears: as a record type
// and nested in other records (a pair's value, a slice's element). c's
// Append must write an encoding its Decode reverses exactly; c must be safe
// for concurrent use. The package wraps c's output in its own header (with a
// fingerprint naming T and "registered") so blocks of T are checked like any
// other; nested in another record, each value is framed by its length and
// encoded by c as a one-record slice, so c should be cheap on short slices.
// A panic in c's Decode is returned as an error wrapping ErrCorrupt.
//
// Register T before any For whose codec involves T, as the program builds its
// graph, the same in every process. It fails when T is already registered or
// when a codec already built encodes T some other way.
func Register[T any](c Codec[T]) error {
	t := reflect.TypeFor[T]()
	if c == nil {
		return fmt.Errorf("codec: Register[%v] with a nil codec", t)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := registry[t]; ok {
		return fmt.Errorf("codec: Register[%v]: %v already has a registered codec", t, t)
	}
	if used[t] {
		return fmt.Errorf("codec: Register[%v] after For built a codec that encodes %v another way; register before building codecs", t, t)
	}
	registry[t] = registered{codec: c, node: registeredNode(t, c)}
	return nil
}

// Gob returns a codec that encodes a block as one encoding/gob stream. It is
// meant for Register, for types the built-in codecs refuse and gob handles:
// interface fields (after gob.Register of the concrete types), or structs
// whose unexported fields may be dropped. Beware gob's silent rules: it
// skips unexported fields, decodes nil and empty slices alike, and follows
// pointers. It is several times slower than the built-in codecs.
func Gob[T any]() Codec[T] { return gobCodec[T]{} }

type gobCodec[T any] struct{}

func (gobCodec[T]) Append(dst []byte, xs []T) ([]byte, error) {
	n := len(dst)
	w := bytes.NewBuffer(dst)
	if err := gob.NewEncoder(w).Encode(gobBlock[T]{xs}); err != nil {
		return dst[:n], fmt.Errorf("codec: gob encoding []%v: %w", reflect.TypeFor[T](), err)
	}
	return w.Bytes(), nil
}

func (gobCodec[T]) Decode(src []byte) ([]T, error) {
	var b gobBlock[T]
	r := bytes.NewReader(src)
	if err := gob.NewDecoder(r).Decode(&b); err != nil {
		return nil, fmt.Errorf("codec: gob decoding []%v: %w: %v", reflect.TypeFor[T](), ErrCorrupt, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("codec: gob decoding []%v: %w: %d trailing bytes", reflect.TypeFor[T](), ErrCorrupt, r.Len())
	}
	return b.X, nil
}

// gobBlock wraps a block so that gob, which refuses a nil or empty top-level
// slice, accepts every block.
type gobBlock[T any] struct{ X []T }

// The process-wide state: codecs built, registered codecs, the types built
// codecs have committed to, and fingerprint → type name for error messages.
var (
	mu       sync.Mutex // guards registry, used and nodes; serialises building
	codecs   sync.Map   // reflect.Type → Codec[T]
	names    sync.Map   // fingerprint → reflect.Type.String()
	registry = map[reflect.Type]registered{}
	used     = map[reflect.Type]bool{}
	nodes    = map[reflect.Type]*node{}
)

type registered struct {
	codec any // Codec[T]
	node  *node
}

// Block header: magic, version, fingerprint (little endian), then the record
// count as a uvarint.
const (
	magic      = 0xD5
	version    = 1
	headerSize = 10
)

// header is what a codec for one type knows about its blocks' header.
type header struct {
	prefix [headerSize]byte
	fp     uint64
	name   string // the record type, for messages
	min    int    // fewest bytes a record encodes to; -1 when unknown
}

func newHeader(t reflect.Type, n *node) *header {
	f := fnv.New64a()
	f.Write([]byte("dstream/codec/1\x00"))
	f.Write([]byte(n.desc))
	h := &header{fp: f.Sum64(), name: t.String(), min: n.min}
	h.prefix[0], h.prefix[1] = magic, version
	binary.LittleEndian.PutUint64(h.prefix[2:], h.fp)
	return h
}

func (h *header) append(dst []byte, n int) []byte {
	dst = append(dst, h.prefix[:]...)
	return appendUvarint(dst, uint64(n))
}

// open checks src's header and returns the record count and the body.
func (h *header) open(src []byte) (int, []byte, error) {
	if len(src) < headerSize {
		return 0, nil, h.corrupt(fmt.Sprintf("%d bytes, shorter than a header", len(src)))
	}
	if src[0] != magic {
		return 0, nil, h.corrupt(fmt.Sprintf("first byte %#x is not a codec block's", src[0]))
	}
	if src[1] != version {
		return 0, nil, fmt.Errorf("codec: decoding %s: block format version %d, this build reads version %d", h.name, src[1], version)
	}
	if fp := binary.LittleEndian.Uint64(src[2:]); fp != h.fp {
		have := fmt.Sprintf("an unknown type (fingerprint %016x)", fp)
		if name, ok := names.Load(fp); ok {
			have = name.(string)
			if have == h.name {
				have += fmt.Sprintf(" with another layout or codec (fingerprint %016x, this build's is %016x)", fp, h.fp)
			}
		}
		return 0, nil, &MismatchError{Have: have, Want: h.name}
	}
	n, k := binary.Uvarint(src[headerSize:])
	if k <= 0 {
		return 0, nil, h.corrupt("bad record count")
	}
	body := src[headerSize+k:]
	if n > uint64(maxInt) || h.min > 0 && n > uint64(len(body)/h.min) || h.min == 0 && n > maxZeroSize {
		// Checked before anything is allocated for the records.
		return 0, nil, h.corrupt(fmt.Sprintf("%d records cannot fit in %d bytes", n, len(body)))
	}
	return int(n), body, nil
}

func (h *header) corrupt(what string) error {
	return fmt.Errorf("codec: decoding %s: %w: %s", h.name, ErrCorrupt, what)
}

// recordErr places a decoding error: which record, at which byte of src.
func (h *header) recordErr(i int, src []byte, rest int, err error) error {
	return fmt.Errorf("codec: decoding %s: record %d at byte %d: %w", h.name, i, len(src)-rest, err)
}

func (h *header) trailing(n int) error {
	return h.corrupt(fmt.Sprintf("%d trailing bytes", n))
}

// registeredCodec frames a registered codec's output in a header.
type registeredCodec[T any] struct {
	h *header
	c Codec[T]
}

func (r *registeredCodec[T]) Append(dst []byte, xs []T) ([]byte, error) {
	n := len(dst)
	out, err := r.c.Append(r.h.append(dst, len(xs)), xs)
	if err != nil {
		return dst[:n], fmt.Errorf("codec: encoding %s: %w", r.h.name, err)
	}
	return out, nil
}

func (r *registeredCodec[T]) Decode(src []byte) (xs []T, err error) {
	n, body, err := r.h.open(src)
	if err != nil {
		return nil, err
	}
	xs, err = callDecode(r.c, body)
	if err != nil {
		return nil, fmt.Errorf("codec: decoding %s: %w", r.h.name, err)
	}
	if len(xs) != n {
		return nil, r.h.corrupt(fmt.Sprintf("the registered codec decoded %d records, the header says %d", len(xs), n))
	}
	if n == 0 {
		return nil, nil
	}
	return xs, nil
}

// callDecode runs a registered codec's Decode, turning a panic into an error.
func callDecode[T any](c Codec[T], b []byte) (xs []T, err error) {
	defer func() {
		if p := recover(); p != nil {
			xs, err = nil, fmt.Errorf("%w: the registered codec panicked: %v", ErrCorrupt, p)
		}
	}()
	xs, err = c.Decode(b)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return xs, err
}
