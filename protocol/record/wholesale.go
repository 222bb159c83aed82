package record

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// JurisdictionLabel is the label every wholesale tariff carries, under
// whose value its site is found in the DHT (SPEC 4.5).
const JurisdictionLabel = "jurisdiction"

// TariffKey is the DHT key of a site's wholesale tariff (SPEC 4.5):
// "/cuivre-tariff/" and its binary peer ID.
func TariffKey(p peer.ID) string { return "/" + protocol.TariffNamespace + "/" + string(p) }

// TariffHash is what a slice request and a grant name a tariff by: the
// sha2-256 of its sealed envelope, exactly as read (SPEC 6.7).
func TariffHash(envelope []byte) []byte {
	h := sha256.Sum256(envelope)
	return h[:]
}

// TariffValidator is the DHT record validator of the cuivre-tariff
// namespace (SPEC 4.5): the key names a peer, the value is at most
// protocol.MaxRecordSize, a tariff sealed by that peer and live at Now; of
// two, the higher seq wins.
type TariffValidator struct{ Now func() time.Time }

func (v TariffValidator) records() peerRecords[*pb.WholesaleTariff] {
	return peerRecords[*pb.WholesaleTariff]{protocol.TariffNamespace, v.Now, OpenTariff, (*pb.WholesaleTariff).GetSite}
}

// Open checks value under key and returns its tariff.
func (v TariffValidator) Open(key string, value []byte) (*pb.WholesaleTariff, error) {
	return v.records().open(key, value)
}

// Validate is the DHT's record.Validator check.
func (v TariffValidator) Validate(key string, value []byte) error {
	_, err := v.Open(key, value)
	return err
}

// Select picks the valid value with the highest seq.
func (v TariffValidator) Select(key string, values [][]byte) (int, error) {
	return v.records().pick(key, values)
}

// OpenTariff opens a sealed WholesaleTariff (SPEC 4.5): signed by its site,
// live at now within protocol.MaxTariffTTL, with a price currency, a
// capacity of some CPU and memory, a minimum slice within it, and labels
// sorted by key, unique and valid, among them a jurisdiction that is a
// valid facet value.
func OpenTariff(data []byte, now time.Time) (*pb.WholesaleTariff, error) {
	t, err := openTariff(data)
	if err != nil {
		return nil, err
	}
	if err := protocol.CheckExpiry(now, t.ExpiresAtMs, protocol.MaxTariffTTL); err != nil {
		return nil, fmt.Errorf("tariff: %w", err)
	}
	return t, nil
}

// ReadTariff opens a sealed tariff as OpenTariff does, its expiry aside: a
// grant names the tariff it was made at, which a later one may have
// replaced since (SPEC 6.7).
func ReadTariff(data []byte) (*pb.WholesaleTariff, error) { return openTariff(data) }

// CheckRetailOffer is a requester's check of a retailer's offer, one that
// names a site (SPEC 6.7, retail): its grant opens, live at now, is from
// that site to the offer's provider, and is at the tariff it carries, the
// site's; and every label of that tariff is on the offer, unchanged, so
// that the site's jurisdiction and certifications the retailer sells under
// are the site's own word. Any failure is CODE_TARIFF_MISMATCH, or the
// grant's own code.
func CheckRetailOffer(o *pb.Offer, now time.Time) error {
	g, err := OpenGrant(o.Grant, now)
	if err != nil {
		return fmt.Errorf("the retailer's grant: %w", err)
	}
	if !bytes.Equal(g.Site, o.Site) || !bytes.Equal(g.Grantee, o.Provider) {
		return protocol.Errorf(protocol.CodeTariffMismatch, "the offer's grant is not from its site to its provider")
	}
	t, err := openTariff(o.Tariff)
	if err != nil {
		return protocol.Errorf(protocol.CodeTariffMismatch, "the offer's tariff: %v", err)
	}
	if err := CheckGrantTerms(g, o.Tariff, t); err != nil {
		return err
	}
	for _, l := range t.Labels {
		found := false
		for _, ol := range o.Labels {
			found = found || ol.Key == l.Key && ol.Value == l.Value
		}
		if !found {
			return protocol.Errorf(protocol.CodeTariffMismatch, "the offer does not carry its site's label %s=%s", l.Key, l.Value)
		}
	}
	return nil
}

// openTariff is OpenTariff without the expiry check: an auditor reads the
// tariffs grants were made at, live or not (SPEC 6.7).
func openTariff(data []byte) (*pb.WholesaleTariff, error) {
	t := new(pb.WholesaleTariff)
	signer, _, err := Open(data, t)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindTariff, signer, t.Site); err != nil {
		return nil, err
	}
	if c := t.GetRetailCost().GetCurrency(); c != "" && c != t.GetPrice().GetCurrency() {
		return nil, protocol.Errorf(protocol.CodeMalformed, "tariff retail cost in %s, its price in %s", c, t.GetPrice().GetCurrency())
	}
	switch c, m := t.GetCapacity(), t.GetMinSlice(); {
	case t.GetPrice().GetCurrency() == "":
		return nil, protocol.Errorf(protocol.CodeMalformed, "tariff has no price currency")
	case c.GetCpuMillis() == 0 || c.GetMemoryBytes() == 0:
		return nil, protocol.Errorf(protocol.CodeMalformed, "tariff capacity has no cpu or no memory")
	case !fits(m, c):
		return nil, protocol.Errorf(protocol.CodeMalformed, "tariff minimum slice is larger than its capacity")
	}
	jurisdiction := ""
	for i, l := range t.Labels {
		if err := protocol.CheckLabelKey(l.Key); err != nil {
			return nil, protocol.Errorf(protocol.CodeMalformed, "tariff label %d: %v", i, err)
		}
		if err := protocol.CheckLabelValue(l.Value); err != nil {
			return nil, protocol.Errorf(protocol.CodeMalformed, "tariff label %s: %v", l.Key, err)
		}
		if i > 0 && t.Labels[i-1].Key >= l.Key {
			return nil, protocol.Errorf(protocol.CodeMalformed, "tariff labels not sorted by unique key at %q", l.Key)
		}
		if l.Key == JurisdictionLabel {
			jurisdiction = l.Value
		}
	}
	if _, err := protocol.NewFacetKey(protocol.FacetWholesale, jurisdiction, 0); err != nil {
		return nil, protocol.Errorf(protocol.CodeMalformed, "tariff jurisdiction: %v", err)
	}
	for i, j := range t.RetailerJurisdictions {
		if _, err := protocol.NewFacetKey(protocol.FacetJurisdiction, j, 0); err != nil || i > 0 && t.RetailerJurisdictions[i-1] >= j {
			return nil, protocol.Errorf(protocol.CodeMalformed, "tariff retailer jurisdiction %q: not a valid value, or not sorted and unique", j)
		}
	}
	return t, nil
}

// OpenGrant opens a sealed SliceGrant (SPEC 6.7): signed by its site, IDs
// well formed, a start before its end, and live at now: not past its end,
// which is at most protocol.MaxSlicePeriod ahead. Whether it may be used
// here, by this peer, now, is CheckGrantPresented; whether its terms are
// the tariff's, CheckGrantTerms.
func OpenGrant(data []byte, now time.Time) (*pb.SliceGrant, error) {
	g := new(pb.SliceGrant)
	signer, _, err := Open(data, g)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindGrant, signer, g.Site); err != nil {
		return nil, err
	}
	if _, err := peer.IDFromBytes(g.Grantee); err != nil {
		return nil, protocol.Errorf(protocol.CodeMalformed, "grant names an invalid grantee")
	}
	if err := checkSize("grant id", g.GrantId, protocol.GrantIDSize); err != nil {
		return nil, err
	}
	if err := checkSize("grant request nonce", g.RequestNonce, protocol.NonceSize); err != nil {
		return nil, err
	}
	if err := checkSize("grant tariff hash", g.TariffHash, protocol.TariffHashSize); err != nil {
		return nil, err
	}
	if g.StartAtMs >= g.EndAtMs {
		return nil, protocol.Errorf(protocol.CodeMalformed, "grant starts at %d, not before its end %d", g.StartAtMs, g.EndAtMs)
	}
	if err := protocol.CheckExpiry(now, g.EndAtMs, protocol.MaxSlicePeriod); err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	return g, nil
}

// CheckGrantPresented is the check of a site to which presenter presents
// an opened grant at now (SPEC 6.7): the site granted it
// (CODE_GRANT_WRONG_SITE), presenter is its grantee
// (CODE_GRANT_WRONG_GRANTEE), and it has started (CODE_SLICE_NOT_STARTED).
func CheckGrantPresented(g *pb.SliceGrant, site, presenter peer.ID, now time.Time) error {
	if string(g.Site) != string(site) {
		return protocol.Errorf(protocol.CodeGrantWrongSite, "grant %x was made by another site", g.GrantId)
	}
	if string(g.Grantee) != string(presenter) {
		return protocol.Errorf(protocol.CodeGrantWrongGrantee, "grant %x is not to %s", g.GrantId, presenter)
	}
	if start := protocol.FromUnixMs(g.StartAtMs); now.Before(start) {
		return protocol.Errorf(protocol.CodeSliceNotStarted, "grant %x starts at %s", g.GrantId, start.Format(time.RFC3339Nano))
	}
	return nil
}

// CheckGrantTerms checks that an opened grant is made at the tariff sealed
// in tariffEnv, opened as t (SPEC 6.7): same site, tariff_hash its hash,
// price and notice equal to the tariff's, and a slice no smaller nor
// shorter than its minimum and within its capacity. Any difference is
// CODE_TARIFF_MISMATCH.
func CheckGrantTerms(g *pb.SliceGrant, tariffEnv []byte, t *pb.WholesaleTariff) error {
	switch {
	case !bytes.Equal(g.Site, t.Site):
		return protocol.Errorf(protocol.CodeTariffMismatch, "grant and tariff of different sites")
	case !bytes.Equal(g.TariffHash, TariffHash(tariffEnv)):
		return protocol.Errorf(protocol.CodeTariffMismatch, "grant %x names another tariff", g.GrantId)
	case !proto.Equal(g.GetPrice(), t.GetPrice()):
		return protocol.Errorf(protocol.CodeTariffMismatch, "grant %x price differs from its tariff's", g.GrantId)
	case g.NoticeMs != t.NoticeMs:
		return protocol.Errorf(protocol.CodeTariffMismatch, "grant %x notice %d ms, its tariff's %d ms", g.GrantId, g.NoticeMs, t.NoticeMs)
	case !JurisdictionAllowed(t, g.Jurisdiction):
		return protocol.Errorf(protocol.CodeTariffMismatch, "grant %x to a retailer under %q, which its tariff's rule does not allow", g.GrantId, g.Jurisdiction)
	}
	if err := checkSlice(g.GetResources(), g.StartAtMs, g.EndAtMs, t); err != nil {
		return protocol.Errorf(protocol.CodeTariffMismatch, "grant %x: %v", g.GrantId, err)
	}
	return nil
}

// CheckSliceRequest is a site's check of a SliceRequest against its
// current tariff, sealed in tariffEnv and opened as t, at now (SPEC 6.7):
// well formed (CODE_MALFORMED), addressed to the site, not ended and not
// too far ahead (CODE_EXPIRED, CODE_TOO_FAR_AHEAD), at that tariff
// (CODE_TARIFF_MISMATCH), and no smaller nor shorter than its minimum
// (CODE_SLICE_BELOW_MINIMUM). It returns the start the grant is made
// with: the request's, or now if that is later. Room (CODE_SLICE_FULL) and
// policy (CODE_SLICE_NOT_ALLOWED) are the site's own checks.
func CheckSliceRequest(r *pb.SliceRequest, site peer.ID, tariffEnv []byte, t *pb.WholesaleTariff, now time.Time) (startMs uint64, err error) {
	if err := checkSize("slice request nonce", r.Nonce, protocol.NonceSize); err != nil {
		return 0, err
	}
	if err := checkSize("slice request tariff hash", r.TariffHash, protocol.TariffHashSize); err != nil {
		return 0, err
	}
	if string(r.Site) != string(site) {
		return 0, protocol.Errorf(protocol.CodeMalformed, "slice request addressed to another site")
	}
	if r.Jurisdiction != "" {
		if _, err := protocol.NewFacetKey(protocol.FacetJurisdiction, r.Jurisdiction, 0); err != nil {
			return 0, protocol.Errorf(protocol.CodeMalformed, "slice request jurisdiction: %v", err)
		}
	}
	if r.StartAtMs >= r.EndAtMs {
		return 0, protocol.Errorf(protocol.CodeMalformed, "slice starts at %d, not before its end %d", r.StartAtMs, r.EndAtMs)
	}
	if err := protocol.CheckExpiry(now, r.EndAtMs, protocol.MaxSlicePeriod); err != nil {
		return 0, fmt.Errorf("slice request: %w", err)
	}
	if !bytes.Equal(r.TariffHash, TariffHash(tariffEnv)) {
		return 0, protocol.Errorf(protocol.CodeTariffMismatch, "slice request names a tariff that is not this site's current one: read it again")
	}
	startMs = max(r.StartAtMs, protocol.UnixMs(now))
	if startMs >= r.EndAtMs {
		return 0, protocol.Errorf(protocol.CodeExpired, "slice ends before it could start")
	}
	if err := checkSlice(r.GetResources(), startMs, r.EndAtMs, t); err != nil {
		return 0, protocol.Errorf(protocol.CodeSliceBelowMinimum, "%v", err)
	}
	return startMs, nil
}

// checkSlice says how a slice of r from start to end falls below t's
// minimum, or nil.
func checkSlice(r *pb.Resources, startMs, endMs uint64, t *pb.WholesaleTariff) error {
	if !fits(t.GetMinSlice(), r) {
		m := t.GetMinSlice()
		return fmt.Errorf("slice below the minimum of %dm cpu, %d bytes memory, %d bytes scratch",
			m.GetCpuMillis(), m.GetMemoryBytes(), m.GetScratchBytes())
	}
	if endMs-startMs < t.MinPeriodMs {
		return fmt.Errorf("slice of %d ms, shorter than the minimum %d ms", endMs-startMs, t.MinPeriodMs)
	}
	return nil
}

// fits reports whether every dimension of a is at most b's.
func fits(a, b *pb.Resources) bool {
	return a.GetCpuMillis() <= b.GetCpuMillis() && a.GetMemoryBytes() <= b.GetMemoryBytes() && a.GetScratchBytes() <= b.GetScratchBytes()
}

// OpenWithdrawal opens a sealed SliceWithdrawal signed by its site, its
// grant ID well formed. CheckWithdrawal checks it against the grant.
func OpenWithdrawal(data []byte) (*pb.SliceWithdrawal, error) {
	w := new(pb.SliceWithdrawal)
	signer, _, err := Open(data, w)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindWithdrawal, signer, w.Site); err != nil {
		return nil, err
	}
	if err := checkSize("withdrawal grant id", w.GrantId, protocol.GrantIDSize); err != nil {
		return nil, err
	}
	return w, nil
}

// CheckWithdrawal is a grantee's check, at now, of an opened withdrawal of
// its opened grant g (SPEC 6.7): it names g's site, grantee and ID, and
// shortens it (CODE_MALFORMED); and it ends the slice no sooner than g's
// notice after now, give or take protocol.ClockSkew
// (CODE_NOTICE_TOO_SHORT).
func CheckWithdrawal(w *pb.SliceWithdrawal, g *pb.SliceGrant, now time.Time) error {
	return checkShortening("withdrawal", w.Site, w.Grantee, w.GrantId, w.EndAtMs, g, now)
}

// checkShortening checks a withdrawal or a release of grant g, naming
// site, grantee and grant ID and ending the slice at endMs, received at now.
func checkShortening(what string, site, grantee, id []byte, endMs uint64, g *pb.SliceGrant, now time.Time) error {
	switch {
	case !bytes.Equal(site, g.Site) || !bytes.Equal(grantee, g.Grantee) || !bytes.Equal(id, g.GrantId):
		return protocol.Errorf(protocol.CodeMalformed, "%s names another grant than %x", what, g.GrantId)
	case endMs >= g.EndAtMs:
		return protocol.Errorf(protocol.CodeMalformed, "%s of grant %x does not end it sooner", what, g.GrantId)
	}
	earliest := now.Add(time.Duration(g.NoticeMs) * time.Millisecond).Add(-protocol.ClockSkew)
	if end := protocol.FromUnixMs(endMs); end.Before(earliest) {
		return protocol.Errorf(protocol.CodeNoticeTooShort, "%s of grant %x ends it at %s, before its notice of %d ms from now",
			what, g.GrantId, end.Format(time.RFC3339Nano), g.NoticeMs)
	}
	return nil
}

// OpenRelease opens a sealed SliceRelease signed by its grantee, its grant
// ID well formed. CheckRelease checks it against the grant.
func OpenRelease(data []byte) (*pb.SliceRelease, error) {
	r := new(pb.SliceRelease)
	signer, _, err := Open(data, r)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindRelease, signer, r.Grantee); err != nil {
		return nil, err
	}
	if err := checkSize("release grant id", r.GrantId, protocol.GrantIDSize); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckRelease is a site's check, at now, of an opened release of its
// opened grant g (SPEC 6.7): it names g's site, grantee and ID, and
// shortens it (CODE_MALFORMED); and it ends the slice no sooner than g's
// notice after now, give or take protocol.ClockSkew
// (CODE_NOTICE_TOO_SHORT): a release gives the site the notice a
// withdrawal gives the grantee.
func CheckRelease(r *pb.SliceRelease, g *pb.SliceGrant, now time.Time) error {
	return checkShortening("release", r.Site, r.Grantee, r.GrantId, r.EndAtMs, g, now)
}

// CheckRent is a grantee's check of an opened receipt of its slice's rent
// (SPEC 6.7, rent), sent by the grant g's site, the slice ending at end (the
// grant's, or sooner by a withdrawal or release): lease_id is the grant's
// ID, provider the site, requester the grantee, on_slice set and no job;
// reserved the slice's resources at the grant's price; a period within the
// slice; and amount that period's cost. A price or an amount off the grant
// is CODE_TARIFF_MISMATCH; anything else, CODE_MALFORMED.
func CheckRent(rc *pb.UsageReceipt, g *pb.SliceGrant, endMs uint64) error {
	switch {
	case !bytes.Equal(rc.LeaseId, g.GrantId) || !bytes.Equal(rc.Provider, g.Site) || !bytes.Equal(rc.Requester, g.Grantee):
		return protocol.Errorf(protocol.CodeMalformed, "rent of another grant than %x", g.GrantId)
	case !rc.OnSlice || len(rc.JobCid) > 0 || rc.Epoch == 0:
		return protocol.Errorf(protocol.CodeMalformed, "rent of grant %x is not a slice's: on_slice unset, a job named, or epoch 0", g.GrantId)
	case !proto.Equal(rc.GetReserved(), g.GetResources()):
		return protocol.Errorf(protocol.CodeMalformed, "rent of grant %x bills other resources than the slice's", g.GrantId)
	case !proto.Equal(rc.GetPrice(), g.GetPrice()):
		return protocol.Errorf(protocol.CodeTariffMismatch, "rent of grant %x is not at the grant's price", g.GrantId)
	case rc.StartedAtMs < g.StartAtMs || rc.EndedAtMs > endMs || rc.StartedAtMs >= rc.EndedAtMs:
		return protocol.Errorf(protocol.CodeMalformed, "rent of grant %x bills %d to %d ms, not a period within the slice (%d to %d ms)",
			g.GrantId, rc.StartedAtMs, rc.EndedAtMs, g.StartAtMs, endMs)
	}
	want, err := protocol.ReceiptAmount(rc, math.MaxUint64)
	if err != nil || rc.GetAmount().GetNanos() != want || rc.GetAmount().GetCurrency() != g.GetPrice().GetCurrency() {
		return protocol.Errorf(protocol.CodeTariffMismatch, "rent of grant %x bills %s, its period at its price costs %d nano-%s",
			g.GrantId, protocol.FormatAmount(rc.GetAmount()), want, g.GetPrice().GetCurrency())
	}
	return nil
}

// JurisdictionAllowed says whether a tariff's rule lets a retailer that
// declares jurisdiction hold a slice (SPEC 4.5, 6.7 step 7): a tariff
// without a rule allows any.
func JurisdictionAllowed(t *pb.WholesaleTariff, jurisdiction string) bool {
	return len(t.RetailerJurisdictions) == 0 || slices.Contains(t.RetailerJurisdictions, jurisdiction)
}
