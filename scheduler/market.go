package scheduler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Defaults of a MarketConfig: what a zero optional field means.
const (
	DefaultOfferTTL        = 10 * time.Second
	DefaultMaxReservations = 256
	// DefaultOfferGrace is how long an offer outlives its request's
	// expiry: the requester decides at that expiry at the latest and sends
	// its lease at once, so a hold needs no more than the lease's way.
	DefaultOfferGrace = 2 * time.Second
	// DefaultMaxOffersPerPeer bounds the live offers of one requester, and
	// of one origin (a network prefix), at a provider.
	DefaultMaxOffersPerPeer = 32
	// DefaultMaxHeldPermille is the share of each dimension of capacity
	// that the live offers of one requester, or of one origin, may
	// reserve beyond their first.
	DefaultMaxHeldPermille = 500
	// DefaultStandingExpired is how many of a requester's offers may run
	// out unanswered (neither leased nor declined), halved every
	// StandingHalfLife, beyond StandingPerLease for each lease it signed,
	// before the market refuses it.
	DefaultStandingExpired = 64
)

// StandingHalfLife is how fast a requester's record of offers left to
// expire, and of leases signed, fades.
const StandingHalfLife = 10 * time.Minute

// StandingPerLease is how many offers a requester may leave to expire for
// each lease it signed before its expired offers count against it.
const StandingPerLease = 4

// MarketConfig is a provider's market: what it sells and at what price. It is
// plain config, written in YAML under the keys in the tags; the zero value of
// an optional field means its default.
type MarketConfig struct {
	// Provider is the provider's ID (its binary peer ID), copied into every
	// offer. Required.
	Provider string `yaml:"provider"`
	// Capacity is all the provider sells. CPU and memory must be positive;
	// scratch may be zero, and then only jobs that ask for none fit.
	Capacity Resources `yaml:"capacity"`
	// Labels are the attributes that constraints select on (region,
	// jurisdiction, certification...), sorted by key with unique keys: build
	// them with NewLabels.
	Labels Labels `yaml:"labels"`
	// Executors are the engines jobs may ask for. Default: the one engine
	// protocol.DefaultEngine ("wasm").
	Executors []string `yaml:"executors"`
	// Pricing is the price policy. Its currency is required.
	Pricing PricePolicy `yaml:"pricing"`
	// OfferTTL is how long an offer, and the reservation behind it, lives.
	// Default DefaultOfferTTL (10s); at least a millisecond, the wire's
	// resolution; at most protocol.MaxOfferTTL.
	OfferTTL time.Duration `yaml:"offer_ttl"`
	// MaxReservations bounds the live reservations (offers neither committed,
	// declined nor expired); a quote beyond it is refused with
	// CODE_RATE_LIMITED, so a flood of requests cannot lock capacity up.
	// Default DefaultMaxReservations (256).
	MaxReservations int `yaml:"max_reservations"`
	// OfferGrace is how long an offer outlives its request's expiry: an
	// offer, and its hold, lives until the earlier of the request's
	// expiry plus OfferGrace and now plus OfferTTL. Default
	// DefaultOfferGrace (2s).
	OfferGrace time.Duration `yaml:"offer_grace"`
	// MaxOffersPerPeer bounds the live offers of one requester, and of one
	// origin (Request.Origin, when set): more is CODE_RATE_LIMITED.
	// Default DefaultMaxOffersPerPeer (32).
	MaxOffersPerPeer int `yaml:"max_offers_per_peer"`
	// MaxHeldPermille is the share, in thousandths of each dimension of
	// Capacity, that one requester's live offers, and one origin's, may
	// reserve: a quote that would take them past it is CODE_RATE_LIMITED,
	// unless they hold no offer yet (a job larger than the share still
	// gets one). Default DefaultMaxHeldPermille (500); 1000 turns it off.
	MaxHeldPermille int `yaml:"max_held_permille"`
	// StandingExpired is how many offers a requester may leave to expire
	// unanswered beyond StandingPerLease per lease it signed (both fading
	// with StandingHalfLife) before its requests are CODE_RATE_LIMITED.
	// Default DefaultStandingExpired (64); negative turns it off.
	StandingExpired int `yaml:"standing_expired"`
	// Seed seeds the market's ChaCha8 source, from which offer nonces are
	// drawn. The node fills it from crypto/rand, so nonces cannot be guessed;
	// the simulator derives one per market from its own seed, so runs repeat.
	// The zero seed is valid but predictable, and two markets with the same
	// seed draw the same nonces. Not read from YAML.
	Seed [32]byte `yaml:"-"`
}

// Validate reports everything wrong with the config, one line per field.
func (c MarketConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Provider == "" {
		add("provider: required")
	}
	if c.Capacity.CPUMillis == 0 {
		add("capacity.cpu_millis: must be positive")
	}
	if c.Capacity.MemoryBytes == 0 {
		add("capacity.memory_bytes: must be positive")
	}
	for i, l := range c.Labels {
		switch {
		case l.Key == "":
			add("labels[%d]: empty key", i)
		case i > 0 && c.Labels[i-1].Key >= l.Key:
			add("labels[%d]: key %q is repeated or out of order: labels must be sorted by key with unique keys (build them with NewLabels)", i, l.Key)
		}
	}
	for i, e := range c.Executors {
		if e == "" {
			add("executors[%d]: empty name", i)
		}
	}
	if err := c.Pricing.Validate(); err != nil {
		for _, e := range unjoin(err) {
			add("pricing.%v", e)
		}
	}
	switch {
	case c.OfferTTL < 0:
		add("offer_ttl %s: must not be negative (0 means %s)", c.OfferTTL, DefaultOfferTTL)
	case c.OfferTTL > 0 && c.OfferTTL < time.Millisecond:
		add("offer_ttl %s: must be at least 1ms, the resolution of expiries on the wire", c.OfferTTL)
	case c.OfferTTL > protocol.MaxOfferTTL:
		add("offer_ttl %s: must be at most %s (peers refuse offers that live longer)", c.OfferTTL, protocol.MaxOfferTTL)
	}
	if c.MaxReservations < 0 {
		add("max_reservations %d: must not be negative (0 means %d)", c.MaxReservations, DefaultMaxReservations)
	}
	if c.OfferGrace < 0 {
		add("offer_grace %s: must not be negative (0 means %s)", c.OfferGrace, DefaultOfferGrace)
	}
	if c.MaxOffersPerPeer < 0 {
		add("max_offers_per_peer %d: must not be negative (0 means %d)", c.MaxOffersPerPeer, DefaultMaxOffersPerPeer)
	}
	if c.MaxHeldPermille < 0 || c.MaxHeldPermille > 1000 {
		add("max_held_permille %d: must be 1 to 1000 (0 means %d)", c.MaxHeldPermille, DefaultMaxHeldPermille)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("market config: %w", errors.Join(errs...))
}

// unjoin returns the errors an errors.Join put together, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// defaultExecutors is shared by every market left at the default, so that a
// million simulated ones do not each hold a copy.
var defaultExecutors = []string{protocol.DefaultEngine}

// withDefaults returns c with every zero optional field set to its default.
func (c MarketConfig) withDefaults() MarketConfig {
	if len(c.Executors) == 0 {
		c.Executors = defaultExecutors
	}
	if c.OfferTTL == 0 {
		c.OfferTTL = DefaultOfferTTL
	}
	if c.MaxReservations == 0 {
		c.MaxReservations = DefaultMaxReservations
	}
	if c.OfferGrace == 0 {
		c.OfferGrace = DefaultOfferGrace
	}
	if c.MaxOffersPerPeer == 0 {
		c.MaxOffersPerPeer = DefaultMaxOffersPerPeer
	}
	if c.MaxHeldPermille == 0 {
		c.MaxHeldPermille = DefaultMaxHeldPermille
	}
	if c.StandingExpired == 0 {
		c.StandingExpired = DefaultStandingExpired
	}
	return c
}

// Market is a provider's capacity ledger and price policy (SPEC 6):
// it quotes requests, holding the capacity of each offer until the offer
// expires, turns offers into leases and leases into usage to bill.
//
// Its invariant is that committed + reserved never exceeds capacity, in any
// dimension, whatever the order and timing of calls: a quote reserves only
// what is free, and a commit only turns a reservation into a lease of at most
// the same size.
//
// A Market is deterministic: the same config (seed included) and the same
// calls give the same offers, nonces included. Time is only ever the now
// passed in; every method that takes one first drops the reservations expired
// at that time, so correctness never depends on calling Expire. It is not safe
// for concurrent use: the node serialises calls.
//
// A site's market also holds the slices it granted to retailers (Grant,
// SPEC 6.7): each caps what its grantee's offers and leases hold, and the
// site's own offers never count a granted slice as free. The invariant
// still holds; the wholesale state is allocated at the first grant only.
//
// It is small on purpose, so that a simulation holds a million of them: about
// 380 bytes idle, about 1.6 KiB with four leases (BenchmarkMarketMemory, labels
// shared). Reservations and leases live in small slices scanned linearly,
// which beats a map at these sizes, and the nonce source is allocated at the
// first quote.
type Market struct {
	cfg       MarketConfig
	rng       *rand.ChaCha8 // nil until the first offer
	committed Resources
	reserved  Resources
	holds     []offerHold // live reservations, oldest first
	leases    []leaseHold // committed leases, oldest first
	// soonest is at or before the earliest expiry in holds, so that a sweep
	// with nothing to drop costs one comparison.
	soonest  time.Time
	draining bool
	// standing is the record of the requesters that left offers to expire,
	// nil until one does.
	standing map[string]*standing
	// whole is the slices granted to retailers (SPEC 6.7), nil while none
	// is: a market that sells no slice pays nothing for them.
	whole *wholesale
}

// offerHold is a reservation: an offer made and not yet committed, declined or
// expired.
type offerHold struct {
	offer   Offer
	timeout time.Duration // the request's, which the offer's total is for
	origin  string        // the request's
}

// standing is what a provider remembers of a requester that left offers
// to expire: how many, and how many leases it signed since, both fading
// with StandingHalfLife from at.
type standing struct {
	expired, leased float64
	at              time.Time
}

// fade brings s to now.
func (s *standing) fade(now time.Time) {
	if d := now.Sub(s.at); d > 0 {
		f := math.Exp2(-d.Seconds() / StandingHalfLife.Seconds())
		s.expired, s.leased, s.at = s.expired*f, s.leased*f, now
	}
}

// poor says whether s is past the market's tolerance.
func (s *standing) poor(tolerance int) bool {
	return tolerance >= 0 && s.expired > float64(tolerance)+StandingPerLease*s.leased
}

// leaseHold is a committed lease.
type leaseHold struct {
	id         string
	offerNonce string // for idempotent commits
	epoch      uint64
	resources  Resources
	price      Price // the offer's, at which usage is metered
	total      uint64
	started    time.Time
}

// NewMarket returns an empty market for cfg, or cfg's validation error. The
// market keeps cfg's slices (labels, executors) without copying them, and
// hands the labels out in every offer: neither the caller nor an offer's
// receiver may modify them. This is what lets a simulator share one label set
// among many providers.
func NewMarket(cfg MarketConfig) (*Market, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Market{cfg: cfg.withDefaults()}, nil
}

// Quote answers a request: an offer that reserves the asked resources until it
// expires (now + OfferTTL), or a typed refusal (*protocol.Error). Refusals are
// checked in this order, the most lasting first, and the first that applies is
// returned, so that a requester's explanation names the deepest reason:
//
//   - CODE_EXPIRED: the request expired (now >= req.ExpiresAt);
//   - CODE_MALFORMED: no nonce, or a timeout that is not positive;
//   - CODE_REPLAYED: the request nonce of a live offer to the same requester,
//     for another job, size or timeout;
//   - CODE_EXECUTOR_UNSUPPORTED: an engine not in Executors (an empty one
//     means protocol.DefaultEngine);
//   - CODE_CONSTRAINT_MISMATCH: the first constraint the labels fail;
//   - CODE_CURRENCY_MISMATCH: a ceiling in another currency than the price's;
//   - CODE_DRAINING: the market is draining;
//   - CODE_RATE_LIMITED: the requester left too many offers to expire
//     (StandingExpired), or it, or its origin, holds MaxOffersPerPeer
//     live offers already; with a retry-after;
//   - for a request on a grantee's slice (req.Grantee set):
//     CODE_SLICE_NOT_STARTED, no slice of its has started, or
//     CODE_SLICE_EXCEEDED, more than its started slices leave it, or no
//     slice at all (SPEC 6.7);
//   - CODE_INSUFFICIENT_CPU, _MEMORY, _SCRATCH: more than is free; the
//     site's own retail never counts slices granted to others as free;
//   - CODE_RATE_LIMITED: it, or its origin, would hold more than
//     MaxHeldPermille of a dimension of capacity with this offer;
//   - CODE_PRICE_ABOVE_CEILING: the total for Resources over Timeout, at the
//     price applied, exceeds req.MaxPrice (an empty currency means no
//     ceiling), or does not fit in a uint64;
//   - CODE_RATE_LIMITED: MaxReservations offers are live already.
//
// A request repeated (same requester, same nonce) while its offer is live gets
// the same offer back and reserves nothing more. The returned offer's Labels
// are the market's: read only.
func (m *Market) Quote(now time.Time, req Request) (Offer, error) {
	m.sweep(now)
	if !now.Before(req.ExpiresAt) {
		return Offer{}, protocol.Errorf(pb.Code_CODE_EXPIRED, "request expired at %s, now %s", fmtTime(req.ExpiresAt), fmtTime(now))
	}
	if req.Nonce == "" {
		return Offer{}, protocol.Errorf(pb.Code_CODE_MALFORMED, "request has no nonce")
	}
	if req.Timeout <= 0 {
		return Offer{}, protocol.Errorf(pb.Code_CODE_MALFORMED, "request timeout %s: must be positive", req.Timeout)
	}
	for i := range m.holds {
		h := &m.holds[i]
		if h.offer.RequestNonce != req.Nonce || h.offer.Requester != req.Requester {
			continue
		}
		if h.offer.JobCID != req.JobCID || h.offer.Resources != req.Resources || h.timeout != req.Timeout {
			return Offer{}, protocol.Errorf(pb.Code_CODE_REPLAYED, "request nonce %x was already quoted for another job, size or timeout", req.Nonce)
		}
		return h.offer, nil
	}
	if err := m.admit(req); err != nil {
		return Offer{}, err
	}
	if err := m.limit(now, req, false); err != nil {
		return Offer{}, err
	}
	free := m.free()
	if req.Grantee != "" {
		room, err := m.sliceRoom(now, req.Grantee)
		if err == nil && !req.Resources.Fits(room) {
			err = protocol.Errorf(pb.Code_CODE_SLICE_EXCEEDED, "asked %s, the slices granted here to %x leave %s", fmtResources(req.Resources), req.Grantee, fmtResources(room))
			err.RetryAfter = m.retryAfter(now)
		}
		if err != nil {
			return Offer{}, err
		}
		free = m.cfg.Capacity.Sub(m.committed).Sub(m.reserved)
	}
	if err := shortfall(req.Resources, free); err != nil {
		err.RetryAfter = m.retryAfter(now)
		return Offer{}, err
	}
	if err := m.limit(now, req, true); err != nil {
		return Offer{}, err
	}
	load := UtilisationPermille(m.committed.Add(m.reserved).Add(req.Resources), m.cfg.Capacity)
	price := m.cfg.Pricing.PriceAt(load)
	if req.Grantee != "" {
		price = Price{Currency: price.Currency} // the slice is paid whole (SPEC 4.5, 6.7)
	}
	total, err := price.Cost(req.Resources, req.Timeout)
	if err != nil {
		return Offer{}, protocol.Errorf(pb.Code_CODE_PRICE_ABOVE_CEILING, "total for %s: %v", req.Timeout, err)
	}
	if c := req.MaxPrice; c.Currency != "" && total > c.Nanos {
		return Offer{}, protocol.Errorf(pb.Code_CODE_PRICE_ABOVE_CEILING, "total %s above ceiling %s (load %d‰)",
			protocol.FormatAmount(&pb.Amount{Currency: price.Currency, Nanos: total}), protocol.FormatAmount(&pb.Amount{Currency: c.Currency, Nanos: c.Nanos}), load)
	}
	if len(m.holds) >= m.cfg.MaxReservations {
		return Offer{}, protocol.Errorf(pb.Code_CODE_RATE_LIMITED, "%d offers outstanding: ask again when some expire", len(m.holds))
	}
	o := Offer{
		Provider:     m.cfg.Provider,
		Requester:    req.Requester,
		RequestNonce: req.Nonce,
		Nonce:        m.nonce(),
		JobCID:       req.JobCID,
		Resources:    req.Resources,
		Price:        price,
		Total:        Amount{Currency: price.Currency, Nanos: total},
		ExpiresAt:    minTime(now.Add(m.cfg.OfferTTL), req.ExpiresAt.Add(m.cfg.OfferGrace)),
		LoadPermille: load,
		Labels:       m.cfg.Labels,
		Capacity:     m.cfg.Capacity,
	}
	if len(m.holds) == 0 || o.ExpiresAt.Before(m.soonest) {
		m.soonest = o.ExpiresAt
	}
	m.holds = append(m.holds, offerHold{offer: o, timeout: req.Timeout, origin: req.Origin})
	m.reserved = m.reserved.Add(req.Resources)
	if req.Grantee != "" {
		m.whole.hold(o.Nonce, req.Grantee, req.Resources)
	}
	m.checkInvariant()
	return o, nil
}

// admit checks what does not depend on the ledger: executor, constraints,
// currency and draining.
func (m *Market) admit(req Request) error {
	exec := req.Executor
	if exec == "" {
		exec = protocol.DefaultEngine
	}
	if !slices.Contains(m.cfg.Executors, exec) {
		return protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "executor %q not offered here (offers %s)", exec, strings.Join(m.cfg.Executors, ", "))
	}
	for i, s := range req.Constraints {
		if s.Matches(m.cfg.Labels) {
			continue
		}
		have := "no " + s.Key + " label"
		if v, ok := m.cfg.Labels.Get(s.Key); ok {
			have = s.Key + "=" + v
		}
		return protocol.Errorf(pb.Code_CODE_CONSTRAINT_MISMATCH, "constraint %d (%s) not met: provider has %s", i, fmtSelector(s), have)
	}
	if c := req.MaxPrice.Currency; c != "" && c != m.cfg.Pricing.Base.Currency {
		return protocol.Errorf(pb.Code_CODE_CURRENCY_MISMATCH, "ceiling in %s, prices here in %s", c, m.cfg.Pricing.Base.Currency)
	}
	if m.draining {
		return protocol.Errorf(pb.Code_CODE_DRAINING, "provider is draining: no new offers")
	}
	return nil
}

// limit refuses a requester in poor standing, and one whose live offers,
// or its origin's, are at MaxOffersPerPeer, or (share) would take more than
// MaxHeldPermille of capacity with req: an open federation's peers must
// not lock a provider's capacity up with offers they never lease. The
// share is checked after the room (a request too large for what is free
// is told so first), the rest before.
func (m *Market) limit(now time.Time, req Request, share bool) error {
	if s := m.standing[req.Requester]; s != nil && !share {
		s.fade(now)
		if s.poor(m.cfg.StandingExpired) {
			return limited(StandingHalfLife/4, "%.0f offers to this requester expired unanswered lately, for %.0f leases signed: ask again later",
				s.expired, s.leased)
		}
	}
	check := func(who string, mine func(*offerHold) bool) error {
		var n int
		var held Resources
		soonest := now.Add(m.cfg.OfferTTL)
		for i := range m.holds {
			if h := &m.holds[i]; mine(h) {
				n++
				held = held.Add(h.offer.Resources)
				soonest = minTime(soonest, h.offer.ExpiresAt)
			}
		}
		retry := max(soonest.Sub(now), 100*time.Millisecond)
		if !share && n >= m.cfg.MaxOffersPerPeer {
			return limited(retry, "%s holds %d live offers here, at most %d", who, n, m.cfg.MaxOffersPerPeer)
		}
		if share && n > 0 && m.cfg.MaxHeldPermille < 1000 && !held.Add(req.Resources).Fits(shareOf(m.cfg.Capacity, m.cfg.MaxHeldPermille)) {
			return limited(retry, "%s holds %s in live offers here; with this one it would hold more than %d‰ of capacity",
				who, fmtResources(held), m.cfg.MaxHeldPermille)
		}
		return nil
	}
	if err := check("this requester", func(h *offerHold) bool { return h.offer.Requester == req.Requester }); err != nil {
		return err
	}
	if req.Origin != "" {
		return check("origin "+req.Origin, func(h *offerHold) bool { return h.origin == req.Origin })
	}
	return nil
}

// limited is a CODE_RATE_LIMITED refusal with a retry-after hint.
func limited(retry time.Duration, format string, args ...any) error {
	e := protocol.Errorf(pb.Code_CODE_RATE_LIMITED, format, args...)
	e.RetryAfter = retry
	return e
}

// shareOf is permille thousandths of each dimension of r.
func shareOf(r Resources, permille int) Resources {
	f := func(v uint64) uint64 { p := uint64(permille); return v/1000*p + v%1000*p/1000 }
	return Resources{CPUMillis: f(r.CPUMillis), MemoryBytes: f(r.MemoryBytes), ScratchBytes: f(r.ScratchBytes)}
}

// maxStanding bounds the requesters a market keeps a standing for.
const maxStanding = 4096

// expired notes that an offer to requester ran out unanswered.
func (m *Market) expired(now time.Time, requester string) {
	if m.cfg.StandingExpired < 0 {
		return
	}
	s := m.standing[requester]
	if s == nil {
		if m.standing == nil {
			m.standing = map[string]*standing{}
		}
		if len(m.standing) >= maxStanding {
			for k, o := range m.standing { // forget those whose record has faded
				if o.fade(now); o.expired < 1 {
					delete(m.standing, k)
				}
			}
			if len(m.standing) >= maxStanding {
				return
			}
		}
		s = &standing{at: now}
		m.standing[requester] = s
	}
	s.fade(now)
	s.expired++
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// RetryAfterFull is the hint a full provider gives when no reservation of
// its will expire sooner: leases end when their runs do, which it cannot
// foretell.
const RetryAfterFull = time.Second

// retryAfter is when a requester refused for lack of room may ask again:
// when the soonest reservation expires, if one does before RetryAfterFull,
// at least 100 ms on.
func (m *Market) retryAfter(now time.Time) time.Duration {
	d := RetryAfterFull
	if len(m.holds) > 0 {
		d = min(d, m.soonest.Sub(now))
	}
	return max(d, 100*time.Millisecond)
}

// shortfall returns the refusal for the first dimension of asked that exceeds
// free, or nil if it fits.
func shortfall(asked, free Resources) *protocol.Error {
	switch {
	case asked.CPUMillis > free.CPUMillis:
		return protocol.Errorf(pb.Code_CODE_INSUFFICIENT_CPU, "asked %dm cpu, %dm free", asked.CPUMillis, free.CPUMillis)
	case asked.MemoryBytes > free.MemoryBytes:
		return protocol.Errorf(pb.Code_CODE_INSUFFICIENT_MEMORY, "asked %s memory, %s free", protocol.FormatBytes(asked.MemoryBytes), protocol.FormatBytes(free.MemoryBytes))
	case asked.ScratchBytes > free.ScratchBytes:
		return protocol.Errorf(pb.Code_CODE_INSUFFICIENT_SCRATCH, "asked %s scratch, %s free", protocol.FormatBytes(asked.ScratchBytes), protocol.FormatBytes(free.ScratchBytes))
	}
	return nil
}

// Decline frees an offer's reservation at once, rather than at its expiry. An
// offer that is not live here (never made, committed, declined or expired) is
// CODE_UNKNOWN_OFFER. The offer nonce is the capability: only the requester
// the offer was sent to knows it.
func (m *Market) Decline(now time.Time, offerNonce string) error {
	m.sweep(now)
	i := m.findHold(offerNonce)
	if i < 0 {
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_OFFER, "offer %x is not live here", offerNonce)
	}
	m.dropHold(i)
	return nil
}

// DeclineFrom is Decline of a requester's Decline message (SPEC 6.2): the
// offer must have been made to requester for jobCID, else it is
// CODE_UNKNOWN_OFFER, as one never made.
func (m *Market) DeclineFrom(now time.Time, offerNonce, requester, jobCID string) error {
	m.sweep(now)
	i := m.findHold(offerNonce)
	if i < 0 || m.holds[i].offer.Requester != requester || m.holds[i].offer.JobCID != jobCID {
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_OFFER, "no live offer %x here to you for job %x", offerNonce, jobCID)
	}
	m.dropHold(i)
	return nil
}

// Commit turns the reservation of a live offer into lease l (SPEC 6.2).
//
// It is idempotent: committing a lease already held here at the same epoch,
// under the same offer, returns nil and changes nothing, even after the offer
// would have expired. It is fenced by epoch: a lease ID held here at a higher
// epoch is CODE_STALE_EPOCH; held at a lower one, the new epoch replaces it and
// the old lease's resources are freed, unbilled (the requester has given that
// run up). The same ID and epoch under another offer is CODE_REPLAYED.
//
// Otherwise l.OfferNonce must name a live offer made here to l.Requester for
// l.JobCID: an expired one is CODE_EXPIRED (or CODE_UNKNOWN_OFFER once a sweep
// has dropped it), any other CODE_UNKNOWN_OFFER. A lease that asks more than
// its offer (resources or timeout), names another provider, or has epoch 0 is
// CODE_MALFORMED. The lease holds l.Resources; whatever the offer reserved
// beyond them is freed. Draining does not refuse commits: an offer is a
// promise.
func (m *Market) Commit(now time.Time, l Lease) error {
	// Look at the offer before the sweep, so that a lease arriving just too
	// late reads as expired rather than unknown.
	var expiredAt time.Time
	expired := false
	if i := m.findHold(l.OfferNonce); i >= 0 && !now.Before(m.holds[i].offer.ExpiresAt) {
		expiredAt, expired = m.holds[i].offer.ExpiresAt, true
	}
	m.sweep(now)
	if l.ID == "" {
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "lease has no ID")
	}
	if l.Epoch == 0 {
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "lease %x has epoch 0: epochs start at 1", l.ID)
	}
	old, done := m.heldLease(l)
	if done {
		return nil
	}
	if old >= 0 {
		h := &m.leases[old]
		switch {
		case l.Epoch < h.epoch:
			return protocol.Errorf(pb.Code_CODE_STALE_EPOCH, "lease %x epoch %d is older than %d held here", l.ID, l.Epoch, h.epoch)
		case l.Epoch == h.epoch:
			return protocol.Errorf(pb.Code_CODE_REPLAYED, "lease %x epoch %d is already held here under another offer", l.ID, l.Epoch)
		}
	}
	if expired {
		return protocol.Errorf(pb.Code_CODE_EXPIRED, "offer %x expired at %s, now %s", l.OfferNonce, fmtTime(expiredAt), fmtTime(now))
	}
	i := m.findHold(l.OfferNonce)
	if i < 0 || m.holds[i].offer.Requester != l.Requester {
		// An offer to another requester reads as unknown: its nonce was
		// not this requester's to know.
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_OFFER, "offer %x is not live here", l.OfferNonce)
	}
	h := &m.holds[i]
	switch {
	case l.Provider != m.cfg.Provider:
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "lease %x is addressed to another provider", l.ID)
	case l.JobCID != h.offer.JobCID:
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "lease %x is for job %x, offer %x for job %x", l.ID, l.JobCID, l.OfferNonce, h.offer.JobCID)
	case !l.Resources.Fits(h.offer.Resources):
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "lease %x asks %s, more than offer %x reserved (%s)", l.ID, fmtResources(l.Resources), l.OfferNonce, fmtResources(h.offer.Resources))
	case l.Timeout > h.timeout:
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "lease %x timeout %s is longer than the %s offer %x was priced for", l.ID, l.Timeout, h.timeout, l.OfferNonce)
	}
	lh := leaseHold{
		id:         l.ID,
		offerNonce: l.OfferNonce,
		epoch:      l.Epoch,
		resources:  l.Resources,
		price:      h.offer.Price,
		total:      h.offer.Total.Nanos,
		started:    now,
	}
	grantee := ""
	if m.whole != nil {
		grantee = m.whole.holds[l.OfferNonce]
	}
	m.dropHold(i)
	if old >= 0 {
		m.dropLease(old)
	}
	m.leases = append(m.leases, lh)
	m.committed = m.committed.Add(l.Resources)
	if grantee != "" {
		m.whole.leases[l.ID] = grantee
		m.whole.use[grantee] = m.whole.use[grantee].Add(l.Resources)
	}
	if s := m.standing[l.Requester]; s != nil {
		s.fade(now)
		s.leased++
	}
	m.checkInvariant()
	return nil
}

// Reprice changes the price policy and labels of the market, as an operator's
// reload does. Live offers and leases keep the terms they were made at. The
// config must validate with the new values; on error nothing changes.
func (m *Market) Reprice(p PricePolicy, labels Labels) error {
	cfg := m.cfg
	cfg.Pricing, cfg.Labels = p, labels
	if err := cfg.Validate(); err != nil {
		return err
	}
	m.cfg.Pricing, m.cfg.Labels = p, labels
	return nil
}

// Resize changes what the market sells, as a retailer's slices come and
// go (SPEC 6.7): new offers see the new capacity; leases and offers made
// stay, even past it, and end as they would. Zero sells nothing.
func (m *Market) Resize(capacity Resources) { m.cfg.Capacity = capacity }

// HeldLease is the terms of a lease a market holds.
type HeldLease struct {
	Grantee   string // the retailer on whose slice it runs (SPEC 6.7), "" for the site's own retail
	Epoch     uint64
	Resources Resources
	Price     Price  // the offer's, at which usage is metered
	Total     uint64 // the offer's total: the most the lease bills
	Committed time.Time
}

// Held returns the terms of the lease with this ID, if held.
func (m *Market) Held(id string) (HeldLease, bool) {
	i := m.findLease(id)
	if i < 0 {
		return HeldLease{}, false
	}
	h := &m.leases[i]
	held := HeldLease{Epoch: h.epoch, Resources: h.resources, Price: h.price, Total: h.total, Committed: h.started}
	if m.whole != nil {
		held.Grantee = m.whole.leases[id]
	}
	return held, true
}

// heldLease returns the index of the lease with l's ID (-1 if none), and
// whether it is l itself: same epoch, same offer.
func (m *Market) heldLease(l Lease) (int, bool) {
	i := m.findLease(l.ID)
	if i < 0 {
		return -1, false
	}
	h := &m.leases[i]
	return i, h.epoch == l.Epoch && h.offerNonce == l.OfferNonce
}

// Release frees a lease and returns its usage to bill: the lease's resources
// for the wall time it was held (commit to now, in whole milliseconds, none if
// now is before the commit), at the price of its offer, capped at the offer's
// total. A lease not held here, or held at another epoch than a newer one, is
// CODE_UNKNOWN_LEASE; an epoch older than the one held is CODE_STALE_EPOCH.
func (m *Market) Release(now time.Time, leaseID string, epoch uint64) (Usage, error) {
	m.sweep(now)
	i := m.findLease(leaseID)
	if i < 0 {
		return Usage{}, protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "lease %x is not held here", leaseID)
	}
	h := m.leases[i]
	switch {
	case epoch < h.epoch:
		return Usage{}, protocol.Errorf(pb.Code_CODE_STALE_EPOCH, "lease %x epoch %d is older than %d held here", leaseID, epoch, h.epoch)
	case epoch > h.epoch:
		return Usage{}, protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "lease %x is held here at epoch %d, not %d", leaseID, h.epoch, epoch)
	}
	ended := now
	if ended.Before(h.started) {
		ended = h.started
	}
	amount, err := h.price.Cost(h.resources, ended.Sub(h.started))
	if err != nil || amount > h.total {
		amount = h.total
	}
	m.dropLease(i)
	return Usage{
		LeaseID:   h.id,
		Epoch:     h.epoch,
		Resources: h.resources,
		Started:   h.started,
		Ended:     ended,
		Price:     h.price,
		Amount:    Amount{Currency: h.price.Currency, Nanos: amount},
	}, nil
}

// Expire drops the reservations expired at now (ExpiresAt <= now) and returns
// how many it dropped. Calling it only frees capacity sooner in State; every
// other method sweeps first anyway.
func (m *Market) Expire(now time.Time) int {
	return m.sweep(now)
}

// SetDraining turns draining on or off. A draining market refuses new offers
// with CODE_DRAINING, and still commits the offers it made and releases its
// leases, so that a node can leave without breaking a promise.
func (m *Market) SetDraining(on bool) { m.draining = on }

// MarketState is a snapshot of a market's ledger, for metrics and reports.
type MarketState struct {
	Capacity     Resources
	Committed    Resources // held by leases
	Reserved     Resources // held by live offers
	Free         Resources // Capacity - Committed - Reserved
	Leases       int
	Reservations int
	// LoadPermille is the utilisation of Committed + Reserved, the larger
	// over CPU and memory, in permille rounded up: what the next offer would
	// carry if it asked for nothing.
	LoadPermille uint32
	Draining     bool
}

// State returns a snapshot of the ledger. It takes no time, so reservations
// expired since the last call that did are still counted.
func (m *Market) State() MarketState {
	used := m.committed.Add(m.reserved)
	return MarketState{
		Capacity:     m.cfg.Capacity,
		Committed:    m.committed,
		Reserved:     m.reserved,
		Free:         m.free(),
		Leases:       len(m.leases),
		Reservations: len(m.holds),
		LoadPermille: UtilisationPermille(used, m.cfg.Capacity),
		Draining:     m.draining,
	}
}

// free is what the site's own retail may still take: capacity less
// leases, reservations and the unused part of the slices granted.
func (m *Market) free() Resources {
	f := m.cfg.Capacity.Sub(m.committed).Sub(m.reserved)
	if m.whole != nil {
		f = f.Sub(m.whole.withheld())
	}
	return f
}

// nonce draws a 16-byte offer nonce from the market's source.
func (m *Market) nonce() string {
	if m.rng == nil {
		m.rng = rand.NewChaCha8(m.cfg.Seed)
	}
	var b [protocol.NonceSize]byte
	binary.LittleEndian.PutUint64(b[:8], m.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], m.rng.Uint64())
	return string(b[:])
}

// sweep drops the reservations expired at now and returns how many.
func (m *Market) sweep(now time.Time) int {
	if m.whole != nil && m.whole.end(now) {
		m.whole = nil
	}
	if len(m.holds) == 0 || now.Before(m.soonest) {
		return 0
	}
	j := 0
	for i := range m.holds {
		h := &m.holds[i]
		if !now.Before(h.offer.ExpiresAt) {
			m.reserved = m.reserved.Sub(h.offer.Resources)
			m.expired(now, h.offer.Requester)
			if m.whole != nil {
				m.whole.unhold(h.offer.Nonce, h.offer.Resources)
			}
			continue
		}
		if j == 0 || h.offer.ExpiresAt.Before(m.soonest) {
			m.soonest = h.offer.ExpiresAt
		}
		if i != j {
			m.holds[j] = *h
		}
		j++
	}
	n := len(m.holds) - j
	clear(m.holds[j:])
	m.holds = shrink(m.holds[:j])
	return n
}

func (m *Market) findHold(offerNonce string) int {
	for i := range m.holds {
		if m.holds[i].offer.Nonce == offerNonce {
			return i
		}
	}
	return -1
}

func (m *Market) dropHold(i int) {
	if m.whole != nil {
		m.whole.unhold(m.holds[i].offer.Nonce, m.holds[i].offer.Resources)
	}
	m.reserved = m.reserved.Sub(m.holds[i].offer.Resources)
	m.holds = shrink(slices.Delete(m.holds, i, i+1))
}

func (m *Market) findLease(id string) int {
	for i := range m.leases {
		if m.leases[i].id == id {
			return i
		}
	}
	return -1
}

func (m *Market) dropLease(i int) {
	if m.whole != nil {
		m.whole.unlease(m.leases[i].id, m.leases[i].resources)
	}
	m.committed = m.committed.Sub(m.leases[i].resources)
	m.leases = shrink(slices.Delete(m.leases, i, i+1))
}

// shrink gives back the memory of a slice that a burst grew and that is now
// mostly empty, so that a long-lived market stays small. Small slices keep
// their capacity: reusing it saves an allocation per quote.
func shrink[T any](s []T) []T {
	if cap(s) < 32 || len(s) > cap(s)/4 {
		return s
	}
	if len(s) == 0 {
		return nil
	}
	return append(make([]T, 0, 2*len(s)), s...)
}

// checkInvariant panics if committed + reserved exceeds capacity: a bug in
// the market, never a consequence of its input.
func (m *Market) checkInvariant() {
	if !m.committed.Add(m.reserved).Fits(m.cfg.Capacity) {
		panic(fmt.Sprintf("scheduler: market over-committed: committed %s + reserved %s > capacity %s",
			fmtResources(m.committed), fmtResources(m.reserved), fmtResources(m.cfg.Capacity)))
	}
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func fmtResources(r Resources) string {
	return fmt.Sprintf("%dm cpu, %s memory, %s scratch", r.CPUMillis, protocol.FormatBytes(r.MemoryBytes), protocol.FormatBytes(r.ScratchBytes))
}

// fmtSelector writes a constraint as a job spec would: "region in [fr de]".
func fmtSelector(s Selector) string {
	op := strings.ToLower(strings.TrimPrefix(s.Op.String(), "OPERATOR_"))
	if s.Op == pb.Operator_OPERATOR_EXISTS {
		return s.Key + " " + op
	}
	return fmt.Sprintf("%s %s %v", s.Key, op, s.Values)
}
