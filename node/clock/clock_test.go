package clock_test

import (
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/clock"
)

func TestFake(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(start)
	var fired []string
	at := func(name string) func() {
		return func() { fired = append(fired, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(2*time.Second, at("b"))
	c.AfterFunc(time.Second, at("a"))
	c.AfterFunc(2*time.Second, at("c"))
	stopped := c.AfterFunc(time.Second, at("never"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports wrongly")
	}
	ch := c.After(3 * time.Second)
	c.Advance(1500 * time.Millisecond)
	if got := c.Now().Sub(start); got != 1500*time.Millisecond {
		t.Fatalf("now %v after advancing 1.5s", got)
	}
	c.Advance(2 * time.Second)
	want := []string{"a@1s", "b@2s", "c@2s"}
	if len(fired) != 3 || fired[0] != want[0] || fired[1] != want[1] || fired[2] != want[2] {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	select {
	case got := <-ch:
		if got.Sub(start) != 3*time.Second {
			t.Fatalf("After delivered %v", got.Sub(start))
		}
	default:
		t.Fatal("After did not fire")
	}
	if c.Pending() != 0 {
		t.Fatalf("%d timers left", c.Pending())
	}
	// A timer armed while firing fires in the same Advance if due.
	c.AfterFunc(time.Second, func() { c.AfterFunc(time.Second, at("chained")) })
	c.Advance(5 * time.Second)
	if fired[len(fired)-1] != "chained@5.5s" {
		t.Fatalf("chained timer: %v", fired)
	}
}
