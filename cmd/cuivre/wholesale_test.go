package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestWholesaleCLI: two `cuivre daemon` processes, a site (4 vCPUs, half
// of them for slices) and a retailer; the retailer finds the site's tariff
// with `wholesale sites`, rents a slice with `wholesale request`, is refused
// a second one past the tariff's capacity with the site's reason, and sees
// it in `wholesale list` and `node status`; the site shows its tariff and
// withdraws the slice with `wholesale withdraw`, refused without notice;
// the retailer's `wholesale evidence` passes `wholesale audit`; the site
// bills the rent with `wholesale bill`, which the retailer countersigns and
// its `billing export` shows; the retailer gives the slice back with
// `wholesale release`.
func TestWholesaleCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	site := startDaemon(t, initDir(t), "", "wholesale.enabled=true", "capacity.reserve.cpu=0", "capacity.offered_percent=100")
	retailer := startDaemon(t, initDir(t), site.id.Addrs[0])
	as := func(d *daemon, args ...string) (string, error) {
		return run(t, append(args, "--data-dir", d.dir)...)
	}

	var sites []api.TariffView
	deadline := time.Now().Add(time.Minute)
	for len(sites) == 0 {
		out, err := as(retailer, "wholesale", "sites", "fr", "-o", "json")
		if err == nil {
			err = json.Unmarshal([]byte(out), &sites)
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("wholesale sites: %v\n%s", err, out)
		}
	}
	out, err := as(retailer, "wholesale", "sites", "FR")
	if err != nil || !strings.Contains(out, "0.019998 EUR") || !strings.Contains(out, "jurisdiction=fr") {
		t.Fatalf("wholesale sites table: %v\n%s", err, out)
	}

	out, err = as(retailer, "wholesale", "request", site.id.ID, "--cpu", "2", "--memory", "1Gi", "--for", "240h")
	if err != nil || !strings.Contains(out, "active") || !strings.Contains(out, "for the whole slice") {
		t.Fatalf("wholesale request: %v\n%s", err, out)
	}
	if _, err = as(retailer, "wholesale", "request", site.id.ID, "--cpu", "1", "--for", "240h"); err == nil || !strings.Contains(err.Error(), "slice_full") {
		t.Fatalf("a slice past the tariff's capacity: %v", err)
	}
	if _, err = as(retailer, "wholesale", "request", site.id.ID, "--cpu", "1"); err == nil || !strings.Contains(err.Error(), "--for 720h") {
		t.Fatalf("a slice of no length: %v", err)
	}
	out, err = as(retailer, "wholesale", "list")
	if err != nil || !strings.Contains(out, "retailer") {
		t.Fatalf("wholesale list: %v\n%s", err, out)
	}
	out, err = as(retailer, "node", "status")
	if err != nil || !strings.Contains(out, "slices held") {
		t.Fatalf("node status of the retailer: %v\n%s", err, out)
	}

	out, err = as(retailer, "wholesale", "evidence", site.id.ID)
	if err != nil || !strings.Contains(out, `"grant"`) {
		t.Fatalf("wholesale evidence: %v\n%s", err, out)
	}
	evidence := filepath.Join(t.TempDir(), "evidence.json")
	if err := os.WriteFile(evidence, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = as(retailer, "wholesale", "audit", site.id.ID, evidence)
	if err != nil || !strings.Contains(out, "passes") || !strings.Contains(out, "grants checked  1") {
		t.Fatalf("wholesale audit: %v\n%s", err, out)
	}

	out, err = as(site, "wholesale", "tariff")
	if err != nil || !strings.Contains(out, "2 vCPU") {
		t.Fatalf("wholesale tariff: %v\n%s", err, out)
	}
	out, err = as(site, "wholesale", "bill")
	if err != nil || !strings.Contains(out, "yes") {
		t.Fatalf("wholesale bill: %v\n%s", err, out)
	}
	if out, err = as(retailer, "billing", "export"); err != nil || !strings.Contains(out, "(rent)") || !strings.Contains(out, "Slices:") {
		t.Fatalf("the retailer's statement after a bill of rent: %v\n%s", err, out)
	}
	var v api.WholesaleView
	out, err = as(site, "wholesale", "list", "-o", "json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &v)
	}
	if err != nil || len(v.Grants) != 1 {
		t.Fatalf("the site's grants: %v\n%s", err, out)
	}
	prefix := v.Grants[0].ID[:8]
	if _, err = as(site, "wholesale", "withdraw", prefix, "--in", "1h"); err == nil || !strings.Contains(err.Error(), "notice_too_short") {
		t.Fatalf("a withdrawal without notice: %v", err)
	}
	out, err = as(site, "wholesale", "withdraw", prefix, "--in", "48h")
	if err != nil || !strings.Contains(out, "withdrawn") {
		t.Fatalf("wholesale withdraw: %v\n%s", err, out)
	}
	if _, err = as(retailer, "wholesale", "release", prefix, "--in", "1h"); err == nil || !strings.Contains(err.Error(), "notice_too_short") {
		t.Fatalf("a release without notice: %v", err)
	}
	out, err = as(retailer, "wholesale", "release", prefix, "--in", "30h")
	if err != nil || !strings.Contains(out, "released") {
		t.Fatalf("wholesale release: %v\n%s", err, out)
	}
	if out, err = as(site, "wholesale", "list"); err != nil || !strings.Contains(out, "(released)") {
		t.Fatalf("the site's list after the release: %v\n%s", err, out)
	}
	if _, err = as(retailer, "wholesale", "tariff"); err == nil || !strings.Contains(err.Error(), "wholesale.enabled") {
		t.Fatalf("the tariff of a node that is no site: %v", err)
	}
}

// TestLeaseOnSlice: a retailer leases on its slice of a site (a `cuivre
// daemon` process), presenting its grant (SPEC 6.7): the job runs on the
// site, billed nothing (the slice is paid whole); a lease past the slice is
// refused SLICE_EXCEEDED; the grant presented by another peer is refused
// GRANT_WRONG_GRANTEE, a forged one BAD_SIGNATURE, one presented to
// another provider GRANT_WRONG_SITE; and the site's own retail keeps off
// the slice.
func TestLeaseOnSlice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	site := startDaemon(t, initDir(t), "", "wholesale.enabled=true", "capacity.reserve.cpu=0", "capacity.offered_percent=100")
	boot, err := peer.AddrInfoFromString(site.id.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	retailer, key := requesterNode(t, *boot)
	stranger, _ := requesterNode(t, *boot)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, n := range []*node.Node{retailer, stranger} {
		if err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var g api.GrantView
	for g.ID == "" {
		// The site publishes its tariff once it has a DHT peer.
		g, err = retailer.RequestSlice(ctx, api.SliceAsk{Site: site.id.ID, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30},
			End: time.Now().Add(2 * time.Hour)})
		if err != nil && ctx.Err() != nil {
			t.Fatalf("slice: %v", err)
		}
	}
	ev, err := retailer.WholesaleEvidence(site.id.ID)
	if err != nil || len(ev) != 1 {
		t.Fatalf("the retailer's grant: %v, %v", ev, err)
	}
	grant := ev[0].Grant
	siteID := peer.ID(boot.ID)

	res, stdout := leaseOf(t, ctx, retailer, key, siteID, exectest.Module(t, "hello"), []string{"--name", "slice"},
		&pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20}, 30*time.Second, nil, nil, grant)
	if res.GetState() != pb.LeaseState_LEASE_STATE_SUCCEEDED || stdout != "hello, slice! (0 lines on stdin)\n" {
		t.Fatalf("the lease on the slice: %v, %q", res.GetState(), stdout)
	}
	r, err := record.OpenReceipt(res.Receipt)
	if err != nil || r.GetAmount().GetNanos() != 0 || peer.ID(r.Requester) != retailer.ID() {
		t.Fatalf("the receipt of a lease on a slice: %+v, %v; want nothing billed to the retailer", r, err)
	}

	ask := func(n *node.Node, cpu uint64, grant []byte) error {
		_, _, err := n.RequestOffer(ctx, siteID, scheduler.Request{Nonce: string(random(protocol.NonceSize)), JobCID: string(wire.SumCID([]byte("job")).Bytes()),
			Executor: "wasm", Resources: scheduler.Resources{CPUMillis: cpu, MemoryBytes: 64 << 20}, Timeout: time.Minute,
			ExpiresAt: time.Now().Add(5 * time.Second), Grant: string(grant)})
		return err
	}
	if err := ask(retailer, 1500, grant); protocol.CodeOf(err) != pb.Code_CODE_SLICE_EXCEEDED {
		t.Errorf("past the slice: %v, want SLICE_EXCEEDED", err)
	}
	if err := ask(stranger, 500, grant); protocol.CodeOf(err) != pb.Code_CODE_GRANT_WRONG_GRANTEE {
		t.Errorf("another peer's grant: %v, want GRANT_WRONG_GRANTEE", err)
	}
	forged := bytes.Clone(grant)
	forged[len(forged)-1] ^= 1
	if err := ask(retailer, 500, forged); protocol.CodeOf(err) != pb.Code_CODE_BAD_SIGNATURE {
		t.Errorf("a forged grant: %v, want BAD_SIGNATURE", err)
	}
	// The grant presented to another provider than its site.
	other := startDaemon(t, initDir(t), site.id.Addrs[0])
	otherID, err := peer.Decode(other.id.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := retailer.Host().Connect(ctx, peer.AddrInfo{ID: otherID, Addrs: addrsOf(t, other.id.Addrs)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := retailer.RequestOffer(ctx, otherID, scheduler.Request{Nonce: string(random(protocol.NonceSize)),
		JobCID: string(wire.SumCID([]byte("job")).Bytes()), Executor: "wasm", Resources: scheduler.Resources{MemoryBytes: 1 << 20}, Timeout: time.Minute,
		ExpiresAt: time.Now().Add(5 * time.Second), Grant: string(grant)}); protocol.CodeOf(err) != pb.Code_CODE_GRANT_WRONG_SITE {
		t.Errorf("a grant presented to another site: %v, want GRANT_WRONG_SITE", err)
	}
	if err := ask(stranger, 3500, nil); protocol.CodeOf(err) != pb.Code_CODE_INSUFFICIENT_CPU {
		t.Errorf("the site's own retail past what the slice leaves: %v, want INSUFFICIENT_CPU", err)
	}
	if err := ask(stranger, 3000, nil); err != nil {
		t.Errorf("the site's own retail within what the slice leaves: %v", err)
	}
}

// addrsOf reads multiaddrs that end in /p2p/<peer ID> as addresses.
func addrsOf(t *testing.T, full []string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, a := range full {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ai.Addrs...)
	}
	return out
}
