package node

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// errSellsNothing is what a requester-only node says when asked to sell,
// announce or reprice.
var errSellsNothing = errors.New("this node is a requester only: it sells nothing")

// buyer is what a requester-only node answers (SPEC 1: a node that sells
// nothing): the modules of its jobs and the blocks of their inputs, which
// the providers that run them fetch from it. Its libp2p host registers no
// other protocol (p2p.Options.RequesterOnly), so an offer request, a lease,
// a watch or a receipt never reaches it there; on a transport that carries
// every protocol all the same (memnet), each is refused as the seller's
// side of the exchange would refuse what it never made.
type buyer struct {
	store  *store.Store // its jobs' modules; nil holds none
	blocks *data.Server // its data, served to the peers granted it; nil serves none
	log    *slog.Logger
}

const sellsNothing = "this node sells nothing"

func (b *buyer) Offer(_ context.Context, _ string, _ *pb.OfferRequest) *pb.OfferResponse {
	// It runs no engine (SPEC 6.1, step 4).
	return &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: protocol.ToPB(protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "%s", sellsNothing))}}
}

func (b *buyer) Lease(_ context.Context, _ string, req *pb.LeaseRequest) (*pb.LeaseAnswer, func()) {
	if c := req.GetCancel(); c != nil {
		return &pb.LeaseAnswer{LeaseId: c.LeaseId, Epoch: c.Epoch, Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "%s", sellsNothing))}, nil
	}
	return &pb.LeaseAnswer{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_UNKNOWN_OFFER, "%s", sellsNothing))}, nil
}

func (b *buyer) Watch(_ context.Context, _ string, _ *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	return send(&pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "%s", sellsNothing))}})
}

func (b *buyer) Receipt(_ context.Context, _ string, _ *pb.ReceiptSubmit) *pb.ReceiptAck {
	// Whoever signed it, it was not this node (SPEC 6.4, step 1).
	return &pb.ReceiptAck{Error: protocol.ToPB(protocol.Errorf(protocol.CodeWrongSigner, "%s: it signed no receipt", sellsNothing))}
}

// Module serves a module of its jobs (SPEC 6.5).
func (b *buyer) Module(_ context.Context, _ string, req *pb.ModuleRequest, send func(*pb.ModuleChunk) error) error {
	var src provider.ModuleSource
	if b.store != nil {
		src = b.store
	}
	return provider.ServeModule(src, req, send)
}

// Blocks serves the blocks of a DAG granted to the asker (SPEC 6.6).
func (b *buyer) Blocks(ctx context.Context, from string, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error {
	return b.blocks.Serve(ctx, from, req, send)
}

func (b *buyer) Malformed(id, from string, err error) {
	b.log.Info("request refused", "protocol", id, "from", protocol.ShortPeerID(from), "err", err)
}
