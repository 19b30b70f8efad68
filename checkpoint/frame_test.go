package checkpoint

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		version int
		payload []byte
	}{
		{"empty", "", 0, nil},
		{"json", "dstream.manifest", 1, []byte(`{"v":1}`)},
		{"binary", "part", 7, []byte{0, 1, 2, 0xff, 'D', 'S', 'F', 'R'}},
		{"longest kind, largest version", strings.Repeat("k", MaxKind), MaxVersion, bytes.Repeat([]byte("x"), 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Frame(tt.kind, tt.version, tt.payload)
			kind, v, payload, err := Unframe(b)
			if err != nil {
				t.Fatal(err)
			}
			if kind != tt.kind || v != tt.version || !bytes.Equal(payload, tt.payload) {
				t.Fatalf("Unframe = %q, %d, %q", kind, v, payload)
			}
			// Frames concatenate: UnframePrefix returns what follows.
			two := AppendFrame(append([]byte(nil), b...), "next", 2, []byte("tail"))
			_, _, _, rest, err := UnframePrefix(two)
			if err != nil {
				t.Fatal(err)
			}
			if kind, v, payload, err := Unframe(rest); err != nil || kind != "next" || v != 2 || string(payload) != "tail" {
				t.Fatalf("second frame = %q, %d, %q, %v", kind, v, payload, err)
			}
			if !bytes.Equal(Frame(tt.kind, tt.version, tt.payload), b) {
				t.Fatal("equal arguments framed differently")
			}
		})
	}
}

func TestUnframeRefuses(t *testing.T) {
	good := Frame("kind", 3, []byte("payload"))
	with := func(i int, c byte) []byte {
		b := bytes.Clone(good)
		b[i] = c
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want FrameProblem
	}{
		{"empty", nil, FrameTruncated},
		{"part of the magic", []byte("DS"), FrameTruncated},
		{"only the magic", []byte("DSFR"), FrameTruncated},
		{"short and foreign", []byte("GE"), FrameBadMagic},
		{"foreign", []byte("GET / HTTP/1.1\r\n\r\n"), FrameBadMagic},
		{"header without kind", good[:fixedHeader], FrameTruncated},
		{"last byte missing", good[:len(good)-1], FrameTruncated},
		{"trailing byte", append(bytes.Clone(good), 0), FrameTrailing},
		{"payload altered", with(len(good)-5, 'P'), FrameBadChecksum},
		{"version altered", with(fixedHeader-6+len("kind"), 9), FrameBadChecksum},
		{"checksum altered", with(len(good)-1, good[len(good)-1]^1), FrameBadChecksum},
		{"length grown", with(fixedHeader+len("kind")-1, good[fixedHeader+len("kind")-1]+1), FrameTruncated},
		{"newer format", with(4, frameFormat+1), FrameUnknownVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := Unframe(tt.in)
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Problem != tt.want {
				t.Fatalf("Unframe = %v, want a %v FrameError", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want.String()) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			corrupt, unknown := errors.Is(err, ErrCorrupt), errors.Is(err, ErrUnknownVersion)
			if corrupt == unknown || unknown != (tt.want == FrameUnknownVersion) {
				t.Errorf("errors.Is(ErrCorrupt) = %v, errors.Is(ErrUnknownVersion) = %v", corrupt, unknown)
			}
			if errors.Is(err, ErrNotFound) {
				t.Error("a bad frame reads as not found")
			}
		})
	}
}

// Every single-bit flip, anywhere, and every truncation is refused.
func TestUnframeRefusesEveryFlipAndCut(t *testing.T) {
	good := Frame("dstream.commit", 1, []byte("a payload of some length"))
	for i := range good {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			if _, _, _, err := Unframe(b); err == nil {
				t.Fatalf("byte %d bit %d flipped: accepted", i, bit)
			} else if !errors.Is(err, ErrCorrupt) && !(i == 4 && errors.Is(err, ErrUnknownVersion)) {
				t.Fatalf("byte %d bit %d flipped: %v is neither corrupt nor (format byte) unknown version", i, bit, err)
			}
		}
	}
	for n := range len(good) {
		if _, _, _, err := Unframe(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("first %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
}

func TestFramePanicsOnProgrammingErrors(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		version int
	}{
		{"kind too long", strings.Repeat("k", MaxKind+1), 0},
		{"negative version", "k", -1},
		{"version too large", "k", MaxVersion + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Frame did not panic")
				}
			}()
			Frame(tt.kind, tt.version, nil)
		})
	}
}

func FuzzUnframe(f *testing.F) {
	good := Frame("dstream.manifest", 1, []byte(`{"v":1}`))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), good...))
	f.Add(Frame("", 0, nil))
	f.Add([]byte("DSFR"))
	f.Add([]byte("DSFR\x01\xff"))
	f.Add([]byte("DSFR\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, v, payload, err := Unframe(b)
		if err == nil {
			// A frame is canonical: what decodes re-encodes to itself.
			if again := Frame(kind, v, payload); !bytes.Equal(again, b) {
				t.Fatalf("Unframe accepted %x, which reframes as %x", b, again)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) {
			t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnknownVersion", err)
		}
		kind, v, payload, rest, err := UnframePrefix(b)
		if err == nil {
			if again := append(Frame(kind, v, payload), rest...); !bytes.Equal(again, b) {
				t.Fatalf("UnframePrefix accepted %x, which reframes as %x", b, again)
			}
		}
	})
}
