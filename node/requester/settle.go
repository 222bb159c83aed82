package requester

import (
	"context"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// keepLog stores a lease's stream by its CID when it is whole: the bytes
// watched hash to the CID the provider's result names.
func (r *Requester) keepLog(b, want []byte) {
	c := wire.SumCID(b)
	if r.store == nil || len(b) == 0 || string(c.Bytes()) != string(want) {
		return
	}
	if err := r.store.PutModule(c, b); err != nil {
		r.log.Warn("keep log", "err", err)
	}
}

// settle checks a result's receipt, countersigns it, keeps both and hands the
// countersignature back to the provider (SPEC 6.4).
func (r *Requester) settle(ctx context.Context, provider string, res *pb.Result) {
	if len(res.Receipt) == 0 {
		return
	}
	rc, err := record.OpenReceipt(res.Receipt)
	if err != nil || string(rc.Provider) != provider || string(rc.LeaseId) != string(res.LeaseId) || rc.Epoch != res.Epoch {
		r.log.Warn("receipt refused", "provider", short(provider), "err", err)
		return
	}
	cs, err := record.Seal(r.cfg.Key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(res.Receipt), Requester: []byte(r.id), SignedAtMs: protocol.UnixMs(r.clock.Now())})
	if err != nil {
		return
	}
	if r.store != nil {
		if err := r.store.PutReceipt(store.Receipt{LeaseID: string(rc.LeaseId), Epoch: rc.Epoch, Envelope: res.Receipt, Countersignature: cs}); err != nil {
			r.log.Warn("store receipt", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := SubmitReceipt(sctx, r.t, provider, res.Receipt, cs); err != nil {
		r.log.Info("countersignature not taken", "provider", short(provider), "err", err)
	}
}
