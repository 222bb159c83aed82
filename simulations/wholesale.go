package simulations

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// A site that sells slices (Class.Wholesale) grants one to each of its
// retailers at the start of the run, through its own scheduler.Market
// (Grant), as the daemon's site would on a SliceRequest (SPEC 6.7). A
// retailer is a provider of its own: it is found under the facet keys its
// labels give (the site's, with its own operator), and answers offer
// requests from its own market, whose capacity is its slice and whose
// prices are its own: its accounting of its slice, which costs no round
// trip. A lease it takes is made on the site's market too, as the grantee's
// (Request.Grantee), two round trips to the site later (an offer under its
// grant, then the lease): the site's market is what bounds the retailer by
// its slice and keeps the site's own retail off it, by the rule the node's
// market keeps. The job runs on the site's hardware; the retailer bills its
// customer at its own price and pays the site the tariff for the whole
// slice, used or not (SPEC 4.5).

// retailer ties a retailer to the site whose slice it sells.
type retailer struct {
	site  int32 // the site's provider index
	slice scheduler.Resources
	// tariff is the slice's cost at the site's tariff over its period,
	// before subsidy, in currency units.
	tariff float64
}

// retailerKind is a class of retailers built from a site's class: which
// sites its retailers sell slices of, and how many of the kind each has.
type retailerKind struct {
	sites   []int32 // provider index of each site, in order
	perSite int
}

// retailerClasses appends to the scenario's classes one class per kind of
// retailer of each class that sells slices (its providers numbered after
// every class of hardware, site by site), and returns them in that order.
// A retailer class has the site's labels, service times and start delay,
// its slice as capacity and its kind's prices.
func (s *sim) retailerClasses() []retailerKind {
	var kinds []retailerKind
	var extra []Class
	first := int32(0)
	for _, c := range s.sc.Classes {
		sites := make([]int32, c.Count)
		for k := range sites {
			sites[k] = first + int32(k)
		}
		first += int32(c.Count)
		w := c.Wholesale
		if w == nil {
			continue
		}
		for _, r := range w.Retailers {
			extra = append(extra, Class{Name: r.Name, Count: c.Count * r.Count, Labels: c.Labels,
				Capacity: w.Slice(c.Capacity), Pricing: r.Pricing, ServiceTime: c.ServiceTime,
				LeaseTime: c.LeaseTime, StartDelay: c.StartDelay})
			kinds = append(kinds, retailerKind{sites: sites, perSite: r.Count})
		}
	}
	if len(extra) > 0 {
		s.sc.Classes = append(slices.Clip(s.sc.Classes), extra...)
		s.retail = map[int32]*retailer{}
	}
	return kinds
}

// sliceEnd is when the slices end: once every job that arrives may have
// been placed (the arrivals' end, and a placement's deadline). Leases
// taken on a slice run on past its end, as the market lets them.
func (s *sim) sliceEnd() time.Duration {
	return s.sc.Duration + s.cfg.PlacementTimeout
}

// grant has site grant the retailer n its slice, of capacity the
// retailer's, from the start to sliceEnd, and counts its tariff: the
// retailer pays it less the site's subsidy, which public funds pay. It
// returns what the retailer pays.
func (s *sim) grant(site *provider, n int32, slice scheduler.Resources) (float64, error) {
	end := s.sliceEnd()
	id := "p" + strconv.Itoa(int(n))
	err := site.market.Grant(time.Unix(0, 0), scheduler.Slice{ID: id, Grantee: id, Resources: slice,
		Start: time.Unix(0, 0), End: time.Unix(0, int64(end))})
	if err != nil {
		return 0, err
	}
	c := &s.sc.Classes[site.class]
	nanos, err := c.Wholesale.Tariff.Cost(slice, end)
	if err != nil {
		return 0, fmt.Errorf("the tariff of a slice of %s for %s: %w", formatResources(slice), end, err)
	}
	r := &retailer{site: int32(s.providerOf(site.id)), slice: slice, tariff: float64(nanos) / 1e9}
	s.retail[n] = r
	paid := r.tariff * (1 - c.Subsidy)
	site.wholesale += paid
	site.subsidy += r.tariff - paid
	return paid, nil
}

// retailerOf returns p's tie to its site, nil if p is not a retailer.
func (s *sim) retailerOf(p *provider) *retailer {
	if s.retail == nil {
		return nil
	}
	return s.retail[int32(s.providerOf(p.id))]
}

// siteRoundTrips is what a retailer's lease costs beyond the site's own:
// an offer asked of the site under its grant, then the lease, two round
// trips from the retailer to the site.
func (s *sim) siteRoundTrips(p *provider) int64 {
	r := s.retailerOf(p)
	if r == nil {
		return 0
	}
	return 2 * int64(s.sc.Network.RTT[p.region][s.providers[r.site].region])
}

// siteLeaseID is the ID under which a retailer's lease is held on its
// site's market, apart from the site's own leases and other retailers'.
func siteLeaseID(p *provider, leaseID string) string { return p.id + "/" + leaseID }

// siteLease makes a lease retailer p has committed on its own market on
// its site's market too, as the grantee's: an offer under its grant, at
// once leased. A refusal (its slice full) is the lease's.
func (s *sim) siteLease(p *provider, l scheduler.Lease) error {
	r := s.retailerOf(p)
	if r == nil {
		return nil
	}
	site := &s.providers[r.site]
	now := time.Unix(0, s.now)
	id := siteLeaseID(p, l.ID)
	o, err := site.market.Quote(now, scheduler.Request{
		Nonce: id + "/" + strconv.FormatUint(l.Epoch, 10), Requester: p.id, JobCID: l.JobCID,
		Resources: l.Resources, Timeout: l.Timeout, ExpiresAt: now.Add(time.Second), Grantee: p.id,
	})
	if err != nil {
		return err
	}
	return site.market.Commit(now, scheduler.Lease{ID: id, Provider: site.id, Requester: p.id, OfferNonce: o.Nonce,
		JobCID: l.JobCID, Epoch: l.Epoch, ExpiresAt: o.ExpiresAt, Resources: l.Resources, Timeout: l.Timeout})
}

// siteRelease ends on its site's market a lease retailer p has released.
func (s *sim) siteRelease(p *provider, leaseID string, epoch uint64) {
	r := s.retailerOf(p)
	if r == nil {
		return
	}
	if _, err := s.providers[r.site].market.Release(time.Unix(0, s.now), siteLeaseID(p, leaseID), epoch); err != nil {
		panic(fmt.Sprintf("simulations: release on its site of a retailer's lease: %v", err))
	}
}
