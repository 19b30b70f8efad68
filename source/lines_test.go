package source

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// errBroken stands for a connection that breaks mid-stream.
var errBroken = errors.New("connection reset")

// chunkReader serves data in reads whose sizes cycle through sizes (all of p
// when sizes is empty) and then ends with end (io.EOF or errBroken). With
// eofWithData the last read returns its bytes and end together, as some
// readers do.
type chunkReader struct {
	data        []byte
	sizes       []int
	i           int
	end         error
	eofWithData bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.end
	}
	n := len(p)
	if len(r.sizes) > 0 {
		n = min(n, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	if r.eofWithData && len(r.data) == 0 {
		return n, r.end
	}
	return n, nil
}

// refResult is what reading an input to its end must give.
type refResult struct {
	lines   []string // the lines returned, in order
	tooLong []int    // the sizes of the dropped lines, in order
	partial int      // when the input breaks: the size of the incomplete last line
}

// refLines is the naive reference of lineReader: split on "\n", strip one
// trailing "\r", drop (and report) every line longer than max. If the input
// ends without "\n", the rest is a last line at io.EOF but an incomplete
// line, reported as partial and otherwise dropped, when the input breaks.
func refLines(in []byte, max int, broken bool) refResult {
	var res refResult
	pieces := bytes.Split(in, []byte("\n"))
	last := pieces[len(pieces)-1]
	pieces = pieces[:len(pieces)-1]
	if len(last) > 0 {
		if broken {
			res.partial = len(last)
		} else {
			pieces = append(pieces, last)
		}
	}
	for _, p := range pieces {
		p = bytes.TrimSuffix(p, []byte("\r"))
		if len(p) > max {
			res.tooLong = append(res.tooLong, len(p))
		} else {
			res.lines = append(res.lines, string(p))
		}
	}
	return res
}

// readAll reads r to its end with a lineReader, checking the protocol of
// next on every call and the reader's memory bound.
func readAll(t *testing.T, r io.Reader, max int, inputSize int) (res refResult, endErr error) {
	t.Helper()
	lr := newLineReader(r, max, func(size int) { res.tooLong = append(res.tooLong, size) })
	for calls := 0; ; calls++ {
		if calls > inputSize+1 {
			t.Fatalf("no end after %d calls to next on %d bytes of input", calls, inputSize)
		}
		line, ok, partial, err := lr.next()
		// The line buffer never holds more than about max bytes (plus "\r\n"
		// and append's growth), whatever the input.
		if c := cap(lr.line); c > 2*(max+2)+4096 {
			t.Fatalf("line buffer capacity %d for max %d", c, max)
		}
		if ok {
			res.lines = append(res.lines, line)
		} else if line != "" {
			t.Fatalf("next returned line %q with ok == false", line)
		}
		switch {
		case err == nil:
			if !ok {
				t.Fatalf("next returned neither a line nor an error")
			}
			if partial != 0 {
				t.Fatalf("partial = %d with a complete line", partial)
			}
		case err == io.EOF:
			if partial != 0 {
				t.Fatalf("partial = %d at io.EOF", partial)
			}
			return res, err
		default:
			if ok {
				t.Fatalf("next returned line %q with error %v", line, err)
			}
			res.partial = partial
			return res, err
		}
	}
}

// expand replaces every 0xFF byte of pattern by run 'x' bytes, so that short
// fuzz inputs can describe lines longer than the read buffer. With run == 0,
// pattern is the input as is.
func expand(pattern []byte, run int) []byte {
	if run == 0 {
		return pattern
	}
	return bytes.ReplaceAll(pattern, []byte{0xFF}, bytes.Repeat([]byte{'x'}, run))
}

// FuzzLineReader checks lineReader against refLines on any input, any max
// (around the read buffer's size included), any split of the input into
// reads, and inputs that end cleanly, with data at io.EOF, or break.
//
// pattern: the input, with 0xFF standing for a run of runLen 'x' when runLen > 0;
// maxLen: the line limit (taken modulo 3 read buffers);
// runLen: taken modulo 3 read buffers;
// chunks: the sizes of successive reads, 1+c*c each (one read per call if empty);
// mode: bit 0, data and the end come together; bit 1, the input breaks.
func FuzzLineReader(f *testing.F) {
	const (
		buf   = readBufferSize
		cycle = 3 * readBufferSize
	)
	type seed struct {
		pattern string
		maxLen  uint32
		runLen  uint32
		chunks  string
		mode    uint8
	}
	for _, s := range []seed{
		{"", 10, 0, "", 0},
		{"a\nb\nc\n", 10, 0, "", 0},
		{"a\nb\nc", 10, 0, "", 0},                        // unterminated last line
		{"a\r\nb\r\n\r\n", 10, 0, "", 0},                 // CRLF, empty CRLF line
		{"a\r\r\n\r\n\r", 10, 0, "", 0},                  // only one "\r" is stripped
		{"a\rb\n\rc\n", 10, 0, "", 0},                    // inner "\r" kept
		{"\n\n\n", 0, 0, "", 0},                          // empty lines, max 0
		{"abc\nabcd\nab\r\nabcd\r\nabc", 3, 0, "", 0},    // at and over the limit
		{"abcd\r\n", 3, 0, "", 0},                        // over the limit with CRLF
		{"abcd\r", 3, 0, "", 0},                          // over the limit at EOF with "\r"
		{"abc\r", 3, 0, "", 0},                           // at the limit at EOF with "\r"
		{"\xff\xfe\x00\n\xc3\x28\n", 10, 0, "", 0},       // invalid UTF-8 and NUL pass through
		{"one\ntwo\nthree\n", 10, 0, "\x00", 0},          // one byte per read
		{"one\r\ntwo\r\nthree", 4, 0, "\x00\x01", 1},     // small reads, data with EOF
		{"one\ntwo\nthr", 10, 0, "", 2},                  // breaks mid-line
		{"one\ntwo\n", 10, 0, "\x02", 3},                 // breaks on a line boundary
		{"toolong\nok\ntoolongtoo", 3, 0, "\x01", 2},     // breaks in an over-long line
		{"\xff\nb\n", buf, buf, "", 0},                   // a line of exactly the buffer size
		{"\xff\nb\n", buf - 1, buf, "", 0},               // one byte too long, spans a buffer
		{"\xff\r\nb\n", buf, buf, "", 0},                 // "\r\n" just past the buffer
		{"\xff\r\nb\n", buf, buf - 1, "", 0},             // "\r" at the buffer's end, "\n" after
		{"\xff\r\nb\n", buf - 2, buf - 1, "", 0},         // too long, "\r" at the buffer's end
		{"\xff\nb\xff\n\xff", 2 * buf, 2*buf + 1, "", 0}, // lines over two buffers
		{"\xff\nb\n\xff", 10, 2 * buf, "", 0},            // long lines dropped, short kept
		{"\xff\r", buf, buf + 5, "", 0},                  // unterminated long line with "\r"
		{"\xff\r", 10, buf + 5, "", 0},                   // same, over the limit
		{"\xff\r", buf + 5, buf + 5, "", 0},              // same, at the limit
		{"a\n\xff", buf + 10, buf + 5, "\xff\x10", 2},    // breaks in a line longer than the buffer
		{"\xff\n\xff\n", buf + 100, buf + 100, "\xfe\x07\x35", 1},
	} {
		f.Add([]byte(s.pattern), s.maxLen, s.runLen, []byte(s.chunks), s.mode)
	}
	f.Fuzz(func(t *testing.T, pattern []byte, maxLen, runLen uint32, chunks []byte, mode uint8) {
		limit := int(maxLen % cycle)
		in := expand(pattern, int(runLen%cycle))
		broken := mode&2 != 0
		r := &chunkReader{data: slices.Clone(in), end: io.EOF, eofWithData: mode&1 != 0}
		if broken {
			r.end = errBroken
		}
		for _, c := range chunks {
			r.sizes = append(r.sizes, 1+int(c)*int(c))
		}

		got, err := readAll(t, r, limit, len(in))
		want := refLines(in, limit, broken)
		if broken && !errors.Is(err, errBroken) {
			t.Fatalf("the input broke but next ended with %v", err)
		}
		if !slices.Equal(got.lines, want.lines) {
			t.Errorf("lines: got %d, want %d", len(got.lines), len(want.lines))
			for i := range max(len(got.lines), len(want.lines)) {
				var g, w string
				if i < len(got.lines) {
					g = got.lines[i]
				}
				if i < len(want.lines) {
					w = want.lines[i]
				}
				if g != w {
					t.Fatalf("line %d: got %.80q (%d bytes), want %.80q (%d bytes)", i, g, len(g), w, len(w))
				}
			}
		}
		if !slices.Equal(got.tooLong, want.tooLong) {
			t.Errorf("tooLong sizes: got %v, want %v (max %d)", got.tooLong, want.tooLong, limit)
		}
		if got.partial != want.partial {
			t.Errorf("partial: got %d, want %d", got.partial, want.partial)
		}
	})
}

// TestLineReaderReleasesLongLineBuffer checks that a line that grew the line
// buffer past 1 MiB, returned or dropped, does not leave the reader holding
// that memory.
func TestLineReaderReleasesLongLineBuffer(t *testing.T) {
	tests := []struct {
		name      string
		size, max int
		wantLines []int // sizes of the lines returned
	}{
		{"returned", 2 << 20, 4 << 20, []int{2 << 20, 1}},
		{"dropped", 4 << 20, 3 << 20, []int{1}},
		{"dropped at the limit", 3<<20 + 1, 3 << 20, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append(bytes.Repeat([]byte{'x'}, tc.size), "\r\na\n"...)
			var dropped []int
			lr := newLineReader(bytes.NewReader(in), tc.max, func(n int) { dropped = append(dropped, n) })
			var sizes []int
			for {
				line, ok, _, err := lr.next()
				if c := cap(lr.line); c > 1<<20 {
					t.Fatalf("after a %d-byte line the reader holds a %d-byte buffer", tc.size, c)
				}
				if ok {
					sizes = append(sizes, len(line))
				}
				if err != nil {
					break
				}
			}
			if !slices.Equal(sizes, tc.wantLines) {
				t.Errorf("line sizes %v, want %v", sizes, tc.wantLines)
			}
			if tc.size > tc.max && !slices.Equal(dropped, []int{tc.size}) {
				t.Errorf("tooLong reported %v, want [%d]", dropped, tc.size)
			}
		})
	}
}
