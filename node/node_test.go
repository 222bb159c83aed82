package node

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/p2p"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

func newKey(tb testing.TB) crypto.PrivKey {
	tb.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func testMarket() scheduler.MarketConfig {
	return scheduler.MarketConfig{
		Capacity:  scheduler.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, ScratchBytes: 10 << 30},
		Labels:    scheduler.NewLabels(scheduler.Label{Key: "jurisdiction", Value: "fr"}, scheduler.Label{Key: "region", Value: "fr-par"}),
		Executors: []string{"wasm"},
		Pricing:   scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000, MemoryNanosPerGiBSecond: 1_000}},
	}
}

// newPair starts a provider and a requester on loopback, the requester
// bootstrapping from the provider.
func newPair(t *testing.T) (prov, req *Node) {
	t.Helper()
	ctx := context.Background()
	prov, err := New(Options{Identity: newKey(t), Market: testMarket(), Store: openStore(t), Exec: exectest.NewExecutor(t, exec.Config{}), Data: openData(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	req, err = New(Options{Identity: newKey(t), Market: testMarket(), Bootstrap: []peer.AddrInfo{prov.AddrInfo()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { req.Close() })
	if err := req.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "routing tables filled", func() bool {
		return prov.RoutingTableSize() > 0 && req.RoutingTableSize() > 0
	})
	return prov, req
}

// waitFor polls cond until it holds or the timeout passes. It waits on real
// network events (a routing table filling), not on a fixed sleep.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nonce(t *testing.T) string {
	b := make([]byte, protocol.NonceSize)
	rand.Read(b)
	return string(b)
}

func request(t *testing.T, mem uint64) scheduler.Request {
	return scheduler.Request{
		Nonce: nonce(t), JobCID: string(wire.SumCID([]byte("job")).Bytes()), Executor: "wasm",
		Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: mem}, Timeout: 30 * time.Second,
		MaxPrice: scheduler.Amount{Currency: "EUR", Nanos: 1e9}, ExpiresAt: time.Now().Add(5 * time.Second),
	}
}

// TestDiscoverAndOffer: real libp2p hosts on loopback. The provider
// announces its facet keys in the DHT, the requester finds it there, asks for
// an offer and gets one it can verify; an offer too large is refused with its
// reason.
func TestDiscoverAndOffer(t *testing.T) {
	prov, req := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := prov.Advertise(ctx); err != nil {
		t.Fatalf("advertise: %v", err)
	}
	key, err := protocol.ProviderKey(protocol.FacetJurisdiction, "fr", string(prov.ID()))
	if err != nil {
		t.Fatal(err)
	}
	found := req.FindProviders(ctx, key, 4)
	if len(found) != 1 || found[0] != prov.ID() {
		t.Fatalf("FindProviders(%s) = %v, want the provider %s", key, found, prov.ID())
	}

	offer, env, err := req.RequestOffer(ctx, prov.ID(), request(t, 128<<20))
	if err != nil {
		t.Fatalf("RequestOffer: %v", err)
	}
	if offer.Provider != string(prov.ID()) || offer.Total.Nanos == 0 || len(env) == 0 {
		t.Fatalf("offer = %+v", offer)
	}
	if st := prov.MarketState(); st.Reservations != 1 || st.Reserved.MemoryBytes != 128<<20 {
		t.Fatalf("provider holds %+v, want one reservation of 128 MiB", st)
	}

	_, _, err = req.RequestOffer(ctx, prov.ID(), request(t, 64<<30))
	if !errors.Is(err, &protocol.Error{Code: pb.Code_CODE_INSUFFICIENT_MEMORY}) {
		t.Fatalf("too large: got %v, want insufficient memory", err)
	}

	bad := request(t, 128<<20)
	bad.Nonce = "short"
	if _, _, err = req.RequestOffer(ctx, prov.ID(), bad); !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("bad nonce: got %v, want malformed", err)
	}
	expired := request(t, 128<<20)
	expired.ExpiresAt = time.Now().Add(-time.Second)
	if _, _, err = req.RequestOffer(ctx, prov.ID(), expired); !errors.Is(err, protocol.ErrExpired) {
		t.Fatalf("expired request: got %v, want expired", err)
	}
}

// TestOversizedFrame: a frame over the offer protocol's limit is refused as
// too large and the provider keeps serving.
func TestOversizedFrame(t *testing.T) {
	prov, req := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := req.Host().NewStream(ctx, prov.ID(), protocol.OfferID)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, protocol.MaxOfferMsg+100)
	w := wire.NewWriter(s, len(big)+16)
	// The provider may stop reading mid-frame, once the length prefix told
	// it enough: a failed write is expected; its answer must still arrive.
	_ = w.WriteMsg(&pb.OfferRequest{JobCid: big})
	var resp pb.OfferResponse
	if err := wire.NewReader(s, protocol.MaxOfferMsg).ReadMsg(&resp); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if got := resp.GetRefusal().GetCode(); got != pb.Code_CODE_TOO_LARGE {
		t.Fatalf("refusal code %v, want TOO_LARGE", got)
	}
	s.Close()
	if _, _, err := req.RequestOffer(ctx, prov.ID(), request(t, 128<<20)); err != nil {
		t.Fatalf("provider stopped serving: %v", err)
	}
}

// TestCapacityRecord: a provider publishes its signed capacity record in the
// DHT; another node reads and verifies it; a forged record is refused.
func TestCapacityRecord(t *testing.T) {
	prov, req := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := prov.PublishCapacity(ctx); err != nil {
		t.Fatalf("publish: %v", err)
	}
	rec, err := req.Capacity(ctx, prov.ID())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if peer.ID(rec.Provider) != prov.ID() || rec.Total.GetCpuMillis() != 4000 || len(rec.Labels) != 2 {
		t.Fatalf("record = %v", rec)
	}
	// The requester cannot put a record under the provider's key.
	forged, err := req.capacityRecord(time.Now(), 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Transport().DHT().PutValue(ctx, p2p.CapacityKey(prov.ID()), forged); err == nil {
		t.Fatal("a record signed by another peer was accepted")
	}
}

// TestReprice: new labels take effect in offers and in the DHT.
func TestReprice(t *testing.T) {
	prov, req := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	labels := scheduler.NewLabels(scheduler.Label{Key: "jurisdiction", Value: "de"}, scheduler.Label{Key: "region", Value: "de-fra"})
	p := testMarket().Pricing
	p.Base.CPUNanosPerSecond *= 2
	if err := prov.Reprice(p, labels); err != nil {
		t.Fatal(err)
	}
	if err := prov.Advertise(ctx); err != nil {
		t.Fatal(err)
	}
	key, _ := protocol.ProviderKey(protocol.FacetRegion, "de-fra", string(prov.ID()))
	if found := req.FindProviders(ctx, key, 4); len(found) != 1 {
		t.Fatalf("not found under the new region: %v", found)
	}
	o, _, err := req.RequestOffer(ctx, prov.ID(), request(t, 128<<20))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Labels.Get("region"); v != "de-fra" || o.Price.CPUNanosPerSecond != 20_000 {
		t.Fatalf("offer after reprice: %v %v", o.Labels, o.Price)
	}
}
