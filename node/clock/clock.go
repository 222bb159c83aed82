// Package clock is the node's seam for time: the drivers read the time and
// arm their timers only through a Clock, so that a test or a harness can run
// them on a time it controls. Real is the wall clock; Fake is stepped by hand.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and arms timers. Implementations are safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Timer is an armed AfterFunc.
type Timer interface {
	// Stop cancels the timer; it reports whether it stopped it before it fired.
	Stop() bool
}

// Real is the wall clock. Inside a testing/synctest bubble it is that
// bubble's virtual clock, which is how the node's tests run in fake time
// with the production clock.
type Real struct{}

func (Real) Now() time.Time                            { return time.Now() }
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
func (Real) After(d time.Duration) <-chan time.Time    { return time.After(d) }

// Fake is a clock that moves only when Advance is called: the timers due by
// then fire one after another, in order of their due time (then of arming),
// in Advance's goroutine, so that a test steps time deterministically. The
// zero value starts at the zero time.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*fakeTimer
}

// NewFake returns a fake clock set at start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

type fakeTimer struct {
	c   *Fake
	at  time.Time
	seq uint64
	f   func()
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms f to run once the clock has been advanced by d.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// After returns a channel that receives the time once the clock has been
// advanced by d.
func (c *Fake) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.AfterFunc(d, func() { ch <- c.Now() })
	return ch
}

// Pending returns the number of armed timers.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock by d, firing every timer due on the way, earliest
// first; the clock reads each timer's due time while it fires.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		k := -1
		for i, t := range c.timers {
			if !t.at.After(end) && (k < 0 || t.at.Before(c.timers[k].at) || t.at.Equal(c.timers[k].at) && t.seq < c.timers[k].seq) {
				k = i
			}
		}
		if k < 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[k]
		c.timers = append(c.timers[:k], c.timers[k+1:]...)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Sleep waits d on the real clock, or less if ctx ends first, whose error
// it then returns. It paces loops that poll other processes; no test waits
// on it for another goroutine's work.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
