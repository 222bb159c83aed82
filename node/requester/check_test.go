package requester_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// reseal opens the offer or receipt in env, lets edit change it, and seals
// it again with the provider's own key: a provider that signs what it should
// not, which no signature check catches.
func resealReceipt(t *testing.T, m *nodetest.Member, env []byte, edit func(*pb.UsageReceipt)) []byte {
	t.Helper()
	rc, err := record.OpenReceipt(env)
	if err != nil {
		t.Fatal(err)
	}
	edit(rc)
	out, err := record.Seal(m.Key, rc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReceiptRefused: a receipt signed by the provider itself but whose
// amount is not SPEC 5.5's over its own fields, or whose price is not the
// offer's, is refused, not countersigned, and the job's status says why;
// an honest receipt on the same federation is countersigned and billed.
func TestReceiptRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*pb.UsageReceipt)
		want string
	}{
		{"amount one nano-unit over", func(rc *pb.UsageReceipt) { rc.Amount.Nanos++ }, "SPEC 5.5"},
		{"a millisecond billed short", func(rc *pb.UsageReceipt) { rc.StartedAtMs-- }, "SPEC 5.5"},
		{"another price", func(rc *pb.UsageReceipt) { rc.Price.CpuNanosPerSecond++ }, "another price"},
		{"another job", func(rc *pb.UsageReceipt) { rc.JobCid = rc.JobCid[:len(rc.JobCid)-1] }, "another job"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := nodetest.New(t, "fr-par")
				prov := f.Providers[0]
				prov.OnWatchEvent(func(ev *pb.WatchEvent) {
					if res := ev.GetResult(); res != nil && len(res.Receipt) > 0 {
						res.Receipt = resealReceipt(t, prov, res.Receipt, tc.edit)
					}
				})
				key := f.Submit("version: 1\nname: billed\ntask:\n  module: m.wasm\n"+small, exectest.Write("x\n", "", 0))
				if v := f.Wait(key); v.State != "succeeded" {
					t.Fatalf("job %+v", v)
				}
				f.Until("the receipt refused", func() bool {
					v, _ := f.Requester.Requester.Job(key)
					return v.Slots[0].ReceiptRefused != ""
				})
				v, _ := f.Requester.Requester.Job(key)
				s := v.Slots[0]
				if !strings.Contains(s.ReceiptRefused, tc.want) || s.Billed != "" || v.Billed != "" {
					t.Fatalf("slot %+v, job billed %q: want the receipt refused (%q) and nothing billed", s, v.Billed, tc.want)
				}
				if !strings.Contains(strings.Join(v.History, "\n"), "refused, not countersigned") {
					t.Fatalf("history %q does not say the receipt was refused", v.History)
				}
				f.Settle(time.Second)
				if rs, err := f.Requester.Store.Receipts(); err != nil || len(rs) != 0 {
					t.Fatalf("the requester kept %d receipts, %v: want none", len(rs), err)
				}
				if rs, err := prov.Store.Receipts(); err != nil || len(rs) != 1 || len(rs[0].Countersignature) != 0 {
					t.Fatalf("provider's receipts %+v, %v: want one, not countersigned", rs, err)
				}
			})
		})
	}
	t.Run("honest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := nodetest.New(t, "fr-par")
			key := f.Submit("version: 1\nname: billed\ntask:\n  module: m.wasm\n"+small, exectest.Write("x\n", "", 0))
			f.Wait(key)
			f.Until("the receipt countersigned", func() bool {
				rs, err := f.Requester.Store.Receipts()
				return err == nil && len(rs) == 1
			})
			v, _ := f.Requester.Requester.Job(key)
			if v.Slots[0].ReceiptRefused != "" || v.Slots[0].Billed == "" {
				t.Fatalf("honest receipt: slot %+v", v.Slots[0])
			}
		})
	})
}

// TestOfferChecked: an offer signed by its provider but whose total is not
// the cost of what was asked at its price, and an offer answering a new
// request under the nonce of an earlier one (SPEC 6.1 check 5), are refused
// with the reason, and declined at once so that the provider frees what
// they reserved.
func TestOfferChecked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		var mu sync.Mutex
		var first []byte // the nonce of the first offer made, reused by every later one
		mode := "total"
		prov.OnOffer(func(resp *pb.OfferResponse) {
			env := resp.GetOffer()
			if env == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch mode {
			case "total":
				o, err := record.OpenOffer(env, f.Clock.Now())
				if err != nil {
					t.Error(err)
					return
				}
				o.Total.Nanos++
				if resp.Result, err = resealOffer(prov, o); err != nil {
					t.Error(err)
				}
			case "replay":
				o, err := record.OpenOffer(env, f.Clock.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if first == nil {
					first = o.Nonce
					return
				}
				// A later offer, for its own request, under the
				// nonce of the first.
				o.Nonce = first
				if resp.Result, err = resealOffer(prov, o); err != nil {
					t.Error(err)
				}
			}
		})
		env := f.Job("version: 1\nname: q\ntask:\n  module: m.wasm\n"+small, exectest.Empty())
		ask := func() string {
			t.Helper()
			q, err := f.Requester.Requester.Quote(context.Background(), env, []string{prov.ID})
			if err != nil || len(q) != 1 {
				t.Fatalf("quote %+v, %v", q, err)
			}
			return q[0].Refusal
		}
		if r := ask(); !strings.Contains(r, "total") || !strings.Contains(r, "refused here") {
			t.Fatalf("an offer with a wrong total: refusal %q", r)
		}
		f.Settle(time.Second)
		if st := prov.Provider.MarketState(); st.Reservations != 0 {
			t.Fatalf("the refused offer was not declined: %d reservations", st.Reservations)
		}
		mu.Lock()
		mode = "replay"
		mu.Unlock()
		if r := ask(); r != "" {
			t.Fatalf("first offer refused: %q", r)
		}
		if r := ask(); !strings.Contains(r, "replayed") {
			t.Fatalf("an offer nonce seen before: refusal %q", r)
		}
	})
}

func resealOffer(m *nodetest.Member, o *pb.Offer) (*pb.OfferResponse_Offer, error) {
	env, err := record.Seal(m.Key, o)
	if err != nil {
		return nil, err
	}
	return &pb.OfferResponse_Offer{Offer: env}, nil
}
