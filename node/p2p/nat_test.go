package p2p_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cuivre/cuivre/node/p2p"
	"github.com/cuivre/cuivre/protocol/pb"
)

func natHost(t *testing.T, n p2p.NAT, l p2p.Limits) *p2p.Host {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// No hole punch can succeed here (loopback is no address to punch
	// from): a short wait keeps the test short, whatever the machine.
	h, err := p2p.New(p2p.Options{Identity: k, NAT: n, Limits: l, PunchWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestRelayedPlacement: a peer reachable only through a relay gets
// placement's small messages through it once hole punching has failed, its
// origin unknown (the relay's address says nothing of the sender); a
// module is refused with ErrRelayOnly rather than pushed through the relay.
func TestRelayedPlacement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	relay := natHost(t, p2p.NAT{Reachability: network.ReachabilityPublic, RelayService: p2p.RelayOn}, p2p.Limits{})
	if !relay.Reach().RelayService {
		t.Fatal("relay_service on: the relay says it relays for nobody")
	}
	target := natHost(t, p2p.NAT{Reachability: network.ReachabilityPrivate, RelayClient: true, HolePunching: true},
		p2p.Limits{Loopback: true})
	srv := &origins{}
	target.Serve(srv)
	if _, err := client.Reserve(ctx, target.Host(), relay.AddrInfo()); err != nil {
		t.Fatalf("reserve a slot on the relay: %v", err)
	}
	asker := natHost(t, p2p.NAT{RelayClient: true, HolePunching: true}, p2p.Limits{})
	circuit := relay.AddrInfo().Addrs[0].Encapsulate(ma.StringCast("/p2p/" + relay.ID().String() + "/p2p-circuit"))
	asker.Host().Peerstore().AddAddr(target.ID(), circuit, peerstore.TempAddrTTL)

	resp, err := asker.Offer(ctx, target.Self(), &pb.OfferRequest{})
	if err != nil {
		t.Fatalf("offer through the relay: %v", err)
	}
	if resp.GetRefusal().GetCode() != pb.Code_CODE_INSUFFICIENT_CPU {
		t.Fatalf("offer through the relay: %v, want the handler's refusal", resp)
	}
	for _, c := range asker.Host().Network().ConnsToPeer(target.ID()) {
		if !c.Stat().Limited {
			t.Fatalf("a direct connection to the target, %s: the test shows nothing", c.RemoteMultiaddr())
		}
	}
	srv.mu.Lock()
	got := srv.seen
	srv.mu.Unlock()
	if len(got) != 1 || got[0] != "" {
		t.Errorf("origin of a relayed request %q, want none (loopback is limited here, so the relay's address would have shown)", got)
	}
	if got := metric(t, asker, "cuivre_relayed_streams_total"); got != 1 {
		t.Errorf("cuivre_relayed_streams_total %v, want 1", got)
	}
	if got := metric(t, target, "cuivre_streams_served_total"); got != 1 {
		t.Errorf("cuivre_streams_served_total at the target %v, want 1 (the offer)", got)
	}
	err = asker.Module(ctx, target.Self(), &pb.ModuleRequest{}, func(*pb.ModuleChunk) bool { return true })
	if !errors.Is(err, p2p.ErrRelayOnly) {
		t.Fatalf("module through the relay: %v, want ErrRelayOnly", err)
	}
	if !strings.Contains(err.Error(), "not sent through a relay") {
		t.Errorf("error %q does not say why", err)
	}
}

// TestDevnetAnnounces: a host whose listen addresses are all loopback (a
// devnet) announces them, and knows its reachability is unknown.
func TestDevnetAnnounces(t *testing.T) {
	h := natHost(t, p2p.NAT{}, p2p.Limits{})
	if len(h.Host().Addrs()) == 0 {
		t.Fatal("a devnet host announces nothing")
	}
	if r := h.Reach(); r.Reachability != "unknown" || len(r.Listen) == 0 || len(r.Announced) == 0 || r.RelayService {
		t.Errorf("Reach() = %+v, want unknown reachability, listen and announced addresses, no relay service", r)
	}
	relayed := natHost(t, p2p.NAT{RelayClient: true}, p2p.Limits{})
	for _, a := range relayed.Reach().Listen {
		if strings.Contains(a, "p2p-circuit") {
			t.Errorf("listen addresses hold the relay transport's %s, not an interface's", a)
		}
	}
}

// metric sums a counter of h's collectors.
func metric(t *testing.T, h *p2p.Host, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
