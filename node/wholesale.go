package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/retail"
	"github.com/cuivre/cuivre/node/wholesale"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// errNoDesk is what a node without a store says of wholesale: it could
// keep no grant.
var errNoDesk = errors.New("this node keeps no store, so it can keep no slice grant")

// serveWholesale answers /cuivre/wholesale/1.0.0 while the node is a site
// or holds a live grant, whose withdrawals come that way, and not otherwise
// (SPEC 6.7).
func (n *Node) serveWholesale() {
	if n.desk.Site() || n.desk.Holding() {
		n.net.ServeWholesale(n.desk.Answer)
	} else {
		n.net.ServeWholesale(nil)
	}
}

// publishTariff puts the site's tariff in the DHT and announces it under
// the wholesale facet of its jurisdiction (SPEC 4.5). A node that is no
// site publishes nothing.
func (n *Node) publishTariff(ctx context.Context) error {
	if n.desk == nil || !n.desk.Site() {
		return nil
	}
	t, env, err := n.desk.Tariff()
	if err != nil {
		return err
	}
	var errs []error
	if err := n.net.PutTariff(ctx, env); err != nil {
		errs = append(errs, fmt.Errorf("put tariff: %w", err))
	}
	j, _ := conv.LabelsFromPB(t.Labels).Get(scheduler.LabelJurisdiction)
	for _, k := range scheduler.WholesaleKeys(string(n.ID()), j, conv.ResourcesFromPB(t.Capacity)) {
		if err := n.net.Provide(ctx, wire.FacetCID(k)); err != nil {
			errs = append(errs, fmt.Errorf("provide %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// retailSite picks the slices a retailer sells: those of one site, the
// site of its earliest live slice; it returns them, started and not ended.
func (n *Node) retailSite() []wholesale.Grant {
	var out []wholesale.Grant
	for _, g := range n.desk.Grants() { // by start
		if g.Made || g.State != "active" || len(out) > 0 && g.Site != out[0].Site {
			continue
		}
		out = append(out, g)
	}
	return out
}

// syncRetail makes a retailer's market sell its slices (SPEC 6.7): their
// sum as capacity, and the labels of their site's tariff with the
// retailer's own operator. Without a slice it sells nothing.
func (n *Node) syncRetail() {
	if !n.opts.Retail || n.desk == nil || n.prov == nil {
		return
	}
	var sum scheduler.Resources
	labels := scheduler.Labels{}
	if op, ok := n.opts.Market.Labels.Get(scheduler.LabelOperator); ok {
		labels = scheduler.NewLabels(scheduler.Label{Key: scheduler.LabelOperator, Value: op})
	}
	slices := n.retailSite()
	for _, g := range slices {
		sum = sum.Add(g.Resources)
	}
	if len(slices) > 0 {
		t := new(pb.WholesaleTariff)
		if _, _, err := record.Open(slices[0].Tariff, t); err == nil {
			kv := []scheduler.Label(labels)
			for _, l := range conv.LabelsFromPB(t.Labels) {
				if l.Key != scheduler.LabelOperator {
					kv = append(kv, l)
				}
			}
			labels = scheduler.NewLabels(kv...)
		}
	}
	n.prov.Resize(sum)
	if err := n.prov.Reprice(n.prov.Offering().Pricing, labels); err != nil {
		n.log.Warn("retail labels", "err", err)
	}
	n.retailAgainAtNextTurn()
}

// retailAgainAtNextTurn arms a timer at the next start or end of a slice
// held, when what the retailer sells changes, to sync its market then: a
// slice rented ahead goes on sale as it starts, and one that ends comes off
// at once.
func (n *Node) retailAgainAtNextTurn() {
	now := n.clock.Now()
	var next time.Time
	for _, g := range n.desk.Grants() {
		at := g.End
		if g.Made || g.State == "ended" {
			continue
		}
		if g.State == "pending" {
			at = g.Start
		}
		if at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	n.retailMu.Lock()
	defer n.retailMu.Unlock()
	if n.retailTimer != nil {
		n.retailTimer.Stop()
		n.retailTimer = nil
	}
	if !next.IsZero() && n.ctx.Err() == nil {
		n.retailTimer = n.clock.AfterFunc(next.Sub(now), func() {
			if n.ctx.Err() == nil {
				n.retailChanged()
			}
		})
	}
}

// retailChanged follows a change of the slices held: the market sells
// them, and the node announces them soon.
func (n *Node) retailChanged() {
	if n.opts.Retail {
		n.syncRetail()
		n.marketChanged()
	}
}

// retailSlice is the slice a retailer's lease runs on: one of the slices
// it sells (retail.Config.Slice). The site caps its leases by all of them.
func (n *Node) retailSlice(scheduler.Resources) (retail.Slice, error) {
	slices := n.retailSite()
	if len(slices) == 0 {
		return retail.Slice{}, protocol.Errorf(pb.Code_CODE_SLICE_EXCEEDED, "this retailer holds no live slice")
	}
	return retail.Slice{Site: string(slices[0].Site), Grant: slices[0].Envelope, Tariff: slices[0].Tariff}, nil
}

// SetTariff changes the site's tariff terms (a reload of its labels): it
// seals and publishes a new tariff soon. A node that is no site ignores it.
func (n *Node) SetTariff(t config.TariffTerms) {
	if n.desk != nil && n.desk.Site() {
		n.desk.SetTerms(t)
		n.marketChanged()
	}
}

// Wholesale returns the node's published tariff, if it is a site, and its
// live grants, made and held.
func (n *Node) Wholesale() (api.WholesaleView, error) {
	if n.desk == nil {
		return api.WholesaleView{}, errNoDesk
	}
	out := api.WholesaleView{Grants: []api.GrantView{}}
	var granted scheduler.Resources
	for _, g := range n.desk.Grants() {
		out.Grants = append(out.Grants, grantView(g))
		if g.Made {
			granted = granted.Add(g.Resources)
		}
	}
	if n.desk.Site() {
		t, env, err := n.desk.Tariff()
		if err != nil {
			return out, err
		}
		v := tariffView(t, env)
		v.Granted = &granted
		out.Tariff = &v
	}
	return out, nil
}

// WholesaleSites looks up the sites announced under the wholesale facet of
// a jurisdiction, in every shard, and reads each one's tariff from the DHT.
// Sites whose tariff cannot be read are left out.
func (n *Node) WholesaleSites(ctx context.Context, jurisdiction string) ([]api.TariffView, error) {
	if _, err := protocol.NewFacetKey(protocol.FacetWholesale, jurisdiction, 0); err != nil {
		return nil, fmt.Errorf("jurisdiction %q: %w", jurisdiction, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sites := map[peer.ID]bool{}
	for shard := range protocol.FacetWholesale.Shards() {
		k, _ := protocol.NewFacetKey(protocol.FacetWholesale, jurisdiction, shard)
		for _, p := range n.FindProviders(ctx, k, 20) {
			sites[p] = true
		}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = []api.TariffView{}
	)
	for p := range sites {
		wg.Go(func() {
			var t *pb.WholesaleTariff
			var env []byte
			var err error
			if p == n.ID() && n.desk != nil && n.desk.Site() {
				t, env, err = n.desk.Tariff()
			} else {
				t, env, err = n.net.Tariff(ctx, p)
			}
			if err != nil {
				n.log.Debug("tariff not read", "site", protocol.ShortPeerID(string(p)), "err", err)
				return
			}
			mu.Lock()
			out = append(out, tariffView(t, env))
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, k int) bool { return out[i].Site < out[k].Site })
	return out, nil
}

// RequestSlice asks a site for a slice at its published tariff; the node
// answers the site's withdrawals from then on.
func (n *Node) RequestSlice(ctx context.Context, ask api.SliceAsk) (api.GrantView, error) {
	if n.desk == nil {
		return api.GrantView{}, errNoDesk
	}
	site, err := peer.Decode(ask.Site)
	if err != nil {
		return api.GrantView{}, fmt.Errorf("site %q is not a peer ID: %w", ask.Site, err)
	}
	// The node declares its own jurisdiction, its config's (SPEC 6.7 step 7).
	j, _ := n.opts.Market.Labels.Get(scheduler.LabelJurisdiction)
	g, err := n.desk.Request(ctx, wholesale.Ask{Site: site, Resources: ask.Resources, Start: ask.Start, End: ask.End, Jurisdiction: j})
	if err != nil {
		return api.GrantView{}, err
	}
	n.serveWholesale()
	return grantView(g), nil
}

// WithdrawSlice ends a slice this site granted at end and tells its
// grantee.
func (n *Node) WithdrawSlice(ctx context.Context, id string, end time.Time) (api.WithdrawView, error) {
	if n.desk == nil {
		return api.WithdrawView{}, errNoDesk
	}
	w, err := n.desk.Withdraw(ctx, id, end)
	if err != nil {
		return api.WithdrawView{}, err
	}
	out := api.WithdrawView{Grant: grantView(w.Grant), Delivered: w.Delivered}
	if w.Err != nil {
		out.Error = w.Err.Error()
	}
	return out, nil
}

// ReleaseSlice gives a slice this node holds back to its site at end.
func (n *Node) ReleaseSlice(ctx context.Context, id string, end time.Time) (api.GrantView, error) {
	if n.desk == nil {
		return api.GrantView{}, errNoDesk
	}
	g, err := n.desk.Release(ctx, id, end)
	if err != nil {
		return api.GrantView{}, err
	}
	return grantView(g), nil
}

// BillRent asks the grantees again for the countersignatures of the bills
// they have not countersigned, then bills each the rent of its slices since
// the last bill (SPEC 6.7, rent); it returns both.
func (n *Node) BillRent(ctx context.Context) ([]api.RentView, error) {
	if n.desk == nil {
		return nil, errNoDesk
	}
	bills, err := n.desk.AskRentAgain(ctx)
	if err == nil {
		var made []wholesale.Rent
		made, err = n.desk.BillRent(ctx)
		bills = append(bills, made...)
	}
	out := make([]api.RentView, len(bills))
	for i, b := range bills {
		out[i] = api.RentView{Grant: grantView(b.Grant), Epoch: b.Epoch, From: b.From, Until: b.Until, Amount: protocol.FormatAmount(b.Amount),
			Countersigned: b.Countersigned}
		if b.Err != nil {
			out[i].Error = b.Err.Error()
		}
	}
	return out, err
}

// WholesaleEvidence is what the node presents to an auditor of site: the
// grants of that site it holds or refused, live or ended (SPEC 6.7).
func (n *Node) WholesaleEvidence(site string) ([]record.Evidence, error) {
	if n.desk == nil {
		return nil, errNoDesk
	}
	p, err := peer.Decode(site)
	if err != nil {
		return nil, fmt.Errorf("site %q is not a peer ID: %w", site, err)
	}
	return n.desk.Evidence(p)
}

// AuditSite audits a site (SPEC 6.7): its published tariff and capacity
// record, read from the DHT, against the evidence retailers present.
func (n *Node) AuditSite(ctx context.Context, site string, evidence []record.Evidence) (record.AuditReport, error) {
	p, err := peer.Decode(site)
	if err != nil {
		return record.AuditReport{}, fmt.Errorf("site %q is not a peer ID: %w", site, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var tariff []byte
	if p == n.ID() && n.desk != nil && n.desk.Site() {
		_, tariff, err = n.desk.Tariff()
	} else {
		_, tariff, err = n.net.Tariff(ctx, p)
	}
	if err != nil {
		return record.AuditReport{}, err
	}
	_, capacity, err := n.net.CapacityEnvelope(ctx, p)
	if err != nil {
		return record.AuditReport{}, err
	}
	return record.Audit(p, tariff, capacity, evidence, n.clock.Now())
}

// perHour writes a price per second (or per GiB) as money per hour.
func perHour(currency string, perSecond uint64) string {
	return protocol.FormatAmount(&pb.Amount{Currency: currency, Nanos: perSecond * 3600})
}

func tariffView(t *pb.WholesaleTariff, env []byte) api.TariffView {
	p := conv.PriceFromPB(t.Price)
	v := api.TariffView{
		Site: peer.ID(t.Site).String(), Seq: t.Seq, Hash: hex.EncodeToString(record.TariffHash(env)),
		IssuedAt: protocol.FromUnixMs(t.IssuedAtMs), ExpiresAt: protocol.FromUnixMs(t.ExpiresAtMs),
		CPUPerHour: perHour(p.Currency, p.CPUNanosPerSecond), MemoryGiBPerHour: perHour(p.Currency, p.MemoryNanosPerGiBSecond),
		EgressPerGiB: protocol.FormatAmount(&pb.Amount{Currency: p.Currency, Nanos: p.EgressNanosPerGiB}),
		MinSlice:     conv.ResourcesFromPB(t.MinSlice), Capacity: conv.ResourcesFromPB(t.Capacity),
		MinPeriod: config.Duration(time.Duration(t.MinPeriodMs) * time.Millisecond).String(),
		Notice:    config.Duration(time.Duration(t.NoticeMs) * time.Millisecond).String(),
		Labels:    map[string]string{},
	}
	for _, l := range t.Labels {
		v.Labels[l.Key] = l.Value
	}
	return v
}

func grantView(g wholesale.Grant) api.GrantView {
	role := "retailer"
	if g.Made {
		role = "site"
	}
	return api.GrantView{
		ID: hex.EncodeToString([]byte(g.ID)), Site: g.Site.String(), Grantee: g.Grantee.String(), Role: role, State: g.State,
		Resources: g.Resources, Start: g.Start, End: g.End, Granted: g.Granted, Withdrawn: g.Withdrawn, WithdrawalRefused: g.WithdrawalRefused, Released: g.Released,
		CPUPerHour: perHour(g.Price.Currency, g.Price.CPUNanosPerSecond), MemoryGiBPerHour: perHour(g.Price.Currency, g.Price.MemoryNanosPerGiBSecond),
		Notice: config.Duration(g.Notice).String(), Cost: protocol.FormatAmount(&pb.Amount{Currency: g.Price.Currency, Nanos: g.Cost}),
	}
}
