package scheduler

import (
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

// TestReasonStrings: reasons read as explanations always did, the protocol's
// as their code's name, the scheduler's own as before; and the two ranges do
// not meet.
func TestReasonStrings(t *testing.T) {
	for r, want := range map[Reason]string{
		ReasonNone: "",
		ReasonOf(pb.Code_CODE_INSUFFICIENT_MEMORY): "insufficient memory",
		ReasonPriceAboveCeiling:                    "price above ceiling",
		ReasonConstraintMismatch:                   "constraint mismatch",
		ReasonCurrencyMismatch:                     "currency mismatch",
		ReasonExpired:                              "expired",
		ReasonLeased:                               "leased",
		ReasonNotChosen:                            "offer not chosen",
		ReasonNoAnswer:                             "no answer",
		ReasonLost:                                 "lost",
		ReasonReplicaOperator:                      "operator already runs a replica",
		ReasonOtherJob:                             "offer for another job",
		ReasonTooSmall:                             "insufficient resources",
		ReasonNotPlaced:                            "not placed",
		ReasonCancelled:                            "cancelled",
		Reason(5000):                               "reason 5000",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", r, got, want)
		}
	}
	for r := ownReasons; r < endReasons; r++ {
		if r.String() == "" {
			t.Errorf("Reason(%d) has no words", r)
		}
		if _, ok := r.Code(); ok {
			t.Errorf("own Reason(%d) claims a protocol code", r)
		}
	}
	for v := range pb.Code_name {
		if Reason(v) >= ownReasons {
			t.Fatalf("pb.Code %d collides with the scheduler's own reasons", v)
		}
		if c, ok := ReasonOf(pb.Code(v)).Code(); !ok || c != pb.Code(v) {
			t.Errorf("pb.Code %d does not come back from its reason", v)
		}
	}
	if refusal(pb.Code_CODE_UNSPECIFIED) != ReasonNoAnswer {
		t.Error("a refusal without a code is not read as no answer")
	}
}

// TestInfeasibleOfferExcludes: an offer whose labels fail the job's
// constraints, though its provider quoted it, is declined with that code, and
// its provider is not asked again for the job; an offer merely too dear is
// declined and its provider stays a candidate.
func TestInfeasibleOfferExcludes(t *testing.T) {
	job, err := testJob("j", frenchJob+"max_price: \"1 EUR\"\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	now := epoch0
	p := NewPlacement(Config{D: 2}, job, [32]byte{3})
	keys := p.Step(now, Start{})[0].(Lookup).Keys
	var reqs []RequestOffer
	for i, key := range keys {
		var peers []string
		if i == 0 {
			peers = []string{"liar", "dear"}
		}
		for _, a := range p.Step(now, CandidatesFound{Key: key, Peers: peers, Done: true}) {
			if r, ok := a.(RequestOffer); ok {
				reqs = append(reqs, r)
			}
		}
	}
	if len(reqs) != 2 {
		t.Fatalf("%d offers asked, want 2", len(reqs))
	}
	for _, r := range reqs {
		o := Offer{Provider: r.Provider, Requester: job.Requester, RequestNonce: r.Request.Nonce, Nonce: r.Request.Nonce,
			JobCID: job.CID, Resources: job.Resources, Total: Amount{"EUR", 1}, ExpiresAt: now.Add(time.Second),
			Labels: NewLabels(Label{LabelJurisdiction, "fr"})}
		if r.Provider == "liar" {
			o.Labels = NewLabels(Label{LabelJurisdiction, "de"})
		} else {
			o.Total.Nanos = 2_000_000_000
		}
		p.Step(now, OfferReceived{o})
	}
	st := p.Status()
	want := map[string]Reason{"liar": ReasonConstraintMismatch, "dear": ReasonPriceAboveCeiling}
	for _, o := range st.Asked {
		if o.Reason != want[o.Provider] {
			t.Errorf("%s: %s, want %s", o.Provider, o.Reason, want[o.Provider])
		}
	}
	if st.Code != ReasonNotPlaced || st.State != JobPlacing {
		t.Fatalf("status %s code %s, want placing, not placed", st.State, st.Code)
	}
	if !p.isExcluded("liar") || p.isExcluded("dear") {
		t.Fatalf("excluded %v, want the liar only", p.excluded)
	}
}
