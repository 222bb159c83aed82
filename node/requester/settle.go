package requester

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

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

// Terms are what a requester knows of the offer a lease epoch took, to check
// its receipt against (SPEC 6.4).
type Terms struct {
	JobCID string // the job's CID, binary
	// Price is the leased offer's unit prices; nil when no longer known
	// (a lease taken up again after a restart of this node), and then the
	// receipt's own price is the one its amount is recomputed with.
	Price *pb.Price
	// Total is the leased offer's total: the most its compute may cost.
	Total *pb.Amount
}

// settle checks a result's receipt, countersigns it, keeps both and hands the
// countersignature back to the provider (SPEC 6.4), in the background: again
// after a failure, until the provider takes it (deliver). A receipt refused
// is not countersigned, and j (when not nil) says why.
func (r *Requester) settle(j *job, provider string, res *pb.Result, terms Terms) {
	if len(res.Receipt) == 0 {
		return
	}
	rc, err := CheckReceipt(res.Receipt, provider, r.id, res.LeaseId, res.Epoch, terms.JobCID)
	if err == nil {
		err = CheckBill(rc, res, terms)
	}
	if err != nil {
		r.log.Warn("receipt refused", "provider", short(provider), "err", err)
		if j != nil {
			r.refuseReceipt(j, provider, res, err)
		}
		return
	}
	cs, err := record.Seal(r.cfg.Key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(res.Receipt), Requester: []byte(r.id), SignedAtMs: protocol.UnixMs(r.clock.Now())})
	if err != nil {
		return
	}
	if r.store != nil {
		if err := r.store.PutReceipt(store.Receipt{LeaseID: string(rc.LeaseId), Epoch: rc.Epoch, Envelope: res.Receipt, Countersignature: cs}); err != nil {
			r.log.Warn("store receipt", "err", err)
			return
		}
	}
	r.spawn(func() { r.deliver(provider, string(rc.LeaseId), rc.Epoch, res.Receipt, cs) })
}

// refuseReceipt tells the job's customer that a receipt was refused, and
// why: on its slot, and in its history, which is saved.
func (r *Requester) refuseReceipt(j *job, provider string, res *pb.Result, err error) {
	now := r.clock.Now()
	j.update(func() {
		if j.refused == nil {
			j.refused = map[runKey]string{}
		}
		j.refused[runKey{string(res.LeaseId), res.Epoch}] = err.Error()
		j.history = keepLast(append(j.history, fmt.Sprintf("%s receipt of lease epoch %d from %s refused, not countersigned: %v",
			now.Sub(j.submitted).Round(time.Millisecond), res.Epoch, short(provider), err)), maxKept)
	})
	if r.store != nil {
		j.mu.Lock()
		st := j.status
		j.mu.Unlock()
		r.queueSave(j, r.record(j, st))
	}
}

// CheckReceipt opens a receipt that provider sent for the lease epoch
// (leaseID, epoch) of job jobCID and the requester self, and checks it is
// theirs (SPEC 6.4, the requester's steps 1 and 2): signed by provider,
// naming self, that lease, that epoch (an older one is CODE_STALE_EPOCH) and
// that job. CheckBill checks the rest.
func CheckReceipt(env []byte, provider, self string, leaseID []byte, epoch uint64, jobCID string) (*pb.UsageReceipt, error) {
	rc, err := record.OpenReceipt(env)
	switch {
	case err != nil:
		return nil, err
	case string(rc.Provider) != provider:
		return nil, protocol.Errorf(protocol.CodeWrongSigner, "receipt signed by %s, the lease's provider is %s", short(string(rc.Provider)), short(provider))
	case string(rc.Requester) != self:
		return nil, protocol.Errorf(protocol.CodeMalformed, "receipt for requester %s", short(string(rc.Requester)))
	case string(rc.LeaseId) != string(leaseID):
		return nil, protocol.Errorf(protocol.CodeMalformed, "receipt of lease %x, not %x", rc.LeaseId, leaseID)
	case rc.Epoch < epoch:
		return nil, protocol.Errorf(protocol.CodeStaleEpoch, "receipt of epoch %d, the lease is at %d", rc.Epoch, epoch)
	case rc.Epoch != epoch:
		return nil, protocol.Errorf(protocol.CodeMalformed, "receipt of epoch %d, not %d", rc.Epoch, epoch)
	case string(rc.JobCid) != jobCID:
		return nil, protocol.Errorf(protocol.CodeMalformed, "receipt of another job")
	}
	return rc, nil
}

// CheckBill checks what an opened receipt charges (SPEC 6.4, the
// requester's step 3): the leased offer's price (when terms has it), the
// currency of its total, an end not before the start, the output of res
// (when not nil), and an amount that is exactly SPEC 5.5's formula over the
// receipt's own fields, capped by the offer's total.
func CheckBill(rc *pb.UsageReceipt, res *pb.Result, terms Terms) error {
	if terms.Total == nil || terms.Total.Currency == "" {
		return protocol.Errorf(protocol.CodeMalformed, "the leased offer's total is not known here: the receipt cannot be checked")
	}
	switch {
	case terms.Price != nil && !proto.Equal(rc.Price, terms.Price):
		return protocol.Errorf(protocol.CodeMalformed, "receipt at another price than the offer leased")
	case rc.GetPrice().GetCurrency() != terms.Total.Currency || rc.GetAmount().GetCurrency() != terms.Total.Currency:
		return protocol.Errorf(protocol.CodeMalformed, "receipt in %q (price %q), the offer was in %s", rc.GetAmount().GetCurrency(), rc.GetPrice().GetCurrency(), terms.Total.Currency)
	case rc.EndedAtMs < rc.StartedAtMs:
		return protocol.Errorf(protocol.CodeMalformed, "receipt ends at %d ms, before it starts at %d ms", rc.EndedAtMs, rc.StartedAtMs)
	case res != nil && (string(rc.OutputCid) != string(res.OutputCid) || rc.OutputSize != res.OutputSize):
		return protocol.Errorf(protocol.CodeMalformed, "receipt names another output than the result")
	}
	want, err := protocol.ReceiptAmount(rc, terms.Total.Nanos)
	if err != nil {
		return protocol.Errorf(protocol.CodeMalformed, "receipt amount: %v", err)
	}
	if rc.GetAmount().GetNanos() != want {
		return protocol.Errorf(protocol.CodeMalformed, "receipt charges %s, SPEC 5.5 over its own fields gives %s (%d ms held, %d bytes out)",
			protocol.FormatAmount(rc.Amount), protocol.FormatAmount(&pb.Amount{Currency: terms.Total.Currency, Nanos: want}),
			rc.EndedAtMs-rc.StartedAtMs, rc.EgressBytes)
	}
	return nil
}

// Backoff of a countersignature's delivery to a provider that did not take it.
const (
	deliverFirst = time.Second
	deliverMax   = time.Minute
)

// deliver hands a countersignature to its provider until it takes it,
// refuses it for good (it answered with a code), or this node stops; then
// marks the receipt delivered. A receipt whose countersignature never
// reaches its provider is one the provider cannot bill: a provider killed
// or cut off when the run ended, or this node killed before it sent it
// (redeliver takes it up at the next start).
func (r *Requester) deliver(provider, id string, epoch uint64, receipt, cs []byte) {
	wait := deliverFirst
	for first := true; ; first = false {
		// The first attempt outlives Close, for as long as one attempt
		// takes: a node stopping gracefully hands over the
		// countersignatures it has just made, which its providers bill from.
		parent := r.ctx
		if first {
			parent = context.WithoutCancel(r.ctx)
		}
		ctx, cancel := context.WithTimeout(parent, 5*time.Second)
		err := SubmitReceipt(ctx, r.t, provider, receipt, cs)
		cancel()
		if err != nil && r.ctx.Err() != nil {
			return
		}
		if code := answerCode(err); err == nil || code != pb.Code_CODE_UNSPECIFIED && code != pb.Code_CODE_RATE_LIMITED {
			if err != nil {
				r.log.Info("countersignature refused", "provider", short(provider), "err", err)
			}
			if r.store != nil {
				if err := r.store.Deliver(id, epoch); err != nil {
					r.log.Warn("store receipt delivered", "err", err)
				}
			}
			return
		}
		r.log.Debug("countersignature not taken yet", "provider", short(provider), "err", err, "again in", wait)
		select {
		case <-r.clock.After(wait):
		case <-r.ctx.Done():
			return
		}
		wait = min(2*wait, deliverMax)
	}
}

// redeliver takes up, at start, what a previous process of this node left
// unsettled: countersignatures not delivered, and receipts of results it
// recorded but did not live to countersign, which it asks their providers
// for again.
func (r *Requester) redeliver(jobs []store.Job) {
	if r.store == nil {
		return
	}
	pending, err := r.store.Undelivered()
	if err != nil {
		r.log.Warn("receipts to deliver", "err", err)
	}
	for _, rc := range pending {
		pr, err := record.OpenReceipt(rc.Envelope)
		if err != nil || string(pr.Provider) == r.id {
			continue // this node's own, as a provider: its requesters countersigned them
		}
		r.spawn(func() { r.deliver(string(pr.Provider), rc.LeaseID, rc.Epoch, rc.Envelope, rc.Countersignature) })
	}
	for _, j := range jobs {
		for _, s := range j.Slots {
			if s.Result == nil || !s.Result.HasReceipt {
				continue
			}
			if _, err := r.store.Receipt(s.LeaseID, s.Epoch); !errors.Is(err, store.ErrNotFound) {
				continue
			}
			r.spawn(func() {
				ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
				defer cancel()
				res, err := Watch(ctx, r.t, s.Provider, &pb.WatchRequest{LeaseId: []byte(s.LeaseID), Epoch: s.Epoch}, nil)
				if err != nil {
					r.log.Info("receipt not fetched again", "provider", short(s.Provider), "err", err)
					return
				}
				r.settle(nil, s.Provider, res, Terms{JobCID: j.CID, Total: &pb.Amount{Currency: s.Price.Currency, Nanos: s.Price.Nanos}})
			})
		}
	}
}
