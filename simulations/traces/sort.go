package traces

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// codec writes records of one type as fixed-size binary, and orders them.
// The order must be total (a unique tie-break last), so that the sort's
// output does not depend on how the records were split into runs.
type codec[T any] struct {
	size int
	put  func(b []byte, v *T)
	get  func(b []byte, v *T)
	cmp  func(a, b *T) int
}

// DefaultChunk is how many records a sorter holds in memory before it
// writes them, sorted, to a temporary file: about 100 MB of events.
const DefaultChunk = 2 << 20

// fanIn is the most runs merged at once; more are merged in rounds, so that
// a huge input does not open thousands of files.
const fanIn = 64

// sorter is an external merge sort: records are added in any order and read
// back in order, memory bounded by the chunk whatever their number.
type sorter[T any] struct {
	c     codec[T]
	chunk int
	dir   string // where the temporary directory goes; "" is the system's
	tmp   string // the temporary directory, once made
	buf   []T
	runs  []string
	made  int
}

func newSorter[T any](c codec[T], chunk int, dir string) *sorter[T] {
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	return &sorter[T]{c: c, chunk: chunk, dir: dir}
}

func (s *sorter[T]) add(v T) error {
	s.buf = append(s.buf, v)
	if len(s.buf) >= s.chunk {
		return s.spill()
	}
	return nil
}

func (s *sorter[T]) sortBuf() {
	slices.SortFunc(s.buf, func(a, b T) int { return s.c.cmp(&a, &b) })
}

// spill writes the records in memory, sorted, as a new run.
func (s *sorter[T]) spill() error {
	s.sortBuf()
	f, err := s.create()
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	b := make([]byte, s.c.size)
	for i := range s.buf {
		s.c.put(b, &s.buf[i])
		if _, err := w.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("temporary file: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("temporary file: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	s.buf = s.buf[:0]
	return nil
}

func (s *sorter[T]) create() (*os.File, error) {
	if s.tmp == "" {
		d, err := os.MkdirTemp(s.dir, "cuivre-convert-")
		if err != nil {
			return nil, fmt.Errorf("temporary directory: %w", err)
		}
		s.tmp = d
	}
	s.made++
	f, err := os.Create(filepath.Join(s.tmp, fmt.Sprintf("run-%06d", s.made)))
	if err != nil {
		return nil, fmt.Errorf("temporary file: %w", err)
	}
	return f, nil
}

// each calls f with every record added, in order. It stops at f's first error.
func (s *sorter[T]) each(f func(*T) error) error {
	if len(s.runs) == 0 {
		s.sortBuf()
		for i := range s.buf {
			if err := f(&s.buf[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.buf = nil
	for len(s.runs) > fanIn {
		out, err := s.create()
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(out, 1<<16)
		b := make([]byte, s.c.size)
		err = s.merge(s.runs[:fanIn], func(v *T) error {
			s.c.put(b, v)
			_, err := w.Write(b)
			return err
		})
		if err == nil {
			err = w.Flush()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("temporary file: %w", err)
		}
		for _, r := range s.runs[:fanIn] {
			os.Remove(r)
		}
		s.runs = append(s.runs[fanIn:], out.Name())
	}
	return s.merge(s.runs, f)
}

// close removes the temporary files.
func (s *sorter[T]) close() {
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
		s.tmp = ""
	}
	s.buf, s.runs = nil, nil
}

// run is one sorted file being merged.
type run[T any] struct {
	r   *bufio.Reader
	f   *os.File
	b   []byte
	cur T
	i   int // its place among the runs, for a stable merge
}

type runHeap[T any] struct {
	rs  []*run[T]
	cmp func(a, b *T) int
}

func (h *runHeap[T]) Len() int { return len(h.rs) }
func (h *runHeap[T]) Less(i, j int) bool {
	if c := h.cmp(&h.rs[i].cur, &h.rs[j].cur); c != 0 {
		return c < 0
	}
	return h.rs[i].i < h.rs[j].i
}
func (h *runHeap[T]) Swap(i, j int) { h.rs[i], h.rs[j] = h.rs[j], h.rs[i] }
func (h *runHeap[T]) Push(x any)    { h.rs = append(h.rs, x.(*run[T])) }
func (h *runHeap[T]) Pop() any {
	x := h.rs[len(h.rs)-1]
	h.rs = h.rs[:len(h.rs)-1]
	return x
}

// next reads the run's next record; false at its end.
func (r *run[T]) next(c *codec[T]) (bool, error) {
	if _, err := io.ReadFull(r.r, r.b); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, fmt.Errorf("temporary file: %w", err)
	}
	c.get(r.b, &r.cur)
	return true, nil
}

func (s *sorter[T]) merge(names []string, f func(*T) error) error {
	h := &runHeap[T]{cmp: s.c.cmp}
	defer func() {
		for _, r := range h.rs {
			r.f.Close()
		}
	}()
	var done []*run[T]
	defer func() {
		for _, r := range done {
			r.f.Close()
		}
	}()
	for i, name := range names {
		fh, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("temporary file: %w", err)
		}
		r := &run[T]{r: bufio.NewReaderSize(fh, 1<<16), f: fh, b: make([]byte, s.c.size), i: i}
		ok, err := r.next(&s.c)
		if err != nil {
			fh.Close()
			return err
		}
		if !ok {
			done = append(done, r)
			continue
		}
		h.rs = append(h.rs, r)
	}
	heap.Init(h)
	for h.Len() > 0 {
		r := h.rs[0]
		if err := f(&r.cur); err != nil {
			return err
		}
		ok, err := r.next(&s.c)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			done = append(done, heap.Pop(h).(*run[T]))
		}
	}
	return nil
}
