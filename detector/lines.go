package detector

import (
	"bufio"
	"errors"
	"io"
)

// lineReader reads '\n'-terminated lines of any length up to max bytes from
// a bufio.Reader, without the terminator and without a trailing '\r'. Longer
// lines are consumed and reported as too long, so one bad line never stops
// a file.
type lineReader struct {
	br   *bufio.Reader
	max  int
	buf  []byte // holds a line that did not fit into br's buffer
	line int    // number of the line last returned (1-based)
}

func newLineReader(r io.Reader, bufSize, max int) *lineReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < bufSize {
		br = bufio.NewReaderSize(r, bufSize)
	}
	return &lineReader{br: br, max: max}
}

// next returns the next line. The slice is valid until the following call.
// tooLong reports a line longer than max: its text is dropped (line is the
// first max bytes). err is io.EOF after the last line.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	frag, err := lr.br.ReadSlice('\n')
	if err == nil || (err == io.EOF && len(frag) > 0) {
		lr.line++
		frag = trimEOL(frag)
		if len(frag) > lr.max {
			return frag[:lr.max], true, nil
		}
		return frag, false, nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, false, err // io.EOF without data, or a read error
	}
	// The line does not fit into the bufio buffer: collect it.
	lr.buf = append(lr.buf[:0], frag...)
	for {
		frag, err = lr.br.ReadSlice('\n')
		if !tooLong {
			if len(lr.buf)+len(frag) > lr.max+2 { // +2: room for "\r\n"
				tooLong = true
				lr.buf = lr.buf[:min(len(lr.buf), lr.max)]
			} else {
				lr.buf = append(lr.buf, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		lr.line++
		line = trimEOL(lr.buf)
		if tooLong || len(line) > lr.max {
			return line[:min(len(line), lr.max)], true, nil
		}
		return line, false, nil
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
