package scheduler

import (
	"strconv"
	"strings"

	"github.com/cuivre/cuivre/protocol/pb"
)

// Reason says why, as a code: what came of asking a provider (Outcome.Reason)
// and why a job failed or is not placed yet (Status.Code). The core decides on
// codes only; text is made at the edge, by String, for the simulator's reports
// and the node's views.
//
// It is one enum for two sources rather than pb.Code with extra values, so
// that the scheduler's own reasons never travel on the wire by mistake:
//
//   - below ownReasons, a Reason is a protocol code, the very number of the
//     pb.Code a provider refused with (ReasonOf, Reason.Code), or that the
//     requester found itself checking an offer (expired, price above
//     ceiling, constraint or currency mismatch). A code the protocol adds
//     later needs no change here;
//   - from ownReasons (1000, above any pb.Code) on, the scheduler's own:
//     what no provider says (an offer leased or not chosen, silence, a lease
//     lost) and what happened to a whole job.
//
// The zero Reason is ReasonNone: nothing to explain.
type Reason int32

// Reasons that are protocol codes, named for the core's own checks.
const (
	ReasonNone                = Reason(pb.Code_CODE_UNSPECIFIED)
	ReasonExpired             = Reason(pb.Code_CODE_EXPIRED)
	ReasonPriceAboveCeiling   = Reason(pb.Code_CODE_PRICE_ABOVE_CEILING)
	ReasonConstraintMismatch  = Reason(pb.Code_CODE_CONSTRAINT_MISMATCH)
	ReasonExecutorUnsupported = Reason(pb.Code_CODE_EXECUTOR_UNSUPPORTED)
	ReasonCurrencyMismatch    = Reason(pb.Code_CODE_CURRENCY_MISMATCH)
)

// ownReasons is the first of the scheduler's own reasons.
const ownReasons Reason = 1000

// The scheduler's own reasons. Those of an Outcome first, then those of a
// Status: a job's code is one of the latter.
const (
	ReasonLeased          Reason = ownReasons + iota // the offer was leased
	ReasonNotChosen                                  // the offer lost to better ones
	ReasonNoAnswer                                   // no offer before the deadline or within the grace (hedge), or no lease answer
	ReasonLost                                       // the lease was lost: heartbeats missed, or the run died with its provider
	ReasonReplicaOperator                            // the operator already runs a replica of each instance pending
	ReasonOtherJob                                   // the offer was for another job or requester
	ReasonTooSmall                                   // the offer holds less than the job asks

	ReasonNotPlaced        // the job's pending slots found no fitting offer, yet or for good
	ReasonLeasesLost       // a slot lost more leases than Config.MaxReschedules allows
	ReasonRunFailed        // a slot's run failed
	ReasonReplicasDisagree // the replicas of an instance returned different outputs
	ReasonCancelled        // the customer cancelled the job
	endReasons
)

var ownReasonNames = [...]string{
	ReasonLeased - ownReasons:           "leased",
	ReasonNotChosen - ownReasons:        "offer not chosen",
	ReasonNoAnswer - ownReasons:         "no answer",
	ReasonLost - ownReasons:             "lost",
	ReasonReplicaOperator - ownReasons:  "operator already runs a replica",
	ReasonOtherJob - ownReasons:         "offer for another job",
	ReasonTooSmall - ownReasons:         "insufficient resources",
	ReasonNotPlaced - ownReasons:        "not placed",
	ReasonLeasesLost - ownReasons:       "leases lost",
	ReasonRunFailed - ownReasons:        "run failed",
	ReasonReplicasDisagree - ownReasons: "replicas disagree",
	ReasonCancelled - ownReasons:        "cancelled",
}

// ReasonOf is the reason a provider gave with a protocol code.
func ReasonOf(c pb.Code) Reason { return Reason(c) }

// Code returns the protocol code a reason stands for, and false for the
// scheduler's own reasons, which have none.
func (r Reason) Code() (pb.Code, bool) {
	if r < ownReasons {
		return pb.Code(r), true
	}
	return pb.Code_CODE_UNSPECIFIED, false
}

// String is the reason as explanations show it: "insufficient memory", "offer
// not chosen"; "" for ReasonNone.
func (r Reason) String() string {
	switch {
	case r == ReasonNone:
		return ""
	case r >= ownReasons && r < endReasons:
		return ownReasonNames[r-ownReasons]
	case r >= ownReasons || r < 0:
		return "reason " + strconv.Itoa(int(r))
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(pb.Code(r).String(), "CODE_")), "_", " ")
}

// permanent reports whether a provider's refusal will hold for this job
// whatever its load: such a provider is not asked again for the job, so later
// attempts sample the others.
func (r Reason) permanent() bool {
	switch r {
	case ReasonConstraintMismatch, ReasonExecutorUnsupported, ReasonCurrencyMismatch:
		return true
	}
	return false
}

// refusal is the reason of a refused offer or lease: its code, or no answer
// when the provider said none.
func refusal(c pb.Code) Reason {
	if c == pb.Code_CODE_UNSPECIFIED {
		return ReasonNoAnswer
	}
	return ReasonOf(c)
}
