package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// startDaemon starts a daemon of c in dir, stopped at the test's end.
func startDaemon(t *testing.T, dir string, c config.Config) *Daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartDaemon(ctx, dir, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(0) })
	return d
}

// TestWholesaleDevnet: on real daemons over loopback, a site publishes its
// tariff in the DHT, where retailers find it; two retailers get slices at
// it, the site's own capacity keeps off them, and a third retailer past the
// tariff's capacity is refused SLICE_FULL; a withdrawal without notice is
// refused and one with it reaches its grantee; the grants and the slices
// held survive the site's restart.
func TestWholesaleDevnet(t *testing.T) {
	siteDir, sc := loopbackDaemon(t)
	sc.Capacity.CPU, sc.Capacity.Memory = ptr(config.CPU(8000)), ptr(config.Bytes(16<<30))
	sc.Capacity.Reserve, sc.Capacity.OfferedPercent = config.Reserve{}, 100 // sells 8 vCPUs, half of them for slices
	sc.Labels.Jurisdiction, sc.Labels.Certifications, sc.Labels.Operator = "fr", []string{"secnumcloud"}, "site-op"
	sc.Wholesale.Enabled = true
	site := startDaemon(t, siteDir, sc)
	boot, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: site.Node.ID(), Addrs: site.Node.Host().Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	var retailers []*Daemon
	for range 4 {
		dir, c := loopbackDaemon(t)
		c.Bootstrap = []string{boot[0].String()}
		retailers = append(retailers, startDaemon(t, dir, c))
	}
	r1, r2, r3 := retailers[0].Node, retailers[1].Node, retailers[2].Node
	if site.Node.opts.RentEvery != 24*time.Hour || site.Node.stopRent == nil || r1.stopRent != nil {
		t.Errorf("rent billed every %s (timer %v) by the site, timer %v on a retailer: want the default 24h on the site only",
			site.Node.opts.RentEvery, site.Node.stopRent != nil, r1.stopRent != nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var sites []api.TariffView
	waitFor(t, time.Minute, "the site's tariff in the DHT", func() bool {
		sites, err = r1.WholesaleSites(ctx, "fr")
		return err == nil && len(sites) == 1
	})
	tv := sites[0]
	if tv.Site != site.Node.ID().String() || tv.Labels["certification"] != "secnumcloud" || tv.Labels["operator"] != "" ||
		tv.Capacity.CPUMillis != 4000 || tv.CPUPerHour != "0.019998 EUR" || tv.Notice != "24h" {
		t.Errorf("the tariff a retailer reads: %+v", tv)
	}

	ask := api.SliceAsk{Site: tv.Site, Resources: scheduler.Resources{CPUMillis: 1500, MemoryBytes: 2 << 30}, End: time.Now().Add(10 * 24 * time.Hour)}
	g1, err := r1.RequestSlice(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.RequestSlice(ctx, ask); err != nil {
		t.Fatal(err)
	}
	if g1.Role != "retailer" || g1.State != "active" || g1.Grantee != r1.ID().String() {
		t.Errorf("the retailer's grant: %+v", g1)
	}

	// The site grants the third retailer a slice at double the published
	// price: the retailer refuses it and keeps it as proof.
	site.Node.Transport().ServeWholesale(func(ctx context.Context, from string, req *pb.WholesaleRequest) *pb.WholesaleAnswer {
		a := site.Node.desk.Answer(ctx, from, req)
		if env := a.GetGrant(); env != nil && from == string(r3.ID()) {
			g, err := record.OpenGrant(env, time.Now())
			if err != nil {
				t.Error(err)
				return a
			}
			g.Price.CpuNanosPerSecond *= 2
			if env, err = record.Seal(site.Node.Identity(), g); err != nil {
				t.Error(err)
			}
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Grant{Grant: env}}
		}
		return a
	})
	ask.Resources = scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30}
	if _, err := r3.RequestSlice(ctx, ask); protocol.CodeOf(err) != pb.Code_CODE_TARIFF_MISMATCH {
		t.Fatalf("a grant off the tariff: %v, want TARIFF_MISMATCH", err)
	}
	site.Node.serveWholesale()
	if _, err := r3.RequestSlice(ctx, ask); protocol.CodeOf(err) != pb.Code_CODE_SLICE_FULL {
		t.Fatalf("a retailer past the tariff's capacity: %v, want SLICE_FULL", err)
	}
	if free := site.Node.MarketState().Free.CPUMillis; free != 4000 {
		t.Errorf("the site's own retail has %dm CPU free, want 4000m: the slices are held apart", free)
	}

	// The audit, by a node that is neither: the two retailers' evidence
	// passes; with the third's, the site fails on the grant's terms.
	auditor := retailers[3].Node
	var evidence []record.Evidence
	for _, r := range []*Node{r1, r2, r3} {
		ev, err := r.WholesaleEvidence(tv.Site)
		if err != nil || len(ev) != 1 {
			t.Fatalf("evidence of %s: %d, %v", r.ID(), len(ev), err)
		}
		evidence = append(evidence, ev...)
	}
	rep, err := auditor.AuditSite(ctx, tv.Site, evidence[:2])
	if err != nil || !rep.Pass() || rep.Grants != 2 {
		t.Fatalf("the audit of the two retailers' evidence: %+v, %v", rep, err)
	}
	rep, err = auditor.AuditSite(ctx, tv.Site, evidence)
	if err != nil || rep.Pass() || rep.Findings[0].Rule != record.RuleTerms {
		t.Fatalf("the audit with the third's evidence: %+v, %v", rep, err)
	}

	_, err = site.Node.WithdrawSlice(ctx, mustHex(t, g1.ID), time.Now().Add(time.Hour))
	if protocol.CodeOf(err) != pb.Code_CODE_NOTICE_TOO_SHORT {
		t.Fatalf("a withdrawal without notice: %v, want NOTICE_TOO_SHORT", err)
	}
	end := time.Now().Add(48 * time.Hour).Truncate(time.Millisecond)
	w, err := site.Node.WithdrawSlice(ctx, mustHex(t, g1.ID), end)
	if err != nil || !w.Delivered {
		t.Fatalf("withdrawal: %+v, %v", w, err)
	}
	held, err := r1.Wholesale()
	if err != nil || len(held.Grants) != 1 || !held.Grants[0].Withdrawn || !held.Grants[0].End.Equal(end) {
		t.Fatalf("the retailer's grant after the withdrawal: %+v, %v", held, err)
	}
	if st := r1.Status(); st.Wholesale == nil || st.Wholesale.Holds != 1 {
		t.Errorf("the retailer's status: %+v", st.Wholesale)
	}

	if err := site.Stop(0); err != nil {
		t.Fatal(err)
	}
	site = startDaemon(t, siteDir, sc)
	made, err := site.Node.Wholesale()
	if err != nil || made.Tariff == nil || made.Tariff.Granted.CPUMillis != 4000 || len(made.Grants) != 3 {
		t.Fatalf("the site's grants after a restart: %+v, %v", made, err)
	}
	if free := site.Node.MarketState().Free.CPUMillis; free != 4000 {
		t.Errorf("after a restart the site's retail has %dm CPU free, want 4000m", free)
	}
	for _, g := range made.Grants {
		if g.ID == g1.ID && !g.Withdrawn {
			t.Errorf("the withdrawal was lost in the restart: %+v", g)
		}
	}
}

func mustHex(t *testing.T, s string) string {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRetailDevnet: issue 19's done-when, on real daemons over loopback. A
// site grants slices to two retailers (role retailer), each selling under
// its own operator label and prices with the site's certification; a
// customer who knows nothing of wholesale places a job through each, which
// the site runs: the customer's signed job and epoch go through unchanged,
// the output comes back, the customer's receipt is the retailer's at its
// price and the site's to the retailer bills nothing, both countersigned
// and linked, and the billing export shows both legs and the margin. A
// retailer over its slice is refused, by its own market and by the site.
// The audit of the site passes on the two retailers' evidence; a third
// retailer offered worse terms makes it fail.
func TestRetailDevnet(t *testing.T) {
	siteDir, sc := loopbackDaemon(t)
	sc.Capacity.CPU, sc.Capacity.Memory, sc.Capacity.Scratch = ptr(config.CPU(6000)), ptr(config.Bytes(12<<30)), ptr(config.Bytes(3<<30))
	sc.Capacity.Reserve, sc.Capacity.OfferedPercent = config.Reserve{}, 100
	sc.Labels.Jurisdiction, sc.Labels.Certifications, sc.Labels.Operator = "fr", []string{"secnumcloud"}, "site-op"
	sc.Wholesale.Enabled, sc.Wholesale.SharePercent = true, 100
	site := startDaemon(t, siteDir, sc)
	boot := peer.AddrInfo{ID: site.Node.ID(), Addrs: site.Node.Host().Addrs()}
	addrs, err := peer.AddrInfoToP2pAddrs(&boot)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slice := scheduler.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, ScratchBytes: 1 << 30}
	retailer := func(op string, cpuPerHour config.Money) *Daemon {
		dir, c := loopbackDaemon(t)
		c.Role, c.Labels.Operator, c.Bootstrap, c.Pricing.CPUPerHour = config.RoleRetailer, op, []string{addrs[0].String()}, cpuPerHour
		d := startDaemon(t, dir, c)
		waitFor(t, time.Minute, "the site's tariff in the DHT", func() bool {
			_, err := d.Node.RequestSlice(ctx, api.SliceAsk{Site: site.Node.ID().String(), Resources: slice, End: time.Now().Add(10 * 24 * time.Hour)})
			return err == nil
		})
		return d
	}
	shops := []*Daemon{retailer("shop-a", 50_000_000), retailer("shop-b", 60_000_000)}
	for _, shop := range shops {
		offering := shop.Node.prov.Offering()
		op, _ := offering.Labels.Get("operator")
		cert, _ := offering.Labels.Get("certification")
		if shop.Node.Status().Role != config.RoleRetailer || offering.Capacity != slice || cert != "secnumcloud" || !strings.HasPrefix(op, "shop-") {
			t.Fatalf("a retailer sells %+v under %v", offering.Capacity, offering.Labels)
		}
	}
	if free := site.Node.MarketState().Free.CPUMillis; free != 2000 {
		t.Fatalf("the site's own retail has %dm CPU free, want 2000m", free)
	}

	customer := startRequesterDaemon(t, boot)
	for _, shop := range shops {
		op, _ := shop.Node.prov.Offering().Labels.Get("operator")
		spec := "version: 1\nname: retail\ntask:\n  module: m.wasm\n  args: [--name, " + op + "]\n  resources: {cpu: 500m, memory: 64Mi}\n" +
			"constraints:\n  - certification = secnumcloud\n  - operator = " + op + "\n"
		key := submitSpec(t, customer.Node, spec, exectest.Module(t, "hello"), nil)
		v, err := customer.Node.Wait(ctx, key)
		if err != nil || v.State != "succeeded" || v.Slots[0].Provider != shop.Node.ID().String() || v.Slots[0].Site != site.Node.ID().String() {
			t.Fatalf("the customer's job through %s: %+v, %v: want it succeeded, sold by it, run at the site", op, v, err)
		}
		if stdout, _, _, _, _ := customer.Node.Logs(key); string(stdout) != "hello, "+op+"! (0 lines on stdin)\n" {
			t.Errorf("the customer's output through %s: %q", op, stdout)
		}
		// The site ran it: the customer's job, under the retailer's lease.
		leases, err := site.Store.Leases(func(l *store.Lease) bool { return l.Requester == string(shop.Node.ID()) })
		if err != nil || len(leases) != 1 || leases[0].JobCID != string(mustCID(t, key).Bytes()) {
			t.Fatalf("the site's leases for %s: %+v, %v", op, leases, err)
		}
	}

	// Both legs' receipts, countersigned and linked, for each retailer.
	waitFor(t, time.Minute, "both legs countersigned", func() bool {
		sr, err := site.Store.Receipts()
		n := 0
		for _, r := range sr {
			if len(r.Countersignature) > 0 {
				n++
			}
		}
		for _, shop := range shops {
			rr := sold(t, shop)
			if len(rr) != 1 || len(rr[0].Countersignature) == 0 {
				return false
			}
		}
		return err == nil && n == 2
	})
	siteReceipts, _ := site.Store.Receipts()
	for _, shop := range shops {
		rr := sold(t, shop)
		retailReceipt, err := record.OpenReceipt(rr[0].Envelope)
		if err != nil || retailReceipt.GetAmount().GetNanos() == 0 || peer.ID(retailReceipt.Requester) != customer.Node.ID() {
			t.Fatalf("the retail receipt: %+v, %v", retailReceipt, err)
		}
		linked := false
		for _, sr := range siteReceipts {
			h := sha256.Sum256(sr.Envelope)
			rc, err := record.OpenReceipt(sr.Envelope)
			if err == nil && bytes.Equal(retailReceipt.SiteReceipt, h[:]) {
				linked = rc.OnSlice && rc.GetAmount().GetNanos() == 0 && peer.ID(rc.Requester) == shop.Node.ID() && rc.Epoch == retailReceipt.Epoch
			}
		}
		if !linked {
			t.Errorf("the retail receipt of %s names no site receipt of a run on its slice billing nothing", shop.Node.ID())
		}
		// The billing export shows both legs and the margin.
		st, err := shop.Node.Billing(billing.Window{})
		if err != nil || len(st.Slices) != 1 || st.Slices[0].Role != "retailer" || len(st.Margins) != 1 || st.Rows[0].Leg != billing.LegRetail {
			t.Errorf("the retailer's statement: %+v, %v", st, err)
		}
	}
	if st, err := site.Node.Billing(billing.Window{}); err != nil || len(st.Slices) != 2 || st.Slices[0].Role != "site" || st.Rows[0].Leg != billing.LegSlice {
		t.Errorf("the site's statement: %+v, %v", st, err)
	}

	// A retailer over its slice: refused by its own market, and by the
	// site when it asks on its slice for more than it holds.
	big := scheduler.Request{Nonce: string(mustRandom(t, protocol.NonceSize)), JobCID: string(mustCID(t, "bafkreieuvcgrqk6lxjtxdqjosw2rupihiy65msn3jf22aqp74z3wzkfxtu").Bytes()),
		Executor: "wasm", Resources: scheduler.Resources{CPUMillis: 3000, MemoryBytes: 64 << 20}, Timeout: time.Minute, ExpiresAt: time.Now().Add(5 * time.Second)}
	if _, _, err := customer.Node.RequestOffer(ctx, shops[0].Node.ID(), big); protocol.CodeOf(err) != pb.Code_CODE_INSUFFICIENT_CPU {
		t.Errorf("a job past the retailer's slice: %v, want INSUFFICIENT_CPU", err)
	}
	ev, err := shops[0].Node.WholesaleEvidence(site.Node.ID().String())
	if err != nil || len(ev) != 1 {
		t.Fatalf("evidence: %v, %v", ev, err)
	}
	big.Nonce, big.Grant = string(mustRandom(t, protocol.NonceSize)), string(ev[0].Grant)
	if _, _, err := shops[0].Node.RequestOffer(ctx, site.Node.ID(), big); protocol.CodeOf(err) != pb.Code_CODE_SLICE_EXCEEDED {
		t.Errorf("the retailer asking the site past its slice: %v, want SLICE_EXCEEDED", err)
	}

	// The audit: the two retailers' evidence passes; a third retailer
	// granted a slice at double the published price makes it fail.
	var evidence []record.Evidence
	for _, shop := range shops {
		ev, err := shop.Node.WholesaleEvidence(site.Node.ID().String())
		if err != nil || len(ev) != 1 || len(ev[0].Receipts) != 1 {
			t.Fatalf("evidence, with the site's receipt of the run sold: %v, %v", ev, err)
		}
		evidence = append(evidence, ev...)
	}
	if rep, err := customer.Node.AuditSite(ctx, site.Node.ID().String(), evidence); err != nil || !rep.Pass() || rep.Grants != 2 {
		t.Fatalf("the audit of the two retailers' evidence: %+v, %v", rep, err)
	}
	thirdDir, tc := loopbackDaemon(t)
	tc.Role, tc.Labels.Operator, tc.Bootstrap = config.RoleRetailer, "shop-c", []string{addrs[0].String()}
	third := startDaemon(t, thirdDir, tc)
	site.Node.Transport().ServeWholesale(func(ctx context.Context, from string, req *pb.WholesaleRequest) *pb.WholesaleAnswer {
		a := site.Node.desk.Answer(ctx, from, req)
		if env := a.GetGrant(); env != nil && from == string(third.Node.ID()) {
			g, err := record.OpenGrant(env, time.Now())
			if err == nil {
				g.Price.CpuNanosPerSecond *= 2
				env, err = record.Seal(site.Node.Identity(), g)
			}
			if err != nil {
				t.Error(err)
			}
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Grant{Grant: env}}
		}
		return a
	})
	waitFor(t, time.Minute, "the third retailer's grant, off terms", func() bool {
		_, err := third.Node.RequestSlice(ctx, api.SliceAsk{Site: site.Node.ID().String(),
			Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30}, End: time.Now().Add(24 * time.Hour)})
		return protocol.CodeOf(err) == pb.Code_CODE_TARIFF_MISMATCH
	})
	site.Node.serveWholesale()
	ev, err = third.Node.WholesaleEvidence(site.Node.ID().String())
	if err != nil || len(ev) != 1 {
		t.Fatalf("the third retailer's evidence: %v, %v", ev, err)
	}
	rep, err := customer.Node.AuditSite(ctx, site.Node.ID().String(), append(evidence, ev...))
	if err != nil || rep.Pass() || len(rep.Findings) != 1 || rep.Findings[0].Rule != record.RuleTerms {
		t.Fatalf("the audit with the third retailer's evidence: %+v, %v", rep, err)
	}
}

// sold are the receipts a node keeps of what it sold: those it sealed.
func sold(t *testing.T, d *Daemon) []store.Receipt {
	t.Helper()
	all, err := d.Store.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Receipt
	for _, r := range all {
		if rc, err := record.OpenReceipt(r.Envelope); err == nil && peer.ID(rc.Provider) == d.Node.ID() {
			out = append(out, r)
		}
	}
	return out
}

func mustRandom(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRetailSliceTurns: a slice rented ahead goes on the retailer's sale as
// it starts, and comes off as it ends, without waiting for the retailer's
// next announcement.
func TestRetailSliceTurns(t *testing.T) {
	siteDir, sc := loopbackDaemon(t)
	sc.Capacity.CPU, sc.Capacity.Memory = ptr(config.CPU(4000)), ptr(config.Bytes(8<<30))
	sc.Capacity.Reserve, sc.Capacity.OfferedPercent = config.Reserve{}, 100
	sc.Labels.Jurisdiction = "fr"
	sc.Wholesale.Enabled, sc.Wholesale.MinPeriod = true, config.Duration(time.Second)
	site := startDaemon(t, siteDir, sc)
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: site.Node.ID(), Addrs: site.Node.Host().Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	dir, c := loopbackDaemon(t)
	c.Role, c.Labels.Operator, c.Bootstrap = config.RoleRetailer, "shop", []string{addrs[0].String()}
	shop := startDaemon(t, dir, c).Node
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slice := scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30}
	start := time.Now().Add(2 * time.Second)
	waitFor(t, time.Minute, "a slice granted", func() bool {
		_, err := shop.RequestSlice(ctx, api.SliceAsk{Site: site.Node.ID().String(), Resources: slice, Start: start, End: start.Add(2 * time.Second)})
		return err == nil
	})
	if got := shop.prov.Offering().Capacity; got != (scheduler.Resources{}) && time.Now().Before(start) {
		t.Errorf("the retailer sells %+v before its slice starts", got)
	}
	waitFor(t, 30*time.Second, "the slice on sale once it starts", func() bool { return shop.prov.Offering().Capacity == slice })
	waitFor(t, 30*time.Second, "the slice off sale once it ends", func() bool { return shop.prov.Offering().Capacity == scheduler.Resources{} })
}
