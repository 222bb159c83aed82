package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// handle registers the provider's stream handlers (SPEC 6).
func (n *Node) handle() {
	n.serve(protocol.OfferID, n.handleOffer)
	n.serve(protocol.LeaseID, n.handleLease)
	n.serve(protocol.WatchID, n.handleWatch)
	n.serve(protocol.ModuleID, n.handleModule)
	n.serve(protocol.ReceiptID, n.handleReceipt)
}

// handleOffer answers one offer request with a sealed offer or a refusal
// (SPEC 6.1).
func (n *Node) handleOffer(_ context.Context, e *exchange) error {
	from := e.s.Conn().RemotePeer()
	var req pb.OfferRequest
	if err := e.r.ReadMsg(&req); err != nil {
		return n.refuse(e, fmt.Errorf("offer request: %w", err))
	}
	now := n.now()
	r, err := requestFromPB(&req, from, now)
	if err != nil {
		return n.refuse(e, err)
	}
	n.mu.Lock()
	offer, err := n.market.Quote(now, r)
	n.mu.Unlock()
	if err != nil {
		n.log.Debug("offer refused", "to", from, "err", err)
		n.metrics.offers.WithLabelValues("refused").Inc()
		n.metrics.refusals.WithLabelValues("offer", reason(err)).Inc()
		return e.w.WriteMsg(&pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: protocol.ToPB(err)}})
	}
	env, err := record.Seal(n.opts.Identity, offerToPB(offer))
	if err != nil {
		n.mu.Lock()
		n.market.Decline(now, offer.Nonce)
		n.mu.Unlock()
		return n.refuse(e, err)
	}
	n.metrics.offers.WithLabelValues("offered").Inc()
	return e.w.WriteMsg(&pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: env}})
}

// reason is the metric label of an error: its code, lower case.
func reason(err error) string {
	return strings.ToLower(strings.TrimPrefix(protocol.CodeOf(err).String(), "CODE_"))
}

// refuse answers a malformed or failed request with its typed error and logs
// it; the exchange itself ended well.
func (n *Node) refuse(e *exchange, err error) error {
	n.log.Info("offer request refused", "from", e.s.Conn().RemotePeer(), "err", err)
	n.metrics.offers.WithLabelValues("refused").Inc()
	n.metrics.refusals.WithLabelValues("offer", reason(err)).Inc()
	return e.w.WriteMsg(&pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: protocol.ToPB(err)}})
}
