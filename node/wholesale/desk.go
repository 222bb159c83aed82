// Package wholesale is a node's side of wholesale unbundling (SPEC 4.5,
// 6.7). As a site, a node publishes one tariff for every retailer alike and
// grants slices of what it sells at it, held in its market as ceilings on
// each grantee; it may withdraw a slice after the notice the grant carries.
// As a retailer, a node asks sites for slices, checks that each grant is
// at the tariff it read, and keeps what it holds, withdrawals included.
// Every grant is stored (synced) before it is answered or used.
package wholesale

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// Market is the site's market, which holds its slices (the provider's).
type Market interface {
	Grant(scheduler.Slice) error
	Withdraw(id string, end time.Time) error
	Revoke(id string)
}

// Network is what the desk asks of the network: the wholesale exchange and
// the tariffs in the DHT (node/p2p).
type Network interface {
	Wholesale(ctx context.Context, to string, req *pb.WholesaleRequest) (*pb.WholesaleAnswer, error)
	Tariff(ctx context.Context, site peer.ID) (*pb.WholesaleTariff, []byte, error)
}

// Config configures a Desk.
type Config struct {
	Key   crypto.PrivKey // the node's identity: a site signs its tariff, grants and withdrawals
	Store *store.Store   // required: grants are stored before they are answered or used
	Net   Network
	// Market and Terms make the node a site: without them it grants
	// nothing, and refuses slice requests.
	Market Market
	Terms  *config.TariffTerms
	// Draining says whether the node is leaving: a draining site grants no
	// slice (CODE_DRAINING).
	Draining func() bool
	// Changed, if set, is called when the grants the node holds change: a
	// retailer's market follows them.
	Changed func()
	Clock   clock.Clock
	Log     *slog.Logger
}

// Desk is a node's wholesale desk: its site's tariff and grants, and the
// grants it holds as a retailer. It is safe for concurrent use.
type Desk struct {
	cfg Config
	id  peer.ID

	mu     sync.Mutex
	terms  *config.TariffTerms
	tariff *pb.WholesaleTariff // the published tariff; nil until Tariff
	env    []byte              // its envelope
	grants map[string]*grant   // by grant ID, made and held
}

// grant is one grant the desk made or holds, opened.
type grant struct {
	store.Grant
	g          *pb.SliceGrant
	withdrawal *pb.SliceWithdrawal // accepted or made; nil if none
	release    *pb.SliceRelease    // accepted; nil if none
}

// end is when the slice ends: the grant's end, or sooner an accepted
// withdrawal's or release's.
func (g *grant) end() time.Time {
	end := g.g.EndAtMs
	if g.withdrawal != nil && !g.WithdrawalRefused {
		end = min(end, g.withdrawal.EndAtMs)
	}
	if g.release != nil {
		end = min(end, g.release.EndAtMs)
	}
	return protocol.FromUnixMs(end)
}

// TariffLifetime is how long a tariff the site seals lives (SPEC 3.3 allows
// a day); it seals a new one at half of it, or when its terms change.
const TariffLifetime = 24 * time.Hour

// New opens the desk: it reads the grants in the store and, on a site,
// holds again in its market the slices it granted that have not ended.
func New(c Config) (*Desk, error) {
	if c.Key == nil || c.Store == nil || c.Net == nil {
		return nil, errors.New("wholesale: a key, a store and a network are required")
	}
	if (c.Market == nil) != (c.Terms == nil) {
		return nil, errors.New("wholesale: a site needs both its market and its terms")
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Draining == nil {
		c.Draining = func() bool { return false }
	}
	if c.Changed == nil {
		c.Changed = func() {}
	}
	id, err := peer.IDFromPrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("wholesale: %w", err)
	}
	d := &Desk{cfg: c, id: id, terms: c.Terms, grants: map[string]*grant{}}
	stored, err := c.Store.Grants()
	if err != nil {
		return nil, fmt.Errorf("wholesale: %w", err)
	}
	now := c.Clock.Now()
	for _, sg := range stored {
		g, err := openStored(sg, now)
		if err != nil {
			continue // ended, or kept only as proof: nothing to hold
		}
		d.grants[sg.ID] = g
		if !sg.Made {
			continue
		}
		if c.Market == nil {
			c.Log.Warn("a slice granted as a site is not held: wholesale is off", "grant", fmt.Sprintf("%x", sg.ID))
			continue
		}
		if err := c.Market.Grant(slice(g)); err != nil {
			c.Log.Warn("a slice granted is not held again", "grant", fmt.Sprintf("%x", sg.ID), "err", err)
		}
	}
	return d, nil
}

// openStored opens a stored grant live at now, with its withdrawal. One
// ended, or kept as proof of terms not given, is an error.
func openStored(sg store.Grant, now time.Time) (*grant, error) {
	if sg.OffTerms {
		return nil, errors.New("off terms")
	}
	g, err := record.OpenGrant(sg.Envelope, now)
	if err != nil {
		return nil, err
	}
	out := &grant{Grant: sg, g: g}
	if sg.Withdrawal != nil {
		if out.withdrawal, err = record.OpenWithdrawal(sg.Withdrawal); err != nil {
			return nil, err
		}
	}
	if sg.Release != nil {
		if out.release, err = record.OpenRelease(sg.Release); err != nil {
			return nil, err
		}
	}
	if !now.Before(out.end()) {
		return nil, errors.New("ended")
	}
	return out, nil
}

// slice is a made grant as the market holds it.
func slice(g *grant) scheduler.Slice {
	return scheduler.Slice{ID: string(g.g.GrantId), Grantee: string(g.g.Grantee), Resources: conv.ResourcesFromPB(g.g.Resources),
		Start: protocol.FromUnixMs(g.g.StartAtMs), End: g.end(), Notice: time.Duration(g.g.NoticeMs) * time.Millisecond}
}

// Site says whether the desk is a site's: it publishes a tariff and grants.
func (d *Desk) Site() bool { return d.cfg.Market != nil }

// SetTerms changes the site's terms (a reload): the next Tariff seals a
// tariff of them. Grants made keep their own (SPEC 4.5).
func (d *Desk) SetTerms(t config.TariffTerms) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.terms = &t
}

// Tariff returns the site's published tariff and its envelope, sealing a
// new one, with a higher seq, when there is none, its terms changed, or
// half its life has passed (SPEC 4.5). A desk that is no site has none.
func (d *Desk) Tariff() (*pb.WholesaleTariff, []byte, error) {
	if !d.Site() {
		return nil, nil, errNoTariff
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tariffLocked(d.cfg.Clock.Now())
}

var errNoTariff = protocol.Errorf(pb.Code_CODE_SLICE_NOT_ALLOWED, "this node publishes no wholesale tariff: it grants no slice")

func (d *Desk) tariffLocked(now time.Time) (*pb.WholesaleTariff, []byte, error) {
	t := d.terms
	want := &pb.WholesaleTariff{
		Site: []byte(d.id), Price: conv.PriceToPB(t.Price), MinSlice: conv.ResourcesToPB(t.MinSlice),
		MinPeriodMs: uint64(t.MinPeriod.Milliseconds()), NoticeMs: uint64(t.Notice.Milliseconds()),
		Capacity: conv.ResourcesToPB(t.Capacity), Labels: conv.LabelsToPB(t.Labels), RetailerJurisdictions: t.RetailerJurisdictions,
	}
	if t.RetailCost.CPUNanosPerSecond != 0 || t.RetailCost.MemoryNanosPerGiBSecond != 0 || t.RetailCost.EgressNanosPerGiB != 0 {
		want.RetailCost = conv.PriceToPB(t.RetailCost)
	}
	if old := d.tariff; old != nil && now.Before(protocol.FromUnixMs(old.IssuedAtMs).Add(TariffLifetime/2)) && sameTerms(old, want) {
		return old, d.env, nil
	}
	want.Seq = protocol.UnixMs(now)
	if d.tariff != nil && want.Seq <= d.tariff.Seq {
		want.Seq = d.tariff.Seq + 1
	}
	want.IssuedAtMs, want.ExpiresAtMs = protocol.UnixMs(now), protocol.UnixMs(now.Add(TariffLifetime))
	env, err := record.Seal(d.cfg.Key, want)
	if err != nil {
		return nil, nil, err
	}
	if _, err := record.OpenTariff(env, now); err != nil {
		return nil, nil, fmt.Errorf("wholesale: the tariff of these terms is not valid: %w", err)
	}
	d.tariff, d.env = want, env
	return want, env, nil
}

// sameTerms says whether two tariffs state the same terms, whatever their
// seq and times.
func sameTerms(a, b *pb.WholesaleTariff) bool {
	x, y := proto.Clone(a).(*pb.WholesaleTariff), proto.Clone(b).(*pb.WholesaleTariff)
	for _, t := range []*pb.WholesaleTariff{x, y} {
		t.Seq, t.IssuedAtMs, t.ExpiresAtMs = 0, 0, 0
	}
	return proto.Equal(x, y)
}

// Answer answers one request of /cuivre/wholesale/1.0.0 from the peer from:
// a slice request to the site, a withdrawal to the grantee (SPEC 6.7).
func (d *Desk) Answer(ctx context.Context, from string, req *pb.WholesaleRequest) *pb.WholesaleAnswer {
	var err error
	switch k := req.Kind.(type) {
	case *pb.WholesaleRequest_Slice:
		var env []byte
		if env, err = d.grantSlice(from, k.Slice); err == nil {
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Grant{Grant: env}}
		}
	case *pb.WholesaleRequest_Withdrawal:
		if err = d.takeWithdrawal(from, k.Withdrawal); err == nil {
			d.cfg.Changed()
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Accepted{Accepted: true}}
		}
	case *pb.WholesaleRequest_Release:
		if err = d.takeRelease(from, k.Release); err == nil {
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Accepted{Accepted: true}}
		}
	case *pb.WholesaleRequest_Rent:
		var cs []byte
		if cs, err = d.takeRent(from, k.Rent); err == nil {
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Countersignature{Countersignature: cs}}
		}
	default:
		err = protocol.Errorf(pb.Code_CODE_MALFORMED, "wholesale request of no known kind")
	}
	d.cfg.Log.Info("wholesale request refused", "from", protocol.ShortPeerID(from), "err", err)
	return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Refusal{Refusal: protocol.ToPB(err)}}
}

// grantSlice is the site's answer to a slice request (SPEC 6.7, steps 1 to
// 8): the sealed grant, stored and held before it returns.
func (d *Desk) grantSlice(from string, r *pb.SliceRequest) ([]byte, error) {
	if !d.Site() {
		return nil, errNoTariff
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Clock.Now()
	d.prune(now)
	// Step 3 first: a retry gets its grant even once the tariff it was
	// asked at is no longer the published one.
	for _, g := range d.grants {
		if !g.Made || !bytes.Equal(g.g.RequestNonce, r.Nonce) || string(g.g.Grantee) != from {
			continue
		}
		if !bytes.Equal(g.g.TariffHash, r.TariffHash) || !proto.Equal(g.g.Resources, r.Resources) || g.g.EndAtMs != r.EndAtMs {
			return nil, protocol.Errorf(pb.Code_CODE_REPLAYED, "nonce %x was granted another slice", r.Nonce)
		}
		return g.Envelope, nil
	}
	t, env, err := d.tariffLocked(now)
	if err != nil {
		return nil, err
	}
	start, err := record.CheckSliceRequest(r, d.id, env, t, now)
	if err != nil {
		return nil, err
	}
	if d.cfg.Draining() {
		return nil, protocol.Errorf(pb.Code_CODE_DRAINING, "this site is leaving: it grants no slice")
	}
	// Step 7: the rule published with the tariff, the same for every
	// retailer: the jurisdictions retailers may declare.
	if !record.JurisdictionAllowed(t, r.Jurisdiction) {
		declared := r.Jurisdiction
		if declared == "" {
			declared = "none"
		}
		return nil, protocol.Errorf(pb.Code_CODE_SLICE_NOT_ALLOWED, "this site rents slices only to retailers under %s, by the rule of its tariff; the request declares %s",
			strings.Join(t.RetailerJurisdictions, ", "), declared)
	}
	// Step 8: within the tariff's capacity, all grantees together, then
	// within what its own retail has free (the market's Grant).
	granted, soonest := scheduler.Resources{}, time.Time{}
	for _, g := range d.grants {
		if g.Made {
			granted = granted.Add(conv.ResourcesFromPB(g.g.Resources))
			if e := g.end(); soonest.IsZero() || e.Before(soonest) {
				soonest = e
			}
		}
	}
	capacity, asked := conv.ResourcesFromPB(t.Capacity), conv.ResourcesFromPB(r.Resources)
	if !granted.Add(asked).Fits(capacity) {
		e := protocol.Errorf(pb.Code_CODE_SLICE_FULL, "slices granted hold %s of the tariff's %s: no room for %s",
			fmtResources(granted), fmtResources(capacity), fmtResources(asked))
		if !soonest.IsZero() {
			e.RetryAfter = soonest.Sub(now)
		}
		return nil, e
	}
	sg := &pb.SliceGrant{Site: []byte(d.id), Grantee: []byte(from), GrantId: make([]byte, protocol.GrantIDSize),
		RequestNonce: r.Nonce, TariffHash: r.TariffHash, Resources: proto.Clone(r.Resources).(*pb.Resources), StartAtMs: start, EndAtMs: r.EndAtMs,
		Price: t.Price, NoticeMs: t.NoticeMs, IssuedAtMs: protocol.UnixMs(now), Jurisdiction: r.Jurisdiction}
	rand.Read(sg.GrantId)
	genv, err := record.Seal(d.cfg.Key, sg)
	if err != nil {
		return nil, err
	}
	g := &grant{Grant: store.Grant{ID: string(sg.GrantId), Envelope: genv, Made: true}, g: sg}
	if err := d.cfg.Market.Grant(slice(g)); err != nil {
		return nil, err
	}
	if err := d.cfg.Store.PutGrant(g.Grant); err != nil {
		d.cfg.Market.Revoke(g.ID)
		return nil, protocol.Errorf(pb.Code_CODE_INTERNAL, "store the grant: %v", err)
	}
	d.grants[g.ID] = g
	d.cfg.Log.Info("slice granted", "grant", fmt.Sprintf("%x", sg.GrantId), "to", protocol.ShortPeerID(from),
		"resources", fmtResources(asked), "until", protocol.FromUnixMs(sg.EndAtMs).Format(time.RFC3339))
	return genv, nil
}

func fmtResources(r scheduler.Resources) string {
	return fmt.Sprintf("%gCPU/%s/%s", float64(r.CPUMillis)/1000, config.Bytes(r.MemoryBytes), config.Bytes(r.ScratchBytes))
}

// prune forgets the grants ended at now.
func (d *Desk) prune(now time.Time) {
	for id, g := range d.grants {
		if !now.Before(g.end()) {
			delete(d.grants, id)
		}
	}
}
