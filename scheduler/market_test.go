package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

var mktT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mktConfig is a 4-vCPU, 8 GiB provider in France at a static price.
func mktConfig() MarketConfig {
	return MarketConfig{
		Provider: "prov-1",
		Capacity: Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, ScratchBytes: 10 << 30},
		Labels:   NewLabels(Label{"region", "fr"}, Label{"jurisdiction", "eu"}, Label{"cert", "hds"}),
		Pricing:  PricePolicy{Base: Price{Currency: "EUR", CPUNanosPerSecond: 10_000, MemoryNanosPerGiBSecond: 5_000}},
		// Offers live their TTL, and one requester may reserve it all:
		// TestMarketLimits tries the limits on their own.
		OfferGrace:      time.Hour,
		MaxHeldPermille: 1000,
	}
}

// mktRequest asks for 1 vCPU, 1 GiB and 64 MiB of scratch for a minute: at
// mktConfig's price that is 600,000 + 300,000 nano-EUR.
func mktRequest(nonce string) Request {
	return Request{
		Nonce: nonce, Requester: "req-A", JobCID: "job-1", Executor: "wasm",
		Resources: Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, ScratchBytes: 64 << 20},
		Timeout:   time.Minute,
		ExpiresAt: mktT0.Add(5 * time.Second),
	}
}

const mktRequestTotal = 900_000

func mktMarket(t testing.TB, mutate ...func(*MarketConfig)) *Market {
	t.Helper()
	cfg := mktConfig()
	for _, f := range mutate {
		f(&cfg)
	}
	m, err := NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mktLease is the lease a requester sends for offer o, priced for timeout.
func mktLease(o Offer, id string, epoch uint64) Lease {
	return Lease{
		ID: id, Provider: o.Provider, Requester: o.Requester, OfferNonce: o.Nonce, JobCID: o.JobCID,
		Epoch: epoch, ExpiresAt: o.ExpiresAt, Resources: o.Resources, Timeout: time.Minute,
	}
}

func mktQuote(t testing.TB, m *Market, now time.Time, req Request) Offer {
	t.Helper()
	o, err := m.Quote(now, req)
	if err != nil {
		t.Fatalf("quote %q: %v", req.Nonce, err)
	}
	return o
}

// mktWantCode fails unless err is a *protocol.Error with code want whose
// message holds every one of msgs.
func mktWantCode(t testing.TB, err error, want pb.Code, msgs ...string) {
	t.Helper()
	if want == pb.Code_CODE_UNSPECIFIED {
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		return
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *protocol.Error with %s", err, want)
	}
	if pe.Code != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	for _, s := range msgs {
		if !strings.Contains(pe.Msg, s) {
			t.Errorf("message %q does not say %q", pe.Msg, s)
		}
	}
}

func TestMarketConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*MarketConfig)
		want   []string // substrings of the error; none for a valid config
	}{
		{"valid", func(*MarketConfig) {}, nil},
		{"defaults are valid", func(c *MarketConfig) { c.OfferTTL, c.MaxReservations, c.Executors = 0, 0, nil }, nil},
		{"longest ttl", func(c *MarketConfig) { c.OfferTTL = protocol.MaxOfferTTL }, nil},
		{"load-based", func(c *MarketConfig) { c.Pricing.LoadFactorPermille = 2000 }, nil},
		{"no scratch", func(c *MarketConfig) { c.Capacity.ScratchBytes = 0 }, nil},
		{"no provider", func(c *MarketConfig) { c.Provider = "" }, []string{"provider: required"}},
		{"no cpu", func(c *MarketConfig) { c.Capacity.CPUMillis = 0 }, []string{"capacity.cpu_millis: must be positive"}},
		{"no memory", func(c *MarketConfig) { c.Capacity.MemoryBytes = 0 }, []string{"capacity.memory_bytes: must be positive"}},
		{"unsorted labels", func(c *MarketConfig) { c.Labels = Labels{{"region", "fr"}, {"cert", "hds"}} }, []string{`labels[1]: key "cert" is repeated or out of order`, "NewLabels"}},
		{"repeated label", func(c *MarketConfig) { c.Labels = Labels{{"region", "fr"}, {"region", "de"}} }, []string{`labels[1]: key "region"`}},
		{"empty label key", func(c *MarketConfig) { c.Labels = Labels{{"", "x"}} }, []string{"labels[0]: empty key"}},
		{"empty executor", func(c *MarketConfig) { c.Executors = []string{"wasm", ""} }, []string{"executors[1]: empty name"}},
		{"no currency", func(c *MarketConfig) { c.Pricing.Base.Currency = "" }, []string{`pricing.base.currency "" is not a currency`}},
		{"lower-case currency", func(c *MarketConfig) { c.Pricing.Base.Currency = "eur" }, []string{`pricing.base.currency "eur"`}},
		{"price overflows at full load", func(c *MarketConfig) {
			c.Pricing.Base.CPUNanosPerSecond = 1 << 63
			c.Pricing.LoadFactorPermille = 1000
		}, []string{"pricing.base.cpu_nanos_per_second: 9223372036854775808 overflows"}},
		{"negative ttl", func(c *MarketConfig) { c.OfferTTL = -time.Second }, []string{"offer_ttl -1s: must not be negative"}},
		{"sub-millisecond ttl", func(c *MarketConfig) { c.OfferTTL = time.Microsecond }, []string{"at least 1ms"}},
		{"ttl too long", func(c *MarketConfig) { c.OfferTTL = protocol.MaxOfferTTL + time.Millisecond }, []string{"must be at most 2m0s"}},
		{"negative reservations", func(c *MarketConfig) { c.MaxReservations = -1 }, []string{"max_reservations -1"}},
		{"every error at once", func(c *MarketConfig) { *c = MarketConfig{OfferTTL: -1} }, []string{
			"provider: required", "cpu_millis", "memory_bytes", "pricing.base.currency", "offer_ttl",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mktConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			_, newErr := NewMarket(cfg)
			if (err == nil) != (newErr == nil) {
				t.Fatalf("Validate says %v, NewMarket says %v", err, newErr)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestPricePolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    PricePolicy
		want string
	}{
		{"static", PricePolicy{Base: Price{Currency: "EUR", CPUNanosPerSecond: 1 << 63}}, ""},
		{"free", PricePolicy{Base: Price{Currency: "CHF"}, LoadFactorPermille: 1 << 31}, ""},
		{"largest factor", PricePolicy{Base: Price{Currency: "EUR", CPUNanosPerSecond: 1000}, LoadFactorPermille: ^uint32(0)}, ""},
		{"no currency", PricePolicy{}, "base.currency"},
		{"long currency", PricePolicy{Base: Price{Currency: "EURO"}}, "base.currency"},
		{"memory overflows", PricePolicy{Base: Price{Currency: "EUR", MemoryNanosPerGiBSecond: 1 << 62}, LoadFactorPermille: 3000}, "base.memory_nanos_per_gib_second"},
		{"egress overflows", PricePolicy{Base: Price{Currency: "EUR", EgressNanosPerGiB: 1 << 60}, LoadFactorPermille: 1 << 20}, "base.egress_nanos_per_gib"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestMarketQuoteOffer(t *testing.T) {
	m := mktMarket(t)
	req := mktRequest("n1")
	req.MaxPrice = Amount{Currency: "EUR", Nanos: mktRequestTotal} // exactly the total: accepted
	o := mktQuote(t, m, mktT0, req)
	want := Offer{
		Provider: "prov-1", Requester: "req-A", RequestNonce: "n1", JobCID: "job-1",
		Resources:    req.Resources,
		Price:        mktConfig().Pricing.Base,
		Total:        Amount{Currency: "EUR", Nanos: mktRequestTotal},
		ExpiresAt:    mktT0.Add(DefaultOfferTTL),
		LoadPermille: 250, // 1 of 4 vCPUs, 1 of 8 GiB
		Labels:       mktConfig().Labels,
		Capacity:     mktConfig().Capacity,
	}
	if diff := cmp.Diff(want, o, cmpopts.IgnoreFields(Offer{}, "Nonce")); diff != "" {
		t.Errorf("offer (-want +got):\n%s", diff)
	}
	if len(o.Nonce) != protocol.NonceSize {
		t.Errorf("nonce is %d bytes, want %d", len(o.Nonce), protocol.NonceSize)
	}
	wantState := MarketState{
		Capacity:     mktConfig().Capacity,
		Reserved:     req.Resources,
		Free:         mktConfig().Capacity.Sub(req.Resources),
		Reservations: 1,
		LoadPermille: 250,
	}
	if diff := cmp.Diff(wantState, m.State()); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	// An empty executor means the default engine.
	req2 := mktRequest("n2")
	req2.Executor = ""
	mktQuote(t, m, mktT0, req2)
}

func TestMarketQuoteRefusals(t *testing.T) {
	tests := []struct {
		name   string
		config func(*MarketConfig)
		setup  func(*testing.T, *Market) // runs before the refused quote
		req    func(*Request)
		code   pb.Code
		msgs   []string
	}{
		{name: "expired request", req: func(r *Request) { r.ExpiresAt = mktT0 },
			code: pb.Code_CODE_EXPIRED, msgs: []string{"request expired at 2026-03-01T12:00:00Z"}},
		{name: "no nonce", req: func(r *Request) { r.Nonce = "" },
			code: pb.Code_CODE_MALFORMED, msgs: []string{"no nonce"}},
		{name: "no timeout", req: func(r *Request) { r.Timeout = 0 },
			code: pb.Code_CODE_MALFORMED, msgs: []string{"timeout 0s"}},
		{name: "executor", req: func(r *Request) { r.Executor = "oci" },
			code: pb.Code_CODE_EXECUTOR_UNSUPPORTED, msgs: []string{`"oci" not offered here (offers wasm)`}},
		{name: "constraint value", req: func(r *Request) {
			r.Constraints = []Selector{
				{Key: "jurisdiction", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"eu"}},
				{Key: "region", Op: pb.Operator_OPERATOR_IN, Values: []string{"be", "de"}},
			}
		}, code: pb.Code_CODE_CONSTRAINT_MISMATCH, msgs: []string{"constraint 1 (region in [be de]) not met: provider has region=fr"}},
		{name: "constraint exists", req: func(r *Request) {
			r.Constraints = []Selector{{Key: "gpu", Op: pb.Operator_OPERATOR_EXISTS}}
		}, code: pb.Code_CODE_CONSTRAINT_MISMATCH, msgs: []string{"constraint 0 (gpu exists) not met: provider has no gpu label"}},
		{name: "constraint not in", req: func(r *Request) {
			r.Constraints = []Selector{{Key: "region", Op: pb.Operator_OPERATOR_NOT_IN, Values: []string{"fr"}}}
		}, code: pb.Code_CODE_CONSTRAINT_MISMATCH, msgs: []string{"region not_in [fr]"}},
		{name: "currency", req: func(r *Request) { r.MaxPrice = Amount{Currency: "USD", Nanos: 1e9} },
			code: pb.Code_CODE_CURRENCY_MISMATCH, msgs: []string{"ceiling in USD, prices here in EUR"}},
		{name: "draining", setup: func(t *testing.T, m *Market) { m.SetDraining(true) },
			code: pb.Code_CODE_DRAINING},
		{name: "cpu", req: func(r *Request) { r.Resources.CPUMillis = 4001 },
			code: pb.Code_CODE_INSUFFICIENT_CPU, msgs: []string{"asked 4001m cpu, 4000m free"}},
		{name: "cpu after a reservation", setup: func(t *testing.T, m *Market) {
			r := mktRequest("other")
			r.Resources.CPUMillis = 3500
			mktQuote(t, m, mktT0, r)
		}, code: pb.Code_CODE_INSUFFICIENT_CPU, msgs: []string{"asked 1000m cpu, 500m free"}},
		{name: "cpu after a lease", setup: func(t *testing.T, m *Market) {
			r := mktRequest("other")
			r.Resources.CPUMillis = 3500
			if err := m.Commit(mktT0, mktLease(mktQuote(t, m, mktT0, r), "L1", 1)); err != nil {
				t.Fatal(err)
			}
		}, code: pb.Code_CODE_INSUFFICIENT_CPU, msgs: []string{"asked 1000m cpu, 500m free"}},
		{name: "memory", req: func(r *Request) { r.Resources.MemoryBytes = 9 << 30 },
			code: pb.Code_CODE_INSUFFICIENT_MEMORY, msgs: []string{"asked 9Gi memory, 8Gi free"}},
		{name: "scratch", config: func(c *MarketConfig) { c.Capacity.ScratchBytes = 0 },
			code: pb.Code_CODE_INSUFFICIENT_SCRATCH, msgs: []string{"asked 64Mi scratch, 0 free"}},
		{name: "price above ceiling", req: func(r *Request) { r.MaxPrice = Amount{Currency: "EUR", Nanos: mktRequestTotal - 1} },
			code: pb.Code_CODE_PRICE_ABOVE_CEILING, msgs: []string{"total 0.0009 EUR above ceiling 0.000899999 EUR"}},
		{name: "zero ceiling", req: func(r *Request) { r.MaxPrice = Amount{Currency: "EUR"} },
			code: pb.Code_CODE_PRICE_ABOVE_CEILING, msgs: []string{"above ceiling 0 EUR"}},
		{name: "total overflows", config: func(c *MarketConfig) { c.Pricing.Base.CPUNanosPerSecond = 1 << 62 },
			code: pb.Code_CODE_PRICE_ABOVE_CEILING, msgs: []string{"overflows"}},
		{name: "rate limited", config: func(c *MarketConfig) { c.MaxReservations = 2 }, setup: func(t *testing.T, m *Market) {
			for _, n := range []string{"a", "b"} {
				r := mktRequest(n)
				r.Resources = Resources{CPUMillis: 1}
				mktQuote(t, m, mktT0, r)
			}
		}, code: pb.Code_CODE_RATE_LIMITED, msgs: []string{"2 offers outstanding"}},
		{name: "same nonce, other size", setup: func(t *testing.T, m *Market) { mktQuote(t, m, mktT0, mktRequest("n1")) },
			req: func(r *Request) { r.Resources.MemoryBytes *= 2 }, code: pb.Code_CODE_REPLAYED},
		// The order of the checks: the most lasting reason wins.
		{name: "executor before constraint", req: func(r *Request) {
			r.Executor = "oci"
			r.Constraints = []Selector{{Key: "gpu", Op: pb.Operator_OPERATOR_EXISTS}}
		}, code: pb.Code_CODE_EXECUTOR_UNSUPPORTED},
		{name: "constraint before draining", setup: func(t *testing.T, m *Market) { m.SetDraining(true) }, req: func(r *Request) {
			r.Constraints = []Selector{{Key: "gpu", Op: pb.Operator_OPERATOR_EXISTS}}
		}, code: pb.Code_CODE_CONSTRAINT_MISMATCH},
		{name: "draining before capacity", setup: func(t *testing.T, m *Market) { m.SetDraining(true) },
			req: func(r *Request) { r.Resources.MemoryBytes = 9 << 30 }, code: pb.Code_CODE_DRAINING},
		{name: "capacity before price", req: func(r *Request) {
			r.Resources.CPUMillis = 5000
			r.MaxPrice = Amount{Currency: "EUR", Nanos: 1}
		}, code: pb.Code_CODE_INSUFFICIENT_CPU},
		{name: "price before rate limit", config: func(c *MarketConfig) { c.MaxReservations = 1 }, setup: func(t *testing.T, m *Market) {
			mktQuote(t, m, mktT0, mktRequest("a"))
		}, req: func(r *Request) { r.MaxPrice = Amount{Currency: "EUR", Nanos: 1} }, code: pb.Code_CODE_PRICE_ABOVE_CEILING},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate []func(*MarketConfig)
			if tt.config != nil {
				mutate = append(mutate, tt.config)
			}
			m := mktMarket(t, mutate...)
			if tt.setup != nil {
				tt.setup(t, m)
			}
			req := mktRequest("n1")
			if tt.req != nil {
				tt.req(&req)
			}
			before := m.State()
			o, err := m.Quote(mktT0, req)
			mktWantCode(t, err, tt.code, tt.msgs...)
			if diff := cmp.Diff(Offer{}, o); diff != "" {
				t.Errorf("a refusal returned an offer:\n%s", diff)
			}
			if diff := cmp.Diff(before, m.State()); diff != "" {
				t.Errorf("a refusal changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

func TestMarketQuoteIdempotent(t *testing.T) {
	m := mktMarket(t)
	o1 := mktQuote(t, m, mktT0, mktRequest("n1"))
	// The same request again, later and with a later expiry: the same offer,
	// no second reservation.
	again := mktRequest("n1")
	again.ExpiresAt = mktT0.Add(time.Hour)
	o2 := mktQuote(t, m, mktT0.Add(3*time.Second), again)
	if diff := cmp.Diff(o1, o2); diff != "" {
		t.Errorf("repeated request got another offer (-first +second):\n%s", diff)
	}
	if st := m.State(); st.Reservations != 1 || st.Reserved != o1.Resources {
		t.Errorf("after a repeated request: %d reservations of %+v, want 1 of %+v", st.Reservations, st.Reserved, o1.Resources)
	}
	// Even while draining: the offer stands.
	m.SetDraining(true)
	if o3 := mktQuote(t, m, mktT0.Add(4*time.Second), again); o3.Nonce != o1.Nonce {
		t.Errorf("a draining market did not return its live offer")
	}
	m.SetDraining(false)
	// Another requester's nonce is another request.
	other := mktRequest("n1")
	other.Requester = "req-B"
	if o := mktQuote(t, m, mktT0, other); o.Nonce == o1.Nonce {
		t.Errorf("another requester got the same offer")
	}
	// Once the offer has expired, the same nonce is quoted afresh.
	late := mktT0.Add(DefaultOfferTTL)
	o4 := mktQuote(t, m, late, again)
	if o4.Nonce == o1.Nonce || !o4.ExpiresAt.Equal(late.Add(DefaultOfferTTL)) {
		t.Errorf("after expiry got nonce %x expiring %s, want a fresh offer", o4.Nonce, o4.ExpiresAt)
	}
	if st := m.State(); st.Reservations != 1 {
		t.Errorf("%d reservations after expiry, want 1", st.Reservations)
	}
}

func TestMarketDecline(t *testing.T) {
	m := mktMarket(t)
	o := mktQuote(t, m, mktT0, mktRequest("n1"))
	mktQuote(t, m, mktT0, mktRequest("n2"))
	if err := m.Decline(mktT0.Add(time.Second), o.Nonce); err != nil {
		t.Fatal(err)
	}
	if st := m.State(); st.Reservations != 1 || st.Reserved != o.Resources {
		t.Errorf("after decline: %d reservations of %+v", st.Reservations, st.Reserved)
	}
	mktWantCode(t, m.Decline(mktT0.Add(time.Second), o.Nonce), pb.Code_CODE_UNKNOWN_OFFER)
	mktWantCode(t, m.Decline(mktT0, "nope"), pb.Code_CODE_UNKNOWN_OFFER)
	// A declined offer cannot be committed.
	mktWantCode(t, m.Commit(mktT0, mktLease(o, "L1", 1)), pb.Code_CODE_UNKNOWN_OFFER)

	// A requester's Decline names its offer for one job: another requester,
	// or another job, declines nothing (SPEC 6.2).
	o3 := mktQuote(t, m, mktT0, mktRequest("n3"))
	mktWantCode(t, m.DeclineFrom(mktT0, o3.Nonce, o3.Requester+"x", o3.JobCID), pb.Code_CODE_UNKNOWN_OFFER)
	mktWantCode(t, m.DeclineFrom(mktT0, o3.Nonce, o3.Requester, o3.JobCID+"x"), pb.Code_CODE_UNKNOWN_OFFER)
	if err := m.DeclineFrom(mktT0, o3.Nonce, o3.Requester, o3.JobCID); err != nil {
		t.Fatalf("decline by its requester for its job: %v", err)
	}
}

func TestMarketCommit(t *testing.T) {
	res := mktRequest("").Resources
	tests := []struct {
		name    string
		at      time.Duration // after the quote
		prepare func(*Market) // between quote and commit
		lease   func(*Lease)
		code    pb.Code
		msgs    []string
		want    MarketState // Capacity and Free are filled in
	}{
		{name: "commit", want: MarketState{Committed: res, Leases: 1, LoadPermille: 250}},
		{name: "just before expiry", at: DefaultOfferTTL - time.Nanosecond, want: MarketState{Committed: res, Leases: 1, LoadPermille: 250}},
		{name: "smaller lease frees the rest", lease: func(l *Lease) { l.Resources = Resources{CPUMillis: 500, MemoryBytes: 1 << 29} },
			want: MarketState{Committed: Resources{CPUMillis: 500, MemoryBytes: 1 << 29}, Leases: 1, LoadPermille: 125}},
		{name: "shorter timeout", lease: func(l *Lease) { l.Timeout = time.Second }, want: MarketState{Committed: res, Leases: 1, LoadPermille: 250}},
		{name: "while draining", prepare: func(m *Market) { m.SetDraining(true) },
			want: MarketState{Committed: res, Leases: 1, LoadPermille: 250, Draining: true}},
		{name: "unknown offer", lease: func(l *Lease) { l.OfferNonce = "nope" }, code: pb.Code_CODE_UNKNOWN_OFFER,
			want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "other requester", lease: func(l *Lease) { l.Requester = "req-B" }, code: pb.Code_CODE_UNKNOWN_OFFER,
			want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "expired offer", at: DefaultOfferTTL, code: pb.Code_CODE_EXPIRED, msgs: []string{"expired at 2026-03-01T12:00:10Z"},
			want: MarketState{}},
		{name: "expired offer already swept", at: DefaultOfferTTL, prepare: func(m *Market) { m.Expire(mktT0.Add(DefaultOfferTTL)) },
			code: pb.Code_CODE_UNKNOWN_OFFER, want: MarketState{}},
		{name: "more than offered", lease: func(l *Lease) { l.Resources.ScratchBytes++ }, code: pb.Code_CODE_MALFORMED,
			msgs: []string{"more than offer"}, want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "longer timeout", lease: func(l *Lease) { l.Timeout = time.Hour }, code: pb.Code_CODE_MALFORMED,
			msgs: []string{"timeout 1h0m0s is longer than the 1m0s"}, want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "other job", lease: func(l *Lease) { l.JobCID = "job-2" }, code: pb.Code_CODE_MALFORMED,
			want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "other provider", lease: func(l *Lease) { l.Provider = "prov-2" }, code: pb.Code_CODE_MALFORMED,
			want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "epoch 0", lease: func(l *Lease) { l.Epoch = 0 }, code: pb.Code_CODE_MALFORMED,
			want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
		{name: "no ID", lease: func(l *Lease) { l.ID = "" }, code: pb.Code_CODE_MALFORMED,
			want: MarketState{Reserved: res, Reservations: 1, LoadPermille: 250}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mktMarket(t)
			o := mktQuote(t, m, mktT0, mktRequest("n1"))
			if tt.prepare != nil {
				tt.prepare(m)
			}
			l := mktLease(o, "L1", 1)
			if tt.lease != nil {
				tt.lease(&l)
			}
			mktWantCode(t, m.Commit(mktT0.Add(tt.at), l), tt.code, tt.msgs...)
			want := tt.want
			want.Capacity = mktConfig().Capacity
			want.Free = want.Capacity.Sub(want.Committed).Sub(want.Reserved)
			if diff := cmp.Diff(want, m.State()); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMarketCommitEpochs walks one lease ID through idempotent commits, a
// stale epoch, a conflicting one and a reschedule.
func TestMarketCommitEpochs(t *testing.T) {
	m := mktMarket(t)
	o1 := mktQuote(t, m, mktT0, mktRequest("n1"))
	l2 := mktLease(o1, "L", 2)
	if err := m.Commit(mktT0.Add(time.Second), l2); err != nil {
		t.Fatal(err)
	}
	st := m.State()
	// The same lease again, before and long after the offer's expiry.
	for _, at := range []time.Duration{time.Second, 2 * time.Second, time.Hour} {
		if err := m.Commit(mktT0.Add(at), l2); err != nil {
			t.Fatalf("re-commit at +%s: %v", at, err)
		}
		if diff := cmp.Diff(st, m.State()); diff != "" {
			t.Fatalf("re-commit at +%s changed the state:\n%s", at, diff)
		}
	}
	now := mktT0.Add(2 * time.Minute)
	small := mktRequest("n2")
	small.Resources = Resources{CPUMillis: 250, MemoryBytes: 1 << 28}
	small.ExpiresAt = now.Add(time.Second)
	o2 := mktQuote(t, m, now, small)
	mktWantCode(t, m.Commit(now, mktLease(o2, "L", 1)), pb.Code_CODE_STALE_EPOCH, "epoch 1 is older than 2")
	mktWantCode(t, m.Commit(now, mktLease(o2, "L", 2)), pb.Code_CODE_REPLAYED)
	if st := m.State(); st.Reservations != 1 || st.Committed != o1.Resources {
		t.Fatalf("refused commits changed the ledger: %+v", st)
	}
	// The reschedule: epoch 3 replaces epoch 2 and frees what it held.
	if err := m.Commit(now, mktLease(o2, "L", 3)); err != nil {
		t.Fatal(err)
	}
	want := MarketState{
		Capacity: mktConfig().Capacity, Committed: small.Resources,
		Free: mktConfig().Capacity.Sub(small.Resources), Leases: 1, LoadPermille: 63,
	}
	if diff := cmp.Diff(want, m.State()); diff != "" {
		t.Fatalf("after the reschedule (-want +got):\n%s", diff)
	}
	// The consumed offer of epoch 2 cannot be committed again under epoch 4.
	mktWantCode(t, m.Commit(now, mktLease(o1, "L", 4)), pb.Code_CODE_UNKNOWN_OFFER)

	_, err := m.Release(now, "L", 2)
	mktWantCode(t, err, pb.Code_CODE_STALE_EPOCH)
	_, err = m.Release(now, "L", 4)
	mktWantCode(t, err, pb.Code_CODE_UNKNOWN_LEASE, "held here at epoch 3, not 4")
	if _, err := m.Release(now, "L", 3); err != nil {
		t.Fatal(err)
	}
	_, err = m.Release(now, "L", 3)
	mktWantCode(t, err, pb.Code_CODE_UNKNOWN_LEASE)
	if diff := cmp.Diff(MarketState{Capacity: mktConfig().Capacity, Free: mktConfig().Capacity}, m.State()); diff != "" {
		t.Fatalf("after release (-want +got):\n%s", diff)
	}
}

func TestMarketRelease(t *testing.T) {
	price := mktConfig().Pricing.Base
	res := mktRequest("").Resources
	half := Resources{CPUMillis: 500, MemoryBytes: 1 << 29}
	tests := []struct {
		name   string
		lease  Resources
		held   time.Duration // commit to release
		amount uint64
	}{
		{"at once", res, 0, 0},
		{"half the timeout", res, 30 * time.Second, 450_000},
		{"whole milliseconds", res, 59*time.Second + 999_999*time.Microsecond, 899_985},
		{"the whole timeout", res, time.Minute, mktRequestTotal},
		{"capped at the offer's total", res, 2 * time.Minute, mktRequestTotal},
		{"a smaller lease bills less", half, 30 * time.Second, 225_000},
		{"a clock that went back", res, -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mktMarket(t)
			o := mktQuote(t, m, mktT0, mktRequest("n1"))
			l := mktLease(o, "L1", 7)
			l.Resources = tt.lease
			start := mktT0.Add(time.Second)
			if err := m.Commit(start, l); err != nil {
				t.Fatal(err)
			}
			u, err := m.Release(start.Add(tt.held), "L1", 7)
			if err != nil {
				t.Fatal(err)
			}
			want := Usage{
				LeaseID: "L1", Epoch: 7, Resources: tt.lease, Started: start, Ended: start.Add(max(tt.held, 0)),
				Price: price, Amount: Amount{Currency: "EUR", Nanos: tt.amount},
			}
			if diff := cmp.Diff(want, u); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if st := m.State(); st.Leases != 0 || st.Committed != (Resources{}) {
				t.Errorf("release left %+v", st)
			}
		})
	}
	_, err := mktMarket(t).Release(mktT0, "nope", 1)
	mktWantCode(t, err, pb.Code_CODE_UNKNOWN_LEASE)
}

func TestMarketLazyExpiry(t *testing.T) {
	m := mktMarket(t, func(c *MarketConfig) { c.OfferTTL = 10 * time.Second })
	for i := range 4 {
		mktQuote(t, m, mktT0, mktRequest(fmt.Sprint("n", i)))
	}
	_, err := m.Quote(mktT0, mktRequest("n4"))
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU, "0m free")

	// At the offers' expiry, without a call to Expire, the capacity is back.
	later := mktT0.Add(10 * time.Second)
	req := mktRequest("n4")
	req.ExpiresAt = later.Add(time.Second)
	mktQuote(t, m, later, req)
	if st := m.State(); st.Reservations != 1 || st.Reserved != req.Resources {
		t.Errorf("after lazy expiry: %d reservations of %+v, want 1", st.Reservations, st.Reserved)
	}

	// Expire reports what it dropped, once.
	m = mktMarket(t)
	for i := range 3 {
		mktQuote(t, m, mktT0, mktRequest(fmt.Sprint("n", i)))
	}
	mktQuote(t, m, mktT0.Add(time.Second), mktRequest("n3"))
	if n := m.Expire(mktT0.Add(DefaultOfferTTL - time.Nanosecond)); n != 0 {
		t.Errorf("Expire before the expiry dropped %d", n)
	}
	if n := m.Expire(mktT0.Add(DefaultOfferTTL)); n != 3 {
		t.Errorf("Expire dropped %d, want 3", n)
	}
	if n := m.Expire(mktT0.Add(DefaultOfferTTL)); n != 0 {
		t.Errorf("Expire again dropped %d, want 0", n)
	}
	if st := m.State(); st.Reservations != 1 || st.Reserved != mktRequest("").Resources {
		t.Errorf("after Expire: %+v", st)
	}
	// Decline and Release sweep too.
	if err := m.Decline(mktT0.Add(time.Hour), "nope"); err == nil {
		t.Fatal("declined an unknown offer")
	}
	if st := m.State(); st.Reservations != 0 || st.Reserved != (Resources{}) {
		t.Errorf("after a late decline: %+v", st)
	}
}

// TestMarketPricing quotes a provider four times, each quote a quarter of its
// CPU, at a static and at a load-based price.
func TestMarketPricing(t *testing.T) {
	tests := []struct {
		name      string
		factor    uint32
		cpuPrices []uint64
		memPrices []uint64
	}{
		{"static", 0, []uint64{10_000, 10_000, 10_000, 10_000}, []uint64{5_000, 5_000, 5_000, 5_000}},
		// u = 1/4, 1/2, 3/4, 1: x1.0625, x1.25, x1.5625, x2, rounded up.
		{"load-based", 1000, []uint64{10_625, 12_500, 15_625, 20_000}, []uint64{5_313, 6_250, 7_813, 10_000}},
		{"gentle", 200, []uint64{10_125, 10_500, 11_125, 12_000}, []uint64{5_063, 5_250, 5_563, 6_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mktMarket(t, func(c *MarketConfig) { c.Pricing.LoadFactorPermille = tt.factor })
			var cpu, mem []uint64
			var last uint64
			for i := range 4 {
				o := mktQuote(t, m, mktT0, mktRequest(fmt.Sprint("n", i)))
				cpu = append(cpu, o.Price.CPUNanosPerSecond)
				mem = append(mem, o.Price.MemoryNanosPerGiBSecond)
				if o.LoadPermille != uint32(250*(i+1)) {
					t.Errorf("offer %d load %d‰, want %d", i, o.LoadPermille, 250*(i+1))
				}
				if tt.factor != 0 && o.Total.Nanos <= last {
					t.Errorf("offer %d total %d did not rise above %d", i, o.Total.Nanos, last)
				}
				want, _ := o.Price.Cost(o.Resources, time.Minute)
				if o.Total.Nanos != want {
					t.Errorf("offer %d total %d, want %d at its price", i, o.Total.Nanos, want)
				}
				last = o.Total.Nanos
			}
			if diff := cmp.Diff(tt.cpuPrices, cpu); diff != "" {
				t.Errorf("cpu prices (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.memPrices, mem); diff != "" {
				t.Errorf("memory prices (-want +got):\n%s", diff)
			}
		})
	}
	// Utilisation is rounded up to the permille, and the busier of CPU and
	// memory counts.
	m := mktMarket(t, func(c *MarketConfig) {
		c.Capacity = Resources{CPUMillis: 3000, MemoryBytes: 1 << 40, ScratchBytes: 1 << 30}
	})
	if o := mktQuote(t, m, mktT0, mktRequest("n")); o.LoadPermille != 334 {
		t.Errorf("1 of 3 vCPUs: load %d‰, want 334", o.LoadPermille)
	}
	m = mktMarket(t, func(c *MarketConfig) { c.Capacity.MemoryBytes = 2 << 30 })
	if o := mktQuote(t, m, mktT0, mktRequest("n")); o.LoadPermille != 500 {
		t.Errorf("1 of 2 GiB: load %d‰, want 500", o.LoadPermille)
	}
}

// TestPriceAtRounding checks PriceAt against the formula in exact rational
// arithmetic: never below it, less than a nano-unit above, and never falling as
// the load rises.
func TestPriceAtRounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		p := PricePolicy{
			Base:               Price{Currency: "EUR", CPUNanosPerSecond: rng.Uint64N(1 << 40), MemoryNanosPerGiBSecond: rng.Uint64N(1000)},
			LoadFactorPermille: uint32(rng.IntN(20_000)),
		}
		load := uint32(rng.IntN(1100))
		got := p.PriceAt(load)
		u := big.NewRat(int64(min(load, 1000)), 1000)
		mult := new(big.Rat).Mul(u, u)
		mult.Mul(mult, big.NewRat(int64(p.LoadFactorPermille), 1000))
		mult.Add(mult, big.NewRat(1, 1))
		for _, c := range []struct{ base, got uint64 }{
			{p.Base.CPUNanosPerSecond, got.CPUNanosPerSecond},
			{p.Base.MemoryNanosPerGiBSecond, got.MemoryNanosPerGiBSecond},
		} {
			exact := new(big.Rat).Mul(new(big.Rat).SetInt(new(big.Int).SetUint64(c.base)), mult)
			g := new(big.Rat).SetInt(new(big.Int).SetUint64(c.got))
			if g.Cmp(exact) < 0 || new(big.Rat).Sub(g, exact).Cmp(big.NewRat(1, 1)) >= 0 {
				t.Fatalf("%+v at %d‰: got %d, exact %s", p, load, c.got, exact.FloatString(3))
			}
		}
		if load > 0 && p.PriceAt(load-1).CPUNanosPerSecond > got.CPUNanosPerSecond {
			t.Fatalf("%+v: price fell from %d‰ to %d‰", p, load-1, load)
		}
	}
}

func TestMarketDeterministic(t *testing.T) {
	run := func(seed byte) []Offer {
		m := mktMarket(t, func(c *MarketConfig) { c.Seed[0] = seed })
		var out []Offer
		for i := range 3 {
			out = append(out, mktQuote(t, m, mktT0.Add(time.Duration(i)*time.Second), mktRequest(fmt.Sprint("n", i))))
		}
		return out
	}
	a, b := run(1), run(1)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, same calls, other offers:\n%s", diff)
	}
	if c := run(2); c[0].Nonce == a[0].Nonce {
		t.Errorf("another seed drew the same nonce")
	}
	if a[0].Nonce == a[1].Nonce {
		t.Errorf("two offers share a nonce")
	}
}

func TestMarketConfigYAML(t *testing.T) {
	doc := `
provider: prov-1
capacity: {cpumillis: 4000, memorybytes: 8589934592}
labels:
  - {key: jurisdiction, value: eu}
  - {key: region, value: fr}
executors: [wasm]
pricing:
  base: {currency: EUR, cpunanospersecond: 10000, memorynanospergibsecond: 5000}
  load_factor_permille: 500
offer_ttl: 30s
max_reservations: 16
`
	var cfg MarketConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	want := MarketConfig{
		Provider:        "prov-1",
		Capacity:        Resources{CPUMillis: 4000, MemoryBytes: 8 << 30},
		Labels:          NewLabels(Label{"region", "fr"}, Label{"jurisdiction", "eu"}),
		Executors:       []string{"wasm"},
		Pricing:         PricePolicy{Base: Price{Currency: "EUR", CPUNanosPerSecond: 10_000, MemoryNanosPerGiBSecond: 5_000}, LoadFactorPermille: 500},
		OfferTTL:        30 * time.Second,
		MaxReservations: 16,
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Fatalf("config (-want +got):\n%s", diff)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The property test: random sequences of calls against a brute-force reference
// ledger, checking every answer and, after every call, that the market never
// over-commits and that its State is the reference's.

// mktRefHold is a reservation in the reference ledger.
type mktRefHold struct {
	offer   Offer
	timeout time.Duration
	origin  string
}

// mktRefLease is a lease in the reference ledger.
type mktRefLease struct {
	offerNonce string
	epoch      uint64
	res        Resources
	price      Price
	total      uint64
	started    time.Time
}

// mktRef is the reference: the obvious ledger, with maps and totals summed
// afresh, that the market must agree with.
type mktRef struct {
	cfg      MarketConfig // defaults filled in
	holds    []mktRefHold
	leases   map[string]mktRefLease
	draining bool
	// expired and leased per requester, fading by half every
	// StandingHalfLife since at, once one of its offers expired.
	standing map[string]*mktRefStanding
}

type mktRefStanding struct {
	expired, leased float64
	at              time.Time
}

func (s *mktRefStanding) fade(now time.Time) {
	if now.After(s.at) {
		f := math.Exp2(-now.Sub(s.at).Seconds() / StandingHalfLife.Seconds())
		s.expired, s.leased, s.at = s.expired*f, s.leased*f, now
	}
}

func (r *mktRef) sweep(now time.Time) int {
	var live []mktRefHold
	for _, h := range r.holds {
		if now.Before(h.offer.ExpiresAt) {
			live = append(live, h)
		} else if r.cfg.StandingExpired >= 0 {
			s := r.standing[h.offer.Requester]
			if s == nil {
				s = &mktRefStanding{at: now}
				r.standing[h.offer.Requester] = s
			}
			s.fade(now)
			s.expired++
		}
	}
	n := len(r.holds) - len(live)
	r.holds = live
	return n
}

func (r *mktRef) hold(nonce string) int {
	for i, h := range r.holds {
		if h.offer.Nonce == nonce {
			return i
		}
	}
	return -1
}

func (r *mktRef) state() MarketState {
	var st MarketState
	st.Capacity = r.cfg.Capacity
	for _, h := range r.holds {
		st.Reserved = st.Reserved.Add(h.offer.Resources)
	}
	for _, l := range r.leases {
		st.Committed = st.Committed.Add(l.res)
	}
	c := r.cfg.Capacity
	st.Free = Resources{
		CPUMillis:    c.CPUMillis - st.Committed.CPUMillis - st.Reserved.CPUMillis,
		MemoryBytes:  c.MemoryBytes - st.Committed.MemoryBytes - st.Reserved.MemoryBytes,
		ScratchBytes: c.ScratchBytes - st.Committed.ScratchBytes - st.Reserved.ScratchBytes,
	}
	st.Leases, st.Reservations = len(r.leases), len(r.holds)
	st.LoadPermille = mktRefLoad(st.Committed.Add(st.Reserved), c)
	st.Draining = r.draining
	return st
}

func mktRefLoad(used, capacity Resources) uint32 {
	ceil := func(u, c uint64) uint64 {
		return min(1000, (u*1000+c-1)/c)
	}
	return uint32(max(ceil(used.CPUMillis, capacity.CPUMillis), ceil(used.MemoryBytes, capacity.MemoryBytes)))
}

func mktRefPrice(p PricePolicy, load uint32) Price {
	scale := func(x uint64) uint64 {
		n := new(big.Int).SetUint64(uint64(p.LoadFactorPermille))
		n.Mul(n, big.NewInt(int64(load)*int64(load)))
		n.Add(n, big.NewInt(1e9))
		n.Mul(n, new(big.Int).SetUint64(x))
		n.Add(n, big.NewInt(1e9-1))
		return n.Div(n, big.NewInt(1e9)).Uint64()
	}
	return Price{p.Base.Currency, scale(p.Base.CPUNanosPerSecond), scale(p.Base.MemoryNanosPerGiBSecond), scale(p.Base.EgressNanosPerGiB)}
}

// mktRefCost is SPEC 5.5's cost, in big integers.
func mktRefCost(p Price, r Resources, d time.Duration) uint64 {
	ms := big.NewInt(d.Milliseconds())
	u := func(x uint64) *big.Int { return new(big.Int).SetUint64(x) }
	cpu := new(big.Int).Mul(u(r.CPUMillis), u(p.CPUNanosPerSecond))
	cpu.Mul(cpu, ms).Lsh(cpu, 30)
	mem := new(big.Int).Mul(u(r.MemoryBytes), u(p.MemoryNanosPerGiBSecond))
	mem.Mul(mem, ms).Mul(mem, big.NewInt(1000))
	den := big.NewInt(1_000_000 << 30)
	sum := cpu.Add(cpu, mem)
	sum.Add(sum, new(big.Int).Sub(den, big.NewInt(1)))
	return sum.Div(sum, den).Uint64()
}

// quote predicts Quote: the offer wanted (its nonce is the market's to draw)
// or the refusal code.
func (r *mktRef) quote(now time.Time, req Request) (Offer, pb.Code) {
	r.sweep(now)
	if !now.Before(req.ExpiresAt) {
		return Offer{}, pb.Code_CODE_EXPIRED
	}
	for _, h := range r.holds {
		if h.offer.Requester == req.Requester && h.offer.RequestNonce == req.Nonce {
			if h.offer.JobCID == req.JobCID && h.offer.Resources == req.Resources && h.timeout == req.Timeout {
				return h.offer, 0
			}
			return Offer{}, pb.Code_CODE_REPLAYED
		}
	}
	if req.Executor != "wasm" {
		return Offer{}, pb.Code_CODE_EXECUTOR_UNSUPPORTED
	}
	for _, c := range req.Constraints {
		if c.Values[0] != "fr" {
			return Offer{}, pb.Code_CODE_CONSTRAINT_MISMATCH
		}
	}
	if c := req.MaxPrice.Currency; c != "" && c != "EUR" {
		return Offer{}, pb.Code_CODE_CURRENCY_MISMATCH
	}
	if r.draining {
		return Offer{}, pb.Code_CODE_DRAINING
	}
	if s := r.standing[req.Requester]; s != nil {
		s.fade(now)
		if r.cfg.StandingExpired >= 0 && s.expired > float64(r.cfg.StandingExpired)+StandingPerLease*s.leased {
			return Offer{}, pb.Code_CODE_RATE_LIMITED
		}
	}
	count := func(mine func(mktRefHold) bool) (n int, held Resources) {
		held = req.Resources
		for _, h := range r.holds {
			if mine(h) {
				n++
				held = held.Add(h.offer.Resources)
			}
		}
		return n, held
	}
	mine := func(h mktRefHold) bool { return h.offer.Requester == req.Requester }
	ours := func(h mktRefHold) bool { return req.Origin != "" && h.origin == req.Origin }
	if n, _ := count(mine); n >= r.cfg.MaxOffersPerPeer {
		return Offer{}, pb.Code_CODE_RATE_LIMITED
	}
	if n, _ := count(ours); req.Origin != "" && n >= r.cfg.MaxOffersPerPeer {
		return Offer{}, pb.Code_CODE_RATE_LIMITED
	}
	st := r.state()
	switch a := req.Resources; {
	case a.CPUMillis > st.Free.CPUMillis:
		return Offer{}, pb.Code_CODE_INSUFFICIENT_CPU
	case a.MemoryBytes > st.Free.MemoryBytes:
		return Offer{}, pb.Code_CODE_INSUFFICIENT_MEMORY
	case a.ScratchBytes > st.Free.ScratchBytes:
		return Offer{}, pb.Code_CODE_INSUFFICIENT_SCRATCH
	}
	over := func(n int, held Resources) bool {
		c, p := r.cfg.Capacity, uint64(r.cfg.MaxHeldPermille)
		return n > 0 && p < 1000 && (held.CPUMillis*1000 > c.CPUMillis*p || held.MemoryBytes*1000 > c.MemoryBytes*p || held.ScratchBytes*1000 > c.ScratchBytes*p)
	}
	if over(count(mine)) || req.Origin != "" && over(count(ours)) {
		return Offer{}, pb.Code_CODE_RATE_LIMITED
	}
	load := mktRefLoad(st.Committed.Add(st.Reserved).Add(req.Resources), r.cfg.Capacity)
	price := mktRefPrice(r.cfg.Pricing, load)
	total := mktRefCost(price, req.Resources, req.Timeout)
	if req.MaxPrice.Currency != "" && total > req.MaxPrice.Nanos {
		return Offer{}, pb.Code_CODE_PRICE_ABOVE_CEILING
	}
	if len(r.holds) >= r.cfg.MaxReservations {
		return Offer{}, pb.Code_CODE_RATE_LIMITED
	}
	return Offer{
		Provider: r.cfg.Provider, Requester: req.Requester, RequestNonce: req.Nonce, JobCID: req.JobCID,
		Resources: req.Resources, Price: price, Total: Amount{"EUR", total},
		ExpiresAt: minTime(now.Add(r.cfg.OfferTTL), req.ExpiresAt.Add(r.cfg.OfferGrace)), LoadPermille: load, Labels: r.cfg.Labels,
		Capacity: r.cfg.Capacity,
	}, 0
}

// commit predicts Commit and applies it to the reference.
func (r *mktRef) commit(now time.Time, l Lease) pb.Code {
	expired := false
	if i := r.hold(l.OfferNonce); i >= 0 && !now.Before(r.holds[i].offer.ExpiresAt) {
		expired = true
	}
	r.sweep(now)
	if old, ok := r.leases[l.ID]; ok {
		switch {
		case old.epoch == l.Epoch && old.offerNonce == l.OfferNonce:
			return 0
		case l.Epoch < old.epoch:
			return pb.Code_CODE_STALE_EPOCH
		case l.Epoch == old.epoch:
			return pb.Code_CODE_REPLAYED
		}
	}
	if expired {
		return pb.Code_CODE_EXPIRED
	}
	i := r.hold(l.OfferNonce)
	if i < 0 || r.holds[i].offer.Requester != l.Requester {
		return pb.Code_CODE_UNKNOWN_OFFER
	}
	h := r.holds[i]
	if l.Provider != r.cfg.Provider || l.JobCID != h.offer.JobCID || !l.Resources.Fits(h.offer.Resources) || l.Timeout > h.timeout {
		return pb.Code_CODE_MALFORMED
	}
	r.holds = append(r.holds[:i:i], r.holds[i+1:]...)
	r.leases[l.ID] = mktRefLease{l.OfferNonce, l.Epoch, l.Resources, h.offer.Price, h.offer.Total.Nanos, now}
	if s := r.standing[l.Requester]; s != nil {
		s.fade(now)
		s.leased++
	}
	return 0
}

// release predicts Release and applies it to the reference.
func (r *mktRef) release(now time.Time, id string, epoch uint64) (Usage, pb.Code) {
	r.sweep(now)
	l, ok := r.leases[id]
	switch {
	case !ok || epoch > l.epoch:
		return Usage{}, pb.Code_CODE_UNKNOWN_LEASE
	case epoch < l.epoch:
		return Usage{}, pb.Code_CODE_STALE_EPOCH
	}
	delete(r.leases, id)
	ended := now
	if ended.Before(l.started) {
		ended = l.started
	}
	amount := min(mktRefCost(l.price, l.res, ended.Sub(l.started)), l.total)
	return Usage{id, epoch, l.res, l.started, ended, l.price, Amount{"EUR", amount}}, 0
}

func (r *mktRef) decline(now time.Time, nonce string) pb.Code {
	r.sweep(now)
	i := r.hold(nonce)
	if i < 0 {
		return pb.Code_CODE_UNKNOWN_OFFER
	}
	r.holds = append(r.holds[:i:i], r.holds[i+1:]...)
	return 0
}

func TestMarketProperty(t *testing.T) {
	ops := 3000
	if testing.Short() {
		ops = 500
	}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			for k, n := range mktRunProperty(t, seed, ops) {
				seen[k] += n
			}
		})
	}
	if testing.Short() || t.Failed() {
		return
	}
	// The sequences must have exercised every answer, or they prove little.
	for _, want := range []string{
		"quote CODE_UNSPECIFIED", "quote CODE_INSUFFICIENT_CPU", "quote CODE_INSUFFICIENT_MEMORY",
		"quote CODE_INSUFFICIENT_SCRATCH", "quote CODE_REPLAYED", "quote CODE_EXPIRED",
		"quote CODE_RATE_LIMITED", "quote CODE_DRAINING", "quote CODE_PRICE_ABOVE_CEILING",
		"quote CODE_EXECUTOR_UNSUPPORTED", "quote CODE_CONSTRAINT_MISMATCH", "quote CODE_CURRENCY_MISMATCH",
		"commit CODE_UNSPECIFIED", "commit CODE_STALE_EPOCH", "commit CODE_UNKNOWN_OFFER", "commit CODE_EXPIRED",
		"commit CODE_REPLAYED", "commit CODE_MALFORMED",
		"release CODE_UNSPECIFIED", "release CODE_UNKNOWN_LEASE", "release CODE_STALE_EPOCH",
		"decline CODE_UNSPECIFIED", "decline CODE_UNKNOWN_OFFER",
	} {
		if seen[want] == 0 {
			t.Errorf("no seed saw %s: %v", want, seen)
		}
	}
}

// mktMade is an offer the market made, and what the reference knows of it.
type mktMade struct {
	offer   Offer
	timeout time.Duration
}

// mktRunProperty runs ops random calls and returns how often each answer came.
func mktRunProperty(t *testing.T, seed uint64, ops int) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	cfg := mktConfig()
	cfg.Capacity = Resources{CPUMillis: 8000, MemoryBytes: 16 << 30, ScratchBytes: 8 << 30}
	cfg.Pricing.LoadFactorPermille = []uint32{0, 500, 1000, 3000}[rng.IntN(4)]
	cfg.OfferTTL = time.Duration(1+rng.IntN(10)) * time.Second
	cfg.MaxReservations = 2 + rng.IntN(6)
	cfg.OfferGrace = time.Duration(rng.IntN(3000)) * time.Millisecond
	cfg.MaxOffersPerPeer = rng.IntN(5)
	cfg.MaxHeldPermille = []int{0, 300, 700, 1000}[rng.IntN(4)]
	cfg.StandingExpired = []int{-1, 0, 2, 6}[rng.IntN(4)]
	cfg.Seed[0] = byte(seed)
	m, err := NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref := &mktRef{cfg: cfg.withDefaults(), leases: map[string]mktRefLease{}, standing: map[string]*mktRefStanding{}}

	now := mktT0
	var (
		trace     []string
		made      []mktMade
		requests  []Request
		committed []Lease
		counts    = map[string]int{}
	)
	fail := func(i int, format string, args ...any) {
		t.Helper()
		start := max(0, len(trace)-12)
		t.Fatalf("seed %d, op %d: %s\nlast ops:\n  %s", seed, i, fmt.Sprintf(format, args...), strings.Join(trace[start:], "\n  "))
	}
	check := func(i int, what string, err error, want pb.Code) {
		t.Helper()
		if got := protocol.CodeOf(err); got != want {
			fail(i, "%s: got %v (%s), want %s", what, err, got, want)
		}
		counts[fmt.Sprintf("%s %s", what, want)]++
	}
	for i := range ops {
		if rng.IntN(30) == 0 {
			now = now.Add(-time.Duration(rng.IntN(2000)) * time.Millisecond) // a clock may step back
		} else {
			now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		}
		if ref.draining && rng.IntN(10) == 0 {
			trace = append(trace, fmt.Sprintf("%d: draining false", i))
			m.SetDraining(false)
			ref.draining = false
		}
		switch op := rng.IntN(100); {
		case op < 40: // quote
			var req Request
			if len(requests) > 0 && rng.IntN(4) == 0 {
				req = requests[rng.IntN(len(requests))] // a repeat
			} else {
				req = Request{
					Nonce:     fmt.Sprint("n", rng.IntN(40)),
					Requester: fmt.Sprint("req-", rng.IntN(3)),
					JobCID:    fmt.Sprint("job-", rng.IntN(3)),
					Executor:  "wasm",
					Resources: Resources{
						CPUMillis:    uint64(100 + rng.IntN(4000)),
						MemoryBytes:  uint64(64+rng.IntN(4096)) << 20,
						ScratchBytes: uint64(rng.IntN(3072)) << 20,
					},
					Timeout: time.Duration(1+rng.IntN(120)) * time.Second,
					Origin:  []string{"", "", "o1", "o2"}[rng.IntN(4)],
				}
				if rng.IntN(8) == 0 {
					req.Resources = Resources{CPUMillis: 10, MemoryBytes: 1 << 20}
				}
				switch rng.IntN(40) {
				case 0:
					req.Executor = "oci"
				case 1, 2:
					req.Constraints = []Selector{{Key: "region", Op: pb.Operator_OPERATOR_IN, Values: []string{[]string{"de", "fr"}[rng.IntN(2)]}}}
				}
				switch rng.IntN(20) {
				case 0:
					req.MaxPrice = Amount{"USD", 1e9}
				case 1, 2, 3, 4, 5:
					req.MaxPrice = Amount{"EUR", uint64(rng.IntN(3_000_000))}
				}
				requests = append(requests, req)
			}
			req.ExpiresAt = now.Add(time.Duration(rng.IntN(6000)-500) * time.Millisecond)
			trace = append(trace, fmt.Sprintf("%d: quote at %s %+v", i, now.Format("15:04:05.000"), req))
			want, code := ref.quote(now, req)
			got, err := m.Quote(now, req)
			check(i, "quote", err, code)
			if code != 0 {
				break
			}
			if want.Nonce == "" { // a new offer, not a repeat
				want.Nonce = got.Nonce
				ref.holds = append(ref.holds, mktRefHold{got, req.Timeout, req.Origin})
				made = append(made, mktMade{got, req.Timeout})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				fail(i, "offer (-want +got):\n%s", diff)
			}
		case op < 50: // decline
			nonce := "bogus"
			switch {
			case len(ref.holds) > 0 && rng.IntN(3) != 0:
				nonce = ref.holds[rng.IntN(len(ref.holds))].offer.Nonce
			case len(made) > 0 && rng.IntN(8) != 0:
				nonce = made[rng.IntN(len(made))].offer.Nonce
			}
			trace = append(trace, fmt.Sprintf("%d: decline at %s %x", i, now.Format("15:04:05.000"), nonce))
			check(i, "decline", m.Decline(now, nonce), ref.decline(now, nonce))
		case op < 78: // commit
			var l Lease
			if len(committed) > 0 && rng.IntN(6) == 0 {
				l = committed[rng.IntN(len(committed))] // idempotent, or fenced
			} else if len(made) > 0 {
				// Mostly live offers, some dead ones.
				mo := made[rng.IntN(len(made))]
				if len(ref.holds) > 0 && rng.IntN(4) != 0 {
					h := ref.holds[rng.IntN(len(ref.holds))]
					mo = mktMade{h.offer, h.timeout}
				}
				l = mktLease(mo.offer, fmt.Sprint("L", rng.IntN(6)), uint64(1+rng.IntN(4)))
				l.Timeout = mo.timeout
				switch rng.IntN(20) {
				case 0:
					l.Requester = "req-X"
				case 1:
					l.JobCID = "job-X"
				case 2:
					l.Resources.CPUMillis++
				case 3:
					l.Timeout += time.Millisecond
				case 4, 5, 6, 7:
					l.Resources.CPUMillis = rng.Uint64N(l.Resources.CPUMillis + 1)
					l.Resources.MemoryBytes = rng.Uint64N(l.Resources.MemoryBytes + 1)
					l.Timeout = time.Duration(rng.Int64N(int64(l.Timeout) + 1))
				}
			} else {
				continue
			}
			trace = append(trace, fmt.Sprintf("%d: commit at %s %s epoch %d offer %x", i, now.Format("15:04:05.000"), l.ID, l.Epoch, l.OfferNonce))
			code := ref.commit(now, l)
			check(i, "commit", m.Commit(now, l), code)
			if code == 0 {
				committed = append(committed, l)
			}
		case op < 93: // release
			id := fmt.Sprint("L", rng.IntN(6))
			epoch := uint64(1 + rng.IntN(4))
			if l, ok := ref.leases[id]; ok && rng.IntN(3) != 0 {
				epoch = l.epoch
			} else if ok && rng.IntN(3) == 0 {
				id = "bogus"
			}
			trace = append(trace, fmt.Sprintf("%d: release at %s %s epoch %d", i, now.Format("15:04:05.000"), id, epoch))
			want, code := ref.release(now, id, epoch)
			got, err := m.Release(now, id, epoch)
			check(i, "release", err, code)
			if diff := cmp.Diff(want, got); diff != "" {
				fail(i, "usage (-want +got):\n%s", diff)
			}
		case op < 98: // expire
			trace = append(trace, fmt.Sprintf("%d: expire at %s", i, now.Format("15:04:05.000")))
			if got, want := m.Expire(now), ref.sweep(now); got != want {
				fail(i, "Expire dropped %d, want %d", got, want)
			}
		default:
			trace = append(trace, fmt.Sprintf("%d: draining true", i))
			m.SetDraining(true)
			ref.draining = true
		}
		st := m.State()
		if !st.Committed.Add(st.Reserved).Fits(st.Capacity) {
			fail(i, "over-committed: %+v", st)
		}
		if diff := cmp.Diff(ref.state(), st); diff != "" {
			fail(i, "state (-reference +market):\n%s", diff)
		}
	}
	return counts
}

// mktMemoryPerMarket builds n markets, each with the given number of leases,
// and returns the heap bytes each one holds. The config's slices are shared,
// as a simulator shares them.
func mktMemoryPerMarket(tb testing.TB, n, leases int) float64 {
	cfg := mktConfig()
	cfg.Capacity = Resources{CPUMillis: 64_000, MemoryBytes: 256 << 30, ScratchBytes: 1 << 40}
	ids := []string{"L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7"}
	markets := make([]*Market, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range markets {
		cfg.Seed[0], cfg.Seed[1] = byte(i), byte(i>>8)
		m, err := NewMarket(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		for k := range leases {
			o, err := m.Quote(mktT0, mktRequest(ids[k]))
			if err != nil {
				tb.Fatal(err)
			}
			if err := m.Commit(mktT0, mktLease(o, ids[k], 1)); err != nil {
				tb.Fatal(err)
			}
		}
		markets[i] = m
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(markets)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestMarketMemory holds the market to the "few KiB" a million-provider
// simulation needs.
func TestMarketMemory(t *testing.T) {
	const limit = 4 << 10
	for _, leases := range []int{0, 4} {
		b := mktMemoryPerMarket(t, 10_000, leases)
		t.Logf("%d leases: %.0f bytes per market", leases, b)
		if b > limit {
			t.Errorf("a market with %d leases holds %.0f bytes, more than %d", leases, b, limit)
		}
	}
}

// BenchmarkMarketMemory reports the heap bytes of one market, idle and with
// four leases, over 10,000 markets.
func BenchmarkMarketMemory(b *testing.B) {
	for _, leases := range []int{0, 4} {
		b.Run(fmt.Sprint("leases=", leases), func(b *testing.B) {
			var bytes float64
			for b.Loop() {
				bytes = mktMemoryPerMarket(b, 10_000, leases)
			}
			b.ReportMetric(bytes, "B/market")
		})
	}
}

// BenchmarkMarketQuoteCommit is one placement as the provider sees it: quote,
// commit, release, in a steady state, on an idle provider and on a busy one
// (64 leases held, 32 offers outstanding).
func BenchmarkMarketQuoteCommit(b *testing.B) {
	for _, busy := range []bool{false, true} {
		name := "idle"
		if busy {
			name = "busy"
		}
		b.Run(name, func(b *testing.B) {
			m := mktMarket(b, func(c *MarketConfig) {
				c.Capacity = Resources{CPUMillis: 1 << 20, MemoryBytes: 1 << 50, ScratchBytes: 1 << 50}
				c.Pricing.LoadFactorPermille = 1000
				c.OfferTTL = protocol.MaxOfferTTL
			})
			const ring = 1024
			nonces, ids := make([]string, ring), make([]string, ring)
			for i := range ring {
				nonces[i], ids[i] = fmt.Sprint("nonce-", i), fmt.Sprint("lease-", i)
			}
			now := mktT0
			if busy {
				for i := range 96 {
					req := mktRequest(fmt.Sprint("busy-", i))
					req.ExpiresAt = now.Add(time.Hour)
					o := mktQuote(b, m, now, req)
					if i < 64 {
						if err := m.Commit(now, mktLease(o, fmt.Sprint("busy-", i), 1)); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			req := mktRequest("")
			req.ExpiresAt = now.Add(time.Hour)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req.Nonce = nonces[i%ring]
				o, err := m.Quote(now, req)
				if err != nil {
					b.Fatal(err)
				}
				l := mktLease(o, ids[i%ring], 1)
				if err := m.Commit(now, l); err != nil {
					b.Fatal(err)
				}
				if _, err := m.Release(now, l.ID, 1); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func TestMarketReprice(t *testing.T) {
	m, err := NewMarket(MarketConfig{Provider: "p", Capacity: Resources{CPUMillis: 1000, MemoryBytes: 1 << 30}, Executors: []string{"wasm"},
		Pricing: PricePolicy{Base: Price{Currency: "EUR", CPUNanosPerSecond: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	req := Request{Nonce: "n1", Requester: "r", JobCID: "j", Resources: Resources{CPUMillis: 1000}, Timeout: time.Second, ExpiresAt: t0.Add(time.Second)}
	o1, err := m.Quote(t0, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reprice(PricePolicy{Base: Price{Currency: "EUR", CPUNanosPerSecond: 20}}, NewLabels(Label{"region", "fr-par"})); err != nil {
		t.Fatal(err)
	}
	m.Decline(t0, o1.Nonce)
	req.Nonce = "n2"
	o2, err := m.Quote(t0, req)
	if err != nil || o2.Total.Nanos != 2*o1.Total.Nanos {
		t.Fatalf("after reprice: %v, %v; want twice %d", o2.Total, err, o1.Total.Nanos)
	}
	if v, _ := o2.Labels.Get("region"); v != "fr-par" {
		t.Fatalf("labels not changed: %v", o2.Labels)
	}
	if err := m.Reprice(PricePolicy{Base: Price{Currency: "euro"}}, nil); err == nil {
		t.Fatal("an invalid price policy was taken")
	}
}

// TestMarketLimits: what one peer's offers may hold. With the defaults, a
// requester asking as fast as it can holds at most half of the capacity,
// and is told when to ask again; another requester is still served; one
// origin's requesters share the cap; the count is bounded too; an offer
// lives until its request's expiry and the grace; a requester that leaves
// offers to expire unanswered is refused until its record fades, and one
// that signs leases is not.
func TestMarketLimits(t *testing.T) {
	defaults := func(c *MarketConfig) { c.OfferGrace, c.MaxHeldPermille = 0, 0 }
	req := func(nonce, requester, origin string) Request {
		r := mktRequest(nonce)
		r.Requester, r.Origin = requester, origin
		return r
	}
	t.Run("share", func(t *testing.T) {
		m := mktMarket(t, defaults)
		o := mktQuote(t, m, mktT0, req("a1", "A", ""))
		if want := mktT0.Add(5*time.Second + DefaultOfferGrace); !o.ExpiresAt.Equal(want) {
			t.Errorf("offer expires at %s, want the request's expiry and the grace, %s", o.ExpiresAt, want)
		}
		mktQuote(t, m, mktT0, req("a2", "A", "")) // 2 of 4 vCPU: half
		_, err := m.Quote(mktT0.Add(time.Second), req("a3", "A", ""))
		mktWantCode(t, err, pb.Code_CODE_RATE_LIMITED, "more than 500‰")
		if got := protocol.RetryAfterOf(err); got != 6*time.Second {
			t.Errorf("retry after %s, want 6s, when A's first offer expires", got)
		}
		mktQuote(t, m, mktT0.Add(time.Second), req("b1", "B", "")) // B is served
	})
	t.Run("first offer whatever its size", func(t *testing.T) {
		m := mktMarket(t, defaults)
		big := req("a1", "A", "")
		big.Resources.CPUMillis = 3000
		mktQuote(t, m, mktT0, big)
	})
	t.Run("origin", func(t *testing.T) {
		m := mktMarket(t, defaults)
		mktQuote(t, m, mktT0, req("a1", "A", "10.1.2.0/24"))
		mktQuote(t, m, mktT0, req("b1", "B", "10.1.2.0/24"))
		_, err := m.Quote(mktT0, req("c1", "C", "10.1.2.0/24"))
		mktWantCode(t, err, pb.Code_CODE_RATE_LIMITED, "origin 10.1.2.0/24")
		mktQuote(t, m, mktT0, req("d1", "D", "10.9.9.0/24"))
	})
	t.Run("count", func(t *testing.T) {
		m := mktMarket(t, func(c *MarketConfig) { c.MaxOffersPerPeer = 2 })
		small := func(n string) Request {
			r := req(n, "A", "")
			r.Resources = Resources{CPUMillis: 10, MemoryBytes: 1 << 20}
			return r
		}
		mktQuote(t, m, mktT0, small("1"))
		mktQuote(t, m, mktT0, small("2"))
		_, err := m.Quote(mktT0, small("3"))
		mktWantCode(t, err, pb.Code_CODE_RATE_LIMITED, "2 live offers")
	})
	t.Run("standing", func(t *testing.T) {
		m := mktMarket(t, defaults)
		now := mktT0
		at := func(r Request) Request {
			r.ExpiresAt = now.Add(500 * time.Millisecond)
			r.Resources = Resources{CPUMillis: 10, MemoryBytes: 1 << 20}
			return r
		}
		// A asks, and never answers, until it is refused.
		var err error
		n := 0
		for ; n < 2*DefaultStandingExpired && err == nil; n++ {
			_, err = m.Quote(now, at(req(fmt.Sprint("a", n), "A", "")))
			now = now.Add(time.Second)
		}
		mktWantCode(t, err, pb.Code_CODE_RATE_LIMITED, "expired unanswered")
		if n <= DefaultStandingExpired {
			t.Fatalf("A refused after %d offers, want more than %d expired first", n, DefaultStandingExpired)
		}
		// B leases one offer in StandingPerLease+1: it stays in good standing.
		for i := range 3 * (DefaultStandingExpired + 1) {
			o, err := m.Quote(now, at(req(fmt.Sprint("b", i), "B", "")))
			if err != nil {
				t.Fatalf("B, offer %d: %v", i, err)
			}
			if i%(StandingPerLease+1) == 0 {
				l := mktLease(o, fmt.Sprint("L", i), 1)
				if err := m.Commit(now, l); err != nil {
					t.Fatal(err)
				}
				if _, err := m.Release(now, l.ID, 1); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(time.Second)
		}
		// A's record fades: after two half-lives, it is served again.
		now = now.Add(2 * StandingHalfLife)
		mktQuote(t, m, now, at(req("y", "A", "")))
	})
}
