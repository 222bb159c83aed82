package traces

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// InputError is a mistake in an input file, at a line (0: the file as a
// whole). Lines count from 1, in the decompressed text.
type InputError struct {
	File string
	Line int64
	Msg  string
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// BadInputError is what a conversion returns when inputs have mistakes: the
// first ones, and how many there were in all.
type BadInputError struct {
	Errs  []*InputError
	Total int64
}

func (e *BadInputError) Error() string {
	var b strings.Builder
	for i, x := range e.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.Error())
	}
	if n := e.Total - int64(len(e.Errs)); n > 0 {
		fmt.Fprintf(&b, "\n... and %d more", n)
	}
	if e.Total > 0 {
		b.WriteString("\n(--skip-bad converts the rest and counts the bad lines)")
	}
	return b.String()
}

// maxErrors is the most input mistakes kept for the report.
const maxErrors = 20

type errList struct {
	errs  []*InputError
	total int64
}

func (l *errList) add(file string, line int64, format string, args ...any) {
	l.total++
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, &InputError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

// source is one input, decompressed if it was gzip.
type source struct {
	name string
	r    *bufio.Reader
	f    *os.File
	gz   *gzip.Reader
}

// openSource opens path ("-" is standard input), recognising gzip by its
// magic bytes rather than by the name.
func openSource(path string) (*source, error) {
	s := &source{name: path}
	if path == "-" {
		s.name = "stdin"
		s.r = bufio.NewReaderSize(os.Stdin, 1<<20)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err == nil && st.IsDir() {
			f.Close()
			return nil, errors.New("a directory: give the files in it")
		}
		s.f = f
		s.r = bufio.NewReaderSize(f, 1<<20)
	}
	if magic, _ := s.r.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(s.r)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("gzip: %v", err)
		}
		s.gz = gz
		s.r = bufio.NewReaderSize(gz, 1<<20)
	}
	return s, nil
}

// eachSource calls f with each text in path: the file itself, decompressed
// if it is gzip, or each file of a tar archive (compressed or not), named
// archive:member. Files it cannot open are mistakes of the input.
func (c *converter) eachSource(path string, f func(*source) error) error {
	src, err := openSource(path)
	if err != nil {
		c.errs.add(path, 0, "%v", err)
		return nil
	}
	defer src.close()
	if b, _ := src.r.Peek(263); len(b) < 263 || string(b[257:262]) != "ustar" {
		c.st.Files++
		return f(src)
	}
	tr := tar.NewReader(src.r)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.errs.add(src.name, 0, "tar: %v", err)
			return nil
		}
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(filepath.Base(h.Name), "._") {
			continue // directories, links, and macOS's resource forks
		}
		n++
		c.st.Files++
		if err := f(&source{name: src.name + ":" + h.Name, r: bufio.NewReaderSize(tr, 1<<20)}); err != nil {
			return err
		}
	}
	if n == 0 {
		c.errs.add(src.name, 0, "a tar archive of no file")
	}
	return nil
}

func (s *source) close() {
	if s.gz != nil {
		s.gz.Close()
	}
	if s.f != nil {
		s.f.Close()
	}
}

// firstByte is the first byte of the text that is not white space or a
// byte-order mark; 0 if there is none.
func (s *source) firstByte() byte {
	for n := 64; ; n *= 4 {
		b, err := s.r.Peek(n)
		for _, c := range strings.TrimLeft(string(b), " \t\r\n\ufeff") {
			return byte(c)
		}
		if err != nil || n > 1<<16 {
			return 0
		}
	}
}

// readErr says what a read error means: a truncated or corrupt gzip stream
// is a fault of the input; anything else, of the machine.
func readErr(err error) string {
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("cannot read on: %v (truncated or corrupt gzip?)", err)
	}
	return fmt.Sprintf("cannot read on: %v", err)
}
