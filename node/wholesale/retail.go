package wholesale

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// Ask is a slice a retailer asks a site for.
type Ask struct {
	// Jurisdiction is the retailer's own, which it declares to the site;
	// "" declares none.
	Jurisdiction string
	Site         peer.ID
	Resources    scheduler.Resources
	Start        time.Time // zero: now
	End          time.Time
}

// ErrOffTerms says a site granted a slice off its published terms: the
// grant is refused, and kept as proof (SPEC 6.7, retailer step 4).
var ErrOffTerms = errors.New("the grant is not at the tariff asked for")

// Request asks a site for a slice at its published tariff, read from the
// DHT (SPEC 6.7). It returns the grant, stored, or the site's refusal (a
// *protocol.Error). A grant that does not open, or is not to this node for
// this request, is discarded; one off the tariff's terms is stored as proof
// and refused with ErrOffTerms.
func (d *Desk) Request(ctx context.Context, a Ask) (Grant, error) {
	if a.Site == d.id {
		return Grant{}, errors.New("a node cannot rent a slice of itself")
	}
	t, tenv, err := d.cfg.Net.Tariff(ctx, a.Site)
	if err != nil {
		return Grant{}, err
	}
	req := &pb.SliceRequest{Nonce: make([]byte, protocol.NonceSize), Site: []byte(a.Site), TariffHash: record.TariffHash(tenv),
		Resources: conv.ResourcesToPB(a.Resources), EndAtMs: protocol.UnixMs(a.End), Jurisdiction: a.Jurisdiction}
	if !a.Start.IsZero() {
		req.StartAtMs = protocol.UnixMs(a.Start)
	}
	rand.Read(req.Nonce)
	ans, err := d.cfg.Net.Wholesale(ctx, string(a.Site), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Slice{Slice: req}})
	if err != nil {
		return Grant{}, fmt.Errorf("ask %s for a slice: %w", protocol.ShortPeerID(string(a.Site)), err)
	}
	var genv []byte
	switch r := ans.Result.(type) {
	case *pb.WholesaleAnswer_Refusal:
		return Grant{}, protocol.FromPB(r.Refusal)
	case *pb.WholesaleAnswer_Grant:
		genv = r.Grant
	default:
		return Grant{}, protocol.Errorf(pb.Code_CODE_MALFORMED, "the site answered a slice request with neither a grant nor a refusal")
	}
	now := d.cfg.Clock.Now()
	g, err := record.OpenGrant(genv, now)
	if err != nil {
		return Grant{}, fmt.Errorf("the site's grant: %w", err)
	}
	if string(g.Site) != string(a.Site) || string(g.Grantee) != string(d.id) || !bytes.Equal(g.RequestNonce, req.Nonce) {
		return Grant{}, protocol.Errorf(pb.Code_CODE_MALFORMED, "the site's grant is not to this node for this request")
	}
	held := &grant{Grant: store.Grant{ID: string(g.GrantId), Envelope: genv, Tariff: tenv}, g: g}
	terms := record.CheckGrantTerms(g, tenv, t)
	if terms == nil && (!proto.Equal(g.Resources, req.Resources) || g.EndAtMs != req.EndAtMs || g.StartAtMs < req.StartAtMs || g.Jurisdiction != req.Jurisdiction) {
		terms = protocol.Errorf(pb.Code_CODE_TARIFF_MISMATCH, "grant %x is not the slice asked for", g.GrantId)
	}
	if terms != nil {
		held.OffTerms = true
		if err := d.cfg.Store.PutGrant(held.Grant); err != nil {
			return Grant{}, err
		}
		return Grant{}, fmt.Errorf("%w: %w", ErrOffTerms, terms)
	}
	if err := d.cfg.Store.PutGrant(held.Grant); err != nil {
		return Grant{}, err
	}
	d.mu.Lock()
	d.grants[held.ID] = held
	d.mu.Unlock()
	d.cfg.Changed()
	return view(held, now), nil
}

// takeWithdrawal is a grantee's answer to a site's withdrawal (SPEC 6.7):
// nil once it is stored; CODE_NOTICE_TOO_SHORT, stored as proof, when it
// gives less notice than the grant's.
func (d *Desk) takeWithdrawal(from string, env []byte) error {
	w, err := record.OpenWithdrawal(env)
	if err != nil {
		return err
	}
	if string(w.Site) != from {
		return protocol.Errorf(pb.Code_CODE_WRONG_SIGNER, "withdrawal signed by another peer than the one sending it")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.grants[string(w.GrantId)]
	if !ok || g.Made || string(g.g.Site) != from || string(w.Grantee) != string(d.id) {
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "no live grant %x from this site to this node", w.GrantId)
	}
	if bytes.Equal(g.Withdrawal, env) {
		if g.WithdrawalRefused {
			return protocol.Errorf(pb.Code_CODE_NOTICE_TOO_SHORT, "withdrawal of grant %x refused already: it gave less notice than the grant's", w.GrantId)
		}
		return nil // the same withdrawal again: acknowledged again
	}
	checked := record.CheckWithdrawal(w, g.g, d.cfg.Clock.Now())
	if protocol.CodeOf(checked) != pb.Code_CODE_NOTICE_TOO_SHORT && checked != nil {
		return checked
	}
	next := g.Grant
	next.Withdrawal, next.WithdrawalRefused = env, checked != nil
	if err := d.cfg.Store.PutGrant(next); err != nil {
		return protocol.Errorf(pb.Code_CODE_INTERNAL, "store the withdrawal: %v", err)
	}
	g.Grant, g.withdrawal = next, w
	if checked != nil {
		d.cfg.Log.Warn("a site withdrew a slice without its notice: refused, and kept as proof", "grant", fmt.Sprintf("%x", w.GrantId),
			"site", protocol.ShortPeerID(from), "err", checked)
		return checked
	}
	d.cfg.Log.Info("a site withdrew a slice", "grant", fmt.Sprintf("%x", w.GrantId), "site", protocol.ShortPeerID(from),
		"until", protocol.FromUnixMs(w.EndAtMs).Format(time.RFC3339))
	return nil
}

// takeRelease is a site's answer to its grantee's release (SPEC 6.7): nil
// once the slice ends at the release's end, in its market and its store;
// CODE_NOTICE_TOO_SHORT when it gives less notice than the grant's.
func (d *Desk) takeRelease(from string, env []byte) error {
	if !d.Site() {
		return errNoTariff
	}
	r, err := record.OpenRelease(env)
	if err != nil {
		return err
	}
	if string(r.Grantee) != from {
		return protocol.Errorf(pb.Code_CODE_WRONG_SIGNER, "release signed by another peer than the one sending it")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.grants[string(r.GrantId)]
	if !ok || !g.Made || string(g.g.Grantee) != from || string(r.Site) != string(d.id) {
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "no live grant %x from this site to the sender", r.GrantId)
	}
	if bytes.Equal(g.Release, env) {
		return nil // the same release again: acknowledged again
	}
	if g.release != nil {
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "grant %x was released already", r.GrantId)
	}
	if err := record.CheckRelease(r, g.g, d.cfg.Clock.Now()); err != nil {
		return err
	}
	end := protocol.FromUnixMs(r.EndAtMs)
	shortens := end.Before(g.end())
	if shortens {
		if err := d.cfg.Market.Withdraw(g.ID, end); err != nil {
			return err
		}
	}
	next := g.Grant
	next.Release = env
	if err := d.cfg.Store.PutGrant(next); err != nil {
		if shortens { // hold the slice to its end again: nothing was agreed
			d.cfg.Market.Revoke(g.ID)
			d.cfg.Market.Grant(slice(g))
		}
		return protocol.Errorf(pb.Code_CODE_INTERNAL, "store the release: %v", err)
	}
	g.Grant, g.release = next, r
	d.cfg.Log.Info("a retailer released a slice", "grant", fmt.Sprintf("%x", r.GrantId), "retailer", protocol.ShortPeerID(from),
		"until", end.Format(time.RFC3339))
	return nil
}

// Release gives a slice this node holds back to its site at end, sooner
// than granted (SPEC 6.7): end must be at least the grant's notice from
// now, which the site checks too. It returns the grant once the site
// accepted and the release is stored, or the site's refusal.
func (d *Desk) Release(ctx context.Context, id string, end time.Time) (Grant, error) {
	d.mu.Lock()
	g, ok := d.grants[id]
	if !ok || g.Made || g.OffTerms {
		d.mu.Unlock()
		return Grant{}, fmt.Errorf("no live slice %x held here", id)
	}
	now := d.cfg.Clock.Now()
	r := &pb.SliceRelease{Site: g.g.Site, Grantee: []byte(d.id), GrantId: g.g.GrantId, IssuedAtMs: protocol.UnixMs(now), EndAtMs: protocol.UnixMs(end)}
	if err := record.CheckRelease(r, g.g, now); err != nil {
		d.mu.Unlock()
		return Grant{}, err
	}
	site := string(g.g.Site)
	d.mu.Unlock()
	env, err := record.Seal(d.cfg.Key, r)
	if err != nil {
		return Grant{}, err
	}
	ans, err := d.cfg.Net.Wholesale(ctx, site, &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Release{Release: env}})
	switch {
	case err != nil:
		return Grant{}, fmt.Errorf("the site was not reached: %w; the slice is not released", err)
	case ans.GetRefusal() != nil:
		return Grant{}, protocol.FromPB(ans.GetRefusal())
	case !ans.GetAccepted():
		return Grant{}, errors.New("the site answered neither accepted nor a refusal; the slice is not released")
	}
	d.mu.Lock()
	next := g.Grant
	next.Release = env
	if err := d.cfg.Store.PutGrant(next); err != nil {
		d.mu.Unlock()
		return Grant{}, fmt.Errorf("the site took the release, but it was not stored: %w", err)
	}
	g.Grant, g.release = next, r
	v := view(g, d.cfg.Clock.Now())
	d.mu.Unlock()
	d.cfg.Changed()
	return v, nil
}

// Withdrawn says what became of a withdrawal the site made.
type Withdrawn struct {
	Grant Grant
	// Delivered says the grantee acknowledged it; if not, Err says why,
	// and Withdraw with the same end sends it again.
	Delivered bool
	Err       error
}

// Withdraw ends a slice this site granted at end, sooner than granted, and
// tells its grantee (SPEC 6.7). The end must be at least the grant's notice
// from now (CODE_NOTICE_TOO_SHORT, and nothing is signed). A withdrawal
// made already is sent again when end is the same, and refused otherwise.
func (d *Desk) Withdraw(ctx context.Context, id string, end time.Time) (Withdrawn, error) {
	d.mu.Lock()
	g, ok := d.grants[id]
	if !ok || !g.Made {
		d.mu.Unlock()
		return Withdrawn{}, fmt.Errorf("no live slice %x granted here", id)
	}
	now := d.cfg.Clock.Now()
	if g.withdrawal != nil {
		if g.withdrawal.EndAtMs != protocol.UnixMs(end) {
			d.mu.Unlock()
			return Withdrawn{}, fmt.Errorf("slice %x is withdrawn already, until %s", id, g.end().Format(time.RFC3339))
		}
	} else {
		if err := d.cfg.Market.Withdraw(id, end); err != nil {
			d.mu.Unlock()
			return Withdrawn{}, err
		}
		w := &pb.SliceWithdrawal{Site: []byte(d.id), Grantee: g.g.Grantee, GrantId: g.g.GrantId, IssuedAtMs: protocol.UnixMs(now), EndAtMs: protocol.UnixMs(end)}
		env, err := record.Seal(d.cfg.Key, w)
		if err == nil {
			next := g.Grant
			next.Withdrawal = env
			if err = d.cfg.Store.PutGrant(next); err == nil {
				g.Grant, g.withdrawal = next, w
			}
		}
		if err != nil {
			// The market ends the slice early; the grantee was told nothing,
			// so the site's word is the grant's: hold it to its end again.
			d.cfg.Market.Revoke(id)
			if gerr := d.cfg.Market.Grant(slice(g)); gerr != nil {
				d.cfg.Log.Error("a slice withdrawn but not stored is not held again", "grant", fmt.Sprintf("%x", id), "err", gerr)
			}
			d.mu.Unlock()
			return Withdrawn{}, fmt.Errorf("withdraw slice %x: %w", id, err)
		}
	}
	out := Withdrawn{Grant: view(g, now)}
	grantee, env := string(g.g.Grantee), g.Withdrawal
	d.mu.Unlock()
	ans, err := d.cfg.Net.Wholesale(ctx, grantee, &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Withdrawal{Withdrawal: env}})
	switch {
	case err != nil:
		out.Err = fmt.Errorf("the grantee was not reached: %w", err)
	case ans.GetRefusal() != nil:
		out.Err = fmt.Errorf("the grantee refused it: %w", protocol.FromPB(ans.GetRefusal()))
	case !ans.GetAccepted():
		out.Err = errors.New("the grantee answered neither accepted nor a refusal")
	default:
		out.Delivered = true
	}
	d.cfg.Log.Info("slice withdrawn", "grant", fmt.Sprintf("%x", id), "until", end.Format(time.RFC3339), "delivered", out.Delivered, "err", out.Err)
	return out, nil
}

// Grant is a grant as the operator sees it.
type Grant struct {
	ID        string  // grant ID, binary
	Site      peer.ID // who granted it
	Grantee   peer.ID // who holds it
	Made      bool    // this node is its site
	Resources scheduler.Resources
	Start     time.Time
	End       time.Time // the slice's end: the grant's, or a withdrawal's
	Granted   time.Time // the grant's own end
	Price     scheduler.Price
	Notice    time.Duration
	// Cost is what the whole slice costs at its price, from start to end,
	// used or not (SPEC 4.5), in nano-units of Price.Currency.
	Cost uint64
	// Withdrawn says a withdrawal ends it sooner; WithdrawalRefused that a
	// withdrawal without notice was refused, and the slice holds to its end;
	// Released that its grantee gave it back sooner.
	Withdrawn, WithdrawalRefused, Released bool
	State                                  string // "pending" (not started), "active" or "ended"
	// Envelope is the sealed grant, and Tariff the sealed tariff it was
	// asked at (a retailer's; nil on the site's side).
	Envelope, Tariff []byte
}

func view(g *grant, now time.Time) Grant {
	v := Grant{ID: g.ID, Site: peer.ID(g.g.Site), Grantee: peer.ID(g.g.Grantee), Made: g.Made, Resources: conv.ResourcesFromPB(g.g.Resources),
		Start: protocol.FromUnixMs(g.g.StartAtMs), End: g.end(), Granted: protocol.FromUnixMs(g.g.EndAtMs), Price: conv.PriceFromPB(g.g.Price),
		Notice: time.Duration(g.g.NoticeMs) * time.Millisecond, Withdrawn: g.withdrawal != nil && !g.WithdrawalRefused, WithdrawalRefused: g.WithdrawalRefused,
		Released: g.release != nil, Envelope: g.Envelope, Tariff: g.Tariff}
	v.Cost, _ = v.Price.Cost(v.Resources, v.End.Sub(v.Start))
	switch {
	case now.Before(v.Start):
		v.State = "pending"
	case now.Before(v.End):
		v.State = "active"
	default:
		v.State = "ended"
	}
	return v
}

// Grants lists the live grants the desk made and holds (not ended), by
// start, then ID.
func (d *Desk) Grants() []Grant {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Clock.Now()
	d.prune(now)
	out := make([]Grant, 0, len(d.grants))
	for _, g := range d.grants {
		out = append(out, view(g, now))
	}
	slices.SortFunc(out, func(a, b Grant) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out
}

// Holding says whether the node holds a live grant, and so answers
// withdrawals (SPEC 6.7).
func (d *Desk) Holding() bool {
	return slices.ContainsFunc(d.Grants(), func(g Grant) bool { return !g.Made })
}

// Evidence is what this node presents to an auditor of site (SPEC 6.7,
// audit): every grant of that site it holds or refused as off terms, live
// or ended, with the tariff it asked at and any withdrawal.
func (d *Desk) Evidence(site peer.ID) ([]record.Evidence, error) {
	stored, err := d.cfg.Store.Grants()
	if err != nil {
		return nil, err
	}
	receipts, err := d.cfg.Store.Receipts()
	if err != nil {
		return nil, err
	}
	sold, err := d.cfg.Store.Leases(nil) // the leases it sold, whose runs went to a site
	if err != nil {
		return nil, err
	}
	onSlice := map[string]bool{}
	for _, l := range sold {
		onSlice[string(protocol.SiteLeaseID([]byte(l.ID)))] = true
	}
	out := []record.Evidence{}
	for _, g := range stored {
		sg := new(pb.SliceGrant)
		if _, _, err := record.Open(g.Envelope, sg); err != nil || g.Made || string(sg.Site) != string(site) {
			continue
		}
		e := record.Evidence{Grant: g.Envelope, Tariff: g.Tariff, Withdrawal: g.Withdrawal, WithdrawalRefused: g.WithdrawalRefused}
		for _, r := range receipts { // the site's receipts of the runs it sold, in the slice's period
			rc, err := record.OpenReceipt(r.Envelope)
			if err == nil && onSlice[r.LeaseID] && string(rc.Provider) == string(site) && string(rc.Requester) == string(d.id) &&
				rc.StartedAtMs >= sg.StartAtMs && rc.StartedAtMs < sg.EndAtMs {
				e.Receipts = append(e.Receipts, r.Envelope)
			}
		}
		out = append(out, e)
	}
	return out, nil
}
