package scheduler

import (
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

// TestResume: a placement restored after a requester restart watches its
// running slot again: a result completes the job; silence loses the lease to
// a new epoch.
func TestResume(t *testing.T) {
	job, err := testJob("r", "version: 1\nname: r\ntask:\n  module: m.wasm\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	running := []SlotStatus{{LeaseID: "lease-0123456789", Epoch: 3, Provider: "p1", State: SlotRunning, Price: Amount{"EUR", 7}}}
	now := epoch0

	p := NewPlacement(Config{}, job, [32]byte{1})
	if !p.Resume(running) {
		t.Fatal("Resume refused")
	}
	for _, a := range p.Step(now, Start{}) {
		if _, ok := a.(Lookup); ok {
			t.Fatal("a resumed running slot was placed again")
		}
	}
	if p.State() != JobRunning {
		t.Fatalf("state %s, want running", p.State())
	}
	p.Step(now, ResultReceived{Provider: "p1", LeaseID: "lease-0123456789", Epoch: 3, State: pb.LeaseState_LEASE_STATE_SUCCEEDED, OutputCID: "out"})
	if p.State() != JobSucceeded {
		t.Fatalf("state %s, want succeeded", p.State())
	}

	q := NewPlacement(Config{}, job, [32]byte{2})
	q.Resume(running)
	var beat SetTimer
	for _, a := range q.Step(now, Start{}) {
		if st, ok := a.(SetTimer); ok {
			beat = st
		}
	}
	// The first deadline leaves the restarted requester the time to reach
	// its providers: the lease wait, not the 1.5 s of three heartbeats.
	if got := beat.At.Sub(now); got != LeaseAnswerWait {
		t.Fatalf("a resumed lease is lost after %s of silence, want %s", got, LeaseAnswerWait)
	}
	var relooked bool
	for _, a := range q.Step(beat.At, TimerFired{beat.ID}) {
		if _, ok := a.(Lookup); ok {
			relooked = true
		}
		if c, ok := a.(CancelLease); ok && c.Epoch != 3 {
			t.Fatalf("cancelled epoch %d, want 3", c.Epoch)
		}
	}
	if !relooked || q.Status().Asked[0].Reason != ReasonLost {
		t.Fatalf("a silent resumed lease was not placed again: %+v", q.Status())
	}
	if q.Resume(nil) {
		t.Fatal("Resume after Start, or with the wrong slot count, was taken")
	}
}
