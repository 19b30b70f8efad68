package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

const maxInt = math.MaxInt

// maxZeroSize bounds how many zero-size values (struct{} and the like, which
// encode to no bytes) one slice or block may hold: their count is the only
// thing on the wire, so without a bound a few garbage bytes could decode to a
// slice of 2^60 values that hangs whoever ranges over it.
const maxZeroSize = 1 << 24

var errZeroSize = fmt.Errorf("more than %d zero-size values in one slice or block", maxZeroSize)

// appendUvarint appends v as a uvarint (encoding/binary's format), with the
// one-byte case inlined.
func appendUvarint(dst []byte, v uint64) []byte {
	if v < 0x80 {
		return append(dst, byte(v))
	}
	return binary.AppendUvarint(dst, v)
}

// uvarintLen is the length of v's uvarint encoding.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// zig and unzig map signed integers to unsigned ones so that small
// magnitudes of either sign encode short.
func zig(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzig(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// Decoding errors below the header: they wrap ErrCorrupt and are allocated
// once.
var (
	errTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	errVarint    = fmt.Errorf("%w: varint overflows 64 bits", ErrCorrupt)
	errRange     = fmt.Errorf("%w: integer out of range for its type", ErrCorrupt)
	errBool      = fmt.Errorf("%w: bool byte is neither 0 nor 1", ErrCorrupt)
	errFlag      = fmt.Errorf("%w: pointer flag is neither 0 nor 1", ErrCorrupt)
	errLength    = fmt.Errorf("%w: length exceeds the input", ErrCorrupt)
	errDupKey    = fmt.Errorf("%w: duplicate map key", ErrCorrupt)
)

// decoder reads a block's body; b is what is left of it.
type decoder struct {
	b []byte
}

func (d *decoder) uvarint() (uint64, error) {
	if len(d.b) > 0 && d.b[0] < 0x80 {
		v := d.b[0]
		d.b = d.b[1:]
		return uint64(v), nil
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		if n == 0 {
			return 0, errTruncated
		}
		return 0, errVarint
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) byte() (byte, error) {
	if len(d.b) == 0 {
		return 0, errTruncated
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

// next returns the next n bytes, aliasing the input.
func (d *decoder) next(n uint64) ([]byte, error) {
	if n > uint64(len(d.b)) {
		return nil, errTruncated
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b, nil
}

// bytes returns a length-prefixed run of bytes, aliasing the input.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	return d.next(n)
}

// count reads a nil-or-length prefix (0 for nil, n+1 for length n) and checks
// that n elements of at least min bytes each fit in what is left. ok is false
// for nil.
func (d *decoder) count(min int) (n int, ok bool, err error) {
	l, err := d.uvarint()
	if err != nil || l == 0 {
		return 0, false, err
	}
	l--
	if l > uint64(maxInt) || min > 0 && l > uint64(len(d.b)/min) || min == 0 && l > maxZeroSize {
		return 0, false, errLength
	}
	return int(l), true, nil
}
