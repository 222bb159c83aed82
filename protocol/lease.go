package protocol

import "github.com/cuivre/cuivre/protocol/pb"

// The provider-side lease state machine (SPEC 9):
//
//	ACCEPTED -> FETCHING -> RUNNING -> SUCCEEDED | FAILED
//	any live state -> CANCELLED (the requester cancelled)
//	ACCEPTED, FETCHING -> EXPIRED (not started before Lease.expires_at_ms)
//	FETCHING, RUNNING -> FAILED (module not found, timeout, trap)
//
// The four final states never change again.
var leaseNext = map[pb.LeaseState][]pb.LeaseState{
	pb.LeaseState_LEASE_STATE_ACCEPTED: {pb.LeaseState_LEASE_STATE_FETCHING, pb.LeaseState_LEASE_STATE_CANCELLED, pb.LeaseState_LEASE_STATE_EXPIRED},
	pb.LeaseState_LEASE_STATE_FETCHING: {pb.LeaseState_LEASE_STATE_RUNNING, pb.LeaseState_LEASE_STATE_FAILED, pb.LeaseState_LEASE_STATE_CANCELLED, pb.LeaseState_LEASE_STATE_EXPIRED},
	pb.LeaseState_LEASE_STATE_RUNNING:  {pb.LeaseState_LEASE_STATE_SUCCEEDED, pb.LeaseState_LEASE_STATE_FAILED, pb.LeaseState_LEASE_STATE_CANCELLED},
}

// CanTransition reports whether a lease may move from one state to another.
func CanTransition(from, to pb.LeaseState) bool {
	for _, s := range leaseNext[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Final reports whether a lease state is final: SUCCEEDED, FAILED, CANCELLED or
// EXPIRED.
func Final(s pb.LeaseState) bool {
	switch s {
	case pb.LeaseState_LEASE_STATE_SUCCEEDED, pb.LeaseState_LEASE_STATE_FAILED,
		pb.LeaseState_LEASE_STATE_CANCELLED, pb.LeaseState_LEASE_STATE_EXPIRED:
		return true
	}
	return false
}
