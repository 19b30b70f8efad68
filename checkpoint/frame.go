package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// frameMagic begins every frame; frameFormat is the layout Frame writes.
var frameMagic = [4]byte{'D', 'S', 'F', 'R'}

const (
	frameFormat = 1
	// fixedHeader is the header without the kind.
	fixedHeader = len(frameMagic) + 1 + 1 + 2 + 4
	crcLen      = 4
)

// Limits of a frame's fields.
const (
	MaxKind    = math.MaxUint8  // longest kind, in bytes
	MaxVersion = math.MaxUint16 // largest version
	MaxPayload = math.MaxUint32 // longest payload, in bytes
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the errors of reads that found an object
// truncated, damaged or not a frame at all. Such an object must not be used;
// an older copy may be.
var ErrCorrupt = errors.New("checkpoint: corrupt")

// ErrUnknownVersion is wrapped by the errors of reads that found a frame
// this program cannot read because a newer one wrote it. It is not
// corruption: falling back to older data would silently lose newer.
var ErrUnknownVersion = errors.New("checkpoint: unknown version")

// A FrameProblem says what is wrong with a frame.
type FrameProblem int

const (
	// FrameTruncated: the input ends before the frame does.
	FrameTruncated FrameProblem = iota + 1
	// FrameBadMagic: the input does not begin with a frame's magic number.
	FrameBadMagic
	// FrameBadChecksum: the bytes do not match their checksum.
	FrameBadChecksum
	// FrameTrailing: bytes follow a whole frame where none may.
	FrameTrailing
	// FrameWrongKind: a whole frame, but not of the kind the reader
	// expects (returned by readers of a kind, such as ReadCommit).
	FrameWrongKind
	// FrameUnknownVersion: the frame's layout, or (for errors returned
	// by readers of a kind, such as ReadCommit) its payload, has a
	// version this program does not know.
	FrameUnknownVersion
)

var problems = [...]string{
	FrameTruncated:      "truncated",
	FrameBadMagic:       "bad magic number",
	FrameBadChecksum:    "checksum mismatch",
	FrameTrailing:       "trailing bytes",
	FrameWrongKind:      "of the wrong kind",
	FrameUnknownVersion: "unknown version",
}

func (p FrameProblem) String() string {
	if p > 0 && int(p) < len(problems) {
		return problems[p]
	}
	return fmt.Sprintf("FrameProblem(%d)", int(p))
}

// A FrameError is returned by Unframe and UnframePrefix for input they
// refuse. It wraps ErrUnknownVersion if Problem is FrameUnknownVersion and
// ErrCorrupt otherwise.
type FrameError struct {
	Problem FrameProblem
	Detail  string // what was found, for people
}

func (e *FrameError) Error() string {
	return "checkpoint: frame " + e.Problem.String() + ": " + e.Detail
}

// Unwrap returns ErrCorrupt or ErrUnknownVersion.
func (e *FrameError) Unwrap() error {
	if e.Problem == FrameUnknownVersion {
		return ErrUnknownVersion
	}
	return ErrCorrupt
}

func frameErr(p FrameProblem, format string, args ...any) error {
	return &FrameError{Problem: p, Detail: fmt.Sprintf(format, args...)}
}

// Frame returns payload framed with its kind and version, laid out as
// follows (integers big-endian):
//
//	magic    4 bytes  "DSFR"
//	format   1 byte   1, the version of this layout
//	kindLen  1 byte
//	kind     kindLen bytes
//	version  2 bytes  the payload's version, the caller's to interpret
//	length   4 bytes  len(payload)
//	payload  length bytes
//	crc      4 bytes  CRC-32C (Castagnoli) of every byte before it
//
// The checksum covers the header too, so a flipped bit anywhere is caught.
// Equal arguments give equal bytes.
//
// Frame panics if kind is longer than
// MaxKind bytes, version is outside [0, MaxVersion] or payload is longer
// than MaxPayload bytes: those are programming errors.
func Frame(kind string, version int, payload []byte) []byte {
	return AppendFrame(nil, kind, version, payload)
}

// AppendFrame appends Frame(kind, version, payload) to dst and returns the
// extended slice.
func AppendFrame(dst []byte, kind string, version int, payload []byte) []byte {
	switch {
	case len(kind) > MaxKind:
		panic(fmt.Sprintf("checkpoint: frame kind of %d bytes, more than %d", len(kind), MaxKind))
	case version < 0 || version > MaxVersion:
		panic(fmt.Sprintf("checkpoint: frame version %d outside [0, %d]", version, MaxVersion))
	case uint64(len(payload)) > MaxPayload:
		panic(fmt.Sprintf("checkpoint: frame payload of %d bytes, more than %d", len(payload), uint64(MaxPayload)))
	}
	start := len(dst)
	dst = append(dst, frameMagic[:]...)
	dst = append(dst, frameFormat, byte(len(kind)))
	dst = append(dst, kind...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// Unframe decodes b, which must be exactly one frame. The payload aliases
// b. The error, if any, is a *FrameError saying whether b is truncated,
// damaged (checksum), not a frame (magic), followed by trailing bytes, or
// of an unknown frame format; it wraps ErrCorrupt or ErrUnknownVersion.
//
// Unframe does not interpret version: a reader that knows the versions of
// its kind checks it.
func Unframe(b []byte) (kind string, version int, payload []byte, err error) {
	kind, version, payload, rest, err := UnframePrefix(b)
	if err == nil && len(rest) > 0 {
		return "", 0, nil, frameErr(FrameTrailing, "%d bytes after a frame of %d", len(rest), len(b)-len(rest))
	}
	return kind, version, payload, err
}

// UnframePrefix decodes the frame at the start of b, as Unframe does, and
// returns the bytes after it in rest. It is for a sequence of frames in one
// buffer.
func UnframePrefix(b []byte) (kind string, version int, payload, rest []byte, err error) {
	if len(b) < len(frameMagic) {
		if bytes.HasPrefix(frameMagic[:], b) {
			return "", 0, nil, nil, frameErr(FrameTruncated, "%d bytes, shorter than a header", len(b))
		}
		return "", 0, nil, nil, frameErr(FrameBadMagic, "begins %q", b)
	}
	if [4]byte(b) != frameMagic {
		return "", 0, nil, nil, frameErr(FrameBadMagic, "begins %q, not %q", b[:4], frameMagic[:])
	}
	if len(b) < fixedHeader {
		return "", 0, nil, nil, frameErr(FrameTruncated, "%d bytes, shorter than a header", len(b))
	}
	if f := b[4]; f != frameFormat {
		return "", 0, nil, nil, frameErr(FrameUnknownVersion, "frame format %d, this program reads format %d", f, frameFormat)
	}
	hdr := fixedHeader + int(b[5])
	if len(b) < hdr {
		return "", 0, nil, nil, frameErr(FrameTruncated, "%d bytes, shorter than a header of %d", len(b), hdr)
	}
	n := binary.BigEndian.Uint32(b[hdr-4:])
	// Compare in uint64: hdr+n+crcLen may not fit an int on 32-bit machines.
	if need := uint64(hdr) + uint64(n) + crcLen; uint64(len(b)) < need {
		return "", 0, nil, nil, frameErr(FrameTruncated, "%d of %d bytes", len(b), need)
	}
	end := hdr + int(n)
	if got, want := binary.BigEndian.Uint32(b[end:]), crc32.Checksum(b[:end], castagnoli); got != want {
		return "", 0, nil, nil, frameErr(FrameBadChecksum, "stored %08x, computed %08x over %d bytes", got, want, end)
	}
	kind = string(b[fixedHeader-6 : hdr-6])
	version = int(binary.BigEndian.Uint16(b[hdr-6:]))
	return kind, version, b[hdr:end:end], b[end+crcLen:], nil
}
