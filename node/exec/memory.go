package exec

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// ceiling is the memory allocator of one run: it backs the guest's linear
// memory with a Go slice, as wazero does by default, but refuses to grow it
// past limit bytes, so the guest's memory.grow fails (see the package doc).
// It records whether it refused and the largest size it granted.
type ceiling struct {
	limit uint64

	mu      sync.Mutex
	refused bool
	peak    uint64
	size    uint64 // of the guest's linear memory now
	meta    uint64 // what the scratch tree holds in host memory (memFS.chargeEntry)
}

// take charges n bytes of host memory kept for the run, beside its linear
// memory, or refuses them if the two would pass the ceiling.
func (c *ceiling) take(n uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size+c.meta+n > c.limit || c.meta+n < c.meta {
		return false
	}
	c.meta += n
	return true
}

// give refunds what take charged.
func (c *ceiling) give(n uint64) {
	c.mu.Lock()
	c.meta -= min(n, c.meta)
	c.mu.Unlock()
}

// Allocate implements experimental.MemoryAllocator.
func (c *ceiling) Allocate(capacity, max uint64) experimental.LinearMemory {
	return &linearMemory{c: c, max: max, buf: make([]byte, 0, min(capacity, c.limit))}
}

func (c *ceiling) stats() (refused bool, peak uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused, c.peak
}

// linearMemory is one guest memory under a ceiling.
type linearMemory struct {
	c   *ceiling
	max uint64 // the module's maximum, as wazero bounds it
	buf []byte
}

// Reallocate implements experimental.LinearMemory. Memory only grows, and
// the guest never sees past len(buf), so capacity kept from an earlier
// growth is still zero.
func (m *linearMemory) Reallocate(size uint64) []byte {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	if size+m.c.meta > m.c.limit || size > m.max {
		m.c.refused = true
		return nil
	}
	if size > uint64(cap(m.buf)) {
		// Grow by a quarter beyond the request, as append does for large
		// slices, so a guest growing page by page is not copied each time.
		capacity := min(size+size/4, m.c.limit, m.max)
		buf := make([]byte, size, capacity)
		copy(buf, m.buf)
		m.buf = buf
	} else {
		m.buf = m.buf[:size]
	}
	m.c.peak = max(m.c.peak, size)
	m.c.size = size
	return m.buf
}

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.buf = nil
}

// declaredMemory returns the initial size in bytes of the memory a module
// defines in its memory section, 0 if it defines none. Imported memories are
// refused when the module is added, so only the memory section matters.
// wazero validates the rest of the binary.
func declaredMemory(bin []byte) (uint64, error) {
	const memorySection = 5
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return 0, errors.New("not a WebAssembly binary")
	}
	rest := bin[8:]
	for len(rest) > 0 {
		id := rest[0]
		size, n, err := leb128(rest[1:])
		if err != nil {
			return 0, fmt.Errorf("section %d: %w", id, err)
		}
		rest = rest[1+n:]
		if size > uint64(len(rest)) {
			return 0, fmt.Errorf("section %d: %d bytes, only %d left", id, size, len(rest))
		}
		body := rest[:size]
		rest = rest[size:]
		if id != memorySection {
			continue
		}
		count, n, err := leb128(body)
		if err != nil || count == 0 {
			return 0, err
		}
		body = body[n:]
		if len(body) < 1 {
			return 0, errors.New("memory section: truncated")
		}
		pages, _, err := leb128(body[1:]) // after the limits flags
		if err != nil {
			return 0, fmt.Errorf("memory section: %w", err)
		}
		return pages * pageSize, nil
	}
	return 0, nil
}

// leb128 reads an unsigned LEB128 number of at most 64 bits.
func leb128(b []byte) (v uint64, n int, err error) {
	for shift := 0; shift < 64; shift += 7 {
		if n >= len(b) {
			return 0, 0, errors.New("truncated number")
		}
		c := b[n]
		n++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, n, nil
		}
	}
	return 0, 0, errors.New("number too long")
}
