package protocol

import (
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestLeaseStateMachine(t *testing.T) {
	// Every state is reachable from ACCEPTED, and final states are exactly those
	// with no way out.
	seen := map[pb.LeaseState]bool{pb.LeaseState_LEASE_STATE_ACCEPTED: true}
	queue := []pb.LeaseState{pb.LeaseState_LEASE_STATE_ACCEPTED}
	for len(queue) > 0 {
		from := queue[0]
		queue = queue[1:]
		for v := range pb.LeaseState_name {
			to := pb.LeaseState(v)
			if CanTransition(from, to) && !seen[to] {
				seen[to] = true
				queue = append(queue, to)
			}
		}
	}
	for v := range pb.LeaseState_name {
		s := pb.LeaseState(v)
		if s == pb.LeaseState_LEASE_STATE_UNSPECIFIED {
			continue
		}
		if !seen[s] {
			t.Errorf("%s is unreachable", s)
		}
		out := 0
		for w := range pb.LeaseState_name {
			if CanTransition(s, pb.LeaseState(w)) {
				out++
			}
		}
		if Final(s) != (out == 0) {
			t.Errorf("%s: Final = %v with %d ways out", s, Final(s), out)
		}
	}
	if CanTransition(pb.LeaseState_LEASE_STATE_SUCCEEDED, pb.LeaseState_LEASE_STATE_RUNNING) {
		t.Error("a final state changed")
	}
}
