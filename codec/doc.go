// Package codec encodes records where they cross a process: shuffle fetches,
// block replication, remote reads, task results sent to the master. Records
// that stay in one process are never encoded: blocks and shuffle buckets are
// typed Go slices, and so is what a codec encodes and decodes.
//
// For[T] picks the codec for records of type T once per type (and caches
// it); Register[T] installs a user codec for T. Every process of an SPMD
// program builds the same graph, so every process registers the same codecs
// and picks the same codec for the same T.
//
// # Which type goes to which codec
//
// For[T] decides from T alone, in this order, and the same rules apply to
// every type nested inside T (a field, an element, a key, a value):
//
//  1. Registered: a type passed to Register uses its registered codec,
//     wherever it appears.
//  2. Its own methods: a type whose pointer implements both
//     encoding.BinaryMarshaler and encoding.BinaryUnmarshaler (time.Time,
//     netip.Addr, ...) is encoded by those methods; failing that, one
//     implementing both gob.GobEncoder and gob.GobDecoder (big.Int) by
//     those. A struct whose methods are promoted from an embedded field is
//     refused when it has any other field, because the promoted method
//     would encode the embedded field alone; reflection cannot tell a
//     method the struct declares from a promoted one, so such a struct is
//     refused even when it declares its own (Register a codec for it).
//  3. Built in, by kind: bool; int, int8..
//     int64 (zigzag varints, int8 as one byte); uint, uint8..uint64 and
//     uintptr (varints, uint8 as one byte); float32 and float64 (their IEEE
//     bits, fixed width: NaN payloads and -0.0 survive); complex64 and
//     complex128; string (any bytes, valid UTF-8 or not); []byte; arrays;
//     slices, maps and pointers of encodable types; structs whose fields are
//     all exported and encodable, among them struct{} (no bytes at all),
//     kv.Pair[K, V] and kv.Opt[T] of any encodable K, V and T. These are
//     compiled once per type, with reflection, into a tree of encoders that
//     walk the records in place through offsets and function pointers.
//     Blocks of strings, of int64s (and ints, where int is 64 bits) and of
//     pairs laid out as {string, int64} or {string, int}
//     (kv.Pair[string, int64], rdd.Pair[string, int], a user's
//     struct{ Word string; N int64 }) have hand-written loops that write the
//     same bytes. Two things still use reflection per value: maps (per
//     entry: prefer slices of pairs on hot paths), and allocating a slice or
//     pointer target whose element is a struct holding pointers (other than
//     the pair layout above).
//  4. Refused, with an *UnsupportedTypeError from For naming the type, where
//     in it the problem is, and why: funcs and channels (code and
//     synchronisation cannot cross a process), unsafe.Pointer, interfaces
//     (the decoder cannot know the dynamic type), structs with an unexported
//     field (encoding/gob would skip it silently; here it is an error),
//     recursive types (their values may form cycles), and structs that hold
//     memory but would encode to nothing (only blank fields). Register a
//     codec to encode any of them; Gob[T] is a ready-made one for types
//     gob handles (interfaces after gob.Register), at gob's speed and with
//     gob's silent loss of unexported fields.
//
// There is deliberately no silent fallback to encoding/gob: the built-in
// structural codec covers plain exported structs, and it is several times
// faster than gob and loses nothing without saying so.
//
// # What survives a round trip
//
// Decode(Append(nil, xs)) equals xs value for value, with these rules:
//   - nil and empty slices and maps nested in a record stay distinct; a
//     block with no records decodes to a nil slice, whether xs was nil or
//     empty;
//   - floats keep their exact bits (NaN payloads, -0.0, infinities);
//   - strings keep their exact bytes, valid UTF-8 or not;
//   - pointers are followed: each non-nil pointer decodes to a fresh value,
//     so two pointers that shared a value no longer do;
//   - blank (_) struct fields are not encoded and decode as zero;
//   - map entries are written in Go's iteration order, so equal maps may
//     encode to different bytes (they decode equal);
//   - decoded records never alias the encoded input (registered codecs and
//     UnmarshalBinary and GobDecode methods must copy what they keep, as
//     encoding.BinaryUnmarshaler requires);
//   - a slice or block holds at most 2^24 values of a zero-size type
//     (struct{}): only their count is on the wire, so a larger count is
//     taken for garbage, and Append refuses to write one.
//
// # Block format
//
// A block is a header, then the records. The header is one magic byte
// (0xD5), the format version (1), the record type's 8-byte fingerprint
// (FNV-1a of the type's canonical description: its package path and name,
// the layout of everything the codec encodes, and which codec encodes it)
// and the record count as a varint. Decode checks all of it before touching
// the records: a block of another type fails with a *MismatchError naming
// both types ("block holds kv.Pair[string,int64], want
// kv.Pair[string,int]"), and truncated or garbage input fails with an error
// wrapping ErrCorrupt, never a panic and never a short or garbled slice.
// Integrity of the bytes in transit is the transport's job: there is no
// checksum.
package codec
