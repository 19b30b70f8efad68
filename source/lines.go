package source

import (
	"bufio"
	"io"
)

// lineReader reads newline-delimited records with bounded memory: a line
// longer than max is skipped (reported through tooLong) and reading goes on
// at the next line. A trailing "\r" is stripped.
type lineReader struct {
	r       *bufio.Reader
	max     int
	line    []byte
	skip    bool // discarding an over-long line
	tooLong func(size int)
}

func newLineReader(r io.Reader, max int, tooLong func(int)) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max, tooLong: tooLong}
}

// next returns the next complete line. At EOF it returns the unterminated
// tail (if any) with io.EOF; on another error it returns the error and
// partial reports the bytes of the line that was cut off.
func (l *lineReader) next() (line string, partial int, err error) {
	skipped := 0
	for {
		chunk, err := l.r.ReadSlice('\n')
		if l.skip {
			skipped += len(chunk)
		} else {
			l.line = append(l.line, chunk...)
			if len(l.line) > l.max+2 { // room for "\r\n"
				skipped = len(l.line)
				l.line = l.line[:0]
				l.skip = true
			}
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			if l.skip {
				l.skip = false
				if l.tooLong != nil {
					l.tooLong(skipped)
				}
				skipped = 0
				continue
			}
			s := trimEOL(l.line)
			l.line = l.line[:0]
			return s, 0, nil
		case io.EOF:
			if l.skip {
				if l.tooLong != nil {
					l.tooLong(skipped)
				}
				return "", 0, io.EOF
			}
			s := string(l.line)
			l.line = l.line[:0]
			if s == "" {
				return "", 0, io.EOF
			}
			return s, 0, io.EOF
		default:
			n := len(l.line) + skipped
			l.line = l.line[:0]
			return "", n, err
		}
	}
}

func trimEOL(b []byte) string {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
		if n > 0 && b[n-1] == '\r' {
			n--
		}
	}
	return string(b[:n])
}
