package record

import (
	"bytes"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Evidence is what a retailer presents to an auditor of a site (SPEC 6.7,
// audit): a grant it holds or was refused, the sealed tariff it asked at,
// and a withdrawal of it, if any, with whether it refused that withdrawal.
type Evidence struct {
	Grant             []byte `json:"grant"`
	Tariff            []byte `json:"tariff"`
	Withdrawal        []byte `json:"withdrawal,omitempty"`
	WithdrawalRefused bool   `json:"withdrawal_refused,omitempty"`
	// Receipts are the site's sealed receipts of the runs the retailer
	// made on the slice (SPEC 6.8), countersigned or not.
	Receipts [][]byte `json:"receipts,omitempty"`
}

// Audit rules (SPEC 6.7): each finding names the one it breaks.
const (
	// RuleTerms: a grant is at the tariff it names, which the site signed.
	RuleTerms = "grant-terms"
	// RuleNotice: a withdrawal gives the grant's notice.
	RuleNotice = "withdrawal-notice"
	// RuleSqueeze: the site's own retail price covers its wholesale price
	// and its published retail cost, dimension by dimension.
	RuleSqueeze = "margin-squeeze"
	// RuleSliceBilling: a run on a slice, paid whole, is billed nothing.
	RuleSliceBilling = "slice-billing"
)

// Finding is one breach of an audit rule.
type Finding struct {
	Rule    string  `json:"rule"`
	Code    pb.Code `json:"code"`
	Grant   []byte  `json:"grant,omitempty"` // the grant ID, when the finding is about one
	Message string  `json:"message"`
}

// AuditReport is the outcome of Audit: the site passes when Findings is
// empty.
type AuditReport struct {
	Site     peer.ID   `json:"site"`
	Grants   int       `json:"grants"` // grants of the site checked
	Findings []Finding `json:"findings"`
	// Discarded are evidence that does not bind the site: a grant that does
	// not open, or that another site signed. Their reasons.
	Discarded []string `json:"discarded"`
}

// Pass says whether the site passed: no finding.
func (r AuditReport) Pass() bool { return len(r.Findings) == 0 }

// Audit checks a site against its published tariff, the sealed tariff of
// its DHT record, its capacity record (optional: nil skips the margin
// check), and the evidence its retailers present (SPEC 6.7, audit): every
// grant at the tariff it names, signed by the site (RuleTerms), every
// withdrawal with the grant's notice (RuleNotice), and its own retail price
// at least its wholesale price plus its published retail cost
// (RuleSqueeze), and no run on a slice billed (RuleSliceBilling). Evidence
// that the site did not sign is discarded, not held
// against it. An error says the inputs could not be read: a published
// tariff that does not open as the site's.
func Audit(site peer.ID, published, capacity []byte, evidence []Evidence, now time.Time) (AuditReport, error) {
	r := AuditReport{Site: site, Findings: []Finding{}, Discarded: []string{}}
	pt, err := OpenTariff(published, now)
	if err != nil {
		return r, fmt.Errorf("the site's published tariff: %w", err)
	}
	if string(pt.Site) != string(site) {
		return r, fmt.Errorf("the published tariff is another site's")
	}
	add := func(rule string, g *pb.SliceGrant, err error) {
		f := Finding{Rule: rule, Code: protocol.CodeOf(err), Message: err.Error()}
		if g != nil {
			f.Grant = g.GrantId
		}
		r.Findings = append(r.Findings, f)
	}
	for i, e := range evidence {
		g := new(pb.SliceGrant)
		signer, _, err := Open(e.Grant, g)
		if err == nil {
			err = checkSigner(KindGrant, signer, g.Site)
		}
		switch {
		case err != nil:
			r.Discarded = append(r.Discarded, fmt.Sprintf("evidence %d: %v", i, err))
			continue
		case string(g.Site) != string(site):
			r.Discarded = append(r.Discarded, fmt.Sprintf("evidence %d: grant %x of another site", i, g.GrantId))
			continue
		}
		r.Grants++
		t, err := openTariff(e.Tariff)
		switch {
		case err != nil:
			add(RuleTerms, g, protocol.Errorf(protocol.CodeTariffMismatch, "grant %x: the tariff presented with it does not open: %v", g.GrantId, err))
		case !bytes.Equal(t.Site, g.Site):
			add(RuleTerms, g, protocol.Errorf(protocol.CodeTariffMismatch, "grant %x: the tariff presented with it is another site's", g.GrantId))
		default:
			if err := CheckGrantTerms(g, e.Tariff, t); err != nil {
				add(RuleTerms, g, err)
			}
		}
		for j, env := range e.Receipts {
			rc, err := OpenReceipt(env)
			switch {
			case err != nil || string(rc.Provider) != string(site):
				r.Discarded = append(r.Discarded, fmt.Sprintf("evidence %d receipt %d: not the site's receipt", i, j))
			case string(rc.Requester) != string(g.Grantee) || rc.StartedAtMs < g.StartAtMs || rc.StartedAtMs >= g.EndAtMs:
				r.Discarded = append(r.Discarded, fmt.Sprintf("evidence %d receipt %d: not of a run of the grantee's in the slice's period", i, j))
			case rc.GetAmount().GetNanos() != 0:
				add(RuleSliceBilling, g, protocol.Errorf(protocol.CodeTariffMismatch, "grant %x: the site billed %s for lease %x, a run on a slice paid whole",
					g.GrantId, protocol.FormatAmount(rc.GetAmount()), rc.LeaseId))
			}
		}
		if e.Withdrawal == nil {
			continue
		}
		w, err := OpenWithdrawal(e.Withdrawal)
		if err != nil || string(w.Site) != string(site) || !bytes.Equal(w.GrantId, g.GrantId) {
			r.Discarded = append(r.Discarded, fmt.Sprintf("evidence %d: a withdrawal the site did not sign for grant %x", i, g.GrantId))
			continue
		}
		// The grantee's clock when it got it is not in evidence: the
		// withdrawal's own issue time is the most the site can claim.
		if err := CheckWithdrawal(w, g, protocol.FromUnixMs(w.IssuedAtMs)); err != nil {
			add(RuleNotice, g, err)
		} else if e.WithdrawalRefused {
			// Refused on receipt but within notice by its issue time: the
			// site sent it late, and the grantee's word stands against the
			// site's; reported, not held against the site.
			r.Discarded = append(r.Discarded, fmt.Sprintf("evidence %d: withdrawal of grant %x refused by its grantee, within notice by its issue time", i, g.GrantId))
		}
	}
	if capacity != nil {
		c, err := OpenCapacity(capacity, now)
		if err != nil || string(c.Provider) != string(site) {
			return r, fmt.Errorf("the site's capacity record: %v", err)
		}
		if err := checkSqueeze(c.GetPrice(), pt); err != nil {
			add(RuleSqueeze, nil, err)
		}
	}
	return r, nil
}

// checkSqueeze says how a site's retail price undercuts its wholesale price
// plus its retail cost, in any dimension, or nil.
func checkSqueeze(retail *pb.Price, t *pb.WholesaleTariff) error {
	w, c := t.GetPrice(), t.GetRetailCost()
	if retail.GetCurrency() != w.GetCurrency() {
		return protocol.Errorf(protocol.CodeTariffMismatch, "retail in %s, wholesale in %s: the two cannot be compared", retail.GetCurrency(), w.GetCurrency())
	}
	for _, d := range []struct {
		what                string
		retail, whole, cost uint64
	}{
		{"vCPU-second", retail.GetCpuNanosPerSecond(), w.GetCpuNanosPerSecond(), c.GetCpuNanosPerSecond()},
		{"GiB-second of memory", retail.GetMemoryNanosPerGibSecond(), w.GetMemoryNanosPerGibSecond(), c.GetMemoryNanosPerGibSecond()},
		{"GiB sent out", retail.GetEgressNanosPerGib(), w.GetEgressNanosPerGib(), c.GetEgressNanosPerGib()},
	} {
		if d.retail < d.whole+d.cost {
			return protocol.Errorf(protocol.CodeTariffMismatch, "the site sells a %s at %d nano-%s, under its wholesale price %d plus its retail cost %d",
				d.what, d.retail, retail.GetCurrency(), d.whole, d.cost)
		}
	}
	return nil
}
