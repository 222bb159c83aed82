package wholesale

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// Rent is one bill of a slice's rent the site sent (SPEC 6.7, rent).
type Rent struct {
	Grant         Grant
	Epoch         uint64 // the bill's number for this grant, from 1
	From, Until   time.Time
	Amount        *pb.Amount
	Countersigned bool
	Err           error // why it is not countersigned
}

// BillRent bills every grantee the rent of its slices for the time since
// the last bill (or the slice's start) until now or the slice's end, each
// bill a receipt the grantee countersigns (SPEC 6.7, rent). A bill the
// grantee does not countersign is kept all the same, unsigned: the site's
// statement shows it so, a retailer that stops paying. Slices with nothing
// to bill are left out. It returns the bills made.
func (d *Desk) BillRent(ctx context.Context) ([]Rent, error) {
	made, err := d.made()
	if err != nil {
		return nil, err
	}
	now := d.cfg.Clock.Now()
	var out []Rent
	for _, g := range made {
		epoch, from := d.unbilled(g)
		until := g.end()
		if now.Before(until) {
			until = now
		}
		if !from.Before(until) {
			continue
		}
		out = append(out, d.bill(ctx, g, epoch, from, until, now))
	}
	return out, nil
}

// unbilled returns the number of g's next bill and the start of its rent
// not billed yet: the end of the last bill, or the slice's start.
func (d *Desk) unbilled(g *grant) (epoch uint64, from time.Time) {
	epoch, from = 1, protocol.FromUnixMs(g.g.StartAtMs)
	if last, err := d.cfg.Store.LatestReceipt(g.ID); err == nil {
		if rc, err := record.OpenReceipt(last.Envelope); err == nil {
			epoch, from = last.Epoch+1, protocol.FromUnixMs(rc.EndedAtMs)
		}
	}
	return epoch, from
}

// rentDue is when a bill next falls due, billing every period: the
// earliest, over the slices granted with rent not billed, of a period after
// their last bill (or their start), or their end if sooner; the zero time
// if no slice has rent to bill.
func (d *Desk) rentDue(period time.Duration) time.Time {
	made, _ := d.made()
	var due time.Time
	for _, g := range made {
		_, from := d.unbilled(g)
		end := g.end()
		if !from.Before(end) {
			continue
		}
		at := from.Add(period)
		if end.Before(at) {
			at = end
		}
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due
}

// made returns the grants this site made, ended or not, opened.
func (d *Desk) made() ([]*grant, error) {
	if !d.Site() {
		return nil, errNoTariff
	}
	stored, err := d.cfg.Store.Grants()
	if err != nil {
		return nil, err
	}
	var out []*grant
	for _, sg := range stored {
		if !sg.Made {
			continue
		}
		if g, err := openAnyTime(sg); err == nil {
			out = append(out, g)
		}
	}
	return out, nil
}

// openAnyTime opens a stored grant, ended or not, with what ended it.
func openAnyTime(sg store.Grant) (*grant, error) {
	g := new(pb.SliceGrant)
	if _, _, err := record.Open(sg.Envelope, g); err != nil || sg.OffTerms {
		return nil, errors.New("not a grant held")
	}
	out := &grant{Grant: sg, g: g}
	out.withdrawal, _ = record.OpenWithdrawal(sg.Withdrawal)
	out.release, _ = record.OpenRelease(sg.Release)
	return out, nil
}

// bill seals the rent of g from from to until, stores it, and asks its
// grantee to countersign it.
func (d *Desk) bill(ctx context.Context, g *grant, epoch uint64, from, until, now time.Time) Rent {
	rc := &pb.UsageReceipt{LeaseId: g.g.GrantId, Epoch: epoch, Provider: g.g.Site, Requester: g.g.Grantee, Reserved: g.g.Resources,
		StartedAtMs: protocol.UnixMs(from), EndedAtMs: protocol.UnixMs(until), Price: g.g.Price, OnSlice: true, Nonce: make([]byte, protocol.NonceSize)}
	rand.Read(rc.Nonce)
	nanos, err := protocol.ReceiptAmount(rc, math.MaxUint64)
	rc.Amount = &pb.Amount{Currency: g.g.GetPrice().GetCurrency(), Nanos: nanos}
	out := Rent{Grant: view(g, now), Epoch: epoch, From: from, Until: until, Amount: rc.Amount}
	var env []byte
	if err == nil {
		env, err = record.Seal(d.cfg.Key, rc)
	}
	if err == nil {
		err = d.cfg.Store.PutReceipt(store.Receipt{LeaseID: g.ID, Epoch: epoch, Envelope: env})
	}
	if err != nil {
		out.Err = fmt.Errorf("bill: %w", err)
		return out
	}
	out.Countersigned, out.Err = d.countersigned(ctx, g, epoch, env)
	d.cfg.Log.Info("slice rent billed", "grant", fmt.Sprintf("%x", g.ID), "epoch", epoch, "amount", protocol.FormatAmount(rc.Amount),
		"countersigned", out.Countersigned, "err", out.Err)
	return out
}

// countersigned sends g's grantee the bill env of the given epoch and keeps
// its countersignature, saying whether it came, or why not.
func (d *Desk) countersigned(ctx context.Context, g *grant, epoch uint64, env []byte) (bool, error) {
	ans, err := d.cfg.Net.Wholesale(ctx, string(g.g.Grantee), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Rent{Rent: env}})
	switch {
	case err != nil:
		return false, fmt.Errorf("the grantee was not reached: %w", err)
	case ans.GetRefusal() != nil:
		return false, fmt.Errorf("the grantee refused it: %w", protocol.FromPB(ans.GetRefusal()))
	}
	cs, err := record.OpenCountersignature(ans.GetCountersignature())
	if err == nil && (string(cs.Requester) != string(g.g.Grantee) || !bytes.Equal(cs.ReceiptHash, conv.ReceiptHash(env))) {
		err = errors.New("a countersignature of another receipt, or by another peer")
	}
	if err == nil {
		err = d.cfg.Store.PutReceipt(store.Receipt{LeaseID: g.ID, Epoch: epoch, Envelope: env, Countersignature: ans.GetCountersignature(), Delivered: true})
	}
	return err == nil, err
}

// takeRent is a grantee's answer to its site's bill of a slice's rent
// (SPEC 6.7, rent): its countersignature, once the bill is checked against
// the grant and both are stored; or the check's refusal.
func (d *Desk) takeRent(from string, env []byte) ([]byte, error) {
	rc, err := record.OpenReceipt(env)
	if err != nil {
		return nil, err
	}
	if string(rc.Provider) != from {
		return nil, protocol.Errorf(pb.Code_CODE_WRONG_SIGNER, "rent signed by another peer than the one sending it")
	}
	sg, err := d.cfg.Store.Grant(string(rc.LeaseId))
	if err != nil || sg.Made {
		return nil, protocol.Errorf(pb.Code_CODE_MALFORMED, "no grant %x held here", rc.LeaseId)
	}
	g, err := openAnyTime(sg)
	if err != nil {
		return nil, protocol.Errorf(pb.Code_CODE_MALFORMED, "no grant %x held here", rc.LeaseId)
	}
	if err := record.CheckRent(rc, g.g, protocol.UnixMs(g.end())); err != nil {
		return nil, err
	}
	cs, err := record.Seal(d.cfg.Key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(env), Requester: []byte(d.id), SignedAtMs: protocol.UnixMs(d.cfg.Clock.Now())})
	if err != nil {
		return nil, err
	}
	if err := d.cfg.Store.PutReceipt(store.Receipt{LeaseID: sg.ID, Epoch: rc.Epoch, Envelope: env, Countersignature: cs, Delivered: true}); err != nil {
		return nil, protocol.Errorf(pb.Code_CODE_INTERNAL, "store the rent: %v", err)
	}
	return cs, nil
}

// AskRentAgain asks the grantees again to countersign the site's bills of
// rent they have not countersigned, not reached or refused at the time: a
// retailer offline when its bill was made countersigns it once it is back.
// It returns the bills asked about, with what came of each.
func (d *Desk) AskRentAgain(ctx context.Context) ([]Rent, error) {
	made, err := d.made()
	if err != nil {
		return nil, err
	}
	now := d.cfg.Clock.Now()
	var out []Rent
	for _, g := range made {
		last, err := d.cfg.Store.LatestReceipt(g.ID)
		if err != nil {
			continue // never billed
		}
		for epoch := uint64(1); epoch <= last.Epoch && ctx.Err() == nil; epoch++ {
			kept, err := d.cfg.Store.Receipt(g.ID, epoch)
			if err != nil || kept.Countersignature != nil {
				continue
			}
			rc, err := record.OpenReceipt(kept.Envelope)
			if err != nil {
				continue
			}
			r := Rent{Grant: view(g, now), Epoch: epoch, From: protocol.FromUnixMs(rc.StartedAtMs), Until: protocol.FromUnixMs(rc.EndedAtMs), Amount: rc.Amount}
			r.Countersigned, r.Err = d.countersigned(ctx, g, epoch, kept.Envelope)
			d.cfg.Log.Info("slice rent asked again", "grant", fmt.Sprintf("%x", g.ID), "epoch", epoch, "amount", protocol.FormatAmount(rc.Amount),
				"countersigned", r.Countersigned, "err", r.Err)
			out = append(out, r)
		}
	}
	return out, ctx.Err()
}

// rentRest is the least time between two rounds of billing: a node just
// started joins the federation first, and a round that failed does not
// start again at once.
const rentRest = time.Minute

// BillRentEvery bills the site's grantees their rent every period (and
// first asks again for the countersignatures still missing), on the desk's
// clock, until the returned function is called, which waits for a round
// under way. A round starts when a bill falls due, a period after the last
// bill of a slice (or its start), or at its end, so that a site restarted
// more often than the period still bills; and at least rentRest after the
// last round or the start. Each round has a minute to reach the grantees.
func (d *Desk) BillRentEvery(period time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu      sync.Mutex
		timer   clock.Timer
		stopped bool
		rounds  sync.WaitGroup
	)
	var round func()
	arm := func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			wait := period
			if due := d.rentDue(period); !due.IsZero() {
				wait = due.Sub(d.cfg.Clock.Now())
			}
			rounds.Add(1)
			timer = d.cfg.Clock.AfterFunc(max(wait, rentRest), round)
		}
	}
	round = func() {
		defer rounds.Done()
		if d.Site() {
			rctx, done := context.WithTimeout(ctx, time.Minute)
			if _, err := d.AskRentAgain(rctx); err != nil && ctx.Err() == nil {
				d.cfg.Log.Warn("ask again for rent countersignatures", "err", err)
			}
			if _, err := d.BillRent(rctx); err != nil && ctx.Err() == nil {
				d.cfg.Log.Warn("bill rent", "err", err)
			}
			done()
		}
		arm()
	}
	arm()
	return func() {
		mu.Lock()
		stopped = true
		if timer != nil && timer.Stop() {
			rounds.Done() // the round armed will not run
		}
		mu.Unlock()
		cancel()
		rounds.Wait()
	}
}
