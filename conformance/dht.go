package conformance

import (
	"context"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// dhtTimeout bounds each DHT lookup of the suite.
const dhtTimeout = 20 * time.Second

// dhtChecks reads the provider's capacity record and its facet keys from
// the private DHT, joined through the provider itself, in client mode.
func (s *provSuite) dhtChecks(ctx context.Context) {
	d, err := dht.New(s.h, dht.Mode(dht.ModeClient), dht.ProtocolPrefix(protocol.DHTPrefix),
		dht.BootstrapPeers(s.o.Target), dht.NamespacedValidator(protocol.CapacityNamespace, record.CapacityValidator{Now: s.now}))
	if err != nil {
		s.skip("capacity.record", "start a DHT client: %v", err)
		return
	}
	defer d.Close()
	// The provider is the kit's one DHT peer: it joins the routing table
	// now, once it is known to speak the DHT protocol (identify told, on
	// the connection the suite opened), rather than after kad-dht's own
	// liveness check, which runs in the background.
	kad := p2pproto.ID(protocol.DHTPrefix + "/kad/1.0.0")
	if p, err := s.h.Peerstore().FirstSupportedProtocol(s.target, kad); err != nil || p == "" {
		s.fail("capacity.record", "the provider does not speak %s (4.1)", kad)
		return
	}
	if _, err := d.RoutingTable().TryAddPeer(s.target, true, false); err != nil {
		s.skip("capacity.record", "add the provider to the routing table: %v", err)
		return
	}
	key := record.CapacityKey(s.target)
	gctx, cancel := context.WithTimeout(ctx, dhtTimeout)
	env, err := d.GetValue(gctx, key)
	cancel()
	if err != nil {
		s.fail("capacity.record", "GetValue(/%s/<peer ID>): %v", protocol.CapacityNamespace, err)
		return
	}
	rec := new(pb.CapacityRecord)
	signer, _, err := record.Open(env, rec)
	if err != nil {
		s.fail("capacity.record", "the record does not open: %v", err)
		return
	}
	s.expect("capacity.signer", signer == s.target && string(rec.Provider) == string(signer), "signer %s, CapacityRecord.provider %x", signer, rec.Provider)
	if _, err := (record.CapacityValidator{Now: s.now}).Open(key, env); err != nil {
		s.fail("capacity.record", "%v", err)
		return
	}
	s.pass("capacity.record")
	s.capRec = rec

	labels := map[string]string{}
	for _, l := range rec.Labels {
		labels[l.Key] = l.Value
	}
	type fv struct {
		f protocol.Facet
		v string
	}
	want := []fv{{protocol.FacetAny, ""}}
	for _, c := range []struct {
		f     protocol.Facet
		label string
	}{{protocol.FacetRegion, "region"}, {protocol.FacetJurisdiction, "jurisdiction"}, {protocol.FacetCertification, "certification"}} {
		if v, ok := labels[c.label]; ok {
			want = append(want, fv{c.f, v})
		}
	}
	for _, e := range rec.Executors {
		want = append(want, fv{protocol.FacetExecutor, e})
	}
	if rec.Total != nil {
		want = append(want, fv{protocol.FacetSize, protocol.SizeClass(rec.Total.MemoryBytes)})
	}
	var missing []string
	for _, w := range want {
		k, err := protocol.ProviderKey(w.f, w.v, string(s.target))
		if err != nil {
			continue // a value that is not a facet value is not announced (4.2)
		}
		if !s.provides(ctx, d, k) {
			missing = append(missing, k.String())
		}
	}
	s.expect("facet.keys", len(missing) == 0, "not a provider of %v", missing)
	k, _ := protocol.ProviderKey(protocol.FacetAny, "", string(s.target))
	k.Shard = (k.Shard + 1) % 64
	s.expect("facet.one-shard", !s.provides(ctx, d, k), "also a provider of %s, not its shard", k)
}

// provides reports whether the provider is among the DHT providers of k.
func (s *provSuite) provides(ctx context.Context, d *dht.IpfsDHT, k protocol.FacetKey) bool {
	ctx, cancel := context.WithTimeout(ctx, dhtTimeout)
	defer cancel()
	for p := range d.FindProvidersAsync(ctx, wire.FacetCID(k), 0) {
		if p.ID == s.target {
			return true
		}
	}
	return false
}
