package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/exec/exectest"
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

// TestRetailDevnet: a retailer (role retailer, real daemons on loopback)
// rents the whole of a site and sells it under its own operator label and
// prices with the site's certification; a customer who knows nothing of
// wholesale places a job, which the retailer takes and the site runs: the
// customer's signed job and its epoch go through unchanged, its output
// comes back, the customer's receipt is the retailer's at its retail price,
// countersigned, and the site's receipt to the retailer bills nothing (the
// slice is paid whole) and is countersigned too.
func TestRetailDevnet(t *testing.T) {
	siteDir, sc := loopbackDaemon(t)
	sc.Capacity.CPU, sc.Capacity.Memory, sc.Capacity.Scratch = ptr(config.CPU(4000)), ptr(config.Bytes(8<<30)), ptr(config.Bytes(1<<30))
	sc.Capacity.Reserve, sc.Capacity.OfferedPercent = config.Reserve{}, 100
	sc.Labels.Jurisdiction, sc.Labels.Certifications, sc.Labels.Operator = "fr", []string{"secnumcloud"}, "site-op"
	sc.Wholesale.Enabled, sc.Wholesale.SharePercent = true, 100
	site := startDaemon(t, siteDir, sc)
	boot := peer.AddrInfo{ID: site.Node.ID(), Addrs: site.Node.Host().Addrs()}
	addrs, err := peer.AddrInfoToP2pAddrs(&boot)
	if err != nil {
		t.Fatal(err)
	}
	rDir, rc := loopbackDaemon(t)
	rc.Role, rc.Labels.Operator, rc.Bootstrap = config.RoleRetailer, "shop", []string{addrs[0].String()}
	rc.Pricing.CPUPerHour = 50_000_000 // 0.05 a vCPU-hour
	ret := startDaemon(t, rDir, rc)
	if got := ret.Node.Status().Role; got != config.RoleRetailer {
		t.Fatalf("the retailer's role: %s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, time.Minute, "the site's tariff in the DHT", func() bool {
		_, err := ret.Node.RequestSlice(ctx, api.SliceAsk{Site: site.Node.ID().String(),
			Resources: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, ScratchBytes: 1 << 30}, End: time.Now().Add(10 * 24 * time.Hour)})
		return err == nil
	})
	st := ret.Node.Status()
	if st.Capacity.CPUMillis != 4000 || site.Node.MarketState().Free.CPUMillis != 0 {
		t.Fatalf("the retailer sells %+v; the site's own retail has %+v free", st.Capacity, site.Node.MarketState().Free)
	}
	if op, _ := ret.Node.prov.Offering().Labels.Get("operator"); op != "shop" {
		t.Errorf("the retailer sells under operator %q", op)
	}
	if c, _ := ret.Node.prov.Offering().Labels.Get("certification"); c != "secnumcloud" {
		t.Errorf("the retailer sells under certification %q, want the site's", c)
	}

	customer := startRequesterDaemon(t, boot)
	const spec = "version: 1\nname: retail\ntask:\n  module: m.wasm\n  args: [--name, retail]\n  resources: {cpu: 500m, memory: 64Mi}\n" +
		"constraints:\n  - certification = secnumcloud\n"
	key := submitSpec(t, customer.Node, spec, exectest.Module(t, "hello"), nil)
	v, err := customer.Node.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || v.Slots[0].Provider != ret.Node.ID().String() || v.Slots[0].Site != site.Node.ID().String() {
		t.Fatalf("the customer's job: %+v, %v: want it succeeded, sold by the retailer, run at the site", v, err)
	}
	stdout, _, _, _, _ := customer.Node.Logs(key)
	if string(stdout) != "hello, retail! (0 lines on stdin)\n" {
		t.Errorf("the customer's output: %q", stdout)
	}

	// The site ran it: the customer's job, under the retailer's lease.
	leases, err := site.Store.Leases(nil)
	if err != nil || len(leases) != 1 || leases[0].Requester != string(ret.Node.ID()) || leases[0].JobCID != string(mustCID(t, key).Bytes()) {
		t.Fatalf("the site's leases: %+v, %v", leases, err)
	}
	// Both legs' receipts countersigned: the retailer's to the customer at
	// its price, the site's to the retailer at zero.
	waitFor(t, time.Minute, "both receipts countersigned", func() bool {
		rr, err1 := ret.Store.Receipts()
		sr, err2 := site.Store.Receipts()
		return err1 == nil && err2 == nil && len(rr) == 1 && len(sr) == 1 && len(rr[0].Countersignature) > 0 && len(sr[0].Countersignature) > 0
	})
	rr, _ := ret.Store.Receipts()
	sr, _ := site.Store.Receipts()
	retailReceipt, err1 := record.OpenReceipt(rr[0].Envelope)
	siteReceipt, err2 := record.OpenReceipt(sr[0].Envelope)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if retailReceipt.GetAmount().GetNanos() == 0 || peer.ID(retailReceipt.Requester) != customer.Node.ID() {
		t.Errorf("the retail receipt: %+v", retailReceipt)
	}
	if siteReceipt.GetAmount().GetNanos() != 0 || peer.ID(siteReceipt.Requester) != ret.Node.ID() || siteReceipt.Epoch != retailReceipt.Epoch {
		t.Errorf("the site's receipt: %+v", siteReceipt)
	}
	// The billing export shows both legs and the margin.
	rb, err := ret.Node.Billing(billing.Window{})
	if err != nil || len(rb.Slices) != 1 || rb.Slices[0].Role != "retailer" || len(rb.Margins) != 1 || rb.Rows[0].Leg != billing.LegRetail {
		t.Errorf("the retailer's statement: %+v, %v", rb, err)
	}
	sb, err := site.Node.Billing(billing.Window{})
	if err != nil || len(sb.Slices) != 1 || sb.Slices[0].Role != "site" || sb.Rows[0].Leg != billing.LegSlice {
		t.Errorf("the site's statement: %+v, %v", sb, err)
	}
	if h := sha256.Sum256(sr[0].Envelope); !siteReceipt.OnSlice || !bytes.Equal(retailReceipt.SiteReceipt, h[:]) {
		t.Errorf("the two legs are not linked: the site's on a slice %v; the retail receipt names %x, the site's hashes to %x",
			siteReceipt.OnSlice, retailReceipt.SiteReceipt, h)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
