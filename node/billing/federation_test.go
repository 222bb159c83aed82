package billing_test

import (
	"fmt"
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/protocol/record"
)

// statement builds a member's statement from its store, as the node does.
func statement(t *testing.T, m *nodetest.Member, w billing.Window) billing.Statement {
	t.Helper()
	rs, err := m.Store.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := m.Store.Jobs(nil)
	if err != nil {
		t.Fatal(err)
	}
	return billing.Build(billing.Input{Self: m.ID, Receipts: rs, Jobs: jobs}, w)
}

// stored sums the amounts of a member's receipts by currency, read from
// their envelopes: all of them, and those with a countersignature kept.
func stored(t *testing.T, m *nodetest.Member) (all, countersigned map[string]*big.Int) {
	t.Helper()
	rs, err := m.Store.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	all, countersigned = map[string]*big.Int{}, map[string]*big.Int{}
	for _, r := range rs {
		rc, err := record.OpenReceipt(r.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		c, n := rc.Amount.GetCurrency(), new(big.Int).SetUint64(rc.Amount.GetNanos())
		for _, m := range []map[string]*big.Int{all, countersigned} {
			if m[c] == nil {
				m[c] = new(big.Int)
			}
		}
		all[c].Add(all[c], n)
		if len(r.Countersignature) > 0 {
			countersigned[c].Add(countersigned[c], n)
		}
	}
	return all, countersigned
}

// TestFederationStatements: the real drivers (memnet, bbolt stores, wazero;
// virtual time, so nothing depends on the machine's speed) run jobs on two
// providers of two operators, one selling in EUR and one in CHF whose
// countersignatures never reach it. The provider in EUR bills every
// receipt countersigned; the one in CHF shows its receipts marked, in its
// all total and not in its countersigned one; the requester's spend names
// each provider's operator from the offers it leased; every total is the
// sum of the envelopes in the stores; and a window at a time between two
// batches splits them.
func TestFederationStatements(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t)
		eur := f.AddProvider(nodetest.Market("fr-par", "opa"))
		m := nodetest.Market("de-fra", "opb")
		m.Pricing.Base.Currency = "CHF"
		chf := f.AddProvider(m)
		chf.FailReceipts(1 << 30)
		module := exectest.Write("x\n", "", 0)
		jobs := 0
		// run holds a job's run on p for d once its lease is committed, so
		// that its receipt bills d of reserved resources.
		run := func(p *nodetest.Member, region, cpu string, d time.Duration) {
			jobs++
			spec := fmt.Sprintf("version: 1\nname: j%d\ntask:\n  module: m.wasm\n  resources: {cpu: %s, memory: 64Mi}\nconstraints:\n  - region = %s\n", jobs, cpu, region)
			p.Hold()
			key := f.Submit(spec, module)
			f.Until("the lease committed", func() bool { return p.Held() == 1 })
			f.Settle(d)
			p.Release()
			if v := f.Wait(key); v.State != "succeeded" {
				t.Fatalf("job %d on %s: %+v", jobs, region, v)
			}
		}
		settled := func() {
			f.Until("every receipt countersigned by the requester, and taken by the provider in EUR", func() bool {
				earned := statement(t, eur, billing.Window{}).Rows
				for _, r := range earned {
					if !r.Countersigned {
						return false
					}
				}
				return len(statement(t, f.Requester, billing.Window{}).Rows) == jobs && len(earned)+len(statement(t, chf, billing.Window{}).Rows) == jobs
			})
		}
		run(eur, "fr-par", "500m", 3*time.Second)
		run(chf, "de-fra", "1", 7*time.Second)
		settled()
		f.Settle(time.Second)
		cut := time.Now()
		run(eur, "fr-par", "250m", 1500*time.Millisecond)
		run(eur, "fr-par", "2", 11*time.Second)
		run(chf, "de-fra", "750m", 5*time.Second)
		settled()

		for _, p := range []*nodetest.Member{eur, chf} {
			all, cs := stored(t, p)
			st := statement(t, p, billing.Window{})
			for _, x := range st.Totals {
				if x.By != "currency" {
					continue
				}
				if x.Side != billing.Earnings || x.AllNanos != all[x.Currency].String() || x.CountersignedNanos != cs[x.Currency].String() {
					t.Errorf("provider %s: %+v; its store holds %s all, %s countersigned", peer.ID(p.ID), x, all[x.Currency], cs[x.Currency])
				}
			}
		}
		if x := statement(t, chf, billing.Window{}).Totals[0]; x.Currency != "CHF" || x.NotCountersigned != 2 || x.CountersignedNanos != "0" {
			t.Errorf("the provider whose countersignatures never came: %+v, want its 2 receipts in CHF marked and out of the countersigned total", x)
		}

		all, cs := stored(t, f.Requester)
		ops := map[string]string{}
		for _, x := range statement(t, f.Requester, billing.Window{}).Totals {
			switch x.By {
			case "operator":
				ops[x.Key+" "+x.Currency] = x.AllNanos
			case "currency":
				if x.AllNanos != all[x.Currency].String() || x.CountersignedNanos != cs[x.Currency].String() {
					t.Errorf("the requester's spend %+v; its store holds %s all, %s countersigned", x, all[x.Currency], cs[x.Currency])
				}
			}
		}
		if all["EUR"].Sign() == 0 || all["CHF"].Sign() == 0 {
			t.Fatalf("the requester spent %v: every run held resources for seconds", all)
		}
		if want := map[string]string{"opa EUR": all["EUR"].String(), "opb CHF": all["CHF"].String()}; fmt.Sprint(ops) != fmt.Sprint(want) {
			t.Errorf("the requester's spend by operator: %v, want %v", ops, want)
		}

		for _, c := range []struct {
			w    billing.Window
			want int
		}{{billing.Window{Until: cut}, 2}, {billing.Window{Since: cut}, 3}} {
			if n := len(statement(t, f.Requester, c.w).Rows); n != c.want {
				t.Errorf("the requester's receipts in %+v: %d, want %d", c.w, n, c.want)
			}
		}
	})
}
