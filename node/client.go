package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// RequestOffer asks a provider for an offer (SPEC 6.1). It returns the
// verified offer, or the provider's refusal as a *protocol.Error.
func (n *Node) RequestOffer(ctx context.Context, p peer.ID, r scheduler.Request) (scheduler.Offer, []byte, error) {
	e, err := n.open(ctx, p, protocol.OfferID)
	if err != nil {
		return scheduler.Offer{}, nil, err
	}
	defer e.close()
	if err := e.w.WriteMsg(requestToPB(r)); err != nil {
		return scheduler.Offer{}, nil, err
	}
	var resp pb.OfferResponse
	if err := e.r.ReadMsg(&resp); err != nil {
		return scheduler.Offer{}, nil, fmt.Errorf("offer from %s: %w", p.ShortString(), err)
	}
	switch res := resp.Result.(type) {
	case *pb.OfferResponse_Refusal:
		return scheduler.Offer{}, nil, protocol.FromPB(res.Refusal)
	case *pb.OfferResponse_Offer:
		o, err := record.OpenOffer(res.Offer, n.now())
		if err != nil {
			return scheduler.Offer{}, nil, fmt.Errorf("offer from %s: %w", p.ShortString(), err)
		}
		if peer.ID(o.Provider) != p {
			return scheduler.Offer{}, nil, protocol.Errorf(protocol.CodeWrongSigner, "offer signed by %s, asked %s", peer.ID(o.Provider).ShortString(), p.ShortString())
		}
		if string(o.RequestNonce) != r.Nonce || peer.ID(o.Requester) != n.ID() {
			return scheduler.Offer{}, nil, protocol.Errorf(protocol.CodeMalformed, "offer answers another request")
		}
		return offerFromPB(o), res.Offer, nil
	}
	return scheduler.Offer{}, nil, protocol.Errorf(protocol.CodeMalformed, "empty offer response")
}

// SendLease sends a sealed lease and returns the provider's answer.
func (n *Node) SendLease(ctx context.Context, p peer.ID, env []byte) error {
	return n.leaseRequest(ctx, p, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: env}})
}

// Decline frees the reservation behind an offer not taken.
func (n *Node) Decline(ctx context.Context, p peer.ID, offerNonce, jobCID string) error {
	return n.leaseRequest(ctx, p, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: []byte(offerNonce), JobCid: []byte(jobCID)}}})
}

// CancelLease stops a lease epoch running on a provider.
func (n *Node) CancelLease(ctx context.Context, p peer.ID, leaseID string, epoch uint64) error {
	return n.leaseRequest(ctx, p, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: []byte(leaseID), Epoch: epoch}}})
}

func (n *Node) leaseRequest(ctx context.Context, p peer.ID, req *pb.LeaseRequest) error {
	e, err := n.open(ctx, p, protocol.LeaseID)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.w.WriteMsg(req); err != nil {
		return err
	}
	var a pb.LeaseAnswer
	if err := e.r.ReadMsg(&a); err != nil {
		return fmt.Errorf("lease answer from %s: %w", p.ShortString(), err)
	}
	if !a.Accepted {
		if a.Error == nil {
			return protocol.Errorf(protocol.CodeMalformed, "lease refused without a reason")
		}
		return protocol.FromPB(a.Error)
	}
	return nil
}

// Watch follows a lease epoch on its provider, calling fn for each event, until
// the Result (returned) or an error. The stream has no deadline but ctx's.
func (n *Node) Watch(ctx context.Context, p peer.ID, req *pb.WatchRequest, fn func(*pb.WatchEvent)) (*pb.Result, error) {
	e, err := n.open(ctx, p, protocol.WatchID)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if _, ok := ctx.Deadline(); !ok {
		e.s.SetDeadline(time.Time{})
	}
	if err := e.w.WriteMsg(req); err != nil {
		return nil, err
	}
	for {
		var ev pb.WatchEvent
		if err := e.r.ReadMsg(&ev); err != nil {
			return nil, fmt.Errorf("watch %s: %w", p.ShortString(), err)
		}
		if fn != nil {
			fn(&ev)
		}
		switch x := ev.Event.(type) {
		case *pb.WatchEvent_Result:
			return x.Result, nil
		case *pb.WatchEvent_Error:
			return nil, protocol.FromPB(x.Error)
		}
	}
}

// FetchModule fetches a module by CID from a peer and verifies its bytes.
func (n *Node) FetchModule(ctx context.Context, p peer.ID, c cid.Cid) ([]byte, error) {
	e, err := n.open(ctx, p, protocol.ModuleID)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.w.WriteMsg(&pb.ModuleRequest{Cid: c.Bytes()}); err != nil {
		return nil, err
	}
	var buf []byte
	for {
		var ch pb.ModuleChunk
		if err := e.r.ReadMsg(&ch); err != nil {
			return nil, fmt.Errorf("module %s from %s: %w", c, p.ShortString(), err)
		}
		if ch.Error != nil {
			return nil, protocol.FromPB(ch.Error)
		}
		if ch.Size > maxModule || ch.Offset != uint64(len(buf)) {
			return nil, protocol.Errorf(protocol.CodeMalformed, "module chunk at %d of %d, expected %d", ch.Offset, ch.Size, len(buf))
		}
		if buf == nil {
			buf = make([]byte, 0, ch.Size)
		}
		buf = append(buf, ch.Data...)
		if ch.Last {
			break
		}
	}
	if got := wire.SumCID(buf); !got.Equals(c) {
		return nil, protocol.Errorf(pb.Code_CODE_MODULE_MISMATCH, "module from %s hashes to %s, not %s", p.ShortString(), got, c)
	}
	return buf, nil
}

// maxModule bounds a fetched module, as the store does.
const maxModule = 64 << 20

// SubmitReceipt hands a provider its receipt back, countersigned.
func (n *Node) SubmitReceipt(ctx context.Context, p peer.ID, receipt, countersig []byte) error {
	e, err := n.open(ctx, p, protocol.ReceiptID)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.w.WriteMsg(&pb.ReceiptSubmit{Receipt: receipt, Countersignature: countersig}); err != nil {
		return err
	}
	var ack pb.ReceiptAck
	if err := e.r.ReadMsg(&ack); err != nil {
		return err
	}
	if !ack.Accepted {
		return protocol.FromPB(ack.Error)
	}
	return nil
}
