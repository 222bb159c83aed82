package provider_test

import (
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// TestEarningsAreWhatItSealed: a node that also buys keeps the receipts of
// its own jobs in its store; its earnings count only the receipts it sealed
// as provider, not what it paid another.
func TestEarningsAreWhatItSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "de-fra")
		prov, other := f.Providers[0], f.Providers[1]
		l := lease(t, f, prov, exectest.Write("bonjour\n", "", 0), 200*time.Millisecond)
		res, _, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
			t.Fatalf("result %v, %v", res, err)
		}
		earned, err := record.OpenReceipt(res.Receipt)
		if err != nil {
			t.Fatal(err)
		}

		// A receipt another provider sealed for a job prov bought.
		paid := proto.Clone(earned).(*pb.UsageReceipt)
		paid.LeaseId, paid.Provider, paid.Requester = []byte("0123456789abcdef"), []byte(other.ID), []byte(prov.ID)
		paid.Amount.Nanos *= 7
		env, err := record.Seal(other.Key, paid)
		if err != nil {
			t.Fatal(err)
		}
		if err := prov.Store.PutReceipt(store.Receipt{LeaseID: string(paid.LeaseId), Epoch: paid.Epoch, Envelope: env}); err != nil {
			t.Fatal(err)
		}

		billed, _, err := prov.Provider.Earnings()
		if cur := earned.Amount.Currency; err != nil || billed[cur] != earned.Amount.Nanos {
			t.Errorf("earnings %v, %v; want %d %s, its own receipt's, not the %d it paid", billed, err, earned.Amount.Nanos, cur, paid.Amount.Nanos)
		}
	})
}
