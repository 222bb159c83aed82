package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
)

// progress shows, on a terminal, how much of a transfer is done: nothing for
// a transfer under a second, then one line rewritten five times a second.
// Off a terminal it shows nothing, so that scripts read clean output.
type progress struct {
	w     io.Writer
	label string
	total uint64 // 0: unknown
	n     atomic.Uint64
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
}

// newProgress starts showing progress on w if w is a terminal.
func newProgress(w io.Writer, label string, total uint64) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	f, ok := w.(*os.File)
	if !ok || !isatty.IsTerminal(f.Fd()) {
		return p
	}
	p.done.Add(1)
	go p.show()
	return p
}

func (p *progress) show() {
	defer p.done.Done()
	select {
	case <-time.After(time.Second):
	case <-p.stop:
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		fmt.Fprintf(p.w, "\r\033[K%s", p.line())
		select {
		case <-t.C:
		case <-p.stop:
			fmt.Fprintf(p.w, "\r\033[K%s\n", p.line())
			return
		}
	}
}

func (p *progress) line() string {
	n := p.n.Load()
	rate := float64(n) / max(time.Since(p.start).Seconds(), 1e-3)
	s := fmt.Sprintf("%s  %s", p.label, humanBytes(n))
	if p.total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", humanBytes(p.total), min(n*100/p.total, 100))
	}
	return s + fmt.Sprintf("  %s/s", humanBytes(uint64(rate)))
}

// Reader counts what is read through r.
func (p *progress) Reader(r io.Reader) io.Reader { return progressReader{r, p} }

// Stop ends the display, leaving its last line if it showed one.
func (p *progress) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.n.Add(uint64(n))
	return n, err
}

// humanBytes writes n rounded for people: "12.3 MiB".
func humanBytes(n uint64) string {
	v, unit := float64(n), "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	if unit == "B" {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
