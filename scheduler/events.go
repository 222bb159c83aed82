package scheduler

import (
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Events: what the driver tells a Placement.
type (
	// Event is an input of Placement.Step.
	Event interface{ isEvent() }

	// Start begins the placement.
	Start struct{}
	// CandidatesFound delivers providers found under a facet key; Done says
	// the lookup of that key has ended (it may come with no peers).
	CandidatesFound struct {
		Key   protocol.FacetKey
		Peers []string
		Done  bool
	}
	// OfferReceived delivers a verified offer.
	OfferReceived struct{ Offer Offer }
	// OfferRefused says a provider refused, or did not answer, a request.
	OfferRefused struct {
		Provider, RequestNonce string
		Code                   pb.Code // CODE_UNSPECIFIED for no answer
		Reason                 string
		RetryAfter             time.Duration // the provider's hint (Error.retry_after_ms); 0 for none
	}
	// LeaseAccepted says a provider committed a lease.
	LeaseAccepted struct {
		Provider, LeaseID string
		Epoch             uint64
	}
	// LeaseRejected says a provider refused a lease, or did not answer.
	LeaseRejected struct {
		Provider, LeaseID string
		Epoch             uint64
		Code              pb.Code
		Reason            string
	}
	// Heartbeat is a status from a provider running a lease.
	Heartbeat struct {
		Provider, LeaseID string
		Epoch             uint64
		State             pb.LeaseState
	}
	// ResultReceived is a lease's final result.
	ResultReceived struct {
		Provider, LeaseID string
		Epoch             uint64
		State             pb.LeaseState
		ExitCode          int32
		OutputCID         string
		Detail            string  // why a failed run failed, if its provider said
		Code              pb.Code // the code of a failed run's error, if any
	}
	// TimerFired says a timer set by SetTimer is due.
	TimerFired struct{ ID uint64 }
	// Cancel stops the job.
	Cancel struct{}
)

func (Start) isEvent()           {}
func (CandidatesFound) isEvent() {}
func (OfferReceived) isEvent()   {}
func (OfferRefused) isEvent()    {}
func (LeaseAccepted) isEvent()   {}
func (LeaseRejected) isEvent()   {}
func (Heartbeat) isEvent()       {}
func (ResultReceived) isEvent()  {}
func (TimerFired) isEvent()      {}
func (Cancel) isEvent()          {}

// Actions: what a Placement asks of its driver.
type (
	// Action is an output of Placement.Step.
	Action interface{ isAction() }

	// Lookup asks for up to Want providers under each key. Need is the
	// share of each key in what the placement lacks now: a driver may answer
	// a key as soon as it has found that many, and look for the rest behind
	// the answer.
	Lookup struct {
		Keys []protocol.FacetKey
		Want int
		Need int
	}
	// RequestOffer asks a provider for an offer.
	RequestOffer struct {
		Provider string
		Request  Request
	}
	// SendLease sends a lease to the provider of the chosen offer.
	SendLease struct {
		Provider string
		Lease    Lease
	}
	// DeclineOffer frees the reservation behind an offer not taken.
	DeclineOffer struct{ Provider, OfferNonce string }
	// CancelLease stops a lease the job no longer wants.
	CancelLease struct {
		Provider, LeaseID string
		Epoch             uint64
	}
	// SetTimer asks for TimerFired{ID} at At. Timers are never cancelled; a
	// Placement ignores those it no longer needs.
	SetTimer struct {
		ID uint64
		At time.Time
		// Wait marks the back-off of a job waiting for capacity. A driver
		// serves its waiting jobs in submission order: it may hold this
		// timer back while an older job of its that Blocks this one waits,
		// and fire it once none does.
		Wait bool
	}
	// Silent says a provider missed the heartbeats of a lease: it is dead,
	// or cut off. A driver keeps it out of its placements' candidates for a
	// while (its negative cache), so that the round that places the lost
	// lease again, which follows at once, does not ask it.
	Silent struct{ Provider string }
	// Report publishes the job's status.
	Report struct{ Status Status }
)

func (Silent) isAction()       {}
func (Lookup) isAction()       {}
func (RequestOffer) isAction() {}
func (SendLease) isAction()    {}
func (DeclineOffer) isAction() {}
func (CancelLease) isAction()  {}
func (SetTimer) isAction()     {}
func (Report) isAction()       {}

// JobState is the state of a job as its customer sees it.
type JobState uint8

// The job states.
const (
	JobPlacing JobState = iota + 1
	JobRunning
	JobSucceeded
	JobFailed
	JobCancelled
)

var jobStateNames = [...]string{"", "placing", "running", "succeeded", "failed", "cancelled"}

func (s JobState) String() string { return jobStateNames[s] }

// Final reports whether the state is final.
func (s JobState) Final() bool { return s >= JobSucceeded }

// SlotState is the state of one lease slot of a job.
type SlotState uint8

// The slot states.
const (
	SlotPending SlotState = iota + 1
	SlotLeasing
	SlotRunning
	SlotSucceeded
	SlotFailed
	SlotCancelled
)

var slotStateNames = [...]string{"", "pending", "leasing", "running", "succeeded", "failed", "cancelled"}

func (s SlotState) String() string { return slotStateNames[s] }

// Final says the slot is done: succeeded, failed or cancelled.
func (s SlotState) Final() bool { return s >= SlotSucceeded }

// Status is a job's status, as reported. Slices are the caller's, except the
// Labels and Scores of slots and outcomes: those are shared with the placement
// and every report, never changed once reported, and must not be changed by
// their reader (a report costs no copy of them).
type Status struct {
	State   JobState
	Slots   []SlotStatus
	Asked   []Outcome // every provider asked, sorted by provider
	Code    Reason    // why the job failed, or was not placed yet, as a code: ReasonNotPlaced, ReasonLeasesLost, ...
	Reason  string    // the same in words, with particulars: "not placed after 5 attempts: 3 asked: ..."
	Message string    // what just happened
}

// SlotStatus is one lease slot: instance Slot/Replicas, replica Slot%Replicas.
// It is also what a driver persists and gives back to Placement.Resume.
type SlotStatus struct {
	LeaseID   string
	Epoch     uint64
	Provider  string
	State     SlotState
	Price     Amount
	Labels    Labels // the labels of the offer leased: spread and replicas need its operator
	Site      string // the site of the offer leased, a retailer's (Offer.Site)
	Scores    Scores // how that offer ranked when it was chosen: why it won; none after Resume
	ExitCode  int32
	OutputCID string
}

// Outcome is what came of asking one provider, the last time it was asked.
type Outcome struct {
	Provider string
	Reason   Reason // ReasonLeased, ReasonNotChosen, ReasonNoAnswer, the provider's pb.Code, ...; String gives the words
	Detail   string // the particulars, as text to show: the provider's message, "offer labels fail region"
	Scores   Scores // how its offer ranked, when it was: leased, not chosen, and what came of that lease
}
