package source

import (
	"bufio"
	"io"
	"math"
)

// lineReader reads newline-delimited records with bounded memory. A line is
// everything up to "\n", without the "\n" and without one "\r" before it.
// Bytes pass through unchanged otherwise (invalid UTF-8 included). A line
// longer than max bytes is discarded (reported through tooLong with its size)
// and reading goes on at the next line; memory stays within about max plus
// the read buffer whatever the input.
type lineReader struct {
	r       *bufio.Reader
	max     int
	line    []byte
	tooLong func(size int)
	// pos counts the bytes consumed; next returns io.EOF instead of a
	// line that would start at or after stop (a file split's end: see
	// ReadLines).
	pos, stop int64
}

// readBufferSize is the read buffer of each connection or file.
const readBufferSize = 64 << 10

func newLineReader(r io.Reader, max int, tooLong func(int)) *lineReader {
	if tooLong == nil {
		tooLong = func(int) {}
	}
	return &lineReader{r: bufio.NewReaderSize(r, readBufferSize), max: max, tooLong: tooLong, stop: math.MaxInt64}
}

// next returns the next line. ok reports whether there is one:
//   - err == nil: a complete (newline-terminated) line;
//   - err == io.EOF: the end of input; ok if an unterminated last line was there;
//   - any other err: the input broke; partial is the size of the incomplete
//     line that was discarded.
func (l *lineReader) next() (line string, ok bool, partial int, err error) {
	l.line = l.line[:0]
	skipping := false
	size := 0   // bytes of the current line read so far, "\n" included
	cr := false // whether those bytes, but for a final "\n", end in "\r"
	for {
		if size == 0 && l.pos >= l.stop {
			return "", false, 0, io.EOF
		}
		chunk, err := l.r.ReadSlice('\n')
		size += len(chunk)
		l.pos += int64(len(chunk))
		if !skipping {
			if err == nil && len(l.line) == 0 {
				// The common case: the whole line is in the read buffer.
				s := trimEOL(chunk)
				if len(s) <= l.max {
					return string(s), true, 0, nil
				}
				l.tooLong(len(s))
				size = 0
				continue
			}
			if len(l.line)+len(chunk) > l.max+2 { // room for "\r\n"
				skipping = true
				l.release()
			} else {
				l.line = append(l.line, chunk...)
			}
		}
		if body := trimNL(chunk); len(body) > 0 {
			cr = body[len(body)-1] == '\r'
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			if skipping {
				l.tooLong(size - 1 - crLen(cr))
				skipping, size, cr = false, 0, false
				continue
			}
			s := trimEOL(l.line)
			if len(s) > l.max {
				l.tooLong(len(s))
				l.line, size, cr = l.line[:0], 0, false
				continue
			}
			line = string(s)
			l.release()
			return line, true, 0, nil
		case io.EOF:
			if size == 0 {
				return "", false, 0, io.EOF
			}
			if skipping {
				l.tooLong(size - crLen(cr))
				return "", false, 0, io.EOF
			}
			s := trimEOL(l.line)
			if len(s) > l.max {
				l.tooLong(len(s))
				return "", false, 0, io.EOF
			}
			line = string(s)
			l.release()
			return line, true, 0, io.EOF
		default:
			l.release()
			return "", false, size, err
		}
	}
}

// release empties the line buffer, dropping it if a long line grew it, so an
// idle connection does not hold on to megabytes.
func (l *lineReader) release() {
	if cap(l.line) > 1<<20 {
		l.line = nil
	} else {
		l.line = l.line[:0]
	}
}

// trimNL removes a final "\n".
func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// crLen is the size of the "\r" that ends a line, if cr; it is not part of the line.
func crLen(cr bool) int {
	if cr {
		return 1
	}
	return 0
}

// trimEOL removes a final "\n" and then a final "\r".
func trimEOL(b []byte) []byte {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
	}
	if n > 0 && b[n-1] == '\r' {
		n--
	}
	return b[:n]
}
