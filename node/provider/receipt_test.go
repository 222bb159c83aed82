package provider_test

import (
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// ceilDiv is ceil(a / b) for a >= 0, b > 0.
func ceilDiv(a, b *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(a, b, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// amountOf is SPEC 5.5's receipt amount, written out again with math/big
// from the receipt's own fields: min(cost(reserved, price, ended - started),
// total) + egress_cost(egress_bytes, price). A reference independent of the
// code under test.
func amountOf(rc *pb.UsageReceipt, total uint64) *big.Int {
	u := func(x uint64) *big.Int { return new(big.Int).SetUint64(x) }
	gib := u(1 << 30)
	ms := u(rc.EndedAtMs - rc.StartedAtMs)
	cpu := new(big.Int).Mul(u(rc.Reserved.GetCpuMillis()), u(rc.Price.GetCpuNanosPerSecond()))
	cpu.Mul(cpu, ms).Mul(cpu, gib)
	mem := new(big.Int).Mul(u(rc.Reserved.GetMemoryBytes()), u(rc.Price.GetMemoryNanosPerGibSecond()))
	mem.Mul(mem, ms).Mul(mem, big.NewInt(1000))
	cost := ceilDiv(cpu.Add(cpu, mem), new(big.Int).Mul(gib, big.NewInt(1_000_000)))
	if cost.Cmp(u(total)) > 0 {
		cost = u(total)
	}
	egress := ceilDiv(new(big.Int).Mul(u(rc.EgressBytes), u(rc.Price.GetEgressNanosPerGib())), gib)
	return cost.Add(cost, egress)
}

// TestReceiptAmounts: the amount of every receipt is SPEC 5.5's formula over
// the receipt's own fields, the signed started_at_ms and ended_at_ms, for
// leases committed and ended at every fraction of a millisecond (virtual
// time, moved in steps of a few hundred microseconds).
func TestReceiptAmounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		module := exectest.Write("compte\n", "rendu\n", 0)
		const n = 40
		for i := range n {
			// Commit and end land on different fractions of a
			// millisecond: 0, 0.37, 0.74, 0.11 ms ...
			time.Sleep(time.Duration(i*370%1000) * time.Microsecond)
			prov.Hold()
			l := lease(t, f, prov, module, time.Second)
			time.Sleep(time.Duration(2+i%5)*time.Millisecond + time.Duration(i*530%1000)*time.Microsecond)
			prov.Release()
			res, _, err := watch(t, f, prov, l)
			if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
				t.Fatalf("lease %d: %v, %v", i, res, err)
			}
			rc, err := record.OpenReceipt(res.Receipt)
			if err != nil {
				t.Fatalf("lease %d: receipt: %v", i, err)
			}
			// The offer's total: the job's resources for its whole
			// timeout (an hour), at the offer's price.
			total := amountOf(&pb.UsageReceipt{Reserved: rc.Reserved, Price: rc.Price, EndedAtMs: 3_600_000}, ^uint64(0))
			want := amountOf(rc, total.Uint64())
			if rc.Amount.GetNanos() != want.Uint64() || rc.Amount.GetCurrency() != rc.Price.GetCurrency() {
				t.Fatalf("lease %d: the receipt charges %v for %d ms (%d to %d), SPEC 5.5 over its fields gives %s %s",
					i, rc.Amount, rc.EndedAtMs-rc.StartedAtMs, rc.StartedAtMs, rc.EndedAtMs, want, rc.Price.GetCurrency())
			}
		}
	})
}
