package record_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// wholesale returns the vectors' site key and ID, retailer ID, sealed
// tariff, tariff and grant.
func wholesale(t *testing.T) (site, retailer peer.ID, tariffEnv []byte, tariff *pb.WholesaleTariff, grant *pb.SliceGrant) {
	siteKey, site := vector.Key(t, vector.ProviderSeed)
	_, retailer = vector.Key(t, vector.RequesterSeed)
	tariff = vector.Get(t, "wholesale_tariff").(*pb.WholesaleTariff)
	tariffEnv = seal(t, siteKey, tariff)
	grant = vector.Get(t, "slice_grant").(*pb.SliceGrant)
	return site, retailer, tariffEnv, tariff, grant
}

// TestGrantAbuse: every abuse of a grant SPEC 6.7 names is refused with
// its code, and the vectors' grant passes every check.
func TestGrantAbuse(t *testing.T) {
	siteKey, _ := vector.Key(t, vector.ProviderSeed)
	otherKey, _ := vector.Key(t, vector.RequesterSeed)
	site, retailer, tariffEnv, tariff, grant := wholesale(t)
	started := protocol.FromUnixMs(grant.StartAtMs).Add(time.Hour)
	env := seal(t, siteKey, grant)

	g, err := record.OpenGrant(env, started)
	if err != nil {
		t.Fatal(err)
	}
	if err := record.CheckGrantPresented(g, site, retailer, started); err != nil {
		t.Fatalf("the vectors' grant presented by its grantee: %v", err)
	}
	if err := record.CheckGrantTerms(g, tariffEnv, tariff); err != nil {
		t.Fatalf("the vectors' grant at its tariff: %v", err)
	}

	forged := env[: len(env)-1 : len(env)-1]
	forged = append(forged, env[len(env)-1]^1)
	other := vector.Get(t, "slice_grant").(*pb.SliceGrant)
	other.Price.CpuNanosPerSecond++
	tests := []struct {
		name string
		err  error
		want protocol.Code
	}{
		{"forged signature", open(record.OpenGrant(forged, started)), protocol.CodeBadSignature},
		{"signed by the grantee", open(record.OpenGrant(seal(t, otherKey, grant), started)), protocol.CodeWrongSigner},
		{"expired", open(record.OpenGrant(env, protocol.FromUnixMs(grant.EndAtMs))), protocol.CodeExpired},
		{"not started", record.CheckGrantPresented(g, site, retailer, protocol.FromUnixMs(grant.StartAtMs-1)), protocol.CodeSliceNotStarted},
		{"presented to another site", record.CheckGrantPresented(g, retailer, retailer, started), protocol.CodeGrantWrongSite},
		{"presented by another peer", record.CheckGrantPresented(g, site, site, started), protocol.CodeGrantWrongGrantee},
		{"terms unlike the tariff's", record.CheckGrantTerms(other, tariffEnv, tariff), protocol.CodeTariffMismatch},
		{"another tariff", record.CheckGrantTerms(g, append([]byte{0}, tariffEnv...), tariff), protocol.CodeTariffMismatch},
	}
	for _, tt := range tests {
		if got := protocol.CodeOf(tt.err); got != tt.want {
			t.Errorf("%s: got %v (%v), want %v", tt.name, got, tt.err, tt.want)
		}
	}
}

// open keeps the error of an Open.
func open[T any](_ T, err error) error { return err }

func TestSliceRequestChecks(t *testing.T) {
	site, _, tariffEnv, tariff, _ := wholesale(t)
	now := vector.Time
	base := vector.Get(t, "slice_request").(*pb.WholesaleRequest).GetSlice()
	start, err := record.CheckSliceRequest(base, site, tariffEnv, tariff, now)
	if err != nil || start != base.StartAtMs {
		t.Fatalf("the vectors' request: start %d, %v", start, err)
	}
	tests := []struct {
		name   string
		change func(r *pb.SliceRequest)
		want   protocol.Code
	}{
		{"short nonce", func(r *pb.SliceRequest) { r.Nonce = r.Nonce[:8] }, protocol.CodeMalformed},
		{"another site", func(r *pb.SliceRequest) { r.Site = []byte("x") }, protocol.CodeMalformed},
		{"ends before it starts", func(r *pb.SliceRequest) { r.EndAtMs = r.StartAtMs }, protocol.CodeMalformed},
		{"ended", func(r *pb.SliceRequest) { r.StartAtMs, r.EndAtMs = 0, protocol.UnixMs(now) }, protocol.CodeExpired},
		{"too far ahead", func(r *pb.SliceRequest) { r.EndAtMs = protocol.UnixMs(now.Add(2 * protocol.MaxSlicePeriod)) }, protocol.CodeTooFarAhead},
		{"stale tariff", func(r *pb.SliceRequest) { r.TariffHash = make([]byte, protocol.TariffHashSize) }, protocol.CodeTariffMismatch},
		{"below the minimum", func(r *pb.SliceRequest) { r.Resources.CpuMillis = tariff.MinSlice.CpuMillis - 1 }, protocol.CodeSliceBelowMinimum},
		{"shorter than the minimum", func(r *pb.SliceRequest) { r.EndAtMs = r.StartAtMs + tariff.MinPeriodMs - 1 }, protocol.CodeSliceBelowMinimum},
	}
	for _, tt := range tests {
		r := vector.Get(t, "slice_request").(*pb.WholesaleRequest).GetSlice()
		tt.change(r)
		_, err := record.CheckSliceRequest(r, site, tariffEnv, tariff, now)
		if got := protocol.CodeOf(err); got != tt.want {
			t.Errorf("%s: got %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}
	late := vector.Time.Add(time.Hour)
	if start, err := record.CheckSliceRequest(base, site, tariffEnv, tariff, late); err != nil || start != protocol.UnixMs(late) {
		t.Errorf("a start in the past: got %d, %v; want now, %d", start, err, protocol.UnixMs(late))
	}
}

func TestWithdrawalNotice(t *testing.T) {
	siteKey, _ := vector.Key(t, vector.ProviderSeed)
	_, _, _, _, grant := wholesale(t)
	w, err := record.OpenWithdrawal(seal(t, siteKey, vector.Get(t, "slice_withdrawal")))
	if err != nil {
		t.Fatal(err)
	}
	received := protocol.FromUnixMs(w.IssuedAtMs)
	if err := record.CheckWithdrawal(w, grant, received); err != nil {
		t.Errorf("the vectors' withdrawal, with its notice: %v", err)
	}
	late := received.Add(time.Minute) // the notice counts from when the grantee receives it
	if err := record.CheckWithdrawal(w, grant, late); !errors.Is(err, &protocol.Error{Code: protocol.CodeNoticeTooShort}) {
		t.Errorf("a withdrawal received a minute late: got %v, want notice too short", err)
	}
	w.GrantId = make([]byte, protocol.GrantIDSize)
	if err := record.CheckWithdrawal(w, grant, received); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("a withdrawal of another grant: got %v, want malformed", err)
	}
}

// TestReleaseNotice: a grantee's release gives the site the grant's notice,
// as a withdrawal gives it to the grantee; the site signs none.
func TestReleaseNotice(t *testing.T) {
	siteKey, _ := vector.Key(t, vector.ProviderSeed)
	retailerKey, _ := vector.Key(t, vector.RequesterSeed)
	_, _, _, _, grant := wholesale(t)
	release := vector.Get(t, "slice_release")
	if _, err := record.OpenRelease(seal(t, siteKey, release)); !errors.Is(err, protocol.ErrWrongSigner) {
		t.Errorf("a release signed by the site: got %v, want wrong signer", err)
	}
	r, err := record.OpenRelease(seal(t, retailerKey, release))
	if err != nil {
		t.Fatal(err)
	}
	received := protocol.FromUnixMs(r.IssuedAtMs)
	if err := record.CheckRelease(r, grant, received); err != nil {
		t.Errorf("the vectors' release, with its notice: %v", err)
	}
	if err := record.CheckRelease(r, grant, received.Add(time.Minute)); !errors.Is(err, &protocol.Error{Code: protocol.CodeNoticeTooShort}) {
		t.Errorf("a release received a minute late: got %v, want notice too short", err)
	}
	r.EndAtMs = grant.EndAtMs
	if err := record.CheckRelease(r, grant, received); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("a release that does not end the slice sooner: got %v, want malformed", err)
	}
}

func TestTariffValidator(t *testing.T) {
	siteKey, site := vector.Key(t, vector.ProviderSeed)
	_, other := vector.Key(t, vector.RequesterSeed)
	tariff := vector.Get(t, "wholesale_tariff").(*pb.WholesaleTariff)
	v := record.TariffValidator{Now: func() time.Time { return vector.Time }}
	env := seal(t, siteKey, tariff)
	if err := v.Validate(record.TariffKey(site), env); err != nil {
		t.Fatalf("the vectors' tariff under its site's key: %v", err)
	}
	if err := v.Validate(record.TariffKey(other), env); err == nil {
		t.Error("a tariff under another peer's key validated")
	}
	tariff.Seq++
	newer := seal(t, siteKey, tariff)
	if i, err := v.Select(record.TariffKey(site), [][]byte{env, newer, {1}}); err != nil || i != 1 {
		t.Errorf("select: %d, %v; want the higher seq, 1", i, err)
	}
	tariff.Labels = tariff.Labels[:1] // no jurisdiction
	if _, err := record.OpenTariff(seal(t, siteKey, tariff), vector.Time); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("a tariff without a jurisdiction: got %v, want malformed", err)
	}
}

// TestRetailOffer: a retailer's offer carries its grant and the site's
// tariff, and the site's labels unchanged; an offer claiming another
// label, or resting on another's grant, is refused.
func TestRetailOffer(t *testing.T) {
	siteKey, site := vector.Key(t, vector.ProviderSeed)
	_, retailer, tariffEnv, tariff, grant := wholesale(t)
	now := protocol.FromUnixMs(grant.StartAtMs).Add(time.Hour)
	offer := func() *pb.Offer {
		return &pb.Offer{Provider: []byte(retailer), Site: []byte(site), Grant: seal(t, siteKey, grant), Tariff: tariffEnv,
			Labels: append([]*pb.Label{{Key: "operator", Value: "shop"}}, tariff.Labels...)}
	}
	if err := record.CheckRetailOffer(offer(), now); err != nil {
		t.Fatalf("the retailer's offer: %v", err)
	}
	other := offer()
	other.Labels[len(other.Labels)-1] = &pb.Label{Key: "region", Value: "de-fra"}
	stolen := offer()
	stolen.Provider = []byte(site)
	for name, o := range map[string]*pb.Offer{"a label not the site's": other, "another's grant": stolen} {
		if err := record.CheckRetailOffer(o, now); protocol.CodeOf(err) != protocol.CodeTariffMismatch {
			t.Errorf("%s: %v, want tariff mismatch", name, err)
		}
	}
	if err := record.CheckRetailOffer(offer(), protocol.FromUnixMs(grant.EndAtMs)); protocol.CodeOf(err) != protocol.CodeExpired {
		t.Errorf("an offer on an ended slice: %v", err)
	}
}

// TestRentVector: the vectors' bill of a day of the slice passes the
// grantee's check; at another amount it is refused.
func TestRentVector(t *testing.T) {
	siteKey, _ := vector.Key(t, vector.ProviderSeed)
	_, _, _, _, grant := wholesale(t)
	req := vector.Get(t, "wholesale_request_rent").(*pb.WholesaleRequest)
	rc, err := record.OpenReceipt(req.GetRent())
	if err != nil {
		t.Fatal(err)
	}
	if err := record.CheckRent(rc, grant, grant.EndAtMs); err != nil {
		t.Fatalf("the vectors' rent: %v", err)
	}
	rc.Amount.Nanos++
	if _, err := record.OpenReceipt(seal(t, siteKey, rc)); err != nil {
		t.Fatal(err)
	}
	if err := record.CheckRent(rc, grant, grant.EndAtMs); protocol.CodeOf(err) != protocol.CodeTariffMismatch {
		t.Errorf("a nano more: %v, want tariff mismatch", err)
	}
}

// TestJurisdictionTerms: a grant to a retailer whose declared jurisdiction
// its tariff's rule does not allow is off terms.
func TestJurisdictionTerms(t *testing.T) {
	siteKey, _ := vector.Key(t, vector.ProviderSeed)
	_, _, _, tariff, grant := wholesale(t)
	tariff.RetailerJurisdictions = []string{"fr"}
	env := seal(t, siteKey, tariff)
	grant.TariffHash = record.TariffHash(env)
	grant.Jurisdiction = "fr"
	if err := record.CheckGrantTerms(grant, env, tariff); err != nil {
		t.Fatalf("a grant within the rule: %v", err)
	}
	grant.Jurisdiction = "us"
	if err := record.CheckGrantTerms(grant, env, tariff); protocol.CodeOf(err) != protocol.CodeTariffMismatch {
		t.Errorf("a grant outside the rule: %v, want tariff mismatch", err)
	}
	tariff.RetailerJurisdictions = []string{"fr", "be"}
	if _, err := record.ReadTariff(seal(t, siteKey, tariff)); protocol.CodeOf(err) != protocol.CodeMalformed {
		t.Errorf("a rule not sorted: %v, want malformed", err)
	}
}
