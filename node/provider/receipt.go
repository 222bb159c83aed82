package provider

import (
	"context"
	"errors"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// Receipt takes a countersigned receipt back (SPEC 6.4) and keeps the
// countersignature beside the receipt, synced before the acknowledgement.
func (p *Provider) Receipt(_ context.Context, from string, sub *pb.ReceiptSubmit) *pb.ReceiptAck {
	err := p.countersigned(from, sub)
	if err != nil {
		p.metrics.refusals.WithLabelValues("receipt", reason(err)).Inc()
	}
	return &pb.ReceiptAck{Accepted: err == nil, Error: protocol.ToPB(err)}
}

func (p *Provider) countersigned(from string, sub *pb.ReceiptSubmit) error {
	r, err := record.OpenReceipt(sub.Receipt)
	if err != nil {
		return err
	}
	if string(r.Provider) != p.id {
		return protocol.Errorf(protocol.CodeWrongSigner, "a receipt of another provider")
	}
	cs, err := record.OpenCountersignature(sub.Countersignature)
	if err != nil {
		return err
	}
	if string(cs.Requester) != from || string(r.Requester) != from {
		return protocol.Errorf(protocol.CodeWrongSigner, "countersigned by %s, the receipt's requester is %s", short(from), short(string(r.Requester)))
	}
	if string(cs.ReceiptHash) != string(conv.ReceiptHash(sub.Receipt)) {
		return protocol.Errorf(protocol.CodeMalformed, "the countersignature covers another receipt")
	}
	if p.store == nil {
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no store")
	}
	stored, err := p.store.Receipt(string(r.LeaseId), r.Epoch)
	if errors.Is(err, store.ErrNotFound) || err == nil && string(stored.Envelope) != string(sub.Receipt) {
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no such receipt here")
	}
	if err != nil {
		return err
	}
	if err := p.store.Countersign(string(r.LeaseId), r.Epoch, sub.Countersignature); err != nil {
		return err
	}
	p.releaseOutput(string(r.LeaseId), r.Epoch, r.OutputCid)
	return nil
}

// Earnings sums the usage receipts in the store that this provider sealed,
// by currency, in nano-units, and the part the requesters countersigned. A
// node that also buys keeps the receipts of its own jobs in the same store:
// those are what it paid, not what it earned.
func (p *Provider) Earnings() (billed, countersigned map[string]uint64, err error) {
	if p.store == nil {
		return nil, nil, nil
	}
	rs, err := p.store.Receipts()
	if err != nil {
		return nil, nil, err
	}
	billed, countersigned = map[string]uint64{}, map[string]uint64{}
	for _, r := range rs {
		rec, err := record.OpenReceipt(r.Envelope)
		if err != nil || string(rec.GetProvider()) != p.id {
			continue
		}
		a := rec.GetAmount()
		billed[a.GetCurrency()] += a.GetNanos()
		if len(r.Countersignature) > 0 {
			countersigned[a.GetCurrency()] += a.GetNanos()
		}
	}
	return billed, countersigned, nil
}
