package requester_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// The requester's behaviour on the in-memory network, in virtual time: each
// test runs in a synctest bubble, so that heartbeats, offer timeouts and
// backoffs pass in no time, whatever the machine's load.

const small = "  resources: {cpu: 100m, memory: 32Mi}\n"

// TestPlaces: a job lands only on a provider of its jurisdiction and succeeds
// with its output; its receipt is countersigned; a job over every price
// ceiling fails with the reasons.
func TestPlaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "de-fra", "fr-lyo")
		mod := exectest.Write("hallo\n", "", 0)
		key := f.Submit("version: 1\nname: hi\ntask:\n  module: m.wasm\n"+small+"constraints:\n  - jurisdiction = de\n", mod)
		v := f.Wait(key)
		if v.State != "succeeded" || v.Slots[0].Provider != peer.ID(f.Providers[1].ID).String() {
			t.Fatalf("job %+v, want succeeded on the German provider", v)
		}
		if stdout, _, _, _, _ := f.Requester.Requester.Logs(key); string(stdout) != "hallo\n" {
			t.Fatalf("stdout %q", stdout)
		}
		f.Settle(time.Second) // the receipt is settled behind the result
		receipts, err := f.Requester.Store.Receipts()
		if err != nil || len(receipts) != 1 || len(receipts[0].Countersignature) == 0 {
			t.Fatalf("requester's receipts %+v, %v: want one countersigned", receipts, err)
		}
		if theirs, err := f.Providers[1].Store.Receipts(); err != nil || len(theirs) != 1 || len(theirs[0].Countersignature) == 0 {
			t.Fatalf("provider's receipts %+v, %v: want one countersigned", theirs, err)
		}

		key = f.Submit("version: 1\nname: thrifty\ntask:\n  module: m.wasm\n"+small+"max_price: \"0.000000001 EUR\"\n", mod)
		v = f.Wait(key)
		if v.State != "failed" || !strings.Contains(v.Reason, "price above ceiling") {
			t.Fatalf("job over every ceiling: %+v", v)
		}
	})
}

// TestReschedules: the provider running a job crashes; its heartbeats stop,
// the placement declares the lease lost and places the job again under a
// new epoch on another provider, where it completes.
func TestReschedules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "fr-lyo", "fr-mrs")
		for _, p := range f.Providers {
			p.Hold()
		}
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small+"constraints:\n  - jurisdiction = fr\n", exectest.Write("done\n", "", 0))
		f.Until("a provider to hold the lease", func() bool {
			n := 0
			for _, p := range f.Providers {
				n += p.Held()
			}
			return n == 1
		})
		var first *nodetest.Member
		for _, p := range f.Providers {
			if p.Held() == 1 {
				first = p
			} else {
				p.Release()
			}
		}
		if first == nil {
			t.Fatal("no provider holds the lease")
		}
		start := time.Now()
		first.Crash()
		v := f.Wait(key)
		if v.State != "succeeded" || v.Slots[0].Provider == peer.ID(first.ID).String() || v.Slots[0].Epoch != 2 {
			t.Fatalf("after the provider crashed: %+v", v)
		}
		t.Logf("rescheduled and done %v (virtual) after the crash", time.Since(start))
		// The silent provider is not asked again by the round that places
		// the lost lease: it would cost an offer timeout.
		for _, o := range v.Asked {
			if o.Provider == peer.ID(first.ID).String() && o.Reason == "no answer" {
				t.Fatalf("the crashed provider was asked again: %+v", v.Asked)
			}
		}
	})
}

// TestProviderRestartReschedules: the provider running a job restarts
// before its heartbeats are missed; it reports the lease that died with its
// process (CODE_RUN_LOST), and the requester places the job again under a
// new epoch, where it completes, instead of failing it.
func TestProviderRestartReschedules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "fr-lyo")
		for _, p := range f.Providers {
			p.Hold()
		}
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Write("done\n", "", 0))
		f.Until("a provider to hold the lease", func() bool {
			n := 0
			for _, p := range f.Providers {
				n += p.Held()
			}
			return n == 1
		})
		var first *nodetest.Member
		for _, p := range f.Providers {
			if p.Held() == 1 {
				first = p
			}
		}
		// Killed as kill -9 kills: nothing of the old process ends its
		// lease, whose run never starts (it stays held).
		f.Net.Crash(first.ID)
		first.Store.Close()
		first.Data.Close()
		first.Restart()
		for _, p := range f.Providers {
			if p != first {
				p.Release()
			}
		}
		v := f.Wait(key)
		if v.State != "succeeded" || v.Slots[0].Epoch != 2 {
			t.Fatalf("after the provider restarted: %+v", v)
		}
		if !slices.ContainsFunc(v.History, func(h string) bool { return strings.Contains(h, "the run died with its provider") }) {
			t.Fatalf("the history does not say the run died with its provider: %q", v.History)
		}
		// Its events: the first epoch leased and lost on the restarted
		// provider, the second leased and ended on another.
		firstID, second := peer.ID(first.ID).String(), v.Slots[0].Provider
		var got []string
		for _, e := range v.Events {
			who := "other"
			if e.Provider == firstID {
				who = "first"
			} else if e.Provider != second {
				who = e.Provider
			}
			got = append(got, fmt.Sprintf("%s %d %s", e.Kind, e.Epoch, who))
		}
		if want := []string{"leased 1 first", "lost 1 first", "leased 2 other", "ended 2 other"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
		// Billed is what ran: the second run's receipt alone (the lost run
		// made none), below the quote, which prices the whole timeout.
		quote, err1 := protocol.ParsePrice(v.Slots[0].Price)
		paid, err2 := protocol.ParsePrice(v.Slots[0].Billed)
		if err1 != nil || err2 != nil || v.Billed != v.Slots[0].Billed || paid.Nanos >= quote.Nanos {
			t.Fatalf("billed %q (slot %q), quoted %q: %v %v", v.Billed, v.Slots[0].Billed, v.Slots[0].Price, err1, err2)
		}
	})
}

// TestDeadProviderAskedOnce: a provider crashed, its records still in the
// DHT, costs the first job one unanswered probe, which holds it only for the
// grace its round gives the others once it has the live provider's offer
// (SPEC 6.1), not for the offer timeout. The requester learns that the
// provider is dead when that probe times out; the jobs after it, within
// deadFor, do not ask it at all.
func TestDeadProviderAskedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "fr-lyo")
		dead := f.Providers[0]
		f.Net.Crash(dead.ID)
		deadID := peer.ID(dead.ID).String()
		asked := func(v requester.JobView) bool {
			return slices.ContainsFunc(v.Asked, func(o requester.OutcomeView) bool { return o.Provider == deadID })
		}
		start := f.Clock.Now()
		first := f.Wait(f.Submit("version: 1\nname: a\ntask:\n  module: m.wasm\n"+small, exectest.Write("a\n", "", 0)))
		if first.State != "succeeded" || !asked(first) {
			t.Fatalf("the first job: %s, asked the dead provider: %v", first.State, asked(first))
		}
		timeout := f.Placement.WithDefaults().OfferTimeout
		if took := f.Clock.Now().Sub(start); took >= timeout {
			t.Fatalf("the first job took %s: its round waited out the dead provider's %s", took, timeout)
		}
		for _, o := range first.Asked {
			if o.Provider == deadID && (o.Reason != "no answer" || o.Detail != "no offer while the others' were in hand") {
				t.Fatalf("the dead provider's outcome: %s (%q), want no answer, cut off by the grace", o.Reason, o.Detail)
			}
		}
		f.Settle(timeout) // the dead provider's probe times out
		for i := range 3 {
			v := f.Wait(f.Submit(fmt.Sprintf("version: 1\nname: b%d\ntask:\n  module: m.wasm\n", i)+small, exectest.Write("b\n", "", 0)))
			if v.State != "succeeded" || asked(v) {
				t.Fatalf("job %d after: %s, asked the dead provider: %+v", i, v.State, v.Asked)
			}
		}
	})
}

// TestRestart: the requester's process ends while a lease is running; a new
// one on the same store and key takes the job up, watches the lease again
// and gets the result, without a new epoch.
func TestRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "fr-lyo")
		for _, p := range f.Providers {
			p.Hold()
		}
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Write("again\n", "", 0))
		f.Until("the lease to be accepted", func() bool {
			v, _ := f.Requester.Requester.Job(key)
			return len(v.Slots) == 1 && v.Slots[0].State == "running"
		})
		f.Settle(time.Second) // its status saved
		before, _ := f.Requester.Requester.Job(key)
		if len(before.Slots) != 1 || before.Slots[0].Epoch != 1 {
			t.Fatalf("before the restart: %+v", before)
		}
		f.Requester.Crash()
		f.Requester.Restart()
		for _, p := range f.Providers {
			p.Release()
		}
		v := f.Wait(key)
		if v.State != "succeeded" || v.Slots[0].Epoch != 1 {
			t.Fatalf("after the requester restarted: %+v (before: %+v)", v, before.Slots)
		}
		if stdout, _, _, _, _ := f.Requester.Requester.Logs(key); string(stdout) != "again\n" {
			t.Fatalf("stdout %q", stdout)
		}
		// What happened before the restart is still told, and not twice.
		var kinds []string
		for _, e := range v.Events {
			kinds = append(kinds, fmt.Sprintf("%s %d", e.Kind, e.Epoch))
		}
		if want := []string{"leased 1", "ended 1"}; !slices.Equal(kinds, want) {
			t.Fatalf("events %q, want %q", kinds, want)
		}
		if len(v.History) <= len(before.History) || !slices.Equal(v.History[:len(before.History)], before.History) {
			t.Fatalf("history after the restart %q, before %q", v.History, before.History)
		}
	})
}

// TestLeaseOnDiskBeforeSent: when a provider receives a lease, the
// requester's store already holds it, epoch and provider: a requester
// killed at that moment resumes watching it, rather than placing the slot
// again under the same epoch elsewhere (a run twice under one epoch).
func TestLeaseOnDiskBeforeSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "fr-lyo", "de-fra")
		var seen atomic.Int32
		for _, p := range f.Providers {
			p.OnLease(func(env []byte) {
				l, err := record.OpenLease(env, f.Clock.Now())
				if err != nil {
					t.Errorf("lease: %v", err)
					return
				}
				rec, err := f.Requester.Store.Job(string(l.JobCid))
				if err != nil {
					t.Errorf("lease %x epoch %d sent, its job not stored: %v", l.LeaseId, l.Epoch, err)
					return
				}
				i := slices.IndexFunc(rec.Slots, func(s store.Slot) bool { return s.LeaseID == string(l.LeaseId) })
				if i < 0 || rec.Slots[i].Epoch != l.Epoch || rec.Slots[i].Provider != p.ID {
					t.Errorf("lease %x epoch %d sent to %s before it was stored", l.LeaseId, l.Epoch, peer.ID(p.ID))
				}
				seen.Add(1)
			})
		}
		var keys []string
		for i := range 6 {
			keys = append(keys, f.Submit(fmt.Sprintf("version: 1\nname: j%d\ntask:\n  module: m.wasm\n", i)+small, exectest.Write("x\n", "", 0)))
		}
		for _, k := range keys {
			if v := f.Wait(k); v.State != "succeeded" {
				t.Fatalf("%s: %+v", k, v)
			}
		}
		if seen.Load() < int32(len(keys)) {
			t.Fatalf("%d leases seen, want %d", seen.Load(), len(keys))
		}
	})
}

// TestRestartShowsFinished: after a restart, a job that ended before is
// listed with its result and its output, and stopping it answers at once,
// twice (it used to block the API for good).
func TestRestartShowsFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Write("kept\n", "", 0))
		if v := f.Wait(key); v.State != "succeeded" {
			t.Fatalf("job %+v", v)
		}
		before, _ := f.Requester.Requester.Job(key)
		f.Settle(time.Second)
		f.Requester.Crash()
		f.Requester.Restart()
		r := f.Requester.Requester
		v, ok := r.Job(key)
		stdout, _, _, done, _ := r.Logs(key)
		if !ok || v.State != "succeeded" || !done || string(stdout) != "kept\n" {
			t.Fatalf("after restart: %+v, output %q", v, stdout)
		}
		// Its output, from the records: same root, size and provider.
		if len(before.Outputs) != 1 || len(v.Outputs) != 1 || v.Outputs[0].CID != before.Outputs[0].CID ||
			v.Outputs[0].Size != before.Outputs[0].Size || !slices.Equal(v.Outputs[0].Providers, before.Outputs[0].Providers) {
			t.Errorf("outputs after restart %+v, before %+v", v.Outputs, before.Outputs)
		}
		for range 2 {
			if !r.Stop(key) {
				t.Fatal("Stop does not know the job")
			}
		}
	})
}

// TestStopEndedJob: stopping a job whose placement has ended (final, and
// past its linger) returns at once, however often. It used to send on a
// channel nothing read, and hang the API's DELETE for good.
func TestStopEndedJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Empty())
		f.Wait(key)
		time.Sleep(time.Minute) // past the placement's linger
		synctest.Wait()
		stopped := make(chan bool)
		go func() {
			r := f.Requester.Requester
			ok := true
			for range 300 { // more than a job's queue of events holds
				ok = ok && r.Stop(key)
			}
			stopped <- ok
		}()
		synctest.Wait()
		select {
		case ok := <-stopped:
			if !ok {
				t.Fatal("Stop does not know the job")
			}
		default:
			t.Fatal("Stop blocks on a job whose placement ended")
		}
	})
}

// TestCloseWaits: Close returns only once every goroutine the requester
// started has ended: a receipt still being settled is not left running, to
// write to a store its owner is about to close.
func TestCloseWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		f.Requester.Requester.Close()
		slow := &slowReceipts{Transport: f.Requester.Peer}
		r, err := requester.New(requester.Config{Key: f.Requester.Key, Transport: slow, Store: f.Requester.Store, Placement: f.Placement})
		if err != nil {
			t.Fatal(err)
		}
		env := f.Job("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Empty())
		key, err := r.Submit(env, exectest.Empty(), "job.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := r.Wait(context.Background(), key); err != nil || v.State != "succeeded" {
			t.Fatalf("job %+v, %v", v, err)
		}
		f.Until("the receipt to be on its way", func() bool { return slow.inFlight.Load() == 1 })
		r.Close()
		if n := slow.inFlight.Load(); n != 0 {
			t.Fatalf("Close returned with %d receipt exchanges still going", n)
		}
	})
}

// slowReceipts is a transport whose receipt exchanges wait for their
// context's end, then take a second more to wind up.
type slowReceipts struct {
	transport.Transport
	inFlight atomic.Int32
}

func (s *slowReceipts) Receipt(ctx context.Context, to string, sub *pb.ReceiptSubmit) (*pb.ReceiptAck, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	<-ctx.Done()
	time.Sleep(time.Second)
	return nil, ctx.Err()
}

// TestSpread: on five providers of five operators, a job with count 3
// spread by operator lands on three distinct operators.
func TestSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "fr-lyo", "de-fra", "be-bru", "fr-mrs")
		key := f.Submit("version: 1\nname: fan\ncount: 3\ntask:\n  module: m.wasm\n"+small+"spread:\n  - {attribute: operator, weight: 100}\n", exectest.Empty())
		v := f.Wait(key)
		seen := map[string]bool{}
		for _, s := range v.Slots {
			seen[s.Provider] = true
		}
		if v.State != "succeeded" || len(v.Slots) != 3 || len(seen) != 3 {
			t.Fatalf("3 instances on %d providers: %+v", len(seen), v)
		}
	})
}

// TestStoresResults: a finished job's record carries each slot's result:
// state, exit code and the CIDs of its output and logs.
func TestStoresResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Write("out\n", "err\n", 0))
		f.Wait(key)
		f.Settle(time.Second)
		jobs, err := f.Requester.Store.Jobs(nil)
		if err != nil || len(jobs) != 1 || jobs[0].State != scheduler.JobSucceeded || len(jobs[0].Slots) != 1 || jobs[0].Slots[0].Result == nil {
			t.Fatalf("stored %+v, %v", jobs, err)
		}
		if v, _ := f.Requester.Requester.Job(key); v.Slots[0].StdoutCut || v.Slots[0].StderrCut {
			t.Fatalf("a short stream reads cut: %+v", v.Slots[0])
		}
		r := jobs[0].Slots[0].Result
		if r.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || r.StdoutCID != string(wire.SumCID([]byte("out\n")).Bytes()) ||
			r.StderrCID != string(wire.SumCID([]byte("err\n")).Bytes()) {
			t.Fatalf("stored result %+v", r)
		}
	})
}

// TestLogCutShown: a stream a provider cut at its log limit is shown cut in
// the job's view, and kept so in the store.
func TestLogCutShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t)
		f.MaxLog = 4
		f.AddProvider(nodetest.Market("fr-par", "opa"))
		key := f.Submit("version: 1\nname: r\ntask:\n  module: m.wasm\n"+small, exectest.Write("too long\n", "", 0))
		v := f.Wait(key)
		if v.State != "succeeded" || !v.Slots[0].StdoutCut || v.Slots[0].StderrCut {
			t.Fatalf("job %+v: want succeeded, stdout cut", v)
		}
		f.Settle(time.Second)
		jobs, err := f.Requester.Store.Jobs(nil)
		if err != nil || len(jobs) != 1 || jobs[0].Slots[0].Result == nil || !jobs[0].Slots[0].Result.StdoutCut {
			t.Fatalf("stored %+v, %v", jobs, err)
		}
	})
}

// TestQuote: a quote asks each provider, declines every offer, and leaves no
// reservation behind.
func TestQuote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par", "de-fra")
		env := f.Job("version: 1\nname: q\ntask:\n  module: m.wasm\n"+small+"constraints:\n  - jurisdiction = fr\n", exectest.Empty())
		q, err := f.Requester.Requester.Quote(context.Background(), env, []string{f.Providers[0].ID, f.Providers[1].ID})
		if err != nil || len(q) != 2 || q[0].Price == "" || q[1].Refusal == "" {
			t.Fatalf("quote %+v, %v: want a price from the French provider, a refusal from the German", q, err)
		}
		f.Settle(time.Second)
		for _, p := range f.Providers {
			if st := p.Provider.MarketState(); st.Reservations != 0 {
				t.Fatalf("a quote left %d reservations", st.Reservations)
			}
		}
	})
}

// TestRestartKeepsOperators: after a requester restart, a replica lost with
// its provider is placed again away from the operator that runs the other
// replica, though that operator is cheaper: the resumed slots keep their
// offers' labels (they used to come back without them, and both replicas
// ended on one operator).
func TestRestartKeepsOperators(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t)
		a1 := f.AddProvider(nodetest.Market("fr-par", "opa"))
		a2 := f.AddProvider(nodetest.Market("fr-par", "opa"))
		b := f.AddProvider(nodetest.Market("fr-lyo", "opb"))
		dear := nodetest.Market("fr-mrs", "opc")
		dear.Pricing.Base.CPUNanosPerSecond *= 100
		c := f.AddProvider(dear)
		for _, p := range f.Providers {
			p.Hold()
		}
		key := f.Submit("version: 1\nname: twice\nreplicas: 2\ntask:\n  module: m.wasm\n"+small, exectest.Write("same\n", "", 0))
		f.Until("both replicas leased", func() bool { return a1.Held()+a2.Held()+b.Held() == 2 })
		if b.Held() != 1 {
			t.Fatalf("replicas held by a1 %d, a2 %d, b %d: want one on operator b", a1.Held(), a2.Held(), b.Held())
		}
		f.Settle(time.Second) // the statuses saved
		f.Requester.Crash()
		// Every shard looked up and every provider asked: the choice is the
		// placement's, not the sample's.
		f.Placement.Shards, f.Placement.D = 64, 4
		f.Requester.Restart()
		b.Crash()
		for _, p := range []*nodetest.Member{a1, a2, c} {
			p.Release()
		}
		v := f.Wait(key)
		if v.State != "succeeded" {
			t.Fatalf("job %+v", v)
		}
		for _, s := range v.Slots {
			if s.Provider == peer.ID(c.ID).String() {
				return
			}
		}
		t.Fatalf("the lost replica went to %+v, not to the only other operator's provider", v.Slots)
	})
}

// TestCountersignatureDelivered: a provider that fails to take a
// countersignature gets it again, with backoff, until it does; one left
// undelivered when the requester dies is delivered by its next process.
func TestCountersignatureDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		p := f.Providers[0]
		countersigned := func() int {
			rs, err := p.Store.Receipts()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range rs {
				if len(r.Countersignature) > 0 {
					n++
				}
			}
			return n
		}
		undelivered := func() int {
			rs, err := f.Requester.Store.Undelivered()
			if err != nil {
				t.Fatal(err)
			}
			return len(rs)
		}

		p.FailReceipts(3)
		if v := f.Wait(f.Submit("version: 1\nname: a\ntask:\n  module: m.wasm\n"+small, exectest.Write("a\n", "", 0))); v.State != "succeeded" {
			t.Fatalf("%+v", v)
		}
		f.Until("the countersignature taken after three failures", func() bool { return countersigned() == 1 && undelivered() == 0 })

		p.FailReceipts(1 << 30) // until the requester's next process
		if v := f.Wait(f.Submit("version: 1\nname: b\ntask:\n  module: m.wasm\n"+small, exectest.Write("b\n", "", 0))); v.State != "succeeded" {
			t.Fatalf("%+v", v)
		}
		f.Until("the second receipt countersigned here", func() bool { return undelivered() == 1 })
		f.Requester.Crash()
		p.FailReceipts(0)
		f.Requester.Restart()
		f.Until("the countersignature delivered by the next process", func() bool { return countersigned() == 2 && undelivered() == 0 })
	})
}

// TestWaitingServedInOrder: jobs that wait for a full provider are placed
// in the order they were submitted as its capacity frees, one at a time.
func TestWaitingServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t)
		p := f.AddProvider(nodetest.Market("fr-par", "opa"))
		p.Hold()
		const whole = "  resources: {cpu: \"4\", memory: 32Mi}\n" // the provider's every CPU
		var keys []string
		for i := range 6 {
			keys = append(keys, f.Submit(fmt.Sprintf("version: 1\nname: j%d\ntask:\n  module: m.wasm\n", i)+whole, exectest.Write("x\n", "", 0)))
			f.Settle(300 * time.Millisecond) // their back-offs (1 s, the retry-after hint) end out of order
		}
		state := func(k string) string {
			v, _ := f.Requester.Requester.Job(k)
			return v.State
		}
		f.Until("the first to run and the others to wait", func() bool {
			if state(keys[0]) != "running" {
				return false
			}
			for _, k := range keys[1:] {
				if v, _ := f.Requester.Requester.Job(k); !strings.Contains(v.Reason, "waiting for capacity") {
					return false
				}
			}
			return true
		})
		for i := 1; i < len(keys); i++ {
			p.Release() // job i-1 runs and ends; its CPUs free
			p.Hold()
			f.Until(fmt.Sprintf("job %d to run", i), func() bool {
				for _, k := range keys[i+1:] {
					if state(k) == "running" {
						t.Fatalf("job %s placed before job %d: %q", k, i, keys)
					}
				}
				return state(keys[i]) == "running"
			})
		}
		p.Release()
		for _, k := range keys {
			if v := f.Wait(k); v.State != "succeeded" {
				t.Fatalf("%s: %+v", k, v)
			}
		}
	})
}

// TestWaitingBackfills: a job that asks less than an older one waiting for
// capacity is not held behind it. A provider of 4 vCPUs is full; a job of 4
// vCPUs and then one of 1 wait; a provider of 2 vCPUs joins, and the job of
// 1 runs there while the job of 4 still waits for the first.
func TestWaitingBackfills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t)
		p := f.AddProvider(nodetest.Market("fr-par", "opa"))
		p.Hold()
		job := func(name, cpu string) string {
			return f.Submit(fmt.Sprintf("version: 1\nname: %s\ntask:\n  module: m.wasm\n  resources: {cpu: %q, memory: 32Mi}\n", name, cpu), exectest.Write("x\n", "", 0))
		}
		state := func(k string) string {
			v, _ := f.Requester.Requester.Job(k)
			return v.State
		}
		waits := func(k string) bool {
			v, _ := f.Requester.Requester.Job(k)
			return strings.Contains(v.Reason, "waiting for capacity")
		}
		full := job("full", "4")
		f.Until("the first job of 4 vCPUs to run", func() bool { return state(full) == "running" })
		four := job("four", "4")
		f.Until("the second job of 4 vCPUs to wait", func() bool { return waits(four) })
		one := job("one", "1")
		f.Until("the job of 1 vCPU to wait", func() bool { return waits(one) })
		small := nodetest.Market("fr-par", "opb")
		small.Capacity.CPUMillis = 2000
		q := f.AddProvider(small)
		q.Hold()
		f.Until("the job of 1 vCPU to run on the new provider", func() bool { return state(one) == "running" })
		if !waits(four) {
			t.Fatalf("the second job of 4 vCPUs: %s, want still waiting", state(four))
		}
		p.Release()
		q.Release()
		for _, k := range []string{full, one, four} {
			if v := f.Wait(k); v.State != "succeeded" {
				t.Fatalf("%s: %+v", k, v)
			}
		}
	})
}
