package p2p

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// PutTariff puts this host's sealed wholesale tariff in the DHT (SPEC 4.5),
// under the key every retailer reads alike.
func (h *Host) PutTariff(ctx context.Context, env []byte) error {
	return h.dht.PutValue(ctx, record.TariffKey(h.host.ID()), env)
}

// Tariff reads a site's published tariff from the DHT and opens it. It
// returns the envelope exactly as read, which a slice request names by its
// hash (SPEC 6.7).
func (h *Host) Tariff(ctx context.Context, site peer.ID) (*pb.WholesaleTariff, []byte, error) {
	env, err := h.dht.GetValue(ctx, record.TariffKey(site))
	if err != nil {
		return nil, nil, fmt.Errorf("tariff of %s: %w", protocol.ShortPeerID(string(site)), err)
	}
	t, err := record.OpenTariff(env, h.opts.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("tariff of %s: %w", protocol.ShortPeerID(string(site)), err)
	}
	return t, env, nil
}

// WholesaleFunc answers one request of /cuivre/wholesale/1.0.0 (SPEC 6.7)
// from the authenticated peer from.
type WholesaleFunc func(ctx context.Context, from string, req *pb.WholesaleRequest) *pb.WholesaleAnswer

// ServeWholesale makes fn answer /cuivre/wholesale/1.0.0; nil stops
// answering. A site serves it, and a retailer while it holds a live grant,
// to receive withdrawals; other nodes do not (SPEC 6.7).
func (h *Host) ServeWholesale(fn WholesaleFunc) {
	if fn == nil {
		h.host.RemoveStreamHandler(protocol.WholesaleID)
		return
	}
	h.serve(protocol.WholesaleID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var req pb.WholesaleRequest
		if err := e.r.ReadMsg(&req); err != nil {
			return h.malformed(e, from, hd, err)
		}
		return e.w.WriteMsg(fn(ctx, from, &req))
	})
}

// Wholesale sends one request of /cuivre/wholesale/1.0.0 and reads its
// answer (SPEC 6.7).
func (h *Host) Wholesale(ctx context.Context, to string, req *pb.WholesaleRequest) (*pb.WholesaleAnswer, error) {
	var a pb.WholesaleAnswer
	return &a, h.roundTrip(ctx, to, protocol.WholesaleID, req, &a)
}
