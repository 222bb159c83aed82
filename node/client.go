package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
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
		o, err := protocol.OpenOffer(res.Offer, n.now())
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
