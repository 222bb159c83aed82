package provider

import (
	"context"
	"strings"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Offer answers one offer request with a sealed offer or a refusal (SPEC 6.1).
// An offer reserves its resources until it expires, is declined or leased.
func (p *Provider) Offer(ctx context.Context, from string, req *pb.OfferRequest) *pb.OfferResponse {
	if p.store == nil || p.exec == nil && p.cfg.Remote == nil || p.cfg.Data == nil {
		// Every job has an output, which a node that keeps no data cannot
		// hold (SPEC 6.1 step 4, 6.6).
		return p.refuse(from, protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "this node runs no jobs: it has no store, executor or data store"))
	}
	now := p.clock.Now()
	r, err := conv.RequestFromPB(req, from, now)
	if err != nil {
		return p.refuse(from, err)
	}
	r.Origin = transport.Origin(ctx) // the limits of one place (scheduler.MarketConfig)
	if r.Grant != "" {
		// A grantee asks on its slice (SPEC 6.7): the grant must be this
		// site's, to the sender, and started; the market's slices bound it.
		g, err := record.OpenGrant([]byte(r.Grant), now)
		if err == nil {
			err = record.CheckGrantPresented(g, peer.ID(p.id), peer.ID(from), now)
		}
		if err != nil {
			return p.refuse(from, err)
		}
		r.Grantee = from
	}
	p.mu.Lock()
	offer, err := p.market.Quote(now, r)
	p.mu.Unlock()
	if err != nil {
		p.log.Debug("offer refused", "to", short(from), "err", err)
		p.metrics.offers.WithLabelValues("refused").Inc()
		p.metrics.refusals.WithLabelValues("offer", reason(err)).Inc()
		return &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: protocol.ToPB(err)}}
	}
	po := conv.OfferToPB(offer)
	if p.cfg.Remote != nil { // a retailer's: say where it runs, and show the grant behind it
		var site string
		if site, po.Grant, po.Tariff, err = p.cfg.Remote.Backing(offer.Resources); err == nil {
			po.Site = []byte(site)
		}
	}
	var env []byte
	if err == nil {
		env, err = record.Seal(p.cfg.Key, po)
	}
	if err != nil {
		p.mu.Lock()
		p.market.Decline(now, offer.Nonce)
		p.mu.Unlock()
		return p.refuse(from, err)
	}
	p.metrics.offers.WithLabelValues("offered").Inc()
	return &pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: env}}
}

// refuse answers a malformed or failed request with its typed error, and
// counts and logs it.
func (p *Provider) refuse(from string, err error) *pb.OfferResponse {
	p.log.Info("offer request refused", "from", short(from), "err", err)
	p.metrics.offers.WithLabelValues("refused").Inc()
	p.metrics.refusals.WithLabelValues("offer", reason(err)).Inc()
	return &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: protocol.ToPB(err)}}
}

// Malformed counts a request the transport refused before it reached the
// provider (undecodable, too large).
func (p *Provider) Malformed(id, from string, err error) {
	name := strings.TrimPrefix(id, "/cuivre/")
	name, _, _ = strings.Cut(name, "/")
	p.metrics.refusals.WithLabelValues(name, reason(err)).Inc()
	if name == "offer" {
		p.metrics.offers.WithLabelValues("refused").Inc()
	}
	p.log.Info("request refused", "protocol", id, "from", short(from), "err", err)
}

// reason is the metric label of an error: its code, lower case.
func reason(err error) string {
	return strings.ToLower(strings.TrimPrefix(protocol.CodeOf(err).String(), "CODE_"))
}

// short is a peer ID for logs.
func short(id string) string { return protocol.ShortPeerID(id) }
