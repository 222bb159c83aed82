package requester

import (
	"context"
	"fmt"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// The requester's side of each exchange (SPEC 6): what it sends, and how it
// checks what comes back before the placement sees it.

// RequestOffer asks a provider for an offer (SPEC 6.1). It returns the
// verified offer and its envelope, or the provider's refusal as a
// *protocol.Error. It applies the requester's checks 2 to 4 of SPEC 6.1 and
// checks that the total is the cost of the resources asked at the offer's
// price (SPEC 5.5); an offer that opens but fails one of them is returned
// with the error, so that the caller declines it (its Nonce is set). The
// replay check (5) is the caller's, which owns the cache; checks 6 to 8 are
// the placement's.
func RequestOffer(ctx context.Context, t transport.Transport, to string, r scheduler.Request, now func() time.Time) (scheduler.Offer, []byte, error) {
	resp, err := t.Offer(ctx, to, conv.RequestToPB(r))
	if err != nil {
		return scheduler.Offer{}, nil, err
	}
	switch res := resp.Result.(type) {
	case *pb.OfferResponse_Refusal:
		return scheduler.Offer{}, nil, protocol.FromPB(res.Refusal)
	case *pb.OfferResponse_Offer:
		o, err := record.OpenOffer(res.Offer, now())
		if err != nil {
			return scheduler.Offer{}, nil, fmt.Errorf("offer from %s: %w", short(to), err)
		}
		if string(o.Provider) != to {
			return scheduler.Offer{}, nil, protocol.Errorf(protocol.CodeWrongSigner, "offer signed by %s, asked %s", short(string(o.Provider)), short(to))
		}
		offer := conv.OfferFromPB(o)
		if err == nil && (len(o.Site) > 0 || len(o.Grant) > 0) {
			err = record.CheckRetailOffer(o, now())
		}
		if err == nil {
			err = checkOffer(o, r, t.Self())
		}
		if err != nil {
			return offer, res.Offer, fmt.Errorf("offer from %s refused here: %w", short(to), err)
		}
		return offer, res.Offer, nil
	}
	return scheduler.Offer{}, nil, protocol.Errorf(protocol.CodeMalformed, "empty offer response")
}

// checkOffer is SPEC 6.1's requester check 4, and the total's: the offer
// answers request r of requester self, for r's job, and its total is the
// cost of r's resources for r's timeout at the offer's price.
func checkOffer(o *pb.Offer, r scheduler.Request, self string) error {
	switch {
	case string(o.RequestNonce) != r.Nonce || string(o.Requester) != self:
		return protocol.Errorf(protocol.CodeMalformed, "the offer answers another request")
	case string(o.JobCid) != r.JobCID:
		return protocol.Errorf(protocol.CodeMalformed, "the offer is for another job")
	}
	want, err := protocol.Cost(conv.ResourcesToPB(r.Resources), o.Price, r.Timeout)
	if err != nil {
		return protocol.Errorf(protocol.CodeMalformed, "the offer's price overflows: %v", err)
	}
	if o.GetTotal().GetNanos() != want.Nanos || o.GetTotal().GetCurrency() != want.Currency {
		return protocol.Errorf(protocol.CodeMalformed, "the offer's total is %s, its price gives %s for the resources and timeout asked (SPEC 5.5)",
			protocol.FormatAmount(o.GetTotal()), protocol.FormatAmount(want))
	}
	return nil
}

// SendLease sends a sealed lease and returns the provider's answer.
func SendLease(ctx context.Context, t transport.Transport, to string, env []byte) error {
	return leaseRequest(ctx, t, to, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: env}})
}

// Decline frees the reservation behind an offer not taken.
func Decline(ctx context.Context, t transport.Transport, to, offerNonce, jobCID string) error {
	return leaseRequest(ctx, t, to, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: []byte(offerNonce), JobCid: []byte(jobCID)}}})
}

// CancelLease stops a lease epoch running on a provider.
func CancelLease(ctx context.Context, t transport.Transport, to, leaseID string, epoch uint64) error {
	return leaseRequest(ctx, t, to, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: []byte(leaseID), Epoch: epoch}}})
}

func leaseRequest(ctx context.Context, t transport.Transport, to string, req *pb.LeaseRequest) error {
	a, err := t.Lease(ctx, to, req)
	if err != nil {
		return err
	}
	if !a.Accepted {
		if a.Error == nil {
			return protocol.Errorf(protocol.CodeMalformed, "lease refused without a reason")
		}
		return protocol.FromPB(a.Error)
	}
	return nil
}

// Watch follows a lease epoch on its provider, calling fn for each event,
// until the Result (returned) or an error.
func Watch(ctx context.Context, t transport.Transport, to string, req *pb.WatchRequest, fn func(*pb.WatchEvent)) (*pb.Result, error) {
	var res *pb.Result
	var werr error
	err := t.Watch(ctx, to, req, func(ev *pb.WatchEvent) bool {
		if fn != nil {
			fn(ev)
		}
		switch x := ev.Event.(type) {
		case *pb.WatchEvent_Result:
			res = x.Result
			return false
		case *pb.WatchEvent_Error:
			werr = protocol.FromPB(x.Error)
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("watch %s: %w", short(to), err)
	case werr != nil:
		return nil, werr
	case res == nil:
		return nil, fmt.Errorf("watch %s: the stream ended before the result", short(to))
	}
	return res, nil
}

// SubmitReceipt hands a provider its receipt back, countersigned.
func SubmitReceipt(ctx context.Context, t transport.Transport, to string, receipt, countersig []byte) error {
	ack, err := t.Receipt(ctx, to, &pb.ReceiptSubmit{Receipt: receipt, Countersignature: countersig})
	if err != nil {
		return err
	}
	if !ack.Accepted {
		return protocol.FromPB(ack.Error)
	}
	return nil
}
