package record_test

import (
	"testing"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// TestAudit: the vectors' site, its grant at its tariff and its capacity
// record pass the audit (SPEC 6.7); each breach of a rule is a finding of
// that rule, and evidence the site did not sign is discarded, not held
// against it.
func TestAudit(t *testing.T) {
	siteKey, site := vector.Key(t, vector.ProviderSeed)
	otherKey, _ := vector.Key(t, vector.RequesterSeed)
	_, _, tariffEnv, tariff, grant := wholesale(t)
	now := protocol.FromUnixMs(tariff.IssuedAtMs)
	capacity := seal(t, siteKey, vector.Get(t, "capacity_record").(*pb.CapacityRecord))
	good := record.Evidence{Grant: seal(t, siteKey, grant), Tariff: tariffEnv}

	rep, err := record.Audit(site, tariffEnv, capacity, []record.Evidence{good}, now)
	if err != nil || !rep.Pass() || rep.Grants != 1 || len(rep.Discarded) != 0 {
		t.Fatalf("the vectors' site: %+v, %v", rep, err)
	}

	worse := vector.Get(t, "slice_grant").(*pb.SliceGrant)
	worse.Price.CpuNanosPerSecond *= 2 // a retailer charged double
	short := vector.Get(t, "slice_withdrawal").(*pb.SliceWithdrawal)
	short.EndAtMs = short.IssuedAtMs + 1000 // a second's notice
	within := vector.Get(t, "slice_withdrawal").(*pb.SliceWithdrawal)
	squeezed := vector.Get(t, "wholesale_tariff").(*pb.WholesaleTariff)
	squeezed.RetailCost = &pb.Price{Currency: "EUR", CpuNanosPerSecond: 6000} // 6000 + 6000 > the 11000 it sells at
	squeezedEnv := seal(t, siteKey, squeezed)
	forged := vector.Get(t, "slice_grant").(*pb.SliceGrant)
	forged.Price.CpuNanosPerSecond *= 2
	run := func(nanos uint64) []byte { // the site's receipt of a run on the slice
		rc := vector.Get(t, "usage_receipt").(*pb.UsageReceipt)
		rc.Requester, rc.OnSlice = grant.Grantee, true
		rc.StartedAtMs, rc.EndedAtMs = grant.StartAtMs+1000, grant.StartAtMs+2000
		rc.Amount = &pb.Amount{Currency: "EUR", Nanos: nanos}
		return seal(t, siteKey, rc)
	}

	for _, tt := range []struct {
		name      string
		published []byte
		evidence  record.Evidence
		rule      string
		discarded bool
	}{
		{"a grant off the tariff's price", tariffEnv, record.Evidence{Grant: seal(t, siteKey, worse), Tariff: tariffEnv}, record.RuleTerms, false},
		{"a grant at a tariff not presented", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: []byte("no tariff")}, record.RuleTerms, false},
		{"a withdrawal without notice", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: tariffEnv, Withdrawal: seal(t, siteKey, short), WithdrawalRefused: true}, record.RuleNotice, false},
		{"own retail under the wholesale price and retail cost", squeezedEnv, good, record.RuleSqueeze, false},
		{"a run on the slice billed", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: tariffEnv, Receipts: [][]byte{run(0), run(500)}}, record.RuleSliceBilling, false},
		{"a run on the slice billed nothing", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: tariffEnv, Receipts: [][]byte{run(0)}}, "", false},
		{"a receipt the retailer signed itself", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: tariffEnv, Receipts: [][]byte{seal(t, otherKey, vector.Get(t, "usage_receipt"))}}, "", true},
		{"a grant the retailer signed itself", tariffEnv, record.Evidence{Grant: seal(t, otherKey, forged), Tariff: tariffEnv}, "", true},
		{"a withdrawal the retailer signed itself", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: tariffEnv, Withdrawal: seal(t, otherKey, short)}, "", true},
		{"a withdrawal within notice refused anyway", tariffEnv, record.Evidence{Grant: good.Grant, Tariff: tariffEnv, Withdrawal: seal(t, siteKey, within), WithdrawalRefused: true}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := record.Audit(site, tt.published, capacity, []record.Evidence{tt.evidence}, now)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.rule != "" && (len(rep.Findings) != 1 || rep.Findings[0].Rule != tt.rule):
				t.Errorf("findings %+v, want one of %s", rep.Findings, tt.rule)
			case tt.rule == "" && !rep.Pass():
				t.Errorf("findings %+v, want none", rep.Findings)
			case tt.discarded != (len(rep.Discarded) == 1):
				t.Errorf("discarded %v, want %v", rep.Discarded, tt.discarded)
			}
		})
	}
	if _, err := record.Audit(site, seal(t, otherKey, tariff), capacity, nil, now); err == nil {
		t.Error("a published tariff signed by another was read as the site's")
	}
}
