package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"
)

// follow shows a job as the node pushes its changes (GET
// /v1/jobs/{cid}/events), until it ends, wait passes (0: no limit) or ctx
// ends. Each new step of its history is a line on w; what its runs write goes
// to out as it comes (nil: nowhere, for -o json or yaml). On a terminal a last
// line, rewritten in place, says where each slot stands and for how long.
func follow(ctx context.Context, c *api.Client, cid string, out, w io.Writer, wait time.Duration) (requester.JobView, error) {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	l := &live{out: out, w: w, tty: isTerminal(w), since: map[string]time.Time{}}
	events := make(chan api.JobEvent)
	ended := make(chan error, 1)
	go func() {
		ended <- c.Follow(ctx, cid, func(ev api.JobEvent) error {
			select {
			case events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var tick <-chan time.Time
	if l.tty {
		t := time.NewTicker(time.Second) // the elapsed times on the status line
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev := <-events:
			l.show(ev)
		case <-tick:
			l.redraw()
		case err := <-ended:
			l.clear()
			switch {
			case err == nil:
				l.agreement()
				return l.last, nil
			case errors.Is(err, context.DeadlineExceeded) && wait > 0:
				return l.last, &stillRunning{cid, l.last.State, "after " + wait.String()}
			case ctx.Err() != nil:
				return l.last, &stillRunning{cid, l.last.State, "when interrupted"}
			}
			return l.last, err
		}
	}
}

// live is what follow has shown of a job.
type live struct {
	out, w  io.Writer
	tty     bool
	last    requester.JobView
	history int                  // lines of its history shown
	since   map[string]time.Time // when this view saw each slot's state begin (sinceKey)
	status  bool                 // a status line is on the terminal
}

func (l *live) show(ev api.JobEvent) {
	l.clear()
	for _, h := range ev.Job.History[min(l.history, len(ev.Job.History)):] {
		fmt.Fprintln(l.w, "  "+h)
	}
	l.history = len(ev.Job.History)
	if l.out != nil {
		io.WriteString(l.out, ev.Stdout)
		io.WriteString(l.w, ev.Stderr)
	}
	now := time.Now()
	for i, s := range ev.Job.Slots {
		k := sinceKey(i, s)
		if _, ok := l.since[k]; !ok {
			l.since[k] = now
		}
	}
	l.last = ev.Job
	l.redraw()
}

// redraw writes the status line again, on a terminal, while the job runs.
func (l *live) redraw() {
	if !l.tty || final(l.last.State) {
		return
	}
	var parts []string
	for i, s := range l.last.Slots {
		p := fmt.Sprintf("slot %d %s", i, slotState(s))
		if s.Provider != "" {
			p += " on " + shortPeer(s.Provider)
		}
		if s.Site != "" {
			p += " at site " + shortPeer(s.Site)
		}
		if t, ok := l.since[sinceKey(i, s)]; ok {
			p += fmt.Sprintf(" for %s", time.Since(t).Round(time.Second))
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = []string{l.last.State}
	}
	fmt.Fprintf(l.w, "\r\033[K  … %s", strings.Join(parts, " · "))
	l.status = true
}

// clear takes the status line off the terminal, so that a line can take its
// place.
func (l *live) clear() {
	if l.status {
		fmt.Fprint(l.w, "\r\033[K")
		l.status = false
	}
}

// agreement says, for a job of replicas, whether their outputs agree.
func (l *live) agreement() {
	v := l.last
	if len(v.Slots) < 2 || v.State != "succeeded" {
		return
	}
	switch n := len(v.Outputs); {
	case n == 1:
		fmt.Fprintf(l.w, "  the %d runs agree: one output, %s\n", len(v.Slots), v.Outputs[0].CID)
	case n > 1:
		fmt.Fprintf(l.w, "  the %d runs disagree: %d different outputs (job status lists them)\n", len(v.Slots), n)
	}
}

// slotState is where a slot stands: a running slot's provider may still be
// fetching the module and inputs.
func slotState(s requester.SlotView) string {
	if s.State == "running" && s.Run != "" {
		return s.Run
	}
	return s.State
}

func sinceKey(i int, s requester.SlotView) string {
	return fmt.Sprintf("%d %s %s", i, slotState(s), s.Provider)
}

func final(state string) bool {
	return state == "succeeded" || state == "failed" || state == "cancelled"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
