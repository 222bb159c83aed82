package billing

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// slice seals a grant of site to grantee of 2 vCPUs at 0.036 EUR a
// vCPU-hour (10,000 nano-EUR a second) from t0 for hours.
func slice(t *testing.T, site, grantee party, hours int) (*pb.SliceGrant, []byte) {
	t.Helper()
	g := &pb.SliceGrant{Site: []byte(site.id), Grantee: []byte(grantee.id), GrantId: make([]byte, protocol.GrantIDSize),
		RequestNonce: make([]byte, protocol.NonceSize), TariffHash: make([]byte, protocol.TariffHashSize),
		Resources: &pb.Resources{CpuMillis: 2000}, StartAtMs: protocol.UnixMs(t0), EndAtMs: protocol.UnixMs(t0.Add(time.Duration(hours) * time.Hour)),
		Price: &pb.Price{Currency: "EUR", CpuNanosPerSecond: 10_000}, NoticeMs: 3600_000, IssuedAtMs: protocol.UnixMs(t0)}
	rand.Read(g.GrantId)
	env, err := record.Seal(site.key, g)
	if err != nil {
		t.Fatal(err)
	}
	return g, env
}

// TestSlicesAndMargin: a slice's rent is its part of the window at its
// grant's price, used or not, to its end as a release made it; a site
// earns it, a retailer pays it; a retailer's margin is its retail receipts
// less its rents, and may be negative; a grant refused as off terms costs
// nothing.
func TestSlicesAndMargin(t *testing.T) {
	site, shop, customer := newParty(t), newParty(t), newParty(t)
	g, env := slice(t, site, shop, 10)
	rel, err := record.Seal(shop.key, &pb.SliceRelease{Site: g.Site, Grantee: g.Grantee, GrantId: g.GrantId, IssuedAtMs: protocol.UnixMs(t0),
		EndAtMs: protocol.UnixMs(t0.Add(4 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	_, offTerms := slice(t, site, shop, 10)
	held := []store.Grant{{ID: string(g.GrantId), Envelope: env, Release: rel}, {ID: "x", Envelope: offTerms, OffTerms: true}}

	retail := receipt(t, bill{prov: shop, req: customer, endMin: 30, currency: "EUR", nanos: 1_000_000_000, countersigned: true})
	rc, _ := record.OpenReceipt(retail.Envelope)
	rc.SiteReceipt = make([]byte, 32)
	if retail.Envelope, err = record.Seal(shop.key, rc); err != nil {
		t.Fatal(err)
	}
	retail.Countersignature = countersign(t, customer, retail.Envelope)

	// The window is the slice's second and third hours: 2 h of 2 vCPUs.
	w := Window{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}
	st := Build(Input{Self: shop.id, Grants: held}, w)
	if len(st.Slices) != 1 || st.Slices[0].Role != "retailer" || st.Slices[0].AmountNanos != 2*7200*10_000 {
		t.Fatalf("the retailer's slice rent: %+v", st.Slices)
	}
	if len(st.Margins) != 1 || st.Margins[0].Margin != "-0.144 EUR" {
		t.Errorf("a retailer that sold nothing: %+v", st.Margins)
	}
	// The whole slice, to its release after 4 h: 2 vCPUs for 4 h.
	st = Build(Input{Self: shop.id, Receipts: []store.Receipt{retail}, Grants: held}, Window{})
	if st.Slices[0].AmountNanos != 2*4*3600*10_000 || st.Rows[0].Leg != LegRetail {
		t.Fatalf("the whole slice: %+v; rows %+v", st.Slices, st.Rows)
	}
	if m := st.Margins[0]; m.Retail != "1 EUR" || m.Slices != "0.288 EUR" || m.Margin != "0.712 EUR" {
		t.Errorf("the margin: %+v", m)
	}
	held[0].Made = true
	if st := Build(Input{Self: site.id, Grants: held}, Window{}); len(st.Slices) != 1 || st.Slices[0].Role != "site" || len(st.Margins) != 0 {
		t.Errorf("the site's view: %+v, margins %+v", st.Slices, st.Margins)
	}
}
